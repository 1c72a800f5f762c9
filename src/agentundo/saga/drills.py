"""Set up drills from files and options, run them with evidence files, sweep a workflow.

This is the layer between the CLI and the engine: it loads and cross-checks the inputs
(raising positioned :class:`~agentundo.errors.InputError`), opens one evidence file per
run, and runs sweeps. It prints nothing.
"""

from __future__ import annotations

import difflib
import re
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentundo.errors import InputError, InputErrors, Position, UsageError
from agentundo.load.files import LoadedFile, load_file
from agentundo.model.catalog import Catalog
from agentundo.model.common import DURATION_PATTERN, Rollback, seconds
from agentundo.model.policy import Policy
from agentundo.model.scenario import FAULT_SPECS, FailMode, Fault, FaultType, Scenario, Seam
from agentundo.model.workflow import Workflow
from agentundo.saga.clock import MAX_WAIT_S, Clock
from agentundo.saga.engine import drill
from agentundo.saga.executor import Executor
from agentundo.saga.faults import FaultPlan, contradictions
from agentundo.saga.lock import LockStore
from agentundo.saga.plan import check_plan
from agentundo.saga.result import DrillResult
from agentundo.saga.setup import DrillSetup, Settings, Stop

if TYPE_CHECKING:
    from agentundo.model.cordum_workflow import Plan as CordumPlan

DEFAULT_EVIDENCE_DIR = "agentundo-evidence"

HTTP_DEADLINE_S = 120.0
"""The deadline of the forward steps with ``--executor http`` unless one is given: real
endpoints take real time, and an unreachable one must not keep a drill retrying for the
engine's full 50 retries (about 18 minutes of backoff)."""

MAX_DURATION = "168h"
"""The longest duration a drill accepts (7 days, :data:`~agentundo.saga.clock.MAX_WAIT_S`)."""

