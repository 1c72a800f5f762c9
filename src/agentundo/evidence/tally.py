"""What a run's events say, counted as they stream past: the counterpart of its run_summary.

The verifier compares a :class:`RunTally` with the run's ``run_summary``; the timeline
shows it in each run's header and in the run history (``--summary``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agentundo.evidence.events import Event
from agentundo.evidence.groups import ENDS_BEFORE_DISPATCH, TALLIED, job_of
from agentundo.evidence.reader import Record


@dataclass(slots=True)
class RunTally:
    """What a run's events say, counted as they stream past (the summary's counterpart)."""

    run_id: str = ""
    workflow_id: str = ""
    actor: str = ""
    env: str | None = None
    first_ts: str | None = None
    last_ts: str | None = None
    started: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    events: int = 0
    rollback_triggered: bool = False
    compensations_dispatched: int = 0
    compensations_succeeded: int = 0
    ended_undispatched: int = 0
    open_compensations: set[str] = field(default_factory=set)
    """Compensation jobs dispatched and not yet ended: a handful, whatever the run's size."""
    skipped: int = 0
    manual_followups: int = 0
    problems: int = 0

    def feed(self, record: Record) -> None:
        data = record.data
        event = record.event
        self.events += 1
        ts = data.get("ts")
        if isinstance(ts, str):
            if self.first_ts is None:
                self.first_ts = ts
            self.last_ts = ts
        if not self.run_id:
            self.run_id = str(data.get("run_id", ""))
            self.workflow_id = str(data.get("workflow_id", ""))
            self.actor = str(data.get("actor", ""))
        if event not in TALLIED:
            return
        if event == Event.RUN_STARTED:
            self.started = data
            env = data.get("env")
            self.env = str(env) if env is not None else self.env
        elif event == Event.RUN_SUMMARY:
            self.summary = data
        elif event == Event.ROLLBACK_TRIGGERED:
            self.rollback_triggered = True
        elif event == Event.COMPENSATION_DISPATCHED:
            job = job_of(data)
            if job not in self.open_compensations:
                self.open_compensations.add(job)
                attempt = data.get("attempt", 1)
                if attempt == 1 or not isinstance(attempt, int):
                    self.compensations_dispatched += 1
        elif event == Event.COMPENSATION_SKIPPED:
            self.skipped += 1
        elif event == Event.MANUAL_FOLLOWUP:
            self.manual_followups += 1
            self.open_compensations.discard(job_of(data))
        elif event == Event.COMPENSATION_SUCCEEDED:
            self.compensations_succeeded += 1
            self.open_compensations.discard(job_of(data))
        elif event in ENDS_BEFORE_DISPATCH:
            job = job_of(data)
            if job in self.open_compensations:
                self.open_compensations.discard(job)
            else:
                self.ended_undispatched += 1

    def counts(self) -> dict[str, int]:
        """The summary's counts as the events give them (docs/evidence.md, run_summary).

        Dispatched: distinct compensation jobs with a ``compensation_dispatched``. Skipped:
        jobs never dispatched (``compensation_skipped``, or timed out or rejected before a
        dispatch). Failed: dispatched jobs that did not succeed.
        """
        return {
            "compensation_jobs_dispatched": self.compensations_dispatched,
            "compensation_jobs_skipped": self.skipped + self.ended_undispatched,
            "compensation_jobs_failed": self.compensations_dispatched
            - self.compensations_succeeded,
            "manual_followups": self.manual_followups,
        }
