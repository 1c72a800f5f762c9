"""Tables that fit the terminal: ids never broken, free text wrapped, columns dropped or
the rows stacked when a table cannot fit.

One rule for every rich table agentundo prints (the drill report, the sweep table, the
timeline): :func:`plan` decides, from the cells' text and the width alone, which columns
are shown and how wide each one is; :func:`render` draws the plan with rich.

* A column is never narrower than its longest word (or its header's), so an id, a step
  name, a topic, a run id or a key is never broken or cut. Only a column with a ``fold``
  limit (free text such as a timeline detail, whose "words" can be long JSON values)
  may fold a word longer than that limit.
* Free text wraps at word boundaries; nothing is ever ellipsized.
* When the columns' minimum widths do not fit, droppable columns go first (empty ones,
  then in their ``drop`` order); when even the kept columns do not fit, the table is
  drawn stacked: one block per row, the ``title`` columns on its first line and every
  other non-empty value on a ``header: value`` line below it.

The planning is pure (text in, widths out); rich is imported only to draw.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    Cell = str | Text

GAP = 3
"""Characters between two columns of a table drawn without outer edges (`` │ ``)."""

FIELD_INDENT = 2
"""Indent of a stacked block's ``header: value`` lines."""


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a table and how it may give way at narrow widths."""

    header: str
    drop: int = 0
    """0: never dropped (unless every cell is empty); otherwise dropped below the width
    it needs, 1 first, then 2, ..."""
    readable: int = 0
    """Free text: the width (at most its widest cell) it needs to stay readable; columns
    are dropped, or the rows stacked, before it is squeezed narrower."""
    fold: int = 0
    """0: a word is never broken; otherwise words longer than this may be folded."""
    title: bool = False
    """In a stacked layout, this value heads the row's block."""
    justify: Literal["left", "right"] = "left"
    style: str = ""


@dataclass(frozen=True, slots=True)
class Plan:
    """What :func:`render` draws: the columns shown, each one's width, or stacked."""

    shown: tuple[int, ...]
    """Indexes of the columns shown in the table (all of them when stacked)."""
    widths: tuple[int, ...]
    """The content width of each shown column (empty when stacked)."""
    stacked: bool = False
    edge: bool = False
    """Whether the table has an outer frame (a border and a space on each side)."""

    def table_width(self) -> int:
        return _overhead(len(self.widths), self.edge) + sum(self.widths) if self.widths else 0


def _overhead(columns: int, edge: bool) -> int:
    """Characters a table of ``columns`` columns adds to their content."""
    return GAP * (columns - 1) + (4 if edge else 0)  # a frame: a border and a space each side


def text_width(text: str) -> int:
    """Cells ``text`` takes on a terminal (its widest line; wide characters count 2)."""
    from rich.cells import cell_len

    return max((cell_len(line) for line in text.splitlines()), default=0)


def longest_word(text: str) -> int:
    """Cells the longest whitespace-separated word of ``text`` takes."""
    from rich.cells import cell_len

    return max((cell_len(word) for word in text.split()), default=0)


@dataclass(frozen=True, slots=True)
class _Need:
    minimum: int
    natural: int
    empty: bool


def _need(column: Column, cells: Sequence[str]) -> _Need:
    word = max((longest_word(c) for c in cells), default=0)
    if column.fold:
        word = min(word, column.fold)
    word = max(word, longest_word(column.header))
    natural = max([text_width(column.header), *(text_width(c) for c in cells)])
    minimum = max(word, min(natural, column.readable))
    return _Need(minimum, natural, not any(c.strip() for c in cells))


def _fits(needs: Sequence[_Need], shown: Sequence[int], width: int) -> bool:
    return sum(needs[i].minimum for i in shown) <= width


def _drop_order(columns: Sequence[Column], needs: Sequence[_Need]) -> list[int]:
    """Columns in the order they are dropped: empty ones (they show nothing), then the
    droppable ones by ``drop``."""
    droppable = [i for i, c in enumerate(columns) if c.drop or needs[i].empty]
    return sorted(droppable, key=lambda i: (not needs[i].empty, columns[i].drop, -i))