SCENARIO_DURATIONS = {
    "backoff_initial": "backoff_initial_s",
    "backoff_max": "backoff_max_s",
    "approval_timeout": "approval_timeout_s",
    "lock_ttl": "lock_ttl_s",
    "rollback_window": "rollback_window_s",
    "compensation_timeout": "compensation_timeout_s",
    "deadline": "deadline_s",
}
"""Scenario settings that are durations, and the engine setting each one sets."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """What the command line adds to (or overrides in) a scenario."""

    fail_at: Sequence[str] = ()
    partial: Sequence[str] = ()
    transient: Sequence[str] = ()  # STEP=N
    approve: Sequence[str] = ()
    seed: int | None = None
    clock: str | None = None
    compensate_failed_step: bool | None = None
    derive_compensation_keys: bool | None = None
    policy_fail_mode: str | None = None
    deadline: str | None = None  # a duration
    executor: str = "simulated"  # or http: real endpoints get a deadline by default
    sweep: bool = False
    jobs: int | None = None  # --sweep worker processes (None: one per CPU)
    evidence: str | None = None  # the evidence directory (None: the default)
    output_format: str = "text"
    lock: str = "file"  # the run's rollback lock: memory, file or a Redis URL
    output: str | None = None  # -o: the report's file (None: stdout)
    inputs: Sequence[str] | None = None  # --input KEY=VALUE: a Cordum workflow's run inputs
    evidence_level: str = "all"  # --sweep: all, failures or none (saga.sweep.EvidenceLevel)
    yes: bool = False  # --sweep: run even when its estimate is over the budget

    def input_values(self) -> dict[str, Any] | None:
        """``--input`` as a mapping (None when none was given); UsageError when malformed."""
        from agentundo.model.cordum_condition import parse_input

        if not self.inputs:
            return None
        values: dict[str, Any] = {}
        for spec in self.inputs:
            try:
                key, value = parse_input(spec)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
            values[key] = value
        return values

    def check(self) -> None:
        """Refuse (exit 2) options that cannot go together, before anything is read."""
        if self.output_format not in ("text", "json", "junit"):
            raise UsageError(f"unknown format {self.output_format!r}; expected text, json or junit")
        if self.executor not in ("simulated", "http"):
            raise UsageError(f"unknown executor {self.executor!r}; expected simulated or http")
        if self.jobs is not None and self.jobs < 1:
            raise UsageError(f"--jobs must be at least 1, not {self.jobs}")
        if self.executor == "http" and self.sweep:
            raise UsageError("--sweep runs the simulated executor only")
        if self.sweep and (self.fail_at or self.partial):
            given = "--fail-at" if self.fail_at else "--partial"
            raise UsageError(
                f"--sweep fails each step in turn, so it cannot be combined with {given}; "
                "drop one of them"
            )
        if self.evidence_level not in ("all", "failures", "none"):
            raise UsageError(
                f"unknown evidence level {self.evidence_level!r}; expected all, failures or none"
            )
        if not self.sweep and (self.evidence_level != "all" or self.yes):
            given = "--yes" if self.yes else "--evidence-level"
            raise UsageError(f"{given} only applies with --sweep")
        if self.evidence is not None and not self.evidence.strip():
            raise UsageError("--evidence needs a directory, not an empty string")
        check_evidence_dir(self.evidence_dir)

    def lock_store(self, plan: FaultPlan) -> LockStore:
        """The run's lock store: ``--lock``; a plan with lock faults rehearses them on an
        in-process lock (a fault cannot make a real lock expire or be held)."""
        from agentundo.saga.lock_stores import open_lock_store

        if any(FAULT_SPECS[f.type].seam is Seam.LOCK for f in plan.faults):
            return open_lock_store("memory", directory=self.evidence_dir)
        return open_lock_store(self.lock, directory=self.evidence_dir / ".locks")

    @property
    def evidence_dir(self) -> Path:
        return Path(self.evidence or DEFAULT_EVIDENCE_DIR)

    @property
    def clock_choice(self) -> str | None:
        """The clock asked for; real endpoints wait for real unless told otherwise."""
        if self.executor == "http" and self.clock is None:
            return "real"
        return self.clock


@dataclass(slots=True)
class Loaded:
    setup: DrillSetup
    clock_name: str
    skipped: tuple[tuple[str, str], ...] = ()
    """Steps of a Cordum workflow the drill does not run, and why (conditions, types)."""


def _transient(spec: str) -> Fault:
    step, sep, count = spec.rpartition("=")
    if not sep or not step or not count.isdigit() or int(count) < 1:
        raise UsageError(f"--transient expects STEP=N with N >= 1, got {spec!r}")
    return Fault(type=FaultType.TRANSIENT, step=step, count=int(count))


def _step_flag(flag: str, step: str) -> str:
    if not step.strip():
        raise UsageError(f"{flag} expects a step id, got {step!r}")
    return step


def _too_long(value: str) -> bool:
    return seconds(value) > MAX_WAIT_S


def _deadline_flag(value: str) -> float:
    """``--deadline``: a duration above 0 and at most :data:`MAX_DURATION`."""
    if re.fullmatch(DURATION_PATTERN, value) is None:
        raise UsageError(f"--deadline expects a duration such as 90s, 2m or 1h, got {value!r}")
    if _too_long(value):
        raise UsageError(f"--deadline {value} is longer than {MAX_DURATION} (7 days)")
    if seconds(value) <= 0:
        raise UsageError("--deadline must be longer than 0s")
    return seconds(value)


def duration_errors(scenario: LoadedFile | None, catalog: LoadedFile) -> list[InputError]:
    """Durations a drill would read that are longer than :data:`MAX_DURATION` (or a 0s
    deadline), each at its position: the scenario's settings and the catalog's timeouts."""
    errors: list[InputError] = []
    limit = f"at most {MAX_DURATION} (7 days)"
    if scenario is not None:
        settings = scenario.model.settings
        for name in SCENARIO_DURATIONS:
            value = getattr(settings, name)
            if value is None:
                continue
            where = scenario.position("settings", name)
            if _too_long(value):
                errors.append(InputError(where, f"settings.{name} {value} is too long: {limit}"))
            elif name == "deadline" and seconds(value) <= 0:
                errors.append(InputError(where, "settings.deadline must be longer than 0s"))
    model: Catalog = catalog.model
    for topic_name, topic in model.topics.items():
        for path, value in topic.timeouts():
            if _too_long(value):
                errors.append(
                    InputError(
                        catalog.position("topics", topic_name, *path),
                        f"{'.'.join(path)} {value} of topic '{topic_name}' is too long: {limit}",
                    )
                )
    return errors


def settings_from(scenario: Scenario | None, options: Options) -> Settings:
    """Engine settings: defaults, then the scenario's, then the command line's."""
    values: dict[str, Any] = {}
    if scenario is not None:
        s = scenario.settings
        for name, target in SCENARIO_DURATIONS.items():
            value = getattr(s, name)
            if value is not None:
                values[target] = seconds(value)
        for name in (
            "max_retries",
            "compensation_max_retries",
            "compensate_failed_step",
            "derive_compensation_keys",
            "policy_fail_mode",
        ):
            value = getattr(s, name)
            if value is not None:
                values[name] = value
    if options.compensate_failed_step is not None:
        values["compensate_failed_step"] = options.compensate_failed_step
    if options.derive_compensation_keys is not None:
        values["derive_compensation_keys"] = options.derive_compensation_keys
    if options.policy_fail_mode is not None:
        if options.policy_fail_mode not in {m.value for m in FailMode}:
            raise UsageError(
                f"--policy-fail-mode must be closed or open, not {options.policy_fail_mode!r}"
            )
        values["policy_fail_mode"] = FailMode(options.policy_fail_mode)
    if options.deadline is not None:
        values["deadline_s"] = _deadline_flag(options.deadline)
    elif options.executor == "http" and "deadline_s" not in values:
        values["deadline_s"] = HTTP_DEADLINE_S
    return Settings(**values)


def _load_policy(path: str) -> Policy:
    """A policy file, in agentundo's format or a control plane's (converted)."""
    from agentundo.model.foreign_policy import ForeignPolicy, convert, register

    register()
    policy = load_file(path)
    if isinstance(policy.model, ForeignPolicy):
        converted: Policy = convert(policy.model).policy
        return converted
    if policy.kind != "policy":
        raise InputError(
            policy.kind_position(), f"expected a policy file, found a {policy.kind} file"
        )
    loaded: Policy = policy.model
    return loaded


def _load_workflow(path: str, options: Options) -> tuple[LoadedFile, CordumPlan | None]:
    """An agentundo workflow, or a Cordum workflow (a DAG) as the linear steps to run.

    A Cordum workflow is ordered topologically; its conditions are evaluated from
    ``--input`` (without inputs, conditional steps are not rehearsed); its steps' job facts
    and approval steps go to the gate. A DAG that cannot be ordered is an input error.
    """
    from agentundo.model.cordum_workflow import CordumWorkflow, native_file, plan, problems
    from agentundo.model.foreign_policy import register

    register()
    loaded = load_file(path)
    if not isinstance(loaded.model, CordumWorkflow):
        if loaded.kind != "workflow":
            raise InputError(
                loaded.kind_position(), f"expected a workflow file, found a {loaded.kind} file"
            )
        return loaded, None
    found = problems(loaded.model)
    if found:
        raise InputErrors([InputError(loaded.position(*p.path), p.message, p.hint) for p in found])
    name = loaded.model.id or Path(path).stem
    steps = plan(loaded.model, name=name, env="production", inputs=options.input_values())
    if steps.workflow is None:
        why = "; ".join(f"{key}: {reason}" for key, reason in steps.skipped)
        raise InputError(
            loaded.position("steps"),
            f"no step of Cordum workflow '{name}' can be rehearsed ({why})",
            "give the run's inputs with --input KEY=VALUE" if options.inputs is None else None,
        )
    return native_file(loaded, steps), steps


def _policy_fail_mode(policy: Policy, scenario: LoadedFile | None, options: Options) -> str | None:
    """A control plane's ``input_policy.fail_mode`` when neither the scenario nor the
    command line sets the drill's ``policy_fail_mode``."""
    if options.policy_fail_mode is not None:
        return None
    if scenario is not None and scenario.model.settings.policy_fail_mode is not None:
        return None
    mode: str | None = getattr(policy, "fail_mode", None)
    return mode


