"""The OTLP fixtures of tests/fixtures/otlp/: what they hold, and that they are reproducible."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

pytest.importorskip("pydantic_ai")
pytest.importorskip("opentelemetry.sdk")

from opentelemetry.proto.trace.v1.trace_pb2 import Status

from tests.traces import generate_traces
from tests.traces.otlp import attributes, documents, parse_request, spans

FIXTURES = generate_traces.FIXTURES
ERROR = Status.StatusCode.STATUS_CODE_ERROR
REPO = Path(__file__).resolve().parents[2]


def _load(name: str) -> list[object]:
    return list(spans([parse_request(doc) for doc in documents(FIXTURES / name)]))


def _tool_spans(name: str) -> list[object]:
    return [s for s in _load(name) if attributes(s).get("gen_ai.operation.name") == "execute_tool"]


def _recorded_versions() -> tuple[str, str]:
    """The pydantic-ai and OpenTelemetry SDK versions the committed fixtures were made with."""
    document = documents(FIXTURES / "failed-run.otlp.jsonl")[0]
    resource_spans = document["resourceSpans"][0]
    sdk = next(
        a["value"]["stringValue"]
        for a in resource_spans["resource"]["attributes"]
        if a["key"] == "telemetry.sdk.version"
    )
    return resource_spans["scopeSpans"][0]["scope"]["version"], sdk


@functools.cache
def _fresh(name: str) -> str:
    """A fresh generation of the fixture ``name`` (made once per test process)."""
    (scenario,) = [s for s in generate_traces.SCENARIOS if s.name == name]
    return generate_traces.render(scenario)


def _skip_unless_recorded_versions() -> None:
    recorded = _recorded_versions()
    installed = (version("pydantic-ai-slim"), version("opentelemetry-sdk"))
    if installed != recorded:
        pytest.skip(f"fixtures made with pydantic-ai/otel-sdk {recorded}, installed {installed}")


@pytest.mark.parametrize("scenario", generate_traces.SCENARIOS, ids=lambda s: s.name)
def test_a_fresh_generation_equals_the_committed_fixture(
    scenario: generate_traces.Scenario,
) -> None:
    _skip_unless_recorded_versions()
    assert _fresh(scenario.name) == (FIXTURES / scenario.name).read_text(encoding="utf-8")


def test_check_names_a_fixture_that_differs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--check`` exits 0 on the committed files and 1, naming the file, on a changed one."""
    _skip_unless_recorded_versions()
    monkeypatch.setattr(generate_traces, "render", lambda scenario: _fresh(scenario.name))
    for scenario in generate_traces.SCENARIOS:
        (tmp_path / scenario.name).write_bytes((FIXTURES / scenario.name).read_bytes())
    said: list[str] = []
    assert generate_traces.main(["--check", "--dir", str(tmp_path)], out=said.append) == 0
    assert said == []
    changed = tmp_path / "unknown-tool.otlp.jsonl"
    changed.write_text(changed.read_text(encoding="utf-8").replace("SPRING10", "SPRING20"))
    assert generate_traces.main(["--check", "--dir", str(tmp_path)], out=said.append) == 1
    assert said == [f"{changed}: differs from a fresh generation"]


def test_the_script_runs_as_a_command(tmp_path: Path) -> None:
    """Run as the README says, it writes the four files, equal to the committed ones."""
    _skip_unless_recorded_versions()
    script = [sys.executable, "tests/traces/generate_traces.py", "--dir", str(tmp_path)]
    first = subprocess.run(script, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        f"{tmp_path / s.name}: written" for s in generate_traces.SCENARIOS
    ]
    for scenario in generate_traces.SCENARIOS:
        written = (tmp_path / scenario.name).read_bytes()
        assert written == (FIXTURES / scenario.name).read_bytes()


