"""Set up drills from files and options, run them with evidence files, sweep a workflow.

This is the layer between the CLI and the engine: it loads and cross-checks the inputs
(raising positioned :class:`~agentundo.errors.InputError`), opens one evidence file per
run, and runs sweeps. It prints nothing.
"""

from __future__ import annotations

import difflib
import os
import re
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentundo.errors import InputError, InputErrors, Position, UsageError
from agentundo.evidence.events import StepState, Verdict
from agentundo.load.files import LoadedFile, load_file
from agentundo.model.catalog import Catalog
from agentundo.model.common import DURATION_PATTERN, Rollback, seconds
from agentundo.model.scenario import FAULT_SPECS, FailMode, Fault, FaultType, Scenario
from agentundo.model.workflow import Workflow
from agentundo.saga.clock import MAX_WAIT_S, Clock
from agentundo.saga.engine import drill
from agentundo.saga.executor import Executor
from agentundo.saga.faults import FaultPlan, contradictions
from agentundo.saga.plan import check_plan
from agentundo.saga.result import DrillResult
from agentundo.saga.setup import DrillSetup, Settings, Stop

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


@dataclass(slots=True)
class Loaded:
    setup: DrillSetup
    clock_name: str


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


def load_drill(
    workflow_path: str,
    catalog_path: str,
    policy_path: str,
    scenario_path: str | None,
    options: Options,
) -> Loaded:
    """Load and cross-check every input; raise positioned input errors (exit 2)."""
    from agentundo.model.foreign_policy import ForeignPolicy, convert, register

    register()
    workflow = load_file(workflow_path, expect="workflow")
    catalog = load_file(catalog_path, expect="catalog")
    policy = load_file(policy_path)
    if isinstance(policy.model, ForeignPolicy):
        policy_model = convert(policy.model).policy
    elif policy.kind == "policy":
        policy_model = policy.model
    else:
        raise InputError(
            policy.kind_position(), f"expected a policy file, found a {policy.kind} file"
        )
    scenario_file: LoadedFile | None = None
    scenario: Scenario | None = None
    if scenario_path is not None:
        scenario_file = load_file(scenario_path, expect="scenario")
        scenario = scenario_file.model
    if options.clock not in (None, "virtual", "real"):
        raise UsageError(f"--clock must be virtual or real, not {options.clock!r}")
    if options.seed is not None and options.seed < 0:
        raise UsageError(f"--seed must be 0 or more, not {options.seed}")
    faults: list[Fault] = list(scenario.faults) if scenario is not None else []
    scenario_faults = len(faults)
    flags: list[str] = []  # the option that added each fault after the scenario's
    for step in options.fail_at:
        faults.append(Fault(type=FaultType.FATAL, step=_step_flag("--fail-at", step)))
        flags.append(f"--fail-at {step}")
    for step in options.partial:
        faults.append(Fault(type=FaultType.PARTIAL, step=_step_flag("--partial", step)))
        flags.append(f"--partial {step}")
    for spec in options.transient:
        faults.append(_transient(spec))
        flags.append(f"--transient {spec}")
    approvals = [*(scenario.approvals if scenario is not None else ()), *options.approve]
    plan = FaultPlan.of(faults)
    errors = duration_errors(scenario_file, catalog)
    errors.extend(_contradiction_errors(faults, flags, scenario_file))
    topics = catalog.model.topics
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
    if scenario is not None and scenario_file is not None:
        if scenario.workflow is not None and scenario.workflow != workflow.model.workflow:
            errors.append(
                InputError(
                    scenario_file.position("workflow"),
                    f"scenario is for workflow '{scenario.workflow}', "
                    f"not '{workflow.model.workflow}'",
                )
            )
        errors.extend(_unknown_steps(scenario_file, workflow.model))
    for problem in check_plan(workflow.model, catalog.model, plan, options.approve):
        if problem.usage:
            raise UsageError(problem.message)
        if problem.fault_index is not None and problem.fault_index < scenario_faults:
            assert scenario_file is not None
            where = scenario_file.position("faults", problem.fault_index, "step")
            errors.append(InputError(where, problem.message))
        elif problem.step_index is not None:
            errors.append(
                InputError(workflow.position("steps", problem.step_index), problem.message)
            )
        elif problem.fault_index is not None:
            raise UsageError(problem.message)
        else:
            errors.append(InputError(Position(workflow.path), problem.message))
    settings = settings_from(scenario, options)
    for index, reason in _unrehearsable(faults, workflow.model, catalog.model, settings, options):
        if index < scenario_faults:
            assert scenario_file is not None
            errors.append(InputError(scenario_file.position("faults", index), reason))
        else:
            raise UsageError(f"{flags[index - scenario_faults]}: {reason}")
    if errors:
        raise InputErrors(errors)
    if options.seed is not None:
        seed = options.seed
    elif scenario is not None and scenario.seed is not None:
        seed = scenario.seed
    else:
        seed = 0
    clock_name = options.clock or (scenario.clock if scenario and scenario.clock else "virtual")
    setup = DrillSetup(
        workflow=workflow.model,
        catalog=catalog.model,
        policy=policy_model,
        plan=plan,
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
) -> tuple[DrillResult, Path]:
    """Run one drill, writing its evidence to ``<evidence_dir>/<run_id>.jsonl``.

    ``executor`` replaces the simulated world (e.g. an HttpExecutor); ``secrets`` are
    redacted from the evidence.
    """
    from agentundo.evidence.writer import EvidenceWriter

    run_id = run_id or new_run_id()
    path = evidence_dir / f"{run_id}.jsonl"
    with EvidenceWriter(path, secrets=secrets) as writer:
        result = drill(
            setup, run_id=run_id, sink=writer.write, clock=clock, stop=stop, executor=executor
        )
    return result, path


