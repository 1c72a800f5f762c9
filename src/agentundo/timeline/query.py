"""Which records to show: the filters of ``agentundo timeline``, and a raw-line prefilter."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agentundo.evidence.events import Event
from agentundo.evidence.groups import PROBLEMS
from agentundo.evidence.reader import Keep
from agentundo.timeline.times import TimeBound, parse_ts


def is_problem(record: dict[str, Any]) -> bool:
    """Failures, denials, skips, timeouts, lock trouble, manual follow-ups and interruptions
    (``--only-problems``). Lock trouble: a held (``lock_busy``), expired or taken-over lock,
    and one that was not released (``lock_released`` with ``released: false``)."""
    event = record.get("event")
    if event in PROBLEMS or event == Event.LOCK_TAKEN_OVER:
        return True
    if event == Event.LOCK_RELEASED:
        return record.get("released") is False
    return event == Event.POLICY_DECISION and record.get("decision") == "deny"


def _is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def _globs(patterns: tuple[str, ...], *values: object) -> bool:
    return any(isinstance(v, str) and fnmatch.fnmatchcase(v, p) for p in patterns for v in values)


@dataclass(frozen=True, slots=True, kw_only=True)
class Query:
    """Which records to show; options of one kind are ORed, kinds are ANDed."""

    runs: tuple[str, ...] = ()
    jobs: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    events: tuple[str, ...] = ()
    since: TimeBound | None = None
    until: TimeBound | None = None
    only_problems: bool = False

    @property
    def is_filtered(self) -> bool:
        return bool(
            self.runs
            or self.jobs
            or self.topics
            or self.events
            or self.since
            or self.until
            or self.only_problems
        )

    def wants_run(self, run_id: str) -> bool:
        return not self.runs or _globs(self.runs, run_id)

    def matches(self, data: dict[str, Any], run_start: datetime | None) -> bool:
        if self.runs and not _globs(self.runs, data.get("run_id")):
            return False
        if self.events and not _globs(self.events, data.get("event")):
            return False
        if self.jobs and not _globs(self.jobs, data.get("job_id"), data.get("step_id")):
            return False
        if self.topics and not _globs(self.topics, data.get("topic"), data.get("for_topic")):
            return False
        if self.only_problems and not is_problem(data):
            return False
        if self.since is not None or self.until is not None:
            moment = parse_ts(data.get("ts"))
            if moment is None:
                return False
            since = self.since.instant(run_start) if self.since else None
            until = self.until.instant(run_start) if self.until else None
            if since is not None and moment < since:
                return False
            if until is not None and moment > until:
                return False
        return True

    def prefilter(self) -> Keep | None:
        """A cheap test on a raw line that every matching line passes, or None.

        Used only where nothing but the matching records is needed (JSON output without
        verification): a line can only match ``--event compensation_skipped`` if the bytes
        ``compensation_skipped`` occur in it, unless JSON escapes (a backslash) hide them.
        ``run_started`` lines always pass: offsets in ``--since``/``--until`` need them.
        """
        needles = [
            tuple(v.encode() for v in values)
            for values in (self.events, self.runs, self.jobs)
            if values and not any(_is_glob(v) for v in values)
        ]
        if not needles:
            return None

        def keep(line: bytes) -> bool:
            if b"\\" in line or b'"run_started"' in line:
                return True
            return all(any(n in line for n in group) for group in needles)

        return keep