def test_the_failed_run_is_one_trace_of_five_tool_calls_the_last_failing() -> None:
    all_spans = _load("failed-run.otlp.jsonl")
    assert len(documents(FIXTURES / "failed-run.otlp.jsonl")) == 3  # batches of 4, 4 and 3
    assert len({s.trace_id for s in all_spans}) == 1
    (root,) = [s for s in all_spans if not s.parent_span_id]
    assert root.name == "invoke_agent ledger-agent"
    assert root.status.code == ERROR
    tools = _tool_spans("failed-run.otlp.jsonl")
    assert [attributes(s)["gen_ai.tool.name"] for s in tools] == [
        "get_balance",
        "charge_card",
        "grant_access",
        "send_email",
        "charge_card",
    ]
    assert [attributes(s)["gen_ai.tool.call.id"] for s in tools] == [
        f"call_{n}" for n in range(1, 6)
    ]
    assert all(s.parent_span_id == root.span_id for s in tools)
    assert [s.status.code == ERROR for s in tools] == [False] * 4 + [True]
    assert [s.start_time_unix_nano for s in tools] == sorted(s.start_time_unix_nano for s in tools)
    charge = attributes(tools[1])
    assert json.loads(charge["gen_ai.tool.call.arguments"]) == {
        "order_id": "o-1001",
        "amount": 1200,
    }
    assert json.loads(charge["gen_ai.tool.call.result"]) == {
        "charge_id": "ch_1",
        "order_id": "o-1001",
        "amount": 1200,
    }
    failed = attributes(tools[4])
    assert "gen_ai.tool.call.result" not in failed
    (event,) = tools[4].events
    assert event.name == "exception"
    assert {a.key: a.value.string_value for a in event.attributes}["exception.message"] == (
        "ledger answered 502 Bad Gateway to POST /charges (o-1002)"
    )


def test_two_runs_are_two_traces_one_failed() -> None:
    all_spans = _load("two-runs.otlp.json")
    roots = [s for s in all_spans if not s.parent_span_id]
    assert len(roots) == 2
    assert len({s.trace_id for s in all_spans}) == 2
    assert [r.status.code == ERROR for r in roots] == [False, True]
    for root in roots:
        children = [s for s in all_spans if s.trace_id == root.trace_id and s != root]
        assert all(s.parent_span_id == root.span_id for s in children)
    refund = [s for s in _tool_spans("two-runs.otlp.json") if s.trace_id == roots[0].trace_id]
    assert [attributes(s)["gen_ai.tool.name"] for s in refund] == [
        "charge_card",
        "refund_charge",
        "get_balance",
    ]
    assert json.loads(attributes(refund[1])["gen_ai.tool.call.arguments"])["charge_id"] == "ch_1"


def test_without_content_capture_no_arguments_or_results_are_recorded() -> None:
    with_content = _tool_spans("failed-run.otlp.jsonl")
    without = _tool_spans("no-content.otlp.jsonl")
    assert [attributes(s)["gen_ai.tool.name"] for s in without] == [
        attributes(s)["gen_ai.tool.name"] for s in with_content
    ]
    assert [s.status.code for s in without] == [s.status.code for s in with_content]
    for span in without:
        assert not {"gen_ai.tool.call.arguments", "gen_ai.tool.call.result"} & set(attributes(span))
    text = (FIXTURES / "no-content.otlp.jsonl").read_text(encoding="utf-8")
    assert "o-1001" not in text
    assert "ana@example.com" not in text


def test_the_unknown_tool_run_succeeds_with_apply_coupon() -> None:
    tools = _tool_spans("unknown-tool.otlp.jsonl")
    assert [attributes(s)["gen_ai.tool.name"] for s in tools] == [
        "get_balance",
        "apply_coupon",
        "charge_card",
    ]
    assert not any(s.status.code == ERROR for s in _load("unknown-tool.otlp.jsonl"))


@pytest.mark.parametrize("name", [s.name for s in generate_traces.SCENARIOS])
def test_fixtures_hold_nothing_of_the_machine_that_made_them(name: str) -> None:
    text = (FIXTURES / name).read_text(encoding="utf-8")
    for leak in ("site-packages", str(REPO), "Traceback", "__main__"):
        assert leak not in text