def plan(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int, *, edge: bool = False
) -> Plan:
    """Which columns to show and how wide, for rows of plain text cells, in ``width``
    (``edge``: the table is framed)."""
    needs = [_need(c, [row[i] for row in rows]) for i, c in enumerate(columns)]
    shown = list(range(len(columns)))
    order = _drop_order(columns, needs)
    while not _fits(needs, shown, width - _overhead(len(shown), edge)):
        if not order or len(shown) == 1:  # a table of no columns shows nothing
            return Plan(tuple(range(len(columns))), (), stacked=True, edge=edge)
        shown.remove(order.pop(0))
    room = width - _overhead(len(shown), edge)
    return Plan(tuple(shown), _share(needs, shown, room), edge=edge)


def _share(needs: Sequence[_Need], shown: Sequence[int], width: int) -> tuple[int, ...]:
    """Each shown column at its minimum, then the room left (``width`` is the content's)
    filled like water: a column that lacks little gets all it lacks, the room still left
    is split evenly among those that lack more (so a short decision is not wrapped to
    leave a long detail a few more cells)."""
    widths = [needs[i].minimum for i in shown]
    room = width - sum(widths)
    lacks = sorted((needs[i].natural - needs[i].minimum, k) for k, i in enumerate(shown))
    for done, (lack, k) in enumerate(lacks):
        share = room // (len(lacks) - done)
        given = min(lack, share)
        if done == len(lacks) - 1:
            given = min(lack, room)
        widths[k] += given
        room -= given
    return tuple(widths)


def _plain(cell: Cell) -> str:
    return cell if isinstance(cell, str) else cell.plain


def render(
    console: Console,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
    *,
    title: str | None = None,
    row_styles: Sequence[str] | None = None,
    width: int | None = None,
    edge: bool = False,
) -> Plan:
    """Draw ``rows`` on ``console`` as the widest layout that fits; returns the plan.

    Cells are plain strings (never markup) or rich ``Text``; ``row_styles`` styles whole
    rows; ``width`` defaults to the console's; ``edge`` frames the table.
    """
    width = console.width if width is None else width
    layout = plan(columns, [[_plain(c) for c in row] for row in rows], width, edge=edge)
    if title:
        from rich.text import Text

        _print_wrapped(console, Text(title, style="table.title"), width)
    if layout.stacked:
        _stacked(console, columns, rows, row_styles, width)
    else:
        _table(console, columns, rows, row_styles, layout)
    return layout


def _table(
    console: Console,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
    row_styles: Sequence[str] | None,
    layout: Plan,
) -> None:
    from rich.table import Table

    table = Table(show_edge=layout.edge, pad_edge=layout.edge, header_style="bold")
    for index, width in zip(layout.shown, layout.widths, strict=True):
        column = columns[index]
        # every word fits (fold is the last resort for a ``fold`` column's long words)
        table.add_column(
            column.header,
            width=width,
            overflow="fold",
            justify=column.justify,
            style=column.style or None,
        )
    for number, row in enumerate(rows):
        style = row_styles[number] if row_styles else None
        table.add_row(*(row[i] for i in layout.shown), style=style or None)
    console.print(table)


def _stacked(
    console: Console,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
    row_styles: Sequence[str] | None,
    width: int,
) -> None:
    from rich.text import Text

    titles = [i for i, c in enumerate(columns) if c.title]
    fields = [
        i
        for i, c in enumerate(columns)
        if not c.title and any(_plain(row[i]).strip() for row in rows)
    ]
    label_width = max((len(columns[i].header) for i in fields), default=0) + 2
    for number, row in enumerate(rows):
        style = (row_styles[number] if row_styles else "") or ""
        head = Text("  ").join(_as_text(row[i]) for i in titles if _plain(row[i]).strip())
        head.stylize(style)
        _print_wrapped(console, Text.assemble(head, style="bold"), width)
        for i in fields:
            if not _plain(row[i]).strip():
                continue
            label = f"{' ' * FIELD_INDENT}{columns[i].header}:".ljust(FIELD_INDENT + label_width)
            value = _as_text(row[i])
            value.stylize(style)
            hanging(console, label, value, width, fold=columns[i].fold > 0)


