"""The timeline of evidence: which records to show, and the table, JSON, markdown and mermaid views.

Records stream through :class:`Timeline`, which groups them into runs (a run starts at a
``run_started`` record with ``seq`` 0, or at a new file), counts every record into the
run's :class:`~agentundo.evidence.verify.RunTally` for the header, and hands the records
that pass the :class:`Query` to a :class:`Renderer`. Renderers keep at most ``limit``
rows per run (0: no limit), so memory stays flat on huge files; the JSON renderer keeps
nothing and writes each record's original line as it comes.

Only :class:`TableRenderer` and :class:`StreamRenderer` use rich, imported when built.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import IO, TYPE_CHECKING, Any, Protocol, TextIO, assert_never

from agentundo.errors import UsageError
from agentundo.evidence.events import COMMON_FIELDS, PROBLEM_EVENTS, Event
from agentundo.evidence.reader import Keep, Record
from agentundo.evidence.verify import ChainHead, Problem, RunTally

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text


class Format(StrEnum):
    """Output formats of ``agentundo timeline --format``."""

    TABLE = "table"
    JSON = "json"
    MARKDOWN = "markdown"
    MERMAID = "mermaid"


class Tone(StrEnum):
    """How a row should catch the eye."""

    PLAIN = "plain"
    SUCCESS = "success"
    FAILURE = "failure"
    SKIP = "skip"
    MANUAL = "manual"
    UNKNOWN = "unknown"


_KNOWN_EVENTS = frozenset(str(e) for e in Event)
_FAILURES = frozenset(
    {
        Event.STEP_FAILED,
        Event.STEP_FAILED_FATAL,
        Event.STEP_DENIED,
        Event.APPROVAL_TIMEOUT,
        Event.POLICY_UNAVAILABLE,
        Event.LOCK_BUSY,
        Event.LOCK_EXPIRED,
        Event.COMPENSATION_FAILED,
        Event.COMPENSATION_TIMED_OUT,
        Event.COMPENSATION_REJECTED,
        Event.RUN_INTERRUPTED,
    }
)


def tone(record: dict[str, Any]) -> Tone:
    event = record.get("event")
    if event not in _KNOWN_EVENTS:
        return Tone.UNKNOWN
    if event in _FAILURES:
        return Tone.FAILURE
    if event == Event.POLICY_DECISION and record.get("decision") == "deny":
        return Tone.FAILURE
    if event == Event.COMPENSATION_SKIPPED:
        return Tone.SKIP
    if event == Event.MANUAL_FOLLOWUP:
        return Tone.MANUAL
    if event in (Event.STEP_SUCCEEDED, Event.COMPENSATION_SUCCEEDED):
        return Tone.SUCCESS
    return Tone.PLAIN


def is_problem(record: dict[str, Any]) -> bool:
    """Failures, denials, skips, timeouts, lock trouble, manual follow-ups and interruptions
    (``--only-problems``). Lock trouble: a held (``lock_busy``), expired or taken-over lock,
    and one that was not released (``lock_released`` with ``released: false``)."""
    event = record.get("event")
    if event in PROBLEM_EVENTS or event == Event.LOCK_TAKEN_OVER:
        return True
    if event == Event.LOCK_RELEASED:
        return record.get("released") is False
    return event == Event.POLICY_DECISION and record.get("decision") == "deny"


# --- times ------------------------------------------------------------------------------


def parse_ts(value: object) -> datetime | None:
    """An RFC 3339 timestamp, or None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


