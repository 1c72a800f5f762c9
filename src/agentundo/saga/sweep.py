"""A sweep: the drill run once per step, with FAILED_FATAL injected at that step.

Every run of a sweep shares one :class:`~agentundo.saga.setup.DrillSetup`; each gets its
own run id, evidence file and failure point. Runs spread over worker processes when
there are enough of them (:mod:`agentundo.saga.parallel`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentundo.evidence.events import LedgerState, Verdict
from agentundo.model.scenario import FAULT_SPECS, Fault, FaultType
from agentundo.saga.clock import Clock
from agentundo.saga.drills import new_run_id
from agentundo.saga.engine import drill
from agentundo.saga.faults import FaultPlan
from agentundo.saga.setup import DrillSetup, Stop

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
    evidence_failure: str | None = None
    """Why this run's evidence is incomplete (a full disk): the sweep stops after it."""


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
        lost: str | None = None
        if self.evidence_dir is not None:
            path = self.evidence_dir / f"{run_id}.jsonl"
            # simulated runs touch nothing real: no fsync per record (the file is complete
            # when it is closed; a crash loses a simulation, not a refund)
            with EvidenceWriter(path, sync="never") as writer:
                result = drill(
                    one, run_id=run_id, sink=writer.write, clock=self.clock_factory(), stop=stop
                )
            lost = writer.failure
        else:
            result = drill(one, run_id=run_id, sink=_discard, clock=self.clock_factory(), stop=stop)
        reached = result.steps[index].attempts > 0  # dispatched: the injected failure fired
        stopped = next((s for s in result.steps if s.stopped), None)
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
            compensated=sum(1 for r in result.ledger if r.state is LedgerState.UNDONE),
            manual=len(result.followups),
            problems=tuple(result.problems),
            evidence=None if path is None else str(path),
            reached=reached,
            stopped_at=None if stopped is None else stopped.step_id,
            evidence_failure=lost,
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
        if rows[-1].evidence_failure is not None:
            break  # a full disk fails every later run's evidence too
    return rows


def _discard(record: dict[str, Any]) -> None:
    del record
