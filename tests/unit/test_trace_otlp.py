"""Reading OTLP JSON (agentundo.trace.otlp) and grouping spans into runs (trace.runs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentundo.errors import InputError
from agentundo.trace.otlp import SpanStatus, looks_like_otlp, read_spans
from agentundo.trace.runs import NOT_CAPTURED, ContextRow, ToolCall, group_runs

FIXTURES = Path(__file__).parents[1] / "fixtures" / "otlp"
FAILED = FIXTURES / "failed-run.otlp.jsonl"
TWO_RUNS = FIXTURES / "two-runs.otlp.json"
NO_CONTENT = FIXTURES / "no-content.otlp.jsonl"


def _attr(key: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"key": key, "value": value}


def _span(**overrides: Any) -> dict[str, Any]:
    span: dict[str, Any] = {
        "traceId": "AB" * 16,
        "spanId": "01" * 8,
        "name": "running tool: charge_card",
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": 1700000000500000000,
        "attributes": [
            _attr("gen_ai.tool.name", {"stringValue": "charge_card"}),
            _attr("tool_arguments", {"stringValue": '{"order_id": "A1", "amount": 5}'}),
            _attr("tool_response", {"stringValue": "not json"}),
            _attr("retries", {"intValue": "3"}),
            _attr("ratio", {"doubleValue": 0.5}),
            _attr("tags", {"arrayValue": {"values": [{"stringValue": "a"}, {"boolValue": True}]}}),
            _attr("nested", {"kvlistValue": {"values": [_attr("k", {"intValue": 7})]}}),
            _attr("blob", {"bytesValue": "AAE="}),
            _attr("empty", {}),
        ],
    }
    span.update(overrides)
    return span


def _document(*spans: dict[str, Any]) -> dict[str, Any]:
    resource = {"attributes": [_attr("deployment.environment.name", {"stringValue": "staging"})]}
    return {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": list(spans)}]}]}


def _write(tmp_path: Path, text: str, name: str = "trace.json") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def _error(path: str) -> InputError:
    with pytest.raises(InputError) as caught:
        read_spans(path)
    return caught.value


def test_the_fixtures_read_as_runs_of_tool_calls_and_context() -> None:
    runs = group_runs(read_spans(str(FAILED)))
    assert len(runs) == 1
    run = runs[0]
    assert run.agent == "ledger-agent" and run.failed
    assert run.error == "RuntimeError: ledger answered 502 Bad Gateway to POST /charges (o-1002)"
    calls = run.calls
    assert [(c.call_id, c.tool) for c in calls] == [
        ("call_1", "get_balance"),
        ("call_2", "charge_card"),
        ("call_3", "grant_access"),
        ("call_4", "send_email"),
        ("call_5", "charge_card"),
    ]
    assert calls[1].arguments == {"order_id": "o-1001", "amount": 1200}
    assert calls[1].result == {"charge_id": "ch_1", "order_id": "o-1001", "amount": 1200}
    assert [c.failed for c in calls] == [False, False, False, False, True]
    assert calls[4].result is NOT_CAPTURED
    context = [r for r in run.rows if isinstance(r, ContextRow)]
    assert {r.kind for r in context} == {"invoke_agent", "chat"}
    assert run.rows[0].span.parent_id is None  # the agent's span starts first


def test_one_document_and_one_per_line_are_told_apart_by_content(tmp_path: Path) -> None:
    spans = read_spans(str(TWO_RUNS))  # pretty-printed, one document over many lines
    assert len(group_runs(spans)) == 2
    assert [r.failed for r in group_runs(spans)] == [False, True]
    lines = FAILED.read_text(encoding="utf-8")
    one_line = _write(tmp_path, lines, "renamed.json")  # the name does not matter
    assert len(read_spans(one_line)) == len(read_spans(str(FAILED)))


def test_without_content_capture_arguments_and_results_are_not_captured() -> None:
    run = group_runs(read_spans(str(NO_CONTENT)))[0]
    assert all(c.arguments is NOT_CAPTURED and c.result is NOT_CAPTURED for c in run.calls)
    assert run.calls[1].params == {} and run.calls[1].response is None


def test_attribute_values_and_older_pydantic_ai_names(tmp_path: Path) -> None:
    path = _write(tmp_path, json.dumps(_document(_span())))
    (span,) = read_spans(path)
    assert span.trace_id == "ab" * 16 and span.status is SpanStatus.UNSET
    assert span.attributes["retries"] == 3 and span.attributes["ratio"] == 0.5
    assert span.attributes["tags"] == ["a", True]
    assert span.attributes["nested"] == {"k": 7}
    assert span.attributes["blob"] == "0001" and span.attributes["empty"] is None
    assert span.end_ns - span.start_ns == 500_000_000
    (run,) = group_runs([span])
    (call,) = run.calls
    assert isinstance(call, ToolCall) and call.tool == "charge_card"
    assert call.call_id == span.span_id  # no gen_ai.tool.call.id: the span's id
    assert call.arguments == {"order_id": "A1", "amount": 5}
    assert call.result == "not json"  # a result that is not JSON stays text
    assert run.env == "staging"


def test_a_tool_span_named_by_the_operation_alone(tmp_path: Path) -> None:
    attributes = [_attr("gen_ai.operation.name", {"stringValue": "execute_tool"})]
    span = _span(name="execute_tool refund_charge", attributes=attributes)
    (run,) = group_runs(read_spans(_write(tmp_path, json.dumps(_document(span)))))
    assert run.calls[0].tool == "refund_charge"


def test_an_error_status_takes_its_message_or_the_exception_event(tmp_path: Path) -> None:
    event = {
        "name": "exception",
        "timeUnixNano": "1700000000100000000",
        "attributes": [
            _attr("exception.type", {"stringValue": "ValueError"}),
            _attr("exception.message", {"stringValue": "no such order"}),
        ],
    }
    span = _span(status={"code": 2}, events=[event])
    (read,) = read_spans(_write(tmp_path, json.dumps(_document(span))))
    assert read.status is SpanStatus.ERROR and read.error_text == "ValueError: no such order"
    span = _span(status={"code": "STATUS_CODE_ERROR", "message": "boom"})
    (read,) = read_spans(_write(tmp_path, json.dumps(_document(span))))
    assert read.error_text == "boom"


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ('{"resourceSpans": [}', ":1:20", "not OTLP JSON: Expecting value"),
        ('{"resourceSpans": []}\n{"resourceSpans": [1,]}\n', ":2:22", "not OTLP JSON"),
        ("\n\n", "", "is empty"),
        ('{"resourceSpans": {}}', ":1:1", "resourceSpans: expected a list, got an object"),
        ("[1, 2]", ":1:1", "not an OTLP JSON trace document: it has no resourceSpans"),
        ('{"seq": 0, "event": "run_started"}', ":1:1", "it looks like an evidence record"),
        (
            json.dumps(_document(_span(traceId="xyz"))),
            ":1:1",
            "resourceSpans[0].scopeSpans[0].spans[0].traceId: expected a hex id, got 'xyz'",
        ),
        (
            json.dumps(_document(_span(startTimeUnixNano="soon"))),
            ":1:1",
            "spans[0].startTimeUnixNano: expected nanoseconds since the epoch, got 'soon'",
        ),
        (
            json.dumps(_document(_span(status={"code": 7}))),
            ":1:1",
            "spans[0].status.code: expected 0, 1 or 2, got 7",
        ),
        (
            json.dumps(_document(_span(attributes=[{"key": 1, "value": {}}]))),
            ":1:1",
            "attributes[0].key: expected a string, got a number",
        ),
        (
            json.dumps(_document(_span(attributes=[_attr("a", {"intValue": "x"})]))),
            ":1:1",
            "attributes[0].value: intValue 'x' is not an OTLP attribute value",
        ),
    ],
)
def test_bad_input_is_an_input_error_at_its_line(
    tmp_path: Path, text: str, where: str, message: str
) -> None:
    path = _write(tmp_path, text)
    error = _error(path)
    assert str(error.position) == path + where
    assert message in error.message


def test_binary_missing_and_directory_inputs(tmp_path: Path) -> None:
    binary = tmp_path / "junk.json"
    binary.write_bytes(b'{"resourceSpans": []}\n\xff\xfe\x00')
    assert _error(str(binary)).message == "is not UTF-8 text (binary?)"
    assert _error(str(binary)).position.line == 2
    assert _error(str(tmp_path / "gone.json")).message == "no such file"
    assert "is a directory" in _error(str(tmp_path)).message


def test_detection_by_content(tmp_path: Path) -> None:
    assert looks_like_otlp(str(FAILED)) and looks_like_otlp(str(TWO_RUNS))
    evidence = _write(tmp_path, '{"seq":0,"event":"run_started"}\n', "run.jsonl")
    assert not looks_like_otlp(evidence)
    assert not looks_like_otlp(str(tmp_path / "missing.json")) and not looks_like_otlp("-")
    bom = tmp_path / "bom.json"
    bom.write_bytes(b'\xef\xbb\xbf  {\n  "resourceSpans": []}')
    assert looks_like_otlp(str(bom)) and read_spans(str(bom)) == []


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_bytes_read_or_fail_as_an_input_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.json"
    path.write_bytes(b'{"resourceSpans": [{"scopeSpans": [{"spans": [' + data)
    try:
        read_spans(str(path))
    except InputError as error:
        assert error.position.path == str(path)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
))  # fmt: skip
def test_any_json_in_a_span_reads_or_fails_as_an_input_error(tmp_path: Path, value: Any) -> None:
    path = tmp_path / "fuzz.json"
    for span in (_span(attributes=value), _span(status=value), _span(spanId=value), value):
        path.write_text(json.dumps(_document(span)), encoding="utf-8")
        try:
            group_runs(read_spans(str(path)))
        except InputError as error:
            assert error.position.line == 1


def test_repeated_call_ids_stay_apart_and_control_characters_go(tmp_path: Path) -> None:
    def call(span_id: str, start: int, call_id: str) -> dict[str, Any]:
        attributes = [
            _attr("gen_ai.tool.name", {"stringValue": "charge\ncard"}),
            _attr("gen_ai.tool.call.id", {"stringValue": call_id}),
            _attr("gen_ai.agent.name", {"stringValue": "agent\r1"}),
        ]
        return _span(spanId=span_id, startTimeUnixNano=str(start), attributes=attributes)

    spans = [call("01" * 8, 1, "call_1"), call("02" * 8, 2, "call_1"), call("03" * 8, 3, "c\t1")]
    (run,) = group_runs(read_spans(_write(tmp_path, json.dumps(_document(*spans)))))
    assert [c.call_id for c in run.calls] == ["call_1", "call_1#2", "c?1"]
    assert {c.tool for c in run.calls} == {"charge?card"} and run.agent == "agent?1"
