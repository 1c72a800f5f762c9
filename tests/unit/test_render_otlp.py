"""The OTLP renderer's pieces: values, times, ids, and any JSON a record may hold."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("opentelemetry.proto")

from agentundo.evidence.reader import Record, read_path
from agentundo.timeline.query import Query
from agentundo.timeline.render_otlp import OtlpRenderer, any_value, span_id, trace_id, unix_nanos
from agentundo.timeline.runs import Timeline
from tests.evidence_factory import standard_run
from tests.traces.otlp import attributes, parse_request, spans


def render(records: list[Record]) -> list[dict[str, Any]]:
    out = io.StringIO()
    view = Timeline(Query(), OtlpRenderer(out))
    view.begin_source("evidence.jsonl")
    for record in records:
        view.feed(record)
    view.end_run()
    return [json.loads(line) for line in out.getvalue().splitlines()]


def record(data: dict[str, Any], line: int = 1) -> Record:
    raw = json.dumps(data).encode()
    return Record(path="evidence.jsonl", line=line, data=data, raw=raw, event=data["event"])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, {"boolValue": True}),
        (7, {"intValue": "7"}),
        (2**63, {"stringValue": "9223372036854775808"}),
        (-(2**63), {"intValue": "-9223372036854775808"}),
        (0.5, {"doubleValue": 0.5}),
        (float("nan"), {"stringValue": "nan"}),
        (float("-inf"), {"stringValue": "-inf"}),
        ("ü", {"stringValue": "ü"}),
        ([1, None], {"arrayValue": {"values": [{"intValue": "1"}, {}]}}),
        (
            {"a": None, "b": "x"},
            {"kvlistValue": {"values": [{"key": "b", "value": {"stringValue": "x"}}]}},
        ),
        (None, None),
    ],
)
def test_any_value(value: Any, expected: dict[str, Any] | None) -> None:
    assert any_value(value) == expected


def test_deep_values_become_json_text() -> None:
    deep: Any = "core"
    for _ in range(20):
        deep = [deep]
    value = any_value(deep)
    for _ in range(8):
        assert value is not None
        (value,) = value["arrayValue"]["values"]
    assert value == {"stringValue": json.dumps(deep[0][0][0][0][0][0][0][0]).replace(" ", "")}


@pytest.mark.parametrize(
    ("ts", "nanos"),
    [
        ("2024-05-01T10:00:00.250Z", "1714557600250000000"),
        ("2024-05-01T12:00:00.250+02:00", "1714557600250000000"),
        ("1970-01-01T00:00:00Z", "0"),
        ("2024-05-01T10:00:00", None),  # no zone: not evidence's time
        ("yesterday", None),
        (17, None),
    ],
)
def test_unix_nanos(ts: object, nanos: str | None) -> None:
    assert unix_nanos(ts) == nanos


def test_ids_are_hex_of_the_right_size_and_stable() -> None:
    assert len(trace_id("run-1")) == 32
    assert trace_id("run-1") == trace_id("run-1") != trace_id("run-2")
    assert len(span_id("run-1", "job_1")) == 16
    assert span_id("run-1", "job_1") != span_id("run-1", "job_2") != span_id("run-2", "job_1")


def test_a_standard_run_keeps_every_record_as_an_event(tmp_path: Path) -> None:
    path = standard_run(tmp_path / "run.jsonl")
    items = [i for i in read_path(str(path)) if isinstance(i, Record)]
    (document,) = render(items)
    found = list(spans([parse_request(document)]))
    assert sum(len(s.events) for s in found) == len(items)
    names = sorted(s.name for s in found)
    assert names[0].startswith("compensate ")
    assert "run refund-order" in names


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(st.characters(exclude_categories=("Cs",))),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(st.characters(exclude_categories=("Cs",)), max_size=5), inner, max_size=4
        )
    ),
    max_leaves=30,
)


@settings(max_examples=60, deadline=None)
@given(extra=JSON, ts=st.one_of(st.none(), st.just("2024-05-01T10:00:00Z"), st.text(max_size=5)))
def test_any_record_content_parses_as_otlp(extra: Any, ts: str | None) -> None:
    """Whatever JSON a record holds (unknown fields, odd times), the export is valid OTLP."""
    base = {"run_id": "r", "workflow_id": "w", "actor": "a", "seq": 0}
    records = [
        record({**base, "event": "run_started", "ts": "2024-05-01T10:00:00Z"}),
        record(
            {**base, "event": "step_dispatched", "job_id": "j1", "topic": "t", "ts": ts, "x": extra}
        ),
        record({**base, "event": "new_kind", "ts": ts, "params": extra, "job_id": "j1"}, line=3),
    ]
    (document,) = render(records)
    request = parse_request(document)
    (root, step) = spans([request])
    assert attributes(step)["agentundo.job_id"] == "j1"
    assert step.parent_span_id == root.span_id
    assert [e.name for e in step.events] == ["step_dispatched", "new_kind"]


def _run(*events: dict[str, Any]) -> list[Any]:
    """The spans of a run made of ``events`` (each gets the common fields and a time)."""
    base = {"run_id": "r", "workflow_id": "w", "actor": "a"}
    records = [
        record({**base, "seq": n, "ts": f"2024-05-01T10:00:{n:02d}Z", **data}, line=n + 1)
        for n, data in enumerate([{"event": "run_started"}, *events])
    ]
    (document,) = render(records)
    return list(spans([parse_request(document)]))


def _by_job(found: list[Any]) -> dict[str, dict[str, Any]]:
    return {
        attributes(s)["agentundo.job_id"]: {**attributes(s), "status": s.status}
        for s in found
        if "agentundo.job_id" in attributes(s)
    }


STEP = {"job_id": "j1", "step_id": "charge", "topic": "payments.charge"}
UNDO = {"job_id": "j2", "step_id": "charge", "topic": "payments.refund"}
MAIL = {"job_id": "j3", "step_id": "mail", "topic": "email.send"}


def test_a_step_asked_again_for_its_answer_ends_with_the_answer() -> None:
    found = _run(
        {"event": "step_dispatched", **STEP, "attempt": 1},
        {"event": "step_outcome_unknown", **STEP, "reason": "killed in flight"},
        {"event": "step_dispatched", **STEP, "attempt": 2, "replay": "asked again"},
        {"event": "step_succeeded", **STEP, "response": {"charge_id": "ch_1"}},
    )
    step = _by_job(found)["j1"]
    assert step["agentundo.outcome"] == "step_succeeded"
    assert step["status"].code == 0
    assert step["agentundo.attempts"] == 2
    assert json.loads(step["gen_ai.tool.call.result"]) == {"charge_id": "ch_1"}


def test_a_skipped_compensation_ends_skipped_and_a_failed_one_in_its_follow_up() -> None:
    skip = {**UNDO, "for_topic": "payments.charge"}
    found = _run(
        {"event": "step_dispatched", **STEP, "attempt": 1},
        {"event": "step_succeeded", **STEP},
        {"event": "step_dispatched", **MAIL, "attempt": 1},
        {"event": "step_succeeded", **MAIL},
        {"event": "policy_decision", **skip, "decision": "deny", "is_compensation": True},
        {"event": "compensation_skipped", **skip, "reason": "denied by policy"},
        {"event": "manual_followup", **skip, "category": "compensation_denied", "reason": "r"},
        {"event": "compensation_dispatched", "job_id": "j4", "step_id": "mail", "topic": "x"},
        {"event": "compensation_failed", "job_id": "j4", "step_id": "mail", "error": "HTTP 500"},
        {"event": "manual_followup", "job_id": "j4", "step_id": "mail", "reason": "call a human"},
    )
    jobs = _by_job(found)
    assert (jobs["j2"]["agentundo.outcome"], jobs["j2"]["status"].message) == (
        "compensation_skipped",
        "denied by policy",
    )
    assert jobs["j2"]["agentundo.decision"] == "deny"
    assert (jobs["j4"]["agentundo.outcome"], jobs["j4"]["status"].message) == (
        "manual_followup",
        "call a human",
    )
    assert jobs["j2"]["status"].code == jobs["j4"]["status"].code == 2
    assert jobs["j1"]["agentundo.rollback_class"] == "has_compensation"


def test_an_irreversible_steps_follow_up_is_an_event_of_its_span() -> None:
    found = _run(
        {"event": "step_dispatched", **MAIL, "attempt": 1},
        {"event": "step_succeeded", **MAIL},
        {"event": "rollback_triggered", "job_id": "j9", "cause": "step_failed_fatal"},
        {"event": "manual_followup", "step_id": "mail", "category": "irreversible"},
    )
    (root,) = [s for s in found if not s.parent_span_id]
    (mail,) = [s for s in found if s.parent_span_id]
    assert [e.name for e in mail.events] == ["step_dispatched", "step_succeeded", "manual_followup"]
    assert attributes(mail)["agentundo.rollback_class"] == "irreversible"
    assert [e.name for e in root.events] == ["run_started", "rollback_triggered"]
    assert root.status.message == "incomplete: no run_summary"