def load_contract(catalog_path: str, policy_path: str) -> tuple[Catalog, Policy]:
    """The catalog and the policy a rollback needs (``agentundo recover``)."""
    catalog: Catalog = load_file(catalog_path, expect="catalog").model
    return catalog, _load_policy(policy_path)


def load_drill(
    workflow_path: str,
    catalog_path: str,
    policy_path: str,
    scenario_path: str | None,
    options: Options,
) -> Loaded:
    """Load and cross-check every input; raise positioned input errors (exit 2)."""

    workflow, dag = _load_workflow(workflow_path, options)
    catalog = load_file(catalog_path, expect="catalog")
    policy_model = _load_policy(policy_path)
    scenario_file: LoadedFile | None = None
    if scenario_path is not None:
        scenario_file = load_file(scenario_path, expect="scenario")
    if options.clock_choice not in (None, "virtual", "real"):
        raise UsageError(f"--clock must be virtual or real, not {options.clock!r}")
    if options.seed is not None and options.seed < 0:
        raise UsageError(f"--seed must be 0 or more, not {options.seed}")
    faults = _Faults.of(scenario_file, options)
    errors = duration_errors(scenario_file, catalog)
    errors.extend(_contradiction_errors(faults.all, faults.flags, scenario_file))
    errors.extend(_unknown_topics(workflow, catalog.model))
    if scenario_file is not None:
        errors.extend(_scenario_mismatch(scenario_file, workflow.model))
    errors.extend(_plan_errors(workflow, catalog.model, faults, scenario_file, options))
    settings = settings_from(scenario_file.model if scenario_file else None, options)
    fail_mode = _policy_fail_mode(policy_model, scenario_file, options)
    if fail_mode is not None:
        settings = replace(settings, policy_fail_mode=FailMode(fail_mode))
    errors.extend(
        _unrehearsable_errors(
            workflow.model, catalog.model, faults, scenario_file, settings, options
        )
    )
    if errors:
        raise InputErrors(errors)
    loaded = _loaded(
        workflow.model, catalog.model, policy_model, scenario_file, faults, settings, options
    )
    if dag is not None:
        loaded.setup.jobs = dag.jobs
        loaded.setup.approval_steps = dag.approvals
        loaded.skipped = dag.skipped
    return loaded


