"""The run history (``--summary``): one row per run, then the runs grouped by workflow.

Every record of every file is read (:func:`agentundo.history.collect.collect`, the reader
``agentundo report`` uses too), so a file holding several runs gives one row per run.
The table is drawn wide when it fits the terminal, else stacked: each run id on a line of
its own, so that no id is ever cut.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO, assert_never

from agentundo.errors import UsageError
from agentundo.history.collect import RunEntry, Verification, collect
from agentundo.history.stats import (
    WorkflowStats,
    by_workflow,
    can_encode,
    date_text,
    duration_text,
    trend_text,
)
from agentundo.timeline.core import Streams, TimelineOutcome
from agentundo.timeline.formats import Format
from agentundo.timeline.query import Query
from agentundo.timeline.render_markdown import md_cell
from agentundo.timeline.times import format_duration

if TYPE_CHECKING:
    from rich.console import Console

RUN_COLUMNS = (
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
WORKFLOW_COLUMNS = (
    "Workflow",
    "Runs",
    "Passed",
    "Last verdict",
    "Rollback mean",
    "Rollback max",
    "Follow-ups",
    "Trend",
)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Text from evidence made safe for a terminal: control characters (an escape sequence
    that would clear the screen or retitle the window) shown as ``\\x1b``."""
    return _CONTROL.sub(lambda found: f"\\x{ord(found.group()):02x}", text)


def rollback_text(run: RunEntry) -> str:
    """``no``, the rollback's duration, or ``unfinished``."""
    if not run.rollback:
        return "no"
    return "unfinished" if run.rollback_s is None else format_duration(run.rollback_s)


def followups_text(count: object, unplanned: int) -> str:
    text = count if isinstance(count, str) else json.dumps(count)
    return f"{text} ({unplanned} unplanned)" if unplanned else text


def passed_text(stats: WorkflowStats) -> str:
    return f"{stats.passed}/{stats.runs} ({stats.pass_rate:.0%})"