def _as_text(cell: Cell) -> Text:
    from rich.text import Text

    return Text(cell) if isinstance(cell, str) else cell.copy()


_WORD = re.compile(r"\S+")


def _cells_fitting(text: str, width: int) -> int:
    """How many characters of ``text`` fit in ``width`` cells (at least one)."""
    from rich.cells import cell_len

    used = 0
    for index, char in enumerate(text):
        used += cell_len(char)
        if used > width:
            return max(index, 1)
    return len(text)


def wrap(text: Text, width: int, *, fold: bool = False) -> list[Text]:
    """``text`` in lines of at most ``width`` cells, broken at whitespace, each line's
    trailing whitespace removed. A word longer than ``width`` is folded with ``fold``;
    without it the word keeps a line of its own, whole, and that line is longer than
    ``width`` (the terminal wraps it; a copy of an id or a key stays whole)."""
    if "\n" in text.plain:  # each line of its own
        return [line for part in text.split("\n") for line in wrap(part, width, fold=fold)]
    from rich.cells import cell_len

    plain = text.plain
    breaks: list[int] = []
    begin = 0  # where the current line starts
    for match in _WORD.finditer(plain):
        start, end = match.span()
        if cell_len(plain[begin:end]) <= width:
            continue
        if plain[begin:start].strip():  # words before this one: it starts a new line
            breaks.append(start)
            begin = start
        while fold and cell_len(plain[begin:end]) > width:
            begin += _cells_fitting(plain[begin:end], width)
            breaks.append(begin)
    lines = list(text.divide(breaks))
    for line in lines:
        line.rstrip()
    return lines


def _print_wrapped(console: Console, text: Text, width: int, *, fold: bool = False) -> None:
    for line in wrap(text, width, fold=fold):
        console.print(line, soft_wrap=True)


def hanging(
    console: Console,
    label: str | Text,
    value: str | Text,
    width: int | None = None,
    *,
    fold: bool = False,
) -> None:
    """``label`` then ``value`` wrapped at word boundaries to ``width``, the lines after
    the first indented under the value. A value that has too little room beside the
    label (less than 16 cells, or less than its longest word when words may not be
    folded) starts on the next line, indented."""
    from rich.text import Text

    width = console.width if width is None else width
    head = Text(label) if isinstance(label, str) else label.copy()
    body = Text(value) if isinstance(value, str) else value.copy()
    indent = head.cell_len
    room = width - indent
    if room < 16 or (not fold and longest_word(body.plain) > room):
        _print_wrapped(console, head, width)
        indent = 2 * FIELD_INDENT
        head = Text(" " * indent)
    for number, line in enumerate(wrap(body, max(width - indent, 1), fold=fold)):
        prefix = head if number == 0 else Text(" " * indent)
        console.print(Text.assemble(prefix, line), soft_wrap=True)


def flow(
    console: Console,
    parts: Sequence[str | Text],
    *,
    separator: str = "  ",
    indent: int = 0,
    width: int | None = None,
) -> None:
    """``parts`` on as few lines as fit ``width``, broken only between parts (``run
    run_1`` is never split from its id); the lines after the first indented by ``indent``.
    A part wider than a whole line wraps at its words, never inside one."""
    from rich.text import Text

    width = console.width if width is None else width
    line = Text()
    for part in parts:
        piece = Text(part) if isinstance(part, str) else part
        if not line.plain.strip():
            line = Text.assemble(line, piece)
        elif line.cell_len + len(separator) + piece.cell_len <= width:
            line = Text.assemble(line, separator, piece)
        else:
            _print_wrapped(console, line, width)
            line = Text.assemble(" " * indent, piece)
    _print_wrapped(console, line, width)