@dataclass(frozen=True, slots=True)
class _Faults:
    """The drill's faults: the scenario's first, then those the command line added."""

    all: list[Fault]
    scenario_count: int
    flags: list[str]  # the option that added each fault after the scenario's

    @classmethod
    def of(cls, scenario: LoadedFile | None, options: Options) -> _Faults:
        faults: list[Fault] = list(scenario.model.faults) if scenario is not None else []
        count = len(faults)
        flags: list[str] = []
        for step in options.fail_at:
            faults.append(Fault(type=FaultType.FATAL, step=_step_flag("--fail-at", step)))
            flags.append(f"--fail-at {step}")
        for step in options.partial:
            faults.append(Fault(type=FaultType.PARTIAL, step=_step_flag("--partial", step)))
            flags.append(f"--partial {step}")
        for spec in options.transient:
            faults.append(_transient(spec))
            flags.append(f"--transient {spec}")
        return cls(faults, count, flags)

    def at(self, scenario: LoadedFile | None, index: int, *path: str) -> Position:
        """Where the scenario's fault ``index`` is (only for the scenario's own faults)."""
        assert scenario is not None and index < self.scenario_count
        return scenario.position("faults", index, *path)


def _unknown_topics(workflow: LoadedFile, catalog: Catalog) -> list[InputError]:
    """Steps whose topic the catalog does not declare, with the closest name."""
    topics = catalog.topics
    errors: list[InputError] = []
    for index, step in enumerate(workflow.model.steps):
        if step.topic not in topics:
            close = difflib.get_close_matches(step.topic, list(topics), n=1)
            errors.append(
                InputError(
                    workflow.position("steps", index, "topic"),
                    f"step '{step.id}' uses topic '{step.topic}', which is not in the catalog",
                    f"did you mean '{close[0]}'?" if close else None,
                )
            )
    return errors


