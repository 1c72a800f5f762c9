"""Runs grouped by workflow: pass rate, last verdict, rollback durations, follow-ups, trend."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from agentundo.history.collect import RunEntry
from agentundo.timeline.times import format_duration

TREND_RUNS = 20
"""Runs shown in a trend (the newest); older ones are left out, with a mark saying so."""


class Mark(StrEnum):
    """One run in a trend."""

    PASS = "pass"  # a good verdict, evidence not failing verification
    FAIL = "fail"  # a bad verdict, or evidence that failed verification
    INCOMPLETE = "incomplete"  # no run_summary: the run did not finish (or its tail was cut)


def mark_of(run: RunEntry) -> Mark:
    if run.passed:
        return Mark.PASS
    if not run.complete and run.verified is not False:
        return Mark.INCOMPLETE
    return Mark.FAIL


UNICODE_MARKS = {Mark.PASS: "✓", Mark.FAIL: "✗", Mark.INCOMPLETE: "?"}
ASCII_MARKS = {Mark.PASS: "+", Mark.FAIL: "x", Mark.INCOMPLETE: "?"}


def trend_text(marks: Sequence[Mark], *, unicode: bool) -> str:
    """The newest :data:`TREND_RUNS` marks, oldest first: ``✓✓✗✓`` (ASCII ``++x+``), after
    ``(N older)`` when there are more."""
    table = UNICODE_MARKS if unicode else ASCII_MARKS
    shown = "".join(table[m] for m in marks[-TREND_RUNS:])
    older = len(marks) - TREND_RUNS
    return f"({older} older) {shown}" if older > 0 else shown


def duration_text(seconds: float | None) -> str:
    """A duration as the terminal and the page show it; ``-`` when there is none."""
    return "-" if seconds is None else format_duration(seconds)


def date_text(run: RunEntry) -> str:
    """A run's start as ``YYYY-MM-DD HH:MM`` (its raw ``ts`` when that does not parse)."""
    moment = run.moment
    return moment.strftime("%Y-%m-%d %H:%M") if moment else run.started


def can_encode(encoding: str | None, text: str = "✓✗·") -> bool:
    """Whether a stream of ``encoding`` can write the trend's marks."""
    if not encoding:
        return False
    try:
        text.encode(encoding)
    except (LookupError, UnicodeEncodeError):
        return False
    return True


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowStats:
    """The runs of one workflow, summed up (runs sorted by start, oldest first)."""

    workflow: str
    runs: int
    passed: int
    last_verdict: str
    last_started: str
    last_run: str
    rollbacks: int
    """Runs whose rollback finished (their duration is known)."""
    rollback_mean_s: float | None
    rollback_max_s: float | None
    followups: int
    unplanned_followups: int
    unverified: int
    """Runs whose evidence failed verification."""
    incomplete: int
    marks: tuple[Mark, ...]

    @property
    def pass_rate(self) -> float:
        return self.passed / self.runs if self.runs else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow,
            "runs": self.runs,
            "passed": self.passed,
            "pass_rate": round(self.pass_rate, 4),
            "last_verdict": self.last_verdict,
            "last_started": self.last_started,
            "last_run": self.last_run,
            "rollbacks": self.rollbacks,
            "rollback_mean_s": _round(self.rollback_mean_s),
            "rollback_max_s": _round(self.rollback_max_s),
            "manual_followups": self.followups,
            "unplanned_followups": self.unplanned_followups,
            "failed_verification": self.unverified,
            "incomplete": self.incomplete,
            "trend": [str(m) for m in self.marks],
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _count(value: int | str, counted: int) -> int:
    """A summary's count when it is a number, else what the records counted."""
    return value if isinstance(value, int) and not isinstance(value, bool) else counted


def workflow_stats(workflow: str, runs: Sequence[RunEntry]) -> WorkflowStats:
    """The stats of one workflow's runs (sorted oldest first)."""
    durations = [r.rollback_s for r in runs if r.rollback_s is not None]
    last = runs[-1]
    return WorkflowStats(
        workflow=workflow,
        runs=len(runs),
        passed=sum(r.passed for r in runs),
        last_verdict=last.verdict,
        last_started=last.started,
        last_run=last.run_id,
        rollbacks=len(durations),
        rollback_mean_s=sum(durations) / len(durations) if durations else None,
        rollback_max_s=max(durations) if durations else None,
        followups=sum(_count(r.manual_followups, r.followup_count) for r in runs),
        unplanned_followups=sum(r.unplanned_count for r in runs),
        unverified=sum(r.verified is False for r in runs),
        incomplete=sum(not r.complete for r in runs),
        marks=tuple(mark_of(r) for r in runs),
    )


def by_workflow(runs: Iterable[RunEntry]) -> list[WorkflowStats]:
    """Runs grouped by workflow, sorted by workflow id; each group's runs oldest first."""
    groups: dict[str, list[RunEntry]] = {}
    for run in sorted(runs, key=lambda r: (r.started, r.path, r.line)):
        groups.setdefault(run.workflow, []).append(run)
    return [workflow_stats(name, groups[name]) for name in sorted(groups)]
