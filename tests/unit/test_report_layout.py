"""report/layout.py: the width plan, the word wrapper and what rich draws from them, for
any columns, any cells and any width (hypothesis), and a few chosen cases."""

from __future__ import annotations

import io
import re

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.console import Console
from rich.text import Text

from agentundo.report import layout
from agentundo.report.layout import Column, plan, wrap

_ID = st.from_regex(r"[a-z][a-z0-9_.:-]{0,40}", fullmatch=True)
_PROSE = st.lists(st.from_regex(r"[a-z]{1,12}", fullmatch=True), max_size=12).map(" ".join)


@st.composite
def _tables(draw: st.DrawFn) -> tuple[list[Column], list[list[str]]]:
    kinds = draw(st.lists(st.sampled_from(["id", "prose", "count"]), min_size=1, max_size=7))
    columns: list[Column] = []
    for index, kind in enumerate(kinds):
        drop = draw(st.integers(0, 3))
        if kind == "prose":
            columns.append(Column(f"text {index}", drop=drop, readable=draw(st.integers(0, 30))))
        else:
            columns.append(Column(f"c{index}", drop=drop, title=index == 0))
    cells = {"id": _ID, "prose": _PROSE, "count": st.integers(0, 999).map(str)}
    rows = draw(st.lists(st.tuples(*(cells[k] for k in kinds)).map(list), min_size=1, max_size=6))
    return columns, rows


def _draw(columns: list[Column], rows: list[list[str]], width: int) -> tuple[layout.Plan, str]:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    drawn = layout.render(console, columns, rows)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(out, str)
    return drawn, out


@settings(max_examples=150, deadline=None)
@given(_tables(), st.integers(20, 220))
def test_a_plan_fits_and_never_breaks_a_word(
    table: tuple[list[Column], list[list[str]]], width: int
) -> None:
    columns, rows = table
    chosen = plan(columns, rows, width)
    if chosen.stacked:
        assert chosen.shown == tuple(range(len(columns)))
        return
    assert chosen.table_width() <= width
    for index, column_width in zip(chosen.shown, chosen.widths, strict=True):
        words = [layout.longest_word(row[index]) for row in rows]
        assert column_width >= max([*words, layout.longest_word(columns[index].header)])
    dropped = set(range(len(columns))) - set(chosen.shown)
    assert all(columns[i].drop or not any(r[i] for r in rows) for i in dropped)


@settings(max_examples=80, deadline=None)
@given(_tables(), st.integers(20, 220))
def test_what_rich_draws_keeps_every_id_whole_within_the_width(
    table: tuple[list[Column], list[list[str]]], width: int
) -> None:
    columns, rows = table
    drawn, out = _draw(columns, rows, width)
    ids = {row[i] for row in rows for i in drawn.shown if row[i] and " " not in row[i]}
    assert all(
        i in drawn.shown for i, c in enumerate(columns) if not c.drop and any(r[i] for r in rows)
    )
    for word in ids:
        assert re.search(rf"(?<![\w.:-]){re.escape(word)}(?![\w.:-])", out), (word, out)
    for line in out.splitlines():
        if cell_len(line) > width:  # only a word no line could hold, alone
            assert " " not in line.strip() and cell_len(line.strip()) > width - 8, line
    assert "…" not in out


def test_low_value_columns_go_first_then_the_rows_are_stacked() -> None:
    columns = [
        Column("#", drop=1, title=True),
        Column("step", title=True),
        Column("job", drop=2),
        Column("state"),
    ]
    rows = [["1", "read-ticket-history", "job_1", "succeeded"]]
    assert plan(columns, rows, 43).shown == (0, 1, 2, 3)  # 1 + 19 + 5 + 9, 3 gaps of 3
    assert plan(columns, rows, 42).shown == (1, 2, 3)
    assert plan(columns, rows, 38).shown == (1, 3)
    assert plan(columns, rows, 31).widths == (19, 9)
    assert plan(columns, rows, 31).table_width() == 31
    assert plan(columns, rows, 30).stacked


def test_room_goes_first_to_the_column_that_lacks_little() -> None:
    columns = [Column("decision"), Column("detail", readable=10)]
    rows = [["deny [rule]", "a long detail " * 6]]
    chosen = plan(columns, rows, 60)
    assert chosen.widths[0] == len("deny [rule]")  # not wrapped for the detail's sake
    assert chosen.table_width() == 60


def test_stacked_blocks_put_titles_first_and_skip_empty_values() -> None:
    columns = [Column("step", title=True), Column("job"), Column("problem")]
    rows = [["close-support-ticket", "job_3", ""], ["notify", "", "denied by policy"]]
    console = Console(file=io.StringIO(), width=30, color_system=None)
    layout.render(console, [*columns, Column("x" * 40)], [[*r, ""] for r in rows])
    assert console.file.getvalue().splitlines() == [  # type: ignore[attr-defined]
        "close-support-ticket",
        "  job:     job_3",
        "notify",
        "  problem: denied by policy",
    ]


def test_wrap_breaks_at_spaces_and_folds_only_when_told() -> None:
    text = Text("a " + "x" * 12 + " b c")
    assert [line.plain for line in wrap(text, 8)] == ["a", "x" * 12, "b c"]
    assert [line.plain for line in wrap(text, 8, fold=True)] == ["a", "x" * 8, "xxxx b c"]
    assert [line.plain for line in wrap(Text("one\ntwo three"), 5)] == ["one", "two", "three"]


def test_flow_breaks_only_between_parts() -> None:
    console = Console(file=io.StringIO(), width=24, color_system=None)
    layout.flow(console, ["drill order (prod)", "run run_1234abcd", "status ok"], indent=2)
    assert console.file.getvalue().splitlines() == [  # type: ignore[attr-defined]
        "drill order (prod)",
        "  run run_1234abcd",
        "  status ok",
    ]