def _unrehearsable_errors(
    workflow: Workflow,
    catalog: Catalog,
    faults: _Faults,
    scenario: LoadedFile | None,
    settings: Settings,
    options: Options,
) -> list[InputError]:
    """:func:`_unrehearsable` faults at their positions (a command-line fault: exit 2)."""
    errors: list[InputError] = []
    for index, reason in _unrehearsable(faults.all, workflow, catalog, settings, options):
        if index >= faults.scenario_count:
            raise UsageError(f"{faults.flags[index - faults.scenario_count]}: {reason}")
        errors.append(InputError(faults.at(scenario, index), reason))
    return errors


def _scenario_mismatch(scenario: LoadedFile, workflow: Workflow) -> list[InputError]:
    """A scenario written for another workflow, or naming steps this one lacks."""
    errors: list[InputError] = []
    named = scenario.model.workflow
    if named is not None and named != workflow.workflow:
        errors.append(
            InputError(
                scenario.position("workflow"),
                f"scenario is for workflow '{named}', not '{workflow.workflow}'",
            )
        )
    errors.extend(_unknown_steps(scenario, workflow))
    return errors


def _plan_errors(
    workflow: LoadedFile,
    catalog: Catalog,
    faults: _Faults,
    scenario: LoadedFile | None,
    options: Options,
) -> list[InputError]:
    """:func:`check_plan`'s problems at their positions (or as usage errors)."""
    errors: list[InputError] = []
    for problem in check_plan(workflow.model, catalog, FaultPlan.of(faults.all), options.approve):
        if problem.usage:
            raise UsageError(problem.message)
        if problem.fault_index is not None and problem.fault_index < faults.scenario_count:
            where = faults.at(scenario, problem.fault_index, "step")
            errors.append(InputError(where, problem.message))
        elif problem.step_index is not None:
            errors.append(
                InputError(workflow.position("steps", problem.step_index), problem.message)
            )
        elif problem.fault_index is not None:
            raise UsageError(problem.message)
        else:
            errors.append(InputError(Position(workflow.path), problem.message))
    return errors


def _loaded(
    workflow: Workflow,
    catalog: Catalog,
    policy: Policy,
    scenario_file: LoadedFile | None,
    faults: _Faults,
    settings: Settings,
    options: Options,
) -> Loaded:
    """The checked inputs as one :class:`DrillSetup`; the command line wins over the scenario."""
    scenario: Scenario | None = scenario_file.model if scenario_file is not None else None
    if options.seed is not None:
        seed = options.seed
    elif scenario is not None and scenario.seed is not None:
        seed = scenario.seed
    else:
        seed = 0
    clock_name = options.clock_choice or (
        scenario.clock if scenario and scenario.clock else "virtual"
    )
    approvals = [*(scenario.approvals if scenario is not None else ()), *options.approve]
    setup = DrillSetup(
        workflow=workflow,
        catalog=catalog,
        policy=policy,
        plan=FaultPlan.of(faults.all),
        approvals=frozenset(approvals),
        settings=settings,
        expect=scenario.expect if scenario is not None else None,
        scenario=scenario.scenario if scenario is not None else None,
        seed=seed,
        clock_name=clock_name,
    )
    return Loaded(setup=setup, clock_name=clock_name)


_UNDOABLE = (Rollback.REVERSIBLE, Rollback.COMPENSATABLE)


