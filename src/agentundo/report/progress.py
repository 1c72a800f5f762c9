"""Live progress of a drill: one line per evidence record, as the engine writes it.

The observer is handed each record after the evidence writer has sealed it, so it shows
what the evidence says and nothing more: secrets are already redacted. On a terminal the
lines are styled and wrapped between their parts; anywhere else (a CI log, a pipe) they
are plain, one per record, and flushed at once.

A line reads ``+2.793s  step_failed  close-ticket  tickets.close  attempt=3 error=...``:
the time since the run started, the event, the step, the topic, the policy decision and
what else the record says that matters while it runs (the long settings, fault list and
params of a record stay in the evidence).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from agentundo.evidence.events import COMMON_FIELDS, Event
from agentundo.timeline.entries import decision_text, tone, value_text
from agentundo.timeline.render_table import TONE_STYLES
from agentundo.timeline.times import parse_ts, seconds_text

if TYPE_CHECKING:
    from rich.console import Console

_SHOWN_APART = frozenset(
    {*COMMON_FIELDS, "job_id", "step_id", "topic", "decision", "rule_id", "default"}
)
"""Fields a line shows in its own place (or not at all)."""

_LEFT_OUT = frozenset(
    {"params", "settings", "faults", "approvals", "rollback_mode", "step_index", "idempotency_key"}
)
"""Fields too long or too quiet for a live line (the evidence has them)."""

_SUMMARY_FIELDS = (
    "status",
    "verdict",
    "compensation_jobs_dispatched",
    "compensation_jobs_skipped",
    "compensation_jobs_failed",
    "manual_followups",
)
"""What a line shows of ``run_summary`` (the report that follows shows the rest)."""

_QUIET_WHEN_FALSE = frozenset(
    {"is_compensation", "injected", "partial", "approval_present", "failed_step"}
)


def parts(record: Mapping[str, Any], start: datetime | None) -> list[str]:
    """The parts of one record's line: offset, event, step, topic, decision, fields."""
    moment = parse_ts(record.get("ts"))
    offset = ""
    if moment is not None and start is not None:
        delta = (moment - start).total_seconds()
        offset = ("+" if delta >= 0 else "-") + seconds_text(abs(delta))
    event = str(record.get("event", "?"))
    shown = [offset, event]
    shown += [
        value_text(record[n]) for n in ("step_id", "topic") if record.get(n) not in (None, "")
    ]
    decision = decision_text(dict(record))
    if decision:
        shown.append(decision)
    if event == Event.RUN_SUMMARY:
        names: tuple[str, ...] = tuple(n for n in _SUMMARY_FIELDS if n in record)
    else:
        names = tuple(n for n in record if n not in _SHOWN_APART and n not in _LEFT_OUT)
    for name in names:
        value = record[name]
        if value is None or value in ("", [], {}):
            continue
        if value is False and name in _QUIET_WHEN_FALSE:
            continue
        if name == "reason" and value == f"rule '{record.get('rule_id')}'":
            continue  # the decision names the rule already
        shown.append(f"{name}={value_text(value)}")
    return [p for p in shown if p]


class DrillProgress:
    """An evidence observer that prints each record of one run as it is written.

    ``console``: a rich console on a terminal (styled lines, wrapped between parts to
    its width); without one, plain lines on ``stream``, each flushed. A stream that
    fails (a closed pipe) ends the progress, never the run.
    """

    def __init__(self, stream: TextIO, *, console: Console | None = None) -> None:
        self.stream = stream
        self.console = console
        self.start: datetime | None = None
        self.broken = False

    def __call__(self, record: Mapping[str, Any]) -> None:
        if self.broken:
            return
        if self.start is None:
            self.start = parse_ts(record.get("ts"))
        shown = parts(record, self.start)
        try:
            if self.console is None:
                self.stream.write("  ".join(shown) + "\n")
                self.stream.flush()
            else:
                self._styled(record, shown)
        except (OSError, ValueError):  # stderr closed or gone: the drill goes on
            self.broken = True

    def _styled(self, record: Mapping[str, Any], shown: list[str]) -> None:
        from rich.text import Text

        from agentundo.report import layout

        assert self.console is not None
        style = TONE_STYLES[tone(dict(record))]
        pieces = [Text(shown[0], style="dim"), Text(shown[1], style=style or "bold")]
        pieces += [Text(p) for p in shown[2:]]
        layout.flow(self.console, pieces, indent=4)