def _value(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class _Cells:
    """The history as rows of text, for the table and markdown."""

    verified: bool
    unicode: bool

    def run_columns(self) -> list[str]:
        return [*RUN_COLUMNS, *(("Verified",) if self.verified else ())]

    def run(self, run: RunEntry) -> list[str]:
        cells = [
            printable(cell)
            for cell in (
                date_text(run),
                run.workflow,
                run.run_id,
                run.env,
                run.status,
                run.verdict,
                rollback_text(run),
                _value(run.skipped),
                followups_text(run.manual_followups, run.unplanned_count),
            )
        ]
        if self.verified:
            cells.append("yes" if run.verified else "NO")
        return cells

    def workflow(self, stats: WorkflowStats) -> list[str]:
        return [
            printable(stats.workflow),
            str(stats.runs),
            passed_text(stats),
            printable(stats.last_verdict),
            duration_text(stats.rollback_mean_s),
            duration_text(stats.rollback_max_s),
            followups_text(stats.followups, stats.unplanned_followups),
            trend_text(stats.marks, unicode=self.unicode),
        ]


def render_summary(
    runs: Sequence[RunEntry],
    workflows: Sequence[WorkflowStats],
    fmt: Format,
    *,
    text: TextIO,
    console: Callable[[], Console],
) -> None:
    """Write the history in ``fmt`` (not mermaid): the runs, then the workflows."""
    verified = any(r.verified is not None for r in runs)
    match fmt:
        case Format.JSON:
            data = {
                "runs": [r.as_dict() for r in runs],
                "workflows": [w.as_dict() for w in workflows],
            }
            text.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
        case Format.MARKDOWN:
            cells = _Cells(verified, can_encode(getattr(text, "encoding", None)))
            _markdown_table(text, "Run history", cells.run_columns(), map(cells.run, runs))
            text.write("\n")
            _markdown_table(
                text, "Workflows", list(WORKFLOW_COLUMNS), map(cells.workflow, workflows)
            )
        case Format.TABLE:
            out = console()
            _draw(out, runs, workflows, _Cells(verified, can_encode(out.encoding)))
        case Format.MERMAID:
            raise UsageError("--summary cannot be drawn as mermaid; use table, json or markdown")
        case Format.OTLP:
            raise UsageError("--summary cannot be written as otlp; use table, json or markdown")
        case _:
            assert_never(fmt)


def _markdown_table(text: TextIO, title: str, columns: list[str], rows: Any) -> None:
    text.write(f"## {title}\n\n")
    text.write("| " + " | ".join(columns) + " |\n")
    text.write("|" + "---|" * len(columns) + "\n")
    for row in rows:
        text.write("| " + " | ".join(md_cell(c) for c in row) + " |\n")


# --- the terminal: wide tables when they fit, else stacked -------------------------------


def _style(run: RunEntry) -> str:
    return "bold red" if run.verified is False else "yellow" if run.has_problems else ""


def _table_width(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> int:
    """The width of a rich table (one space of padding each side, a border between)."""
    from rich.cells import cell_len

    widths = [cell_len(c) for c in columns]
    for row in rows:
        widths = [
            max(w, max(map(cell_len, cell.splitlines() or [""])))
            for w, cell in zip(widths, row, strict=True)
        ]
    return sum(widths) + 3 * len(widths) + 1


def _table(title: str, columns: Sequence[str], rows: Sequence[tuple[list[str], str]]) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(header_style="bold", title=title, title_justify="left")
    for name in columns:
        table.add_column(name, no_wrap=True)
    for cells, style in rows:
        table.add_row(*(Text(c) for c in cells), style=style or None)
    return table


def _draw(
    out: Console, runs: Sequence[RunEntry], workflows: Sequence[WorkflowStats], cells: _Cells
) -> None:
    if not runs:
        out.print("Run history: no runs", highlight=False)
        return
    run_rows = [(cells.run(r), _style(r)) for r in runs]
    columns = cells.run_columns()
    if _table_width(columns, [c for c, _ in run_rows]) <= out.width:
        out.print(_table("Run history", columns, run_rows))
    else:
        _stacked_runs(out, runs, cells)
    out.print()
    flow_rows = [(cells.workflow(w), "") for w in workflows]
    if _table_width(WORKFLOW_COLUMNS, [c for c, _ in flow_rows]) <= out.width:
        out.print(_table("Workflows (trend: oldest to newest)", WORKFLOW_COLUMNS, flow_rows))
    else:
        _stacked_workflows(out, workflows, cells)


def _whole(out: Console, text: str, style: str = "") -> None:
    """One line never wrapped nor cut (an id): a narrow terminal folds it itself."""
    from rich.text import Text

    out.print(Text(text, style=style), no_wrap=True, overflow="ignore", crop=False)


def _details(out: Console, parts: Sequence[str], cells: _Cells) -> None:
    from rich.text import Text

    out.print(Text("  " + (" · " if cells.unicode else " | ").join(parts)))


def _stacked_runs(out: Console, runs: Sequence[RunEntry], cells: _Cells) -> None:
    from rich.text import Text

    out.print(Text("Run history", style="italic"))
    for run in runs:
        date, workflow, run_id, env, status, verdict, rollback, skipped, followups, *more = (
            cells.run(run)
        )
        _whole(out, run_id, _style(run))
        _details(out, [date, workflow, env], cells)
        _details(out, [f"status {status}", f"verdict {verdict}", f"rollback {rollback}"], cells)
        last = [f"skipped {skipped}", f"follow-ups {followups}"]
        _details(out, [*last, *(f"verified {v}" for v in more)], cells)


def _stacked_workflows(out: Console, workflows: Sequence[WorkflowStats], cells: _Cells) -> None:
    from rich.text import Text

    out.print(Text("Workflows (trend: oldest to newest)", style="italic"))
    for stats in workflows:
        name, runs, passed, last, mean, longest, followups, trend = cells.workflow(stats)
        _whole(out, name, "bold")
        _details(out, [f"runs {runs}", f"passed {passed}", f"last verdict {last}"], cells)
        _details(out, [f"rollback mean {mean}", f"max {longest}", f"follow-ups {followups}"], cells)
        _details(out, [f"trend {trend}"], cells)


# --- the command --------------------------------------------------------------------------


def _in_window(query: Query, run: RunEntry) -> bool:
    """``--run``, ``--since`` and ``--until`` (``--only-problems`` chooses rows only)."""
    if not query.wants_run(run.run_id):
        return False
    moment = run.moment
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
    """``--summary``: one row per run of every file, sorted by start, then per workflow.

    Every file is read whole (and verified when asked, its name and run ids checked
    against the other files' too). The workflow groups sum up the runs that ``--run``,
    ``--since`` and ``--until`` choose; ``--only-problems`` leaves out rows, not runs
    from the groups (a pass rate of the failures alone would say nothing).
    """
    verification = Verification(key=key, require_key=require_key) if verify else None
    history = collect(paths, verification=verification, stderr=streams.stderr)
    window = [r for r in history.runs if _in_window(query, r)]
    shown = [r for r in window if r.has_problems] if query.only_problems else window
    workflows = by_workflow(window)
    if query.only_problems:
        problem_flows = {r.workflow for r in shown}
        workflows = [w for w in workflows if w.workflow in problem_flows]
    render_summary(shown, workflows, fmt, text=streams.stdout, console=streams.console)
    return TimelineOutcome(
        checked=history.checked, failed=history.failed, unreadable=len(history.unreadable)
    )