def _unrehearsable(
    faults: list[Fault],
    workflow: Workflow,
    catalog: Catalog,
    settings: Settings,
    options: Options,
) -> Iterator[tuple[int, str]]:
    """Faults that cannot take effect in this drill, whatever happens in the run: a drill
    that passed with one of them would claim a rehearsal that never happened."""
    topics = {s.id: catalog.topics.get(s.topic) for s in workflow.steps}
    ends = {f.step for f in faults if FAULT_SPECS[f.type].ends_forward}
    for index, fault in enumerate(faults):
        if fault.step is None or fault.step not in topics:
            continue  # reported elsewhere
        spec = topics[fault.step]
        compensation = None
        if spec is not None and spec.side_effect and spec.rollback in _UNDOABLE:
            compensation = spec.compensation
        if FAULT_SPECS[fault.type].needs_compensation and compensation is None:
            yield (
                index,
                (
                    f"a {fault.type} fault needs a compensation to act on, and step "
                    f"'{fault.step}' has none (its topic is read-only, irreversible or declares "
                    "no compensation)"
                ),
            )
        elif fault.type is FaultType.KEY_REUSE and options.executor != "simulated":
            yield (
                index,
                (
                    "a key_reuse fault plants a conflicting payload in the simulated ledger; "
                    f"with --executor {options.executor} it cannot be injected"
                ),
            )
        elif (
            fault.type is FaultType.KEY_REUSE
            and compensation is not None
            and not compensation.idempotency_key
            and not settings.derive_compensation_keys
        ):
            yield (
                index,
                (
                    f"a key_reuse fault needs an idempotency key on the compensation of step "
                    f"'{fault.step}', and it has none (no template, and keys are not derived)"
                ),
            )
        elif (
            fault.type is FaultType.TRANSIENT
            and (fault.count or 0) > settings.max_retries
            and fault.step in ends
        ):
            yield (
                index,
                (
                    f"{fault.count} transient failures outlast the {settings.max_retries} retries, "
                    f"so the step fails before the fatal or partial fault at '{fault.step}' is reached"
                ),
            )


def _contradiction_errors(
    faults: list[Fault], flags: list[str], scenario: LoadedFile | None
) -> list[InputError]:
    """Faults that contradict each other: positioned errors for the scenario's own; a
    :class:`UsageError` when the command line (``flags``, its last faults) is involved."""
    own = len(faults) - len(flags)

    def where(index: int) -> Position:
        assert scenario is not None
        return scenario.position("faults", index)

    errors: list[InputError] = []
    for clash in contradictions(faults):
        first, second = faults[clash.first], faults[clash.second]
        if clash.second < own:
            errors.append(
                InputError(
                    where(clash.second),
                    f"this {second.type} fault contradicts the {first.type} fault at line "
                    f"{where(clash.first).line}: {clash.reason}",
                )
            )
            continue
        earlier = (
            f"the scenario's {first.type} fault ({where(clash.first)})"
            if clash.first < own
            else flags[clash.first - own]
        )
        raise UsageError(f"{flags[clash.second - own]} contradicts {earlier}: {clash.reason}")
    return errors


def _unknown_steps(scenario: LoadedFile, workflow: Workflow) -> list[InputError]:
    """Approvals and expectations of a scenario that name steps the workflow lacks."""
    known = {s.id for s in workflow.steps}
    named: list[tuple[tuple[str | int, ...], str, str]] = [
        (("approvals", i), name, f"approval for step '{name}'")
        for i, name in enumerate(scenario.model.approvals)
    ]
    expect = scenario.model.expect
    for field in ("compensated", "manual"):
        names = None if expect is None else getattr(expect, field)
        named.extend(
            (("expect", field, i), name, f"expect.{field} names step '{name}'")
            for i, name in enumerate(names or ())
        )
    errors: list[InputError] = []
    for path, name, what in named:
        if name in known:
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1)
        errors.append(
            InputError(
                scenario.position(*path),
                f"{what}, which is not in workflow '{workflow.workflow}'",
                f"did you mean '{close[0]}'?" if close else None,
            )
        )
    return errors


