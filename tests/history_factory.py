"""Weeks of drill evidence for the history tests, written through the real EvidenceWriter.

:func:`weekly_history` writes a directory of runs of three workflows over several weeks:
clean runs, recovered rollbacks (one with a retried compensation that takes time), a planned
and an unplanned follow-up, a failed verdict, a run cut off before its summary, and one file
holding three runs (``cat`` of three files). Its run ids include a long one, so layouts
are tested with ids that do not fit a narrow column.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from agentundo.evidence.writer import EvidenceWriter
from tests.evidence_factory import START, RunBuilder, ts

LONG_ID = "run_2f1c9a7e-5b3d-4c1a-9e8f-0123456789ab-weekly-drill"
"""A run id longer than any column a table at 80 columns could give it."""


def _rollback(
    run: RunBuilder, steps: list[str], *, failing: str, settle: dict[str, str], retry_s: float
) -> tuple[list[str], int, int, str]:
    """Forward ``steps``, fail ``failing`` fatally, roll back LIFO.

    ``settle`` maps a step to ``irreversible`` (a planned follow-up) or ``denied`` (skipped
    by policy: an unplanned follow-up); others are compensated, the first one after a
    failed attempt and ``retry_s`` of backoff. Returns (compensated, follow-ups, skipped,
    the rollback's end).
    """
    for step in steps:
        run.forward_ok(step, f"svc.{step}")
    job = {"job_id": f"job-{failing}", "step_id": failing, "topic": f"svc.{failing}"}
    run.event("step_dispatched", **job, attempt=1, idempotency_key=f"{run.run_id}:{failing}")
    run.event("step_failed_fatal", **job, attempts=1, error="503 for good")
    run.event(
        "rollback_triggered",
        cause="step_failed_fatal",
        job_id=job["job_id"],
        step_id=failing,
        pending=len(steps),
    )
    compensated: list[str] = []
    followups = skipped = 0
    retried = False
    for step in reversed(steps):
        how = settle.get(step)
        if how == "denied":
            skipped += 1
            run.event(
                "compensation_skipped",
                job_id=f"comp-{step}",
                step_id=step,
                topic=f"svc.undo_{step}",
                reason="denied by policy",
                rule_id="no-undo",
            )
        if how in ("denied", "irreversible"):
            followups += 1
            run.event(
                "manual_followup",
                step_id=step,
                topic=f"svc.{step}",
                category="compensation_denied" if how == "denied" else "irreversible",
                reason=f"<{step}> needs a human",
                mitigation="call the team",
            )
            continue
        if retry_s and not retried:
            retried = True
            comp = {"job_id": f"comp-{step}", "step_id": step, "topic": f"svc.undo_{step}"}
            run.event(
                "compensation_dispatched",
                **comp,
                for_topic=f"svc.{step}",
                attempt=1,
                idempotency_key=f"{run.run_id}:{step}:undo",
                epoch=1,
            )
            run.event("compensation_failed", **comp, attempt=1, transient=True, error="timeout")
            run.event("compensation_retry_scheduled", **comp, delay_s=retry_s)
            run.now += timedelta(seconds=retry_s)
            run.event(
                "compensation_dispatched",
                **comp,
                for_topic=f"svc.{step}",
                attempt=2,
                idempotency_key=f"{run.run_id}:{step}:undo",
                epoch=1,
            )
            run.event("compensation_succeeded", **comp, applied=True)
        else:
            run.compensate_ok(step, f"svc.undo_{step}", f"svc.{step}")
        compensated.append(step)
    finished = ts(run.now)
    run.event("rollback_finished", outcome="escalated" if followups else "complete")
    return compensated, followups, skipped, finished


def drill_run(
    path: Path,
    *,
    run_id: str,
    workflow: str,
    start: datetime,
    outcome: str,
    retry_s: float = 0.0,
    steps: tuple[str, ...] = ("reserve", "charge", "ship"),
) -> Path:
    """One run: ``clean``, ``recovered``, ``planned`` (an irreversible step's follow-up),
    ``unplanned`` (a compensation denied: failed) or ``cut`` (killed before its summary)."""
    with EvidenceWriter(path) as writer:
        run = RunBuilder(writer, run_id=run_id, workflow_id=workflow, start=start)
        run.event("run_started", env="staging", scenario=f"{outcome}-drill", seed=1)
        if outcome == "clean":
            for step in steps:
                run.forward_ok(step, f"svc.{step}")
            run.summary(status="SUCCEEDED", verdict="completed")
            return path
        settle = {"planned": {steps[-1]: "irreversible"}, "unplanned": {steps[1]: "denied"}}
        compensated, followups, skipped, finished = _rollback(
            run, list(steps), failing="notify", settle=settle.get(outcome, {}), retry_s=retry_s
        )
        if outcome == "cut":
            return path
        fields: dict[str, Any] = {
            "status": "FAILED_FATAL",
            "rollback_triggered": True,
            "compensation_jobs_dispatched": len(compensated),
            "compensation_jobs_skipped": skipped,
            "manual_followups": followups,
            "rollback_finished_at": finished,
            "verdict": "failed" if outcome == "unplanned" else "recovered",
            "compensated": compensated,
        }
        run.summary(**fields)
    return path


WEEK = timedelta(days=7)

PLAN = [
    # (week, workflow, outcome, retry_s)
    (0, "refund-order", "recovered", 0.0),
    (0, "restock", "clean", 0.0),
    (1, "refund-order", "planned", 2.0),
    (1, "restock", "clean", 0.0),
    (2, "refund-order", "unplanned", 0.0),
    (2, "deploy-hotfix", "recovered", 12.0),
    (3, "refund-order", "recovered", 4.0),
    (3, "restock", "cut", 0.0),
    (4, "refund-order", "recovered", 1.0),
]
"""The weeks of :func:`weekly_history`; the last three runs go into one file."""


def weekly_history(directory: Path) -> list[str]:
    """Write :data:`PLAN` under ``directory``; the run ids, in the plan's order."""
    directory.mkdir(parents=True, exist_ok=True)
    ids = []
    parts = []
    for index, (week, workflow, outcome, retry_s) in enumerate(PLAN):
        run_id = LONG_ID if index == 4 else f"run_w{week}{index:02d}"
        ids.append(run_id)
        start = START + week * WEEK + timedelta(hours=index)
        name = f"{run_id}.jsonl"
        target = directory / ("parts" if index >= len(PLAN) - 3 else ".") / name
        target.parent.mkdir(exist_ok=True)
        drill_run(
            target, run_id=run_id, workflow=workflow, start=start, outcome=outcome, retry_s=retry_s
        )
        if index >= len(PLAN) - 3:
            parts.append(target)
    joined = directory / "weeks-3-4.jsonl"
    joined.write_bytes(b"".join(p.read_bytes() for p in parts))
    for part in parts:
        part.unlink()
    (directory / "parts").rmdir()
    return ids
