"""The timeline's query, rows and renderers, without a subprocess."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from agentundo.errors import UsageError
from agentundo.evidence.reader import Record, read_path
from agentundo.timeline.entries import Tone, decision_text, make_entry
from agentundo.timeline.formats import Format, renderer
from agentundo.timeline.query import Query
from agentundo.timeline.render_markdown import md_cell
from agentundo.timeline.runs import Timeline
from agentundo.timeline.times import TimeBound
from tests.evidence_factory import START, standard_run


def records(path: Path) -> list[Record]:
    return [i for i in read_path(str(path)) if isinstance(i, Record)]


@pytest.fixture
def run(tmp_path: Path) -> list[Record]:
    return records(standard_run(tmp_path / "run.jsonl"))


def matching(run: list[Record], query: Query) -> list[int]:
    return [r.line for r in run if query.matches(r.data, START)]


def test_no_filter_matches_everything(run: list[Record]) -> None:
    assert len(matching(run, Query())) == len(run) == 33
    assert not Query().is_filtered


def test_filter_run(run: list[Record]) -> None:
    assert len(matching(run, Query(runs=("run-*",)))) == 33
    assert matching(run, Query(runs=("other",))) == []
    assert Query(runs=("run-?",)).wants_run("run-1")


def test_filter_job_matches_job_or_step(run: list[Record]) -> None:
    by_job = matching(run, Query(jobs=("comp-charge",)))
    by_step = matching(run, Query(jobs=("charge",)))
    assert len(by_job) == 6
    assert set(by_job) < set(by_step)  # the step also names its forward records


def test_filter_topic_glob_includes_for_topic(run: list[Record]) -> None:
    lines = matching(run, Query(topics=("payments.*",)))
    events = [run[n - 1].event for n in lines]
    assert events.count("compensation_dispatched") == 2
    assert "step_succeeded" in events


def test_filter_event(run: list[Record]) -> None:
    assert [run[n - 1].event for n in matching(run, Query(events=("compensation_skipped",)))] == [
        "compensation_skipped"
    ]
    assert len(matching(run, Query(events=("compensation_*", "manual_followup")))) == 9


def test_filter_since_until_absolute_and_offset(run: list[Record]) -> None:
    since = TimeBound.parse("2024-05-01T10:00:07Z", "--since")
    assert matching(run, Query(since=since)) == [29, 30, 31, 32, 33]
    until = TimeBound.parse("+0.5s", "--until")
    assert matching(run, Query(until=until)) == [1, 2, 3]
    both = Query(
        since=TimeBound.parse("+1s", "--since"), until=TimeBound.parse("+1250ms", "--until")
    )
    assert matching(run, both) == [5, 6]
    with pytest.raises(UsageError, match="RFC 3339"):
        TimeBound.parse("yesterday", "--since")
    with pytest.raises(UsageError):
        TimeBound.parse("2024-05-01T10:00:00", "--since")  # no zone


def test_filter_only_problems(run: list[Record]) -> None:
    events = [run[n - 1].event for n in matching(run, Query(only_problems=True))]
    assert events == [
        "step_failed",
        "step_failed_fatal",
        "policy_decision",  # the denial
        "compensation_skipped",
        "manual_followup",
        "compensation_failed",
    ]


def test_prefilter_passes_every_match(run: list[Record]) -> None:
    query = Query(events=("compensation_skipped",), runs=("run-1",))
    keep = query.prefilter()
    assert keep is not None
    kept = [r for r in run if keep(r.raw)]
    assert {r.event for r in kept} == {"compensation_skipped", "run_started"}
    assert Query(events=("compensation_*",)).prefilter() is None  # globs: parse everything
    assert keep(b'{"event":"compensation_sk\\u0069pped"}')  # escapes always parsed


def test_entry_cells(run: list[Record]) -> None:
    start = START
    entry = make_entry(run[19], start, "agent:support-bot")
    assert (entry.clock, entry.offset, entry.event) == (
        "10:00:04.750",
        "+4.75s",
        "compensation_skipped",
    )
    assert entry.decision == "skip [no-void-after-pickup]"
    assert entry.detail == "reason=denied by policy"
    assert entry.tone is Tone.SKIP
    decision = make_entry(run[4], start, "agent:support-bot")
    assert decision.decision == "allow [default]"
    assert "default" not in decision.detail


def test_unknown_fields_and_events_are_shown() -> None:
    data: dict[str, Any] = {
        "event": "quantum_entangled",
        "ts": "2024-05-01T10:00:01Z",
        "spin": "up",
        "actor": "bot-2",
    }
    entry = make_entry(Record("x", 1, data, b"", data["event"]), START, "agent:support-bot")
    assert entry.tone is Tone.UNKNOWN
    assert entry.detail == "(unknown event type) actor=bot-2 spin=up"


@pytest.mark.parametrize(
    ("data", "text"),
    [
        ({"event": "policy_decision", "decision": "allow", "rule_id": "r"}, "allow [r]"),
        ({"event": "policy_decision", "decision": "deny", "rule_id": None}, "deny [no rule]"),
        ({"event": "policy_decision", "decision": "deny"}, "deny [no rule]"),
        ({"event": "step_denied", "rule_id": "r"}, "deny [r]"),
        ({"event": "step_succeeded"}, ""),
    ],
)
def test_decision_text(data: dict[str, Any], text: str) -> None:
    assert decision_text(data) == text


def test_md_cell_escapes_table_syntax() -> None:
    assert md_cell("a|b\n<c>*d*`e`") == "a\\|b &lt;c>\\*d\\*\\`e\\`"


@pytest.mark.parametrize("fmt", list(Format))
def test_every_format_renders_a_run(tmp_path: Path, fmt: Format) -> None:
    text, binary = io.StringIO(), io.BytesIO()
    console = Console(file=text, width=160, color_system=None)
    out = renderer(fmt, text=text, binary=binary, console=lambda: console, limit=5)
    view = Timeline(Query(), out)
    path = standard_run(tmp_path / "r.jsonl")
    view.begin_source(str(path))
    for item in records(path):
        view.feed(item)
    view.end_run()
    out.problems(str(path), [], verified=True)
    out.close()
    written = text.getvalue() or binary.getvalue().decode()
    assert "refund-order" in written
    if fmt is Format.JSON:
        assert len(written.splitlines()) == 33
        assert json.loads(written.splitlines()[0])["event"] == "run_started"
    elif fmt is Format.MERMAID:
        assert written.startswith("gantt\n")
        assert "more tasks not shown" in written
    elif fmt is Format.OTLP:  # never limited: every record is an event of some span
        (document,) = [json.loads(line) for line in written.splitlines()]
        (scope,) = document["resourceSpans"][0]["scopeSpans"]
        assert sum(len(span["events"]) for span in scope["spans"]) == 33
    else:
        assert "28 more matching records not shown" in written


def test_time_bound_instant() -> None:
    bound = TimeBound.parse("+2m", "--since")
    start = datetime(2024, 1, 1, tzinfo=UTC)
    assert bound.instant(start) == start + timedelta(minutes=2)
    assert bound.instant(None) is None


def test_an_unknown_outcome_is_a_failure_and_a_problem() -> None:
    from agentundo.timeline.entries import tone
    from agentundo.timeline.query import is_problem

    record = {"event": "step_outcome_unknown", "step_id": "charge", "reason": "killed"}
    assert tone(record) is Tone.FAILURE
    assert is_problem(record)
    assert not is_problem({"event": "compensation_not_needed", "step_id": "charge"})
