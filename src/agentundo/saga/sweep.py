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
from typing import Any, Literal, get_args

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


EvidenceLevel = Literal["all", "failures", "none"]
"""Which sweep runs keep their evidence: every run (the default), only the runs that did
not pass (a failed, unreached or interrupted run), or none (the engine alone)."""

EVIDENCE_LEVELS: tuple[EvidenceLevel, ...] = get_args(EvidenceLevel)

SUFFIX = ".jsonl.gz"
"""A sweep run's evidence file: ``<run_id>.jsonl.gz``, gzip-compressed JSON Lines."""

PASSING = frozenset({Verdict.RECOVERED, Verdict.COMPLETED})
"""The verdicts of a run that passed (and reached its step)."""


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
    level: EvidenceLevel = "all"

    def run(self, index: int, stop: Stop | None) -> SweepRow:
        """Run ``index`` (FAILED_FATAL at step ``index``), writing its evidence file."""
        from dataclasses import replace

        step = self.setup.workflow.steps[index]
        failure = Fault(type=FaultType.FATAL, step=step.id)
        plan = FaultPlan.of([*self.kept, failure])
        one = replace(self.setup, plan=plan, expect=None, must_reach=(failure,))
        run_id = f"{self.base}-{index + 1:03d}"
        path: Path | None = None
        lost: str | None = None
        if self.evidence_dir is not None and self.level != "none":
            from agentundo.evidence.buffered import BufferedEvidence

            # a rehearsal against the simulated world: nothing is owed if it dies, so its
            # records are sealed in memory and written once, compressed, with one fsync
            passed = [False]
            keep = None if self.level == "all" else (lambda: not passed[0])
            path = self.evidence_dir / f"{run_id}{SUFFIX}"
            writer = BufferedEvidence(path, keep=keep, sync=False)  # synced by sweep()
            try:
                result = drill(
                    one, run_id=run_id, sink=writer.write, clock=self.clock_factory(), stop=stop
                )
                passed[0] = result.steps[index].attempts > 0 and result.verdict in PASSING
            finally:
                writer.close()
            path, lost = writer.path, writer.failure
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
    evidence_level: EvidenceLevel = "all",
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

    Evidence (under ``evidence_dir``): each run's records are sealed in memory and written
    when it ends as ``<run_id>.jsonl.gz``; at the end every file gets its one ``fsync``
    (many at once) and the directory is synced (:class:`~agentundo.evidence.buffered.BufferedEvidence`): a sweep is a
    rehearsal, so a crash loses runs to run again, never a record of a real effect.
    ``evidence_level`` (:data:`EvidenceLevel`) keeps every run's, only the failures', or
    none; a run without a file has ``evidence`` None.
    """
    kept = tuple(f for f in setup.plan.faults if not FAULT_SPECS[f.type].ends_forward)
    plan = _SweepPlan(setup, kept, new_run_id(), evidence_dir, clock_factory, evidence_level)
    total = len(setup.workflow.steps)
    if jobs > 1 and total >= PARALLEL_MIN_RUNS:
        from agentundo.saga.parallel import run_parallel

        rows = run_parallel(plan.run, total, jobs=jobs, stop=stop, on_run=on_run)
    else:
        rows = _in_process(plan, total, stop, on_run)
    if any(r.evidence is not None for r in rows):
        _sync(rows)
    return rows


def _sync(rows: list[SweepRow]) -> None:
    """Sync every run's file (one ``fsync`` each, many at once) and the directory: a
    failure becomes the evidence failure of the run whose file it is (or of the last run
    with a file, for the directory), which the sweep reports."""
    from dataclasses import replace

    from agentundo.evidence.buffered import sync_files

    written = {Path(r.evidence): i for i, r in enumerate(rows) if r.evidence is not None}
    for path, why in sync_files(list(written)).items():
        at = written.get(path, max(written.values()))
        if rows[at].evidence_failure is None:
            rows[at] = replace(rows[at], evidence_failure=f"evidence file {path}: {why}")


def _in_process(
    plan: _SweepPlan, total: int, stop: Stop | None, on_run: Callable[[int, int], None] | None
) -> list[SweepRow]:
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


RECORDS_PER_RUN_SQUARED = 2.5
"""A sweep of N steps writes about 2.5·N² + 10·N records: run k dispatches k steps
(a policy decision, a dispatch and an outcome each) and compensates or settles up to k
(measured: 96,750 records for the 200-step benchmark, 2.42·N²)."""
BYTES_PER_RECORD = 80
"""Compressed bytes a record takes in a sweep run's ``.jsonl.gz`` (measured: 75; the two
hex hashes of each record do not compress)."""
SECONDS_PER_RECORD = 30e-6
"""Time a record costs in one process, engine and evidence (measured: 15-30 µs on the
2-core development machine under load)."""
EVIDENCE_BUDGET = 1 << 30
"""Estimated evidence above which a sweep asks for ``--yes`` (1 GiB)."""
TIME_BUDGET = 600.0
"""Estimated seconds above which a sweep asks for ``--yes`` (10 minutes)."""


@dataclass(frozen=True, slots=True)
class Estimate:
    """What a sweep is expected to cost before it starts (an estimate, not a promise)."""

    steps: int
    records: int
    evidence_bytes: int
    seconds: float
    jobs: int

    @property
    def over_budget(self) -> bool:
        return self.evidence_bytes > EVIDENCE_BUDGET or self.seconds > TIME_BUDGET

    def describe(self) -> str:
        """``a sweep of 5000 steps runs 5000 drills: about 62,550,000 records, ...``"""
        minutes = self.seconds / 60
        took = f"{minutes:.0f} minutes" if minutes >= 2 else f"{self.seconds:.0f} seconds"
        evidence = (
            f"about {_size(self.evidence_bytes)} of compressed evidence"
            if self.evidence_bytes
            else "no evidence"
        )
        processes = "1 process" if self.jobs == 1 else f"{self.jobs} processes"
        return (
            f"a sweep of {self.steps} steps runs {self.steps} drills: about "
            f"{self.records:,} evidence records, {evidence}, about {took} with {processes}"
        )


def estimate(steps: int, *, jobs: int, evidence_level: EvidenceLevel) -> Estimate:
    """The expected records, evidence bytes and time of a sweep of ``steps`` steps
    (``failures`` is counted as ``all``: which runs fail is not known beforehand)."""
    records = int(RECORDS_PER_RUN_SQUARED * steps * steps + 10 * steps)
    written = 0 if evidence_level == "none" else records * BYTES_PER_RECORD
    parallel = jobs if jobs > 1 and steps >= PARALLEL_MIN_RUNS else 1
    return Estimate(steps, records, written, records * SECONDS_PER_RECORD / parallel, parallel)


def _size(count: int) -> str:
    if count >= 1 << 30:
        return f"{count / (1 << 30):.1f} GB"
    if count >= 1 << 20:
        return f"{count / (1 << 20):.0f} MB"
    return f"{max(1, count >> 10)} kB"
