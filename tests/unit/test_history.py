"""The history core: runs read from evidence, problems given to their runs, groups, trends."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest

from agentundo.evidence.events import FollowUp
from agentundo.evidence.problems import Problem
from agentundo.history.collect import (
    MAX_NOTES,
    PLANNED_FOLLOWUPS,
    FollowUpNote,
    RunEntry,
    Verification,
    _with_problems,
    collect,
)
from agentundo.history.stats import (
    ASCII_MARKS,
    TREND_RUNS,
    UNICODE_MARKS,
    Mark,
    by_workflow,
    can_encode,
    mark_of,
    trend_text,
)
from agentundo.history.svg import duration_plot, verdict_plot
from tests.evidence_factory import START
from tests.history_factory import drill_run


def entry(**fields: object) -> RunEntry:
    base: dict[str, object] = {
        "path": "ev.jsonl",
        "line": 1,
        "started": "2024-05-01T10:00:00.000Z",
        "workflow": "w",
        "run_id": "run-1",
        "env": "staging",
        "status": "SUCCEEDED",
        "verdict": "completed",
        "complete": True,
        "rollback": False,
        "rollback_s": None,
        "skipped": 0,
        "manual_followups": 0,
    }
    base.update(fields)
    return RunEntry(**base)  # type: ignore[arg-type]


def test_every_mark_has_a_unicode_and_an_ascii_form() -> None:
    for mark in Mark:
        assert UNICODE_MARKS[mark] and ASCII_MARKS[mark].isascii()
        assert can_encode("utf-8", UNICODE_MARKS[mark])


def test_trend_shows_the_newest_runs_oldest_first() -> None:
    marks = [Mark.FAIL] * 5 + [Mark.PASS] * TREND_RUNS
    assert trend_text(marks, unicode=True) == "(5 older) " + "✓" * TREND_RUNS
    assert trend_text([Mark.PASS, Mark.FAIL, Mark.INCOMPLETE], unicode=False) == "+x?"
    assert not can_encode("ascii") and not can_encode(None) and not can_encode("no-such")


def test_a_run_passes_on_a_good_verdict_in_evidence_that_verifies() -> None:
    assert mark_of(entry()) is Mark.PASS
    assert mark_of(entry(verdict="recovered", verified=True)) is Mark.PASS
    assert mark_of(entry(verdict="recovered", verified=False)) is Mark.FAIL
    assert mark_of(entry(verdict="failed")) is Mark.FAIL
    assert mark_of(entry(verdict="?", complete=False)) is Mark.INCOMPLETE
    assert mark_of(entry(verdict="?", complete=False, verified=False)) is Mark.FAIL


def test_planned_followups_are_the_ones_the_catalog_declares() -> None:
    for category in FollowUp:
        note = FollowUpNote(step="s", category=str(category), reason="")
        expected = category in (FollowUp.IRREVERSIBLE, FollowUp.NO_COMPENSATION)
        assert note.planned is expected, category
        # a follow-up a fault the drill injected caused was rehearsed: planned
        assert FollowUpNote(step="s", category=str(category), reason="", injected=True).planned
    assert {"irreversible", "no_compensation"} == PLANNED_FOLLOWUPS


def test_problems_go_to_the_run_whose_lines_hold_them() -> None:
    runs = [entry(run_id="a", line=1), entry(run_id="b", line=20), entry(run_id="c", line=40)]
    problems = [
        Problem("ev.jsonl", 0, "EV107", "keyed"),
        Problem("ev.jsonl", 25, "EV101", "edited"),
        Problem("ev.jsonl", 39, "EV205", "no summary"),
    ]
    a, b, c = _with_problems(runs, problems)
    assert [p.code for p in a.problems] == ["EV107"]
    assert [p.code for p in b.problems] == ["EV101", "EV205"]
    assert (a.verified, b.verified, c.verified) == (False, False, True)
    many = _with_problems(runs[:1], [Problem("ev.jsonl", n, "EV001", "x") for n in range(50)])
    assert (len(many[0].problems), many[0].problem_count) == (MAX_NOTES, 50)


def test_groups_sum_up_each_workflow() -> None:
    runs = [
        entry(run_id="1", started="2024-05-08T10:00:00Z", rollback=True, rollback_s=4.0),
        entry(run_id="2", started="2024-05-01T10:00:00Z", rollback=True, rollback_s=2.0),
        entry(run_id="3", started="2024-05-15T10:00:00Z", verdict="failed", workflow="v"),
        entry(
            run_id="4",
            started="2024-05-22T10:00:00Z",
            verdict="recovered",
            manual_followups=3,
            unplanned_count=1,
        ),
    ]
    v, w = by_workflow(runs)
    assert (v.workflow, v.runs, v.passed, v.last_verdict) == ("v", 1, 0, "failed")
    assert (w.runs, w.passed, w.last_run, w.last_verdict) == (3, 3, "4", "recovered")
    assert (w.rollbacks, w.rollback_mean_s, w.rollback_max_s) == (2, 3.0, 4.0)
    assert (w.followups, w.unplanned_followups) == (3, 1)
    assert w.marks == (Mark.PASS, Mark.PASS, Mark.PASS)


def test_collect_splits_a_file_into_its_runs(tmp_path: Path) -> None:
    parts = [
        drill_run(
            tmp_path / f"{name}.jsonl",
            run_id=name,
            workflow="w",
            start=START + timedelta(days=index),
            outcome=outcome,
            retry_s=3.0,
        )
        for index, (name, outcome) in enumerate(
            [("run-a", "recovered"), ("run-b", "planned"), ("run-c", "unplanned")]
        )
    ]
    joined = tmp_path / "all" / "joined.jsonl"
    joined.parent.mkdir()
    joined.write_bytes(b"".join(p.read_bytes() for p in parts))
    err = io.StringIO()
    history = collect([str(joined)], verification=Verification(), stderr=err)
    assert [(r.run_id, r.verdict, r.verified) for r in history.runs] == [
        ("run-a", "recovered", True),
        ("run-b", "recovered", True),
        ("run-c", "failed", True),
    ]
    assert [r.line for r in history.runs] == [1, 25, 48]
    assert history.runs[1].followups[0].category == "irreversible"
    assert history.runs[2].unplanned_count == 1
    assert all(r.rollback_s is not None and r.rollback_s > 3.0 for r in history.runs)
    assert (history.checked, history.failed, history.unreadable) == (1, 0, [])


def test_the_plots_have_a_mark_per_run_and_escape_ids() -> None:
    runs = [
        entry(run_id="<b>x</b>", rollback=True, rollback_s=0.0),
        entry(run_id="y", started="2024-05-09T10:00:00Z", verdict="failed"),
        entry(run_id="z", started="bad", complete=False, verdict="?"),
    ]
    verdicts = verdict_plot(runs)
    assert verdicts.count('class="mark ') == 3
    assert "<b>" not in verdicts and "&lt;b&gt;x&lt;/b&gt;" in verdicts
    bars = duration_plot(runs)
    assert bars.count('class="mark bar') == 1
    assert duration_plot(runs[1:]) == ""


@pytest.mark.parametrize("count", [1, 2, 7])
def test_marks_stay_inside_the_plot(count: int) -> None:
    runs = [entry(run_id=f"r{i}", started=f"2024-05-0{1 + i % 2}T10:00:00Z") for i in range(count)]
    plot = verdict_plot(runs)
    xs = [float(part.split('"')[0]) for part in plot.split('cx="')[1:]]
    assert len(xs) == count
    assert all(80 <= x <= 720 - 16 for x in xs)