_OFFSET = re.compile(r"^\+(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
MAX_OFFSET_H = 876_000
"""The largest ``--since``/``--until`` offset accepted, in hours: about a hundred years."""
_LATEST = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class TimeBound:
    """``--since``/``--until``: an instant, or an offset from each run's start (``+90s``)."""

    at: datetime | None = None
    offset: timedelta | None = None

    @classmethod
    def parse(cls, text: str, option: str) -> TimeBound:
        match = _OFFSET.match(text.strip())
        if match:
            seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
            if not seconds <= MAX_OFFSET_H * 3600:  # also catches inf from endless digits
                raise UsageError(
                    f"{option} {text.strip()[:40]!r}: offset too large; an offset from the "
                    f"run's start is at most +{MAX_OFFSET_H}h"
                )
            return cls(offset=timedelta(seconds=seconds))
        moment = parse_ts(text.strip())
        if moment is None:
            raise UsageError(
                f"{option} {text!r}: expected an RFC 3339 time with a zone "
                "(2024-05-01T10:00:00Z) or an offset from the run's start (+90s, +2m, +500ms)"
            )
        return cls(at=moment)

    def instant(self, run_start: datetime | None) -> datetime | None:
        if self.at is not None:
            return self.at
        if run_start is None or self.offset is None:
            return None
        try:
            return run_start + self.offset
        except OverflowError:  # a run started near year 9999: the bound is after every time
            return _LATEST


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return _seconds_text(seconds)
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {rest:02d}s"


def _seconds_text(seconds: float) -> str:
    text = f"{seconds:.3f}".rstrip("0").rstrip(".")
    return f"{text}s"


# --- the query --------------------------------------------------------------------------


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


# --- rows -------------------------------------------------------------------------------

_COLUMN_FIELDS = frozenset(
    {*COMMON_FIELDS, "job_id", "step_id", "topic", "idempotency_key", "decision", "rule_id"}
)


def _value(value: object) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_QUIET_WHEN_FALSE = frozenset(
    {"approval_present", "default", "is_compensation", "injected", "failed_step", "partial"}
)
"""Flags that only matter when set: the row shows them when true, JSON always."""
_MAX_DETAIL_VALUE = 60


def _detail_value(value: object) -> str:
    text = _value(value)
    if len(text) > _MAX_DETAIL_VALUE:
        return text[: _MAX_DETAIL_VALUE - 1] + "…"
    return text


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
            parts.append(f"[{_value(rule)}]")
    elif event == Event.POLICY_DECISION:
        parts.append("[no rule]")
    return " ".join(parts)


def make_entry(record: Record, run_start: datetime | None, actor: str) -> Entry:
    data = record.data
    ts = data.get("ts")
    moment = parse_ts(ts)
    clock = moment.strftime("%H:%M:%S.%f")[:-3] if moment else _value(ts) if ts else ""
    offset = ""
    if moment is not None and run_start is not None:
        delta = (moment - run_start).total_seconds()
        offset = ("+" if delta >= 0 else "-") + _seconds_text(abs(delta))
    event = record.event
    in_decision = event == Event.POLICY_DECISION and data.get("rule_id", "") is None
    details = [
        f"{k}={_detail_value(v)}"
        for k, v in data.items()
        if k not in _COLUMN_FIELDS
        and not (k == "default" and in_decision)
        and _worth_showing(k, v, data)
    ]
    record_actor = data.get("actor")
    if record_actor is not None and record_actor != actor:
        details.insert(0, f"actor={_value(record_actor)}")
    if event not in _KNOWN_EVENTS:
        details.insert(0, "(unknown event type)")
    return Entry(
        line=record.line,
        clock=clock,
        offset=offset,
        job=_value(data.get("job_id", "")),
        step=_value(data.get("step_id", "")),
        event=event,
        topic=_value(data.get("topic", "")),
        decision=decision_text(data),
        key=_value(data.get("idempotency_key", "") or ""),
        detail=" ".join(details),
        tone=tone(data),
    )


# --- runs -------------------------------------------------------------------------------


@dataclass(slots=True)
class Run:
    """A run as it streams past: its tally (every record), and what the renderer kept."""

    path: str
    tally: RunTally = field(default_factory=RunTally)
    start: datetime | None = None
    matched: int = 0

    def header(self) -> list[tuple[str, str]]:
        """(label, value) pairs of the header: from run_summary, or counted when it is missing."""
        tally = self.tally
        summary = tally.summary or {}
        counted = tally.counts()

        def count(name: str) -> str:
            value = summary.get(name, counted[name])
            return _value(value)

        started = summary.get("started_at") or tally.first_ts or ""
        finished = summary.get("finished_at") or tally.last_ts
        start_at = parse_ts(started)
        finish_at = parse_ts(finished)
        duration = (
            format_duration((finish_at - start_at).total_seconds())
            if start_at is not None and finish_at is not None
            else "?"
        )
        rollback = summary.get("rollback_triggered", tally.rollback_triggered)
        status = _value(summary["status"]) if "status" in summary else "incomplete (no run_summary)"
        env = summary.get("env") or tally.env or "?"
        return [
            ("workflow", tally.workflow_id or "?"),
            ("run", tally.run_id or "?"),
            ("env", _value(env)),
            ("actor", tally.actor or "?"),
            ("status", status),
            ("verdict", _value(summary.get("verdict", "?"))),
            ("rollback", "yes" if rollback is True else "no"),
            (
                "compensations",
                f"{count('compensation_jobs_dispatched')} dispatched, "
                f"{count('compensation_jobs_skipped')} skipped, "
                f"{count('compensation_jobs_failed')} failed",
            ),
            ("manual follow-ups", count("manual_followups")),
            ("started", _value(started)),
            ("duration", duration),
            ("evidence", f"{self.path} ({tally.events} records)"),
        ]


class Renderer(Protocol):
    """Receives the matching records of each run, then the run's end, then the problems."""

    def record(self, run: Run, record: Record) -> None: ...

    def end_run(self, run: Run) -> None: ...

    def problems(
        self,
        path: str,
        problems: list[Problem],
        *,
        verified: bool,
        chains: Sequence[ChainHead] = (),
    ) -> None: ...

    def close(self) -> None: ...


class Timeline:
    """Group records into runs, tally them, pass the matching ones to ``renderer``."""

    def __init__(self, query: Query, renderer: Renderer) -> None:
        self.query = query
        self.renderer = renderer
        self._run: Run | None = None
        self.runs = 0

    def begin_source(self, path: str) -> None:
        self.end_run()
        self._path = path

    def feed(self, record: Record) -> None:
        data = record.data
        run = self._run
        if (
            run is not None
            and record.event == Event.RUN_STARTED
            and data.get("seq") == 0
            and data.get("run_id") != run.tally.run_id
        ):
            self.end_run()
            run = None
        if run is None:
            run = self._run = Run(record.path)
            run.start = parse_ts(data.get("ts"))
        if record.event == Event.RUN_STARTED and run.tally.events == 0:
            run.start = parse_ts(data.get("ts")) or run.start
        run.tally.feed(record)
        if self.query.matches(data, run.start):
            run.matched += 1
            self.renderer.record(run, record)

    def end_run(self) -> None:
        run = self._run
        if run is None:
            return
        self._run = None
        if self.query.wants_run(run.tally.run_id):
            self.runs += 1
            self.renderer.end_run(run)


# --- JSON -------------------------------------------------------------------------------


class JsonRenderer:
    """Each matching record's original line, as written (JSON Lines; unknown fields kept)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream

    def record(self, run: Run, record: Record) -> None:
        self.stream.write(record.raw + b"\n")

    def end_run(self, run: Run) -> None:
        pass

    def problems(
        self,
        path: str,
        problems: list[Problem],
        *,
        verified: bool,
        chains: Sequence[ChainHead] = (),
    ) -> None:
        pass

    def close(self) -> None:
        self.stream.flush()


# --- rows kept per run ------------------------------------------------------------------


class _RowKeeper:
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


def _hidden_note(hidden: int) -> str:
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


def _cells(entry: Entry) -> tuple[str, ...]:
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


# --- rich table -------------------------------------------------------------------------

_STYLES = {
    Tone.PLAIN: "",
    Tone.SUCCESS: "green",
    Tone.FAILURE: "bold red",
    Tone.SKIP: "yellow",
    Tone.MANUAL: "bold magenta",
    Tone.UNKNOWN: "italic cyan",
}


GOOD_VERDICTS = frozenset({"completed", "recovered", "pass"})
"""Verdicts of a drill that needs nobody (docs/evidence.md: completed, recovered)."""


_RATIOS = {"Step": 2, "Topic": 2, "Decision": 4, "Idempotency key": 3, "Detail": 5}
"""Share of the terminal width of each flexible column; the others never wrap."""


def _verdict_style(verdict: str) -> str:
    if verdict in GOOD_VERDICTS:
        return "bold green"
    if verdict == "?":
        return "bold yellow"
    return "bold red"


class TableRenderer:
    """Per run: a header panel, then a table of the kept rows (rich)."""

    def __init__(self, console: Console, *, limit: int, quiet: bool = False) -> None:
        self.console = console
        self.keeper = _RowKeeper(limit)
        self.quiet = quiet

    def record(self, run: Run, record: Record) -> None:
        if not self.quiet:
            self.keeper.record(run, record)

    def _header(self, run: Run) -> None:
        from rich.panel import Panel
        from rich.table import Table

        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        grid.add_column(style="bold")
        grid.add_column()
        pairs = run.header()
        verdict = dict(pairs)["verdict"]
        cells: list[Text | str] = []
        from rich.text import Text

        for label, value in pairs:
            style = _verdict_style(value) if label == "verdict" else ""
            if label == "manual follow-ups" and value not in ("0", "?"):
                style = _STYLES[Tone.MANUAL]
            cells.extend([label, Text(value, style=style)])
        for index in range(0, len(cells), 4):
            row = cells[index : index + 4]
            grid.add_row(*row, *([""] * (4 - len(row))))
        title = f"{run.tally.workflow_id or '?'} · {run.tally.run_id or '?'}"
        self.console.print(
            Panel(
                grid,
                title=Text(title),
                title_align="left",
                border_style=_verdict_style(verdict),
                expand=False,
            )
        )

    def end_run(self, run: Run) -> None:
        rows, hidden = self.keeper.take()
        if self.quiet:
            return
        from rich.table import Table

        self._header(run)
        if not rows:
            self.console.print("  no records match the filters", style="dim")
            return
        table = Table(show_lines=False, header_style="bold", pad_edge=False, expand=True)
        for name in COLUMNS:
            table.add_column(
                name,
                overflow="fold",
                no_wrap=name not in _RATIOS,
                ratio=_RATIOS.get(name),
                min_width=8 if name in _RATIOS else None,
            )
        from rich.text import Text

        for entry in rows:
            table.add_row(*(Text(c) for c in _cells(entry)), style=_STYLES[entry.tone] or None)
        self.console.print(table)
        if hidden:
            self.console.print(f"  … {_hidden_note(hidden)}", style="dim", markup=False)

    def problems(
        self,
        path: str,
        problems: list[Problem],
        *,
        verified: bool,
        chains: Sequence[ChainHead] = (),
    ) -> None:
        if not verified:
            return
        if not problems:
            self.console.print(
                f"✓ {path}: verified (hash chain intact, run complete)", style="green", markup=False
            )
        else:
            self.console.print(
                f"✗ {path}: {len(problems)} verification problem"
                f"{'' if len(problems) == 1 else 's'}",
                style="bold red",
                markup=False,
            )
            for problem in problems:
                self.console.print(f"  {problem.describe()}", style="red", markup=False)
        for chain in chains:
            self.console.print(f"  {chain.describe()}", style="dim", markup=False, soft_wrap=True)

    def close(self) -> None:
        pass


class StreamRenderer(TableRenderer):
    """``--follow``: one line per record as it arrives; the header when the run ends."""

    def record(self, run: Run, record: Record) -> None:
        from rich.text import Text

        entry = make_entry(record, run.start, run.tally.actor)
        cells = [c for c in _cells(entry) if c]
        self.console.print(Text("  ".join(cells), style=_STYLES[entry.tone]), soft_wrap=True)

    def end_run(self, run: Run) -> None:
        self._header(run)


# --- markdown ---------------------------------------------------------------------------


def md_cell(text: str) -> str:
    """Text safe inside a GitHub-flavoured markdown table cell."""
    return (
        text.replace("\\", "\\\\")
        .replace("|", "\\|")
        .replace("<", "&lt;")
        .replace("\r", " ")
        .replace("\n", " ")
        .replace("*", "\\*")
        .replace("`", "\\`")
    )


class MarkdownRenderer:
    """Per run: a heading, a field table, the events table; for pasting into an incident doc."""

    def __init__(self, stream: TextIO, *, limit: int) -> None:
        self.stream = stream
        self.keeper = _RowKeeper(limit)

    def record(self, run: Run, record: Record) -> None:
        self.keeper.record(run, record)

    def end_run(self, run: Run) -> None:
        rows, hidden = self.keeper.take()
        write = self.stream.write
        write(
            f"## {md_cell(run.tally.workflow_id or '?')} · run {md_cell(run.tally.run_id or '?')}\n\n"
        )
        write("| Field | Value |\n|---|---|\n")
        for label, value in run.header():
            shown = md_cell(value)
            if label == "verdict" or (label == "manual follow-ups" and value not in ("0", "?")):
                shown = f"**{shown}**"
            write(f"| {label} | {shown} |\n")
        write("\n")
        if not rows:
            write("_No records match the filters._\n\n")
            return
        write("| " + " | ".join(COLUMNS) + " |\n")
        write("|" + "---|" * len(COLUMNS) + "\n")
        for entry in rows:
            cells = [md_cell(c) for c in _cells(entry)]
            if entry.tone in (Tone.FAILURE, Tone.SKIP, Tone.MANUAL):
                cells[4] = f"**{cells[4]}**"
            elif entry.tone is Tone.UNKNOWN:
                cells[4] = f"_{cells[4]}_"
            write("| " + " | ".join(cells) + " |\n")
        write("\n")
        if hidden:
            write(f"_{md_cell(_hidden_note(hidden))}_\n\n")

    def problems(
        self,
        path: str,
        problems: list[Problem],
        *,
        verified: bool,
        chains: Sequence[ChainHead] = (),
    ) -> None:
        if not verified:
            return
        write = self.stream.write
        write(f"### Verification of `{path}`\n\n")
        if not problems:
            write("Verified: hash chain intact, run complete.\n\n")
        else:
            write(f"**{len(problems)} problem{'' if len(problems) == 1 else 's'}:**\n\n")
            for problem in problems:
                write(
                    f"- line {problem.line}: `{problem.code}` {md_cell(problem.message)} "
                    f"({problem.name})\n"
                )
            write("\n")
        for chain in chains:
            write(
                f"Chain `{md_cell(chain.run_id or '?')}`: head `{chain.head}` at seq {chain.seq} "
                f"({md_cell(chain.strength())}).\n\n"
            )

    def close(self) -> None:
        self.stream.flush()


# --- mermaid ----------------------------------------------------------------------------

_MERMAID_TS = "%Y-%m-%d %H:%M:%S"


def _mermaid_time(moment: datetime) -> str:
    return moment.strftime(_MERMAID_TS) + f".{moment.microsecond // 1000:03d}"


def _mermaid_label(text: str) -> str:
    """A task name: mermaid splits on ':' and ends statements at ';' and '#'."""
    return re.sub(r"[:;#]", " ", text).strip() or "?"


@dataclass(slots=True)
class _Task:
    section: str
    label: str
    start: datetime
    end: datetime
    state: str  # done, crit, active, milestone-crit, milestone
    index: int = 0
    note: str = ""


_FORWARD_END = {
    Event.STEP_SUCCEEDED: "done",
    Event.STEP_FAILED_FATAL: "crit",
    Event.STEP_FAILED: "active",
}
_COMPENSATION_END = {
    Event.COMPENSATION_SUCCEEDED: "done",
    Event.COMPENSATION_FAILED: "crit",
    Event.COMPENSATION_TIMED_OUT: "crit",
    Event.COMPENSATION_REJECTED: "crit",
}
_MILESTONES = {
    Event.ROLLBACK_TRIGGERED: ("Compensation", "rollback triggered", "crit"),
    Event.STEP_DENIED: ("Forward", "denied", "crit"),
    Event.COMPENSATION_SKIPPED: ("Follow-up", "compensation skipped", "crit"),
    Event.MANUAL_FOLLOWUP: ("Follow-up", "manual follow-up", "crit"),
    Event.APPROVAL_TIMEOUT: ("Forward", "approval timed out", "crit"),
    Event.RUN_INTERRUPTED: ("Forward", "run interrupted", "crit"),
}
_SECTIONS = ("Forward", "Compensation", "Follow-up")


class MermaidRenderer:
    """Per run, a gantt chart: forward steps and compensations as bars, the rest as milestones.

    A bar runs from a step's first dispatch to its last outcome (retries included); its
    state is done (succeeded), crit (failed) or active (no outcome: still running, or the
    evidence ends). Several runs give several charts, separated by a blank line.
    """

    def __init__(self, stream: TextIO, *, limit: int) -> None:
        self.stream = stream
        self.limit = limit
        self.tasks: list[_Task] = []
        self.open: dict[tuple[str, str], _Task] = {}
        self.hidden = 0
        self.charts = 0

    def _add(self, task: _Task) -> bool:
        if self.limit and len(self.tasks) >= self.limit:
            self.hidden += 1
            return False
        task.index = len(self.tasks)
        self.tasks.append(task)
        return True

    def record(self, run: Run, record: Record) -> None:
        data = record.data
        moment = parse_ts(data.get("ts"))
        if moment is None:
            return
        event = record.event
        step = _value(data.get("step_id", "") or data.get("job_id", "") or "?")
        topic = _value(data.get("topic", ""))
        if event in (Event.STEP_DISPATCHED, Event.COMPENSATION_DISPATCHED):
            forward = event == Event.STEP_DISPATCHED
            key = ("f" if forward else "c", step)
            task = self.open.get(key)
            if task is None:
                label = f"{step} {topic}" if forward else f"undo {step} {topic}"
                task = _Task(
                    "Forward" if forward else "Compensation", label, moment, moment, "active"
                )
                if self._add(task):
                    self.open[key] = task
            return
        ends = _FORWARD_END if event in _FORWARD_END else _COMPENSATION_END
        if event in ends:
            key = ("f" if ends is _FORWARD_END else "c", step)
            task = self.open.get(key)
            if task is not None:
                task.end = max(moment, task.start)
                task.state = ends[Event(event)]
                failed = event in (Event.STEP_FAILED_FATAL, Event.STEP_FAILED)
                if failed or task.state == "crit":
                    task.note = "failed" if failed else event.removeprefix("compensation_")
                else:
                    task.note = ""
            return
        if event in _MILESTONES:
            section, what, state = _MILESTONES[Event(event)]
            self._add(
                _Task(section, f"{what} {step}".strip(), moment, moment, f"milestone-{state}")
            )

    def end_run(self, run: Run) -> None:
        tasks, hidden = self.tasks, self.hidden
        self.tasks, self.open, self.hidden = [], {}, 0
        write = self.stream.write
        if self.charts:
            write("\n")
        self.charts += 1
        header = dict(run.header())
        title = f"{run.tally.workflow_id or '?'} {run.tally.run_id or '?'} ({header['env']}) verdict {header['verdict']}"
        write("gantt\n")
        write(f"    title {_mermaid_label(title)}\n")
        write("    dateFormat YYYY-MM-DD HH:mm:ss.SSS\n")
        write("    axisFormat %H:%M:%S\n")
        for section in _SECTIONS:
            members = [t for t in tasks if t.section == section]
            if not members:
                continue
            write(f"    section {section}\n")
            for task in members:
                tags = {
                    "done": "done, ",
                    "crit": "crit, ",
                    "active": "active, ",
                    "milestone-crit": "milestone, crit, ",
                    "milestone": "milestone, ",
                }[task.state]
                label = f"{task.label} ({task.note})" if task.note else task.label
                write(
                    f"    {_mermaid_label(label)} :{tags}t{task.index}, "
                    f"{_mermaid_time(task.start)}, {_mermaid_time(task.end)}\n"
                )
        if hidden:
            write(f"    %% {hidden} more tasks not shown (raise --limit)\n")

    def problems(
        self,
        path: str,
        problems: list[Problem],
        *,
        verified: bool,
        chains: Sequence[ChainHead] = (),
    ) -> None:
        pass

    def close(self) -> None:
        self.stream.flush()


# --- choosing a renderer ----------------------------------------------------------------


def renderer(
    fmt: Format,
    *,
    text: TextIO,
    binary: IO[bytes],
    console: Callable[[], Console],
    limit: int,
    follow: bool = False,
    quiet: bool = False,
) -> Renderer:
    """The renderer of ``fmt``; ``console`` builds a rich console only if one is needed."""
    match fmt:
        case Format.TABLE:
            if follow:
                return StreamRenderer(console(), limit=limit, quiet=quiet)
            return TableRenderer(console(), limit=limit, quiet=quiet)
        case Format.JSON:
            return JsonRenderer(binary)
        case Format.MARKDOWN:
            return MarkdownRenderer(text, limit=limit)
        case Format.MERMAID:
            return MermaidRenderer(text, limit=limit)
        case _:
            assert_never(fmt)


# --- the run history (--summary) --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SummaryRow:
    """One run of the history: from its first record and its run_summary (or a full count)."""

    path: str
    started: str
    workflow: str
    run_id: str
    env: str
    status: str
    verdict: str
    rollback: bool
    skipped: int | str
    manual_followups: int | str
    verified: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "path": self.path,
            "started": self.started,
            "workflow": self.workflow,
            "run_id": self.run_id,
            "env": self.env,
            "status": self.status,
            "verdict": self.verdict,
            "rollback": self.rollback,
            "compensations_skipped": self.skipped,
            "manual_followups": self.manual_followups,
        }
        if self.verified is not None:
            data["verified"] = self.verified
        return data

    @property
    def has_problems(self) -> bool:
        return (
            self.verdict not in GOOD_VERDICTS
            or self.skipped not in (0, "0")
            or self.manual_followups not in (0, "0")
            or self.verified is False
        )


def summary_row(path: str, tally: RunTally, *, verified: bool | None = None) -> SummaryRow:
    summary = tally.summary or {}
    counted = tally.counts()
    rollback = summary.get("rollback_triggered", tally.rollback_triggered)
    return SummaryRow(
        path=path,
        started=_value(summary.get("started_at") or tally.first_ts or "?"),
        workflow=tally.workflow_id or "?",
        run_id=tally.run_id or "?",
        env=_value(summary.get("env") or tally.env or "?"),
        status=_value(summary.get("status", "incomplete")),
        verdict=_value(summary.get("verdict", "?")),
        rollback=rollback is True,
        skipped=summary.get("compensation_jobs_skipped", counted["compensation_jobs_skipped"]),
        manual_followups=summary.get("manual_followups", counted["manual_followups"]),
        verified=verified,
    )


SUMMARY_COLUMNS = (
    "Date",
    "Workflow",
    "Run",
    "Env",
    "Status",
    "Verdict",
    "Rollback",
    "Skipped",
    "Follow-ups",
)


def _summary_cells(row: SummaryRow) -> list[str]:
    moment = parse_ts(row.started)
    date = moment.strftime("%Y-%m-%d %H:%M") if moment else row.started
    return [
        date,
        row.workflow,
        row.run_id,
        row.env,
        row.status,
        row.verdict,
        "yes" if row.rollback else "no",
        _value(row.skipped),
        _value(row.manual_followups),
    ]


def render_summary(
    rows: Iterable[SummaryRow], fmt: Format, *, text: TextIO, console: Callable[[], Console]
) -> int:
    """Write the history in ``fmt`` (not mermaid); the number of rows written."""
    rows = list(rows)
    verified = any(r.verified is not None for r in rows)
    columns = [*SUMMARY_COLUMNS, *(("Verified",) if verified else ())]

    def cells(row: SummaryRow) -> list[str]:
        extra = ["yes" if row.verified else "NO"] if verified else []
        return [*_summary_cells(row), *extra]

    match fmt:
        case Format.JSON:
            for row in rows:
                text.write(json.dumps(row.as_dict(), ensure_ascii=False) + "\n")
        case Format.MARKDOWN:
            text.write("| " + " | ".join(columns) + " |\n")
            text.write("|" + "---|" * len(columns) + "\n")
            for row in rows:
                text.write("| " + " | ".join(md_cell(c) for c in cells(row)) + " |\n")
        case Format.TABLE:
            from rich.table import Table

            table = Table(header_style="bold", title="Run history", title_justify="left")
            for name in columns:
                table.add_column(name)
            for row in rows:
                style = (
                    "bold red" if row.verified is False else "yellow" if row.has_problems else None
                )
                table.add_row(*cells(row), style=style)
            console().print(table)
        case Format.MERMAID:
            raise UsageError("--summary cannot be drawn as mermaid; use table, json or markdown")
        case _:
            assert_never(fmt)
    return len(rows)
