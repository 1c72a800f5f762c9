"""Set up drills from files and options, run them with evidence files, sweep a workflow.

This is the layer between the CLI and the engine: it loads and cross-checks the inputs
(raising positioned :class:`~agentundo.errors.InputError`), opens one evidence file per
run, and runs sweeps. It prints nothing.
"""

from __future__ import annotations

import difflib
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentundo.errors import InputError, InputErrors, Position, UsageError
from agentundo.load.files import LoadedFile, load_file
from agentundo.model.common import seconds
from agentundo.model.scenario import FailMode, Fault, FaultType, Scenario
from agentundo.saga.clock import Clock
from agentundo.saga.engine import DrillResult, DrillSetup, Settings, Stop, check_plan, drill
from agentundo.saga.executor import Executor
from agentundo.saga.faults import FaultPlan

DEFAULT_EVIDENCE_DIR = "agentundo-evidence"


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


@dataclass(slots=True)
class Loaded:
    setup: DrillSetup
    clock_name: str


def _transient(spec: str) -> Fault:
    step, sep, count = spec.rpartition("=")
    if not sep or not step or not count.isdigit() or int(count) < 1:
        raise UsageError(f"--transient expects STEP=N with N >= 1, got {spec!r}")
    return Fault(type=FaultType.TRANSIENT, step=step, count=int(count))


def settings_from(scenario: Scenario | None, options: Options) -> Settings:
    """Engine settings: defaults, then the scenario's, then the command line's."""
    values: dict[str, Any] = {}
    if scenario is not None:
        s = scenario.settings
        durations = {
            "backoff_initial": "backoff_initial_s",
            "backoff_max": "backoff_max_s",
            "approval_timeout": "approval_timeout_s",
            "lock_ttl": "lock_ttl_s",
            "rollback_window": "rollback_window_s",
            "compensation_timeout": "compensation_timeout_s",
        }
        for name, target in durations.items():
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
        raise InputError(policy.position(), f"expected a policy file, found a {policy.kind} file")
    scenario_file: LoadedFile | None = None
    scenario: Scenario | None = None
    if scenario_path is not None:
        scenario_file = load_file(scenario_path, expect="scenario")
        scenario = scenario_file.model
    if options.clock not in (None, "virtual", "real"):
        raise UsageError(f"--clock must be virtual or real, not {options.clock!r}")
    faults: list[Fault] = list(scenario.faults) if scenario is not None else []
    scenario_faults = len(faults)
    faults.extend(Fault(type=FaultType.FATAL, step=s) for s in options.fail_at)
    faults.extend(Fault(type=FaultType.PARTIAL, step=s) for s in options.partial)
    faults.extend(_transient(t) for t in options.transient)
    approvals = [*(scenario.approvals if scenario is not None else ()), *options.approve]
    plan = FaultPlan.of(faults)
    errors: list[InputError] = []
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
        known = {s.id for s in workflow.model.steps}
        errors.extend(
            InputError(
                scenario_file.position("approvals", i),
                f"approval for step '{name}', which is not in the workflow",
            )
            for i, name in enumerate(scenario.approvals)
            if name not in known
        )
    for problem in check_plan(workflow.model, catalog.model, plan, options.approve):
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
        settings=settings_from(scenario, options),
        expect=scenario.expect if scenario is not None else None,
        scenario=scenario.scenario if scenario is not None else None,
        seed=seed,
        clock_name=clock_name,
    )
    return Loaded(setup=setup, clock_name=clock_name)


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


@dataclass(frozen=True, slots=True)
class SweepRow:
    """One run of a sweep: FAILED_FATAL injected at ``step_id``."""

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
        plan = FaultPlan.of([*self.kept, Fault(type=FaultType.FATAL, step=step.id)])
        one = replace(self.setup, plan=plan, expect=None)
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
        return SweepRow(
            index=index,
            step_id=step.id,
            topic=step.topic,
            run_id=run_id,
            status=result.status.value,
            verdict=result.verdict.value,
            compensated=sum(1 for r in result.ledger if r.state == "undone"),
            manual=len(result.followups),
            problems=tuple(result.problems),
            evidence=None if path is None else str(path),
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
    (each run has its own failure point); the other faults apply to every run.

    With ``jobs`` > 1 (and at least :data:`PARALLEL_MIN_RUNS` runs) the runs are spread
    over that many worker processes. Each run is the same as in one process (its run id,
    seed, faults, evidence file), so the rows are too; they come back in step order and
    ``on_run(done, total)`` is called as runs finish. When ``stop`` is requested, runs
    not yet started are not started and the runs under way stop at their next safe
    point, recorded as interrupted; the rows of the runs that ran are returned.
    """
    kept = tuple(f for f in setup.plan.faults if f.type not in (FaultType.FATAL, FaultType.PARTIAL))
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