NOT_REACHED = "not_reached"
"""The verdict of a sweep run that stopped before the step it was to fail (e.g. an
earlier step was denied): the failure was never injected, so the run is no pass."""


@dataclass(frozen=True, slots=True)
class SweepRow:
    """One run of a sweep: FAILED_FATAL injected at ``step_id``.

    ``verdict`` is the run's, except that a run which recovered without reaching
    ``step_id`` is :data:`NOT_REACHED`; ``stopped_at`` names the step where it stopped.
    """

    index: int
    step_id: str
    topic: str
    run_id: str
    status: str
    verdict: str
    compensated: int
    manual: int
    problems: tuple[str, ...]
    evidence: str | None
    reached: bool = True
    stopped_at: str | None = None


PARALLEL_MIN_RUNS = 24
"""Sweeps with fewer runs stay in one process: below this, starting the worker processes
(~15 ms with fork) and shipping rows back cost about as much as the runs save (measured:
16 runs take ~27 ms in one process and ~34 ms in two, 24 runs ~77 ms and ~50 ms)."""


def default_jobs() -> int:
    """How many processes a sweep uses by default: one per CPU this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@dataclass(frozen=True, slots=True)
class _SweepPlan:
    """What every run of a sweep shares; sent once to each worker process."""

    setup: DrillSetup
    kept: tuple[Fault, ...]
    base: str
    evidence_dir: Path | None
    clock_factory: Callable[[], Clock]

    def run(self, index: int, stop: Stop | None) -> SweepRow:
        """Run ``index`` (FAILED_FATAL at step ``index``), writing its evidence file."""
        from dataclasses import replace

        from agentundo.evidence.writer import EvidenceWriter

        step = self.setup.workflow.steps[index]
        failure = Fault(type=FaultType.FATAL, step=step.id)
        plan = FaultPlan.of([*self.kept, failure])
        one = replace(self.setup, plan=plan, expect=None, must_reach=(failure,))
        run_id = f"{self.base}-{index + 1:03d}"
        path: Path | None = None
        if self.evidence_dir is not None:
            path = self.evidence_dir / f"{run_id}.jsonl"
            with EvidenceWriter(path) as writer:
                result = drill(
                    one, run_id=run_id, sink=writer.write, clock=self.clock_factory(), stop=stop
                )
        else:
            result = drill(one, run_id=run_id, sink=_discard, clock=self.clock_factory(), stop=stop)
        reached = result.steps[index].attempts > 0  # dispatched: the injected failure fired
        stopped = next(
            (s for s in result.steps if s.state not in (StepState.SUCCEEDED, StepState.NOT_RUN)),
            None,
        )
        verdict = result.verdict.value
        if not reached and result.verdict is not Verdict.INTERRUPTED:
            verdict = NOT_REACHED  # its evidence says "failed", with the reason
        return SweepRow(
            index=index,
            step_id=step.id,
            topic=step.topic,
            run_id=run_id,
            status=result.status.value,
            verdict=verdict,
            compensated=sum(1 for r in result.ledger if r.state == "undone"),
            manual=len(result.followups),
            problems=tuple(result.problems),
            evidence=None if path is None else str(path),
            reached=reached,
            stopped_at=None if stopped is None else stopped.step_id,
        )


def sweep(
    setup: DrillSetup,
    *,
    clock_factory: Callable[[], Clock],
    evidence_dir: Path | None,
    stop: Stop | None = None,
    on_run: Callable[[int, int], None] | None = None,
    jobs: int = 1,
) -> list[SweepRow]:
    """Run the drill once per step with ``fatal`` injected there; one row per run.

    The scenario's own ``fatal`` and ``partial`` faults and its expectations are left out
    (each run has its own failure point); the other faults apply to every run. A run
    that stops before its step (an earlier step denied, say) is :data:`NOT_REACHED`.

    With ``jobs`` > 1 (and at least :data:`PARALLEL_MIN_RUNS` runs) the runs are spread
    over that many worker processes. Each run is the same as in one process (its run id,
    seed, faults, evidence file), so the rows are too; they come back in step order and
    ``on_run(done, total)`` is called as runs finish. When ``stop`` is requested, runs
    not yet started are not started and the runs under way stop at their next safe
    point, recorded as interrupted; the rows of the runs that ran are returned.
    """
    kept = tuple(f for f in setup.plan.faults if not FAULT_SPECS[f.type].ends_forward)
    plan = _SweepPlan(setup, kept, new_run_id(), evidence_dir, clock_factory)
    total = len(setup.workflow.steps)
    if jobs > 1 and total >= PARALLEL_MIN_RUNS:
        from agentundo.saga.parallel import run_parallel

        return run_parallel(plan.run, total, jobs=jobs, stop=stop, on_run=on_run)
    rows: list[SweepRow] = []
    for index in range(total):
        if stop is not None and stop.requested:
            break
        rows.append(plan.run(index, stop))
        if on_run is not None:
            on_run(index + 1, total)
    return rows


def _discard(record: dict[str, Any]) -> None:
    del record
