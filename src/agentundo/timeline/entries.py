"""Rows of the timeline: one :class:`Entry` per record, every cell already text."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from agentundo.evidence.events import COMMON_FIELDS, GOOD_VERDICTS, Event
from agentundo.evidence.groups import FAILURES, KNOWN_EVENTS, SUCCESSES
from agentundo.evidence.reader import Record
from agentundo.timeline.times import parse_ts, seconds_text

if TYPE_CHECKING:
    from agentundo.timeline.runs import Run


SHOWN_AS_GOOD = frozenset(str(v) for v in GOOD_VERDICTS)
"""Verdicts shown as good (green; not a problem in ``--summary --only-problems``)."""


class Tone(StrEnum):
    """How a row should catch the eye."""

    PLAIN = "plain"
    SUCCESS = "success"
    FAILURE = "failure"
    SKIP = "skip"
    MANUAL = "manual"
    UNKNOWN = "unknown"


def tone(record: dict[str, Any]) -> Tone:
    event = record.get("event")
    if event not in KNOWN_EVENTS:
        return Tone.UNKNOWN
    if event in FAILURES:
        return Tone.FAILURE
    if event == Event.POLICY_DECISION and record.get("decision") == "deny":
        return Tone.FAILURE
    if event == Event.COMPENSATION_SKIPPED:
        return Tone.SKIP
    if event == Event.MANUAL_FOLLOWUP:
        return Tone.MANUAL
    if event in SUCCESSES:
        return Tone.SUCCESS
    return Tone.PLAIN


_COLUMN_FIELDS = frozenset(
    {*COMMON_FIELDS, "job_id", "step_id", "topic", "idempotency_key", "decision", "rule_id"}
)


def value_text(value: object) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_QUIET_WHEN_FALSE = frozenset(
    {"approval_present", "default", "is_compensation", "injected", "failed_step", "partial"}
)
"""Flags that only matter when set: the row shows them when true, JSON always."""


def _worth_showing(key: str, value: object, data: dict[str, Any]) -> bool:
    """Leave out what carries no information in a row: nulls, empty values, false flags,
    and a reason that only repeats the rule id (all still present in JSON output)."""
    if value is None or value in ("", [], {}):
        return False
    if value is False and key in _QUIET_WHEN_FALSE:
        return False
    return not (key == "reason" and value == f"rule '{data.get('rule_id')}'")


@dataclass(frozen=True, slots=True)
class Entry:
    """One row of the timeline, every cell already text."""

    line: int
    clock: str
    offset: str
    job: str
    step: str
    event: str
    topic: str
    decision: str
    key: str
    detail: str
    tone: Tone


def decision_text(data: dict[str, Any]) -> str:
    event = data.get("event")
    decision = data.get("decision")
    if decision is None:
        if event == Event.STEP_DENIED:
            decision = "deny"
        elif event == Event.COMPENSATION_SKIPPED:
            decision = "skip"
    parts = [str(decision)] if decision is not None else []
    if "rule_id" in data:
        rule = data["rule_id"]
        if rule is None:
            parts.append("[default]" if data.get("default") is True else "[no rule]")
        else:
            parts.append(f"[{value_text(rule)}]")
    elif event == Event.POLICY_DECISION:
        parts.append("[no rule]")
    return " ".join(parts)


def make_entry(record: Record, run_start: datetime | None, actor: str) -> Entry:
    data = record.data
    ts = data.get("ts")
    moment = parse_ts(ts)
    clock = moment.strftime("%H:%M:%S.%f")[:-3] if moment else value_text(ts) if ts else ""
    offset = ""
    if moment is not None and run_start is not None:
        delta = (moment - run_start).total_seconds()
        offset = ("+" if delta >= 0 else "-") + seconds_text(abs(delta))
    event = record.event
    in_decision = event == Event.POLICY_DECISION and data.get("rule_id", "") is None
    details = [
        f"{k}={value_text(v)}"
        for k, v in data.items()
        if k not in _COLUMN_FIELDS
        and not (k == "default" and in_decision)
        and _worth_showing(k, v, data)
    ]
    record_actor = data.get("actor")
    if record_actor is not None and record_actor != actor:
        details.insert(0, f"actor={value_text(record_actor)}")
    if event not in KNOWN_EVENTS:
        details.insert(0, "(unknown event type)")
    return Entry(
        line=record.line,
        clock=clock,
        offset=offset,
        job=value_text(data.get("job_id", "")),
        step=value_text(data.get("step_id", "")),
        event=event,
        topic=value_text(data.get("topic", "")),
        decision=decision_text(data),
        key=value_text(data.get("idempotency_key", "") or ""),
        detail=" ".join(details),
        tone=tone(data),
    )


class RowKeeper:
    """Keeps the first ``limit`` entries of the current run (0: all)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.rows: list[Entry] = []
        self.hidden = 0

    def record(self, run: Run, record: Record) -> None:
        if self.limit and len(self.rows) >= self.limit:
            self.hidden += 1
            return
        self.rows.append(make_entry(record, run.start, run.tally.actor))

    def take(self) -> tuple[list[Entry], int]:
        rows, hidden = self.rows, self.hidden
        self.rows, self.hidden = [], 0
        return rows, hidden


def hidden_note(hidden: int) -> str:
    return (
        f"{hidden} more matching record{'' if hidden == 1 else 's'} not shown; "
        "narrow with --only-problems, --event, --job, --topic, --since, or raise --limit"
    )


COLUMNS = (
    "Time",
    "Offset",
    "Job",
    "Step",
    "Event",
    "Topic",
    "Decision",
    "Idempotency key",
    "Detail",
)


def entry_cells(entry: Entry) -> tuple[str, ...]:
    return (
        entry.clock,
        entry.offset,
        entry.job,
        entry.step,
        entry.event,
        entry.topic,
        entry.decision,
        entry.key,
        entry.detail,
    )