def check_evidence_dir(path: Path) -> None:
    """Refuse (exit 2) an evidence directory that is an existing file, before any run."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"cannot write evidence to {path}: it is a file, not a directory")


def secret_param_values(workflow: Workflow, catalog: Catalog) -> frozenset[str]:
    """The values of the params marked secret (on the step, or on its topic): redacted
    from the evidence in every form, like the environment's secrets."""
    values: set[str] = set()
    for step in workflow.steps:
        spec = catalog.topics.get(step.topic)
        names = {*(step.secret_params or ()), *((spec.secret_params or ()) if spec else ())}
        for name in sorted(names):
            value = step.params.get(name)
            if value is None or isinstance(value, dict | list):
                continue
            text = str(value)
            if len(text) < MIN_SECRET_LENGTH:
                raise UsageError(
                    f"step '{step.id}': secret param '{name}' is shorter than "
                    f"{MIN_SECRET_LENGTH} characters: redacting it would garble the evidence"
                )
            values.add(text)
    return frozenset(values)


MIN_SECRET_LENGTH = 4
"""A secret shorter than this cannot be redacted without garbling everything else."""


def new_run_id() -> str:
    return f"run_{secrets.token_hex(4)}"


def run_with_evidence(
    setup: DrillSetup,
    *,
    evidence_dir: Path,
    clock: Clock,
    stop: Stop | None = None,
    run_id: str | None = None,
    executor: Executor | None = None,
    secrets: frozenset[str] = frozenset(),
    on_evidence_failure: Callable[[str], object] | None = None,
    locks: Callable[[], LockStore] | None = None,
    observe: Callable[[dict[str, Any]], object] | None = None,
) -> tuple[DrillResult, Path, str | None]:
    """Run one drill, writing its evidence to ``<evidence_dir>/<run_id>.jsonl``; the
    result, the file, and why the evidence is incomplete (None: it is whole).

    ``executor`` replaces the simulated world (e.g. an HttpExecutor); ``secrets`` are
    redacted from the evidence; ``locks`` opens the run's lock store once the evidence
    file exists (default: in this process). Evidence that cannot be written (a full disk, a deleted
    file) never stops the run: ``on_evidence_failure`` hears of it at once, the rollback
    goes on, and the failure is returned. ``observe`` (live progress) is handed each
    record as sealed by the writer, redacted, after it was written.
    """
    from agentundo.evidence.writer import EvidenceWriter

    run_id = run_id or new_run_id()
    path = evidence_dir / f"{run_id}.jsonl"
    with EvidenceWriter(path, secrets=secrets, on_failure=on_evidence_failure) as writer:
        sink: Callable[[dict[str, Any]], object] = writer.write
        if observe is not None:
            sink = _observed(writer.write, observe)
        result = drill(
            setup,
            run_id=run_id,
            sink=sink,
            clock=clock,
            stop=stop,
            executor=executor,
            lock_store=None if locks is None else locks(),
        )
    return result, path, writer.failure


def _observed(
    write: Callable[[dict[str, Any]], dict[str, Any]], observe: Callable[[dict[str, Any]], object]
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A sink that writes each record, then shows ``observe`` the record as written."""

    def sink(record: dict[str, Any]) -> dict[str, Any]:
        sealed = write(record)
        observe(sealed)
        return sealed

    return sink


def check_output(output: str | None, inputs: Sequence[str | Path]) -> None:
    """Refuse (exit 2) a report file (``-o``) that is a directory or one of the inputs."""
    import os

    if output is None:
        return
    if not output.strip():
        raise UsageError("-o needs a file name, not an empty string")
    if Path(output).is_dir():
        raise UsageError(f"-o {output}: is a directory, not a file")
    real = os.path.realpath(output)
    for path in inputs:
        if os.path.realpath(path) == real:
            raise UsageError(f"-o {output} would overwrite the input file {path}")
