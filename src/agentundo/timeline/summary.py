"""The run history (``--summary``): one row per run, from its first record and its run_summary."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TextIO, assert_never

from agentundo.errors import InputError, UsageError
from agentundo.evidence.events import Event
from agentundo.evidence.problems import Problem
from agentundo.evidence.reader import Record, expand_paths, first_record, last_record, read_path
from agentundo.evidence.tally import RunTally
from agentundo.evidence.verify import AcrossFiles, Verifier
from agentundo.timeline.core import Streams, TimelineOutcome
from agentundo.timeline.entries import SHOWN_AS_GOOD, value_text
from agentundo.timeline.feed import feed, print_problems
from agentundo.timeline.formats import Format
from agentundo.timeline.query import Query
from agentundo.timeline.render_markdown import md_cell
from agentundo.timeline.runs import Run, ShowsNoProblems, Timeline
from agentundo.timeline.times import parse_ts

if TYPE_CHECKING:
    from rich.console import Console


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
            self.verdict not in SHOWN_AS_GOOD
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
        started=value_text(summary.get("started_at") or tally.first_ts or "?"),
        workflow=tally.workflow_id or "?",
        run_id=tally.run_id or "?",
        env=value_text(summary.get("env") or tally.env or "?"),
        status=value_text(summary.get("status", "incomplete")),
        verdict=value_text(summary.get("verdict", "?")),
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
        value_text(row.skipped),
        value_text(row.manual_followups),
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
        case Format.OTLP:
            raise UsageError("--summary cannot be written as otlp; use table, json or markdown")
        case _:
            assert_never(fmt)
    return len(rows)


# --- collecting the history -------------------------------------------------------------


class _Collect(ShowsNoProblems):
    """A renderer that keeps each run (its tally) and shows nothing."""

    writes_data = False

    def __init__(self) -> None:
        self.runs: list[Run] = []

    def record(self, run: Run, record: Record) -> None:
        pass

    def end_run(self, run: Run) -> None:
        self.runs.append(run)

    def close(self) -> None:
        pass


def _quick_row(path: str) -> SummaryRow | None:
    """The row of a file from its first and last record alone, when the last is run_summary."""
    first = first_record(path)
    last = last_record(path)
    if first is None or last is None or last.event != Event.RUN_SUMMARY:
        return None
    tally = RunTally()
    tally.feed(first)
    tally.feed(last)
    return summary_row(path, tally)


def _read_rows(
    path: str,
    key: bytes | None,
    *,
    verify: bool,
    stderr: TextIO,
    require_key: bool = False,
    across: AcrossFiles | None = None,
) -> tuple[list[SummaryRow], bool | None]:
    """Every run of one file, read whole, and whether it verified (None: not verified).

    An InputError is raised as met; verification problems are printed to ``stderr``.
    """
    collect = _Collect()
    view = Timeline(Query(), collect)
    verifier = None
    if verify:
        if across is not None:
            across.begin_source()
        verifier = Verifier(path, key=key, require_key=require_key, across=across)
    view.begin_source(path)
    feed(read_path(path, blanks=verify), view, verifier, stderr=stderr)
    view.end_run()
    ok = None
    if verifier is not None:
        problems = verifier.finish()
        ok = not problems
        if across is not None:
            across.end_source(passed=ok)
        print_problems(path, problems, verifier.chains, stderr)
    return [summary_row(path, run.tally, verified=ok) for run in collect.runs], ok


def _wanted(query: Query, row: SummaryRow) -> bool:
    if not query.wants_run(row.run_id):
        return False
    if query.only_problems and not row.has_problems:
        return False
    moment = parse_ts(row.started)
    since = query.since.at if query.since is not None else None
    until = query.until.at if query.until is not None else None
    if (since or until) and moment is None:
        return False
    if since is not None and moment is not None and moment < since:
        return False
    return not (until is not None and moment is not None and moment > until)


def run_history(
    paths: Sequence[str],
    query: Query,
    fmt: Format,
    streams: Streams,
    *,
    verify: bool,
    key: bytes | None,
    require_key: bool = False,
) -> TimelineOutcome:
    """``--summary``: one row per run of every file, filtered, sorted by start, rendered.

    Without verification, a file whose last record is its run_summary is read at both
    ends only; otherwise it is read whole (and verified when asked, its name and run ids
    checked against the other files' too: :class:`~agentundo.evidence.verify.AcrossFiles`).
    """
    rows: list[SummaryRow] = []
    checked = failed = unreadable = 0
    across = AcrossFiles() if verify else None
    for path in expand_paths(paths):
        quick = None if verify else _quick_row(path)
        if quick is not None:
            rows.append(quick)
            continue
        try:
            found, ok = _read_rows(
                path,
                key,
                verify=verify,
                stderr=streams.stderr,
                require_key=require_key,
                across=across,
            )
        except InputError as error:
            print(error.describe(), file=streams.stderr)
            unreadable += 1
            if across is not None:
                across.end_source(passed=False)
            continue
        if ok is not None:
            checked += 1
            failed += not ok
        rows.extend(found)
    if across is not None:
        late: dict[str, list[Problem]] = {}
        for problem, passed in across.finish():
            if problem.path not in late:
                failed += passed
            late.setdefault(problem.path, []).append(problem)
        for path, problems in late.items():
            print_problems(path, problems, (), streams.stderr)
        rows = [replace(r, verified=False) if r.path in late else r for r in rows]
    shown = sorted((r for r in rows if _wanted(query, r)), key=lambda r: (r.started, r.path))
    render_summary(shown, fmt, text=streams.stdout, console=streams.console)
    return TimelineOutcome(checked=checked, failed=failed, unreadable=unreadable)
