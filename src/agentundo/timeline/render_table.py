"""``--format table`` (rich): a header panel and a table per run; ``--follow`` streams lines.

rich is imported when a renderer draws, not with this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from agentundo.evidence.reader import Record
from agentundo.report import layout
from agentundo.report.layout import Column
from agentundo.timeline.entries import (
    COLUMNS,
    SHOWN_AS_GOOD,
    RowKeeper,
    Tone,
    entry_cells,
    hidden_note,
    make_entry,
)

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from agentundo.evidence.problems import Problem
    from agentundo.evidence.verify_chain import ChainHead
    from agentundo.timeline.runs import Run


_STYLES = {
    Tone.PLAIN: "",
    Tone.SUCCESS: "green",
    Tone.FAILURE: "bold red",
    Tone.SKIP: "yellow",
    Tone.MANUAL: "bold magenta",
    Tone.UNKNOWN: "italic cyan",
}


TIMELINE_COLUMNS = {
    "Time": Column("Time", drop=1, title=True),
    "Offset": Column("Offset", title=True),
    "Job": Column("Job", drop=2),
    "Step": Column("Step"),
    "Event": Column("Event", title=True),
    "Topic": Column("Topic"),
    "Decision": Column("Decision"),
    "Idempotency key": Column("Idempotency key"),
    "Detail": Column("Detail", readable=40, fold=40),
}
"""How each column gives way at narrow widths: the clock (the offset stays) and the job
go first, then the rows are stacked; a detail's long values (JSON) may fold past 40 cells."""


def _verdict_style(verdict: str) -> str:
    if verdict in SHOWN_AS_GOOD:
        return "bold green"
    if verdict == "?":
        return "bold yellow"
    return "bold red"


class TableRenderer:
    """Per run: a header panel, then a table of the kept rows (rich)."""

    writes_data = False

    def __init__(self, console: Console, *, limit: int, quiet: bool = False) -> None:
        self.console = console
        self.keeper = RowKeeper(limit)
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
        self._header(run)
        if not rows:
            self.console.print("  no records match the filters", style="dim")
            return
        from rich.text import Text

        layout.render(
            self.console,
            [TIMELINE_COLUMNS[name] for name in COLUMNS],
            [[Text(c) for c in entry_cells(entry)] for entry in rows],
            row_styles=[_STYLES[entry.tone] for entry in rows],
            edge=True,
        )
        if hidden:
            self.console.print(f"  … {hidden_note(hidden)}", style="dim", markup=False)

    def problems(
        self,
        path: str,
        problems: list[Problem],
        *,
        verified: bool,
        chains: Sequence[ChainHead] = (),
        across: bool = False,
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
                f"{'' if len(problems) == 1 else 's'}"
                f"{' found across files (after every file was read)' if across else ''}",
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
        shown = [c for c in entry_cells(entry) if c]
        self.console.print(Text("  ".join(shown), style=_STYLES[entry.tone]), soft_wrap=True)

    def end_run(self, run: Run) -> None:
        self._header(run)
