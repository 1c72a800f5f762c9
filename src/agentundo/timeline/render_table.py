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


TONE_STYLES = {
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


_PANEL = 4
"""Cells a panel adds around its content: a border and a space on each side."""


def _pairs_fit(pairs: Sequence[tuple[str, str]], per_row: int, width: int) -> bool:
    """Whether ``per_row`` label/value pairs a row fit in ``width`` with every value's
    longest word whole (the grid's columns are two cells apart)."""
    needed = 2 * (2 * per_row - 1)
    for column in range(per_row):
        mine = pairs[column::per_row]
        needed += max((layout.text_width(label) for label, _ in mine), default=0)
        needed += max((layout.longest_word(value) for _, value in mine), default=0)
    return needed <= width


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
        from rich.text import Text

        pairs = run.header()
        verdict = dict(pairs)["verdict"]
        per_row = 2 if _pairs_fit(pairs, 2, self.console.width - _PANEL) else 1
        grid = Table.grid(padding=(0, 2))
        for column in range(per_row):
            words = max(layout.longest_word(value) for _, value in pairs[column::per_row])
            grid.add_column(style="bold", no_wrap=True)
            grid.add_column(overflow="fold", min_width=words)
        cells: list[Text | str] = []
        for label, value in pairs:
            style = _verdict_style(value) if label == "verdict" else ""
            if label == "manual follow-ups" and value not in ("0", "?"):
                style = TONE_STYLES[Tone.MANUAL]
            cells.extend([label, Text(value, style=style)])
        step = 2 * per_row
        for index in range(0, len(cells), step):
            row = cells[index : index + step]
            grid.add_row(*row, *([""] * (step - len(row))))
        title = Text(f"{run.tally.workflow_id or '?'} · {run.tally.run_id or '?'}")
        if title.cell_len + _PANEL + 2 > self.console.width:  # a border would cut it
            self.console.print(title, style="bold")
            title = Text()
        self.console.print(
            Panel(
                grid,
                title=title or None,
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
            row_styles=[TONE_STYLES[entry.tone] for entry in rows],
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
        self.console.print(Text("  ".join(shown), style=TONE_STYLES[entry.tone]), soft_wrap=True)

    def end_run(self, run: Run) -> None:
        self._header(run)
