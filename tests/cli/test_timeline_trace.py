"""`agentundo timeline TRACE --catalog C`: agent runs of an OTLP trace as tool-call timelines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import invoke

ROOT = Path(__file__).parents[2]
CATALOG = str(ROOT / "examples" / "ledger" / "catalog.yaml")
POLICY = str(ROOT / "examples" / "ledger" / "policy.yaml")
FIXTURES = ROOT / "tests" / "fixtures" / "otlp"
FAILED = str(FIXTURES / "failed-run.otlp.jsonl")
TWO_RUNS = str(FIXTURES / "two-runs.otlp.json")
UNKNOWN = str(FIXTURES / "unknown-tool.otlp.jsonl")


def _timeline(*args: str) -> Any:
    return invoke("timeline", *args, env={"COLUMNS": "240", "NO_COLOR": "1"})


def _json_rows(*args: str) -> list[dict[str, Any]]:
    done = _timeline(*args, "--catalog", CATALOG, "--format", "json")
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_the_table_shows_each_call_its_topic_class_status_and_effect() -> None:
    done = _timeline(FAILED, "--catalog", CATALOG)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith(
        "agent ledger-agent  trace 1f0cb25e65c45d7a603c1b4abb712fe8  env not in the trace  status failed: "
        "RuntimeError: ledger answered 502 Bad Gateway to POST /charges (o-1002)\n"
    )
    assert "  effects: 2 owed, 0 undone, 1 manual, 0 unknown, 0 kept\n" in out
    rows = {line.split("│")[3].strip(): line for line in out.splitlines() if "│ call_" in line}
    cells = {call: [c.strip() for c in line.split("│")[4:9]] for call, line in rows.items()}
    assert cells == {
        "call_1": ["get_balance", "ledger.balance", "read-only", "ok", "read"],
        "call_2": ["charge_card", "payments.charge", "compensatable", "ok", "owed"],
        "call_3": ["grant_access", "access.grant", "compensatable", "ok", "owed"],
        "call_4": ["send_email", "email.send", "irreversible", "ok", "manual"],
        "call_5": ["charge_card", "payments.charge", "compensatable", "error", "none"],
    }
    assert 'args={"order_id":"o-1001","amount":1200}' in rows["call_2"]
    assert "model call scripted-ledger-agent (65 in, 2 out)" in out  # context rows
    assert "invoke_agent ledger-agent" in out


def test_json_rows_carry_arguments_results_and_effects() -> None:
    rows = _json_rows(FAILED, "--event", "tool_call")
    assert [(r["job_id"], r["tool"], r["topic"], r["effect"]) for r in rows] == [
        ("call_1", "get_balance", "ledger.balance", "read"),
        ("call_2", "charge_card", "payments.charge", "owed"),
        ("call_3", "grant_access", "access.grant", "owed"),
        ("call_4", "send_email", "email.send", "manual"),
        ("call_5", "charge_card", "payments.charge", "none"),
    ]
    charge = rows[1]
    assert charge["arguments"] == {"order_id": "o-1001", "amount": 1200}
    assert charge["result"] == {"charge_id": "ch_1", "order_id": "o-1001", "amount": 1200}
    assert (
        charge["run_id"] == "1f0cb25e65c45d7a603c1b4abb712fe8"
        and charge["rollback"] == "compensatable"
    )
    assert rows[4]["status"] == "error" and rows[4]["result"] is None


def test_filters_work_on_rows_as_on_evidence() -> None:
    assert [r["job_id"] for r in _json_rows(FAILED, "--job", "call_[23]")] == ["call_2", "call_3"]
    assert [r["job_id"] for r in _json_rows(FAILED, "--topic", "payments.*")] == [
        "call_2",
        "call_5",
    ]
    assert {r["event"] for r in _json_rows(FAILED, "--event", "chat")} == {"chat"}
    problems = _json_rows(FAILED, "--only-problems")
    assert [(r["event"], r.get("job_id")) for r in problems] == [
        ("invoke_agent", None), ("tool_call", "call_2"), ("tool_call", "call_3"),
        ("tool_call", "call_4"), ("tool_call", "call_5"),
    ]  # fmt: skip
    late = _json_rows(FAILED, "--since", "+0.015s", "--event", "tool_call")
    assert [r["job_id"] for r in late] == ["call_4", "call_5"]
    runs = _json_rows(TWO_RUNS, "--run", "b896*", "--event", "tool_call")
    assert [(r["job_id"], r["effect"]) for r in runs] == [
        ("call_1", "undone"), ("call_2", "compensation"), ("call_3", "read")
    ]  # fmt: skip


def test_unknown_tools_are_shown_and_warned_about() -> None:
    done = _timeline(UNKNOWN, "--catalog", CATALOG, "--format", "json")
    assert done.returncode == 0
    coupon = [json.loads(line) for line in done.stdout.splitlines() if "apply_coupon" in line]
    assert coupon[0]["effect"] == "unknown" and coupon[0]["topic"] is None
    assert done.stderr == (
        f"{UNKNOWN}:1: warning: run 9d26b0186d237b0959aa54a975102057 call call_2: tool "
        "'apply_coupon' maps to no catalog topic (add it, or an alias)\n"
    )


def test_summary_lists_runs_with_their_owed_counts() -> None:
    done = _timeline(TWO_RUNS, "--catalog", CATALOG, "--summary", "--format", "json")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["run_id"][:8], r["failed"], r["owed"], r["manual"], r["undone"]) for r in rows] == [
        ("b896eac6", False, 0, 0, 1),
        ("031420bb", True, 2, 1, 0),
    ]
    table = _timeline(TWO_RUNS, "--catalog", CATALOG, "--summary")
    assert "Owed" in table.stdout and "031420bb5147e6151c82105955f5a45a" in table.stdout
    problems = _timeline(
        TWO_RUNS, "--catalog", CATALOG, "--summary", "--only-problems", "-f", "json"
    )
    assert [json.loads(line)["run_id"][:8] for line in problems.stdout.splitlines()] == ["031420bb"]


def test_markdown_and_mermaid() -> None:
    markdown = _timeline(FAILED, "--catalog", CATALOG, "--format", "markdown")
    assert markdown.returncode == 0
    assert "### ledger-agent — trace `1f0cb25e65c45d7a603c1b4abb712fe8`" in markdown.stdout
    assert (
        "| call_2 | charge_card | payments.charge | compensatable | ok | owed |" in markdown.stdout
    )
    mermaid = _timeline(FAILED, "--catalog", CATALOG, "--format", "mermaid")
    assert mermaid.stdout.startswith("gantt\n")
    assert "    charge_card call_2 owed :crit, 1790000000008, 1790000000009\n" in mermaid.stdout


def test_limit_and_quiet() -> None:
    limited = _timeline(FAILED, "--catalog", CATALOG, "--limit", "2")
    assert "9 more rows not shown" in limited.stdout
    quiet = _timeline(UNKNOWN, "--catalog", CATALOG, "--quiet")
    assert quiet.stdout == "" and "apply_coupon" in quiet.stderr


def test_after_recover_the_timeline_shows_what_was_undone(tmp_path: Path) -> None:
    done = invoke(
        "recover", "--trace", FAILED, "--catalog", CATALOG, "--policy", POLICY,
        "--evidence", str(tmp_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    rows = _json_rows(FAILED, "--event", "tool_call", "--evidence", str(tmp_path))
    assert [r["effect"] for r in rows] == ["read", "undone", "undone", "manual", "none"]
    assert rows[3]["note"] == "with a human (irreversible), says the recovery"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((FAILED, "--catalog", CATALOG, "--verify"), "--verify does not apply to " + FAILED),
        ((FAILED,), f"{FAILED} is an OTLP trace: give --catalog CATALOG"),
        ((FAILED, "--catalog", CATALOG, "--follow"), "--follow does not apply"),
        ((FAILED, str(ROOT / "README.md"), "--catalog", CATALOG), "show traces and evidence"),
        ((str(ROOT / "README.md"), "--catalog", CATALOG), "--catalog and --evidence apply to"),
        ((FAILED, "--catalog", POLICY), "error"),
    ],
)
def test_usage_and_input_errors_exit_2(args: tuple[str, ...], message: str) -> None:
    done = _timeline(*args)
    assert done.returncode == 2, done.stdout
    assert message in done.stderr and "Traceback" not in done.stderr


def test_a_malformed_trace_line_is_reported_at_its_position(tmp_path: Path) -> None:
    lines = Path(FAILED).read_text(encoding="utf-8").splitlines()
    broken = tmp_path / "broken.otlp.jsonl"
    broken.write_text(lines[0] + "\n" + lines[1][:50] + "\n", encoding="utf-8")
    done = _timeline(str(broken), "--catalog", CATALOG)
    assert done.returncode == 2
    assert done.stderr.startswith(f"{broken}:2:47: error: not OTLP JSON: Unterminated string")


def test_arguments_and_results_are_redacted_as_evidence_is(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        "version: v1\ntopics:\n  vault.login:\n    side_effect: false\n"
        "    secret_params: [pin]\n    aliases: [login]\n",
        encoding="utf-8",
    )
    arguments = {"user": "ana", "password": "hunter22", "pin": "98765"}
    result = {"session": "s-123456", "echo": "pin was 98765", "note": "Bearer abcdefgh12345678"}
    span = {
        "traceId": "ab" * 16,
        "spanId": "cd" * 8,
        "name": "execute_tool login",
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000001000000000",
        "attributes": [
            {"key": "gen_ai.operation.name", "value": {"stringValue": "execute_tool"}},
            {"key": "gen_ai.tool.name", "value": {"stringValue": "login"}},
            {"key": "gen_ai.tool.call.arguments", "value": {"stringValue": json.dumps(arguments)}},
            {"key": "gen_ai.tool.call.result", "value": {"stringValue": json.dumps(result)}},
        ],
    }
    trace = tmp_path / "login.json"
    trace.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}))
    done = _timeline(str(trace), "--catalog", str(catalog), "--format", "json")
    assert done.returncode == 0, done.stderr
    (row,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert row["topic"] == "vault.login"
    assert row["arguments"] == {"user": "ana", "password": "[REDACTED]", "pin": "[REDACTED]"}
    assert row["result"]["session"] == "[REDACTED]"
    assert "98765" not in done.stdout and "hunter22" not in done.stdout
    assert "abcdefgh12345678" not in done.stdout


@pytest.mark.parametrize("width", [80, 120, 200])
@pytest.mark.parametrize("summary", [False, True])
def test_a_trace_fits_the_terminal_with_ids_tools_and_topics_whole(
    width: int, summary: bool
) -> None:
    """The table of a trace follows the layout rule of every agentundo table: no line wider
    than the terminal, and every call id, tool name, topic and trace id on one line."""
    extra = ["--summary"] if summary else []
    done = invoke(
        "timeline", TWO_RUNS, FAILED, "--catalog", CATALOG, *extra,
        env={"COLUMNS": str(width), "NO_COLOR": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(map(len, lines)) <= width
    rows = _json_rows(TWO_RUNS, FAILED, *extra)
    words = {r.get(k) for r in rows for k in ("job_id", "tool", "topic", "run_id")} - {None, ""}
    assert words
    for word in words:
        assert any(word in line for line in lines), (word, done.stdout)
    assert "…" not in done.stdout


@pytest.mark.parametrize("shape", ["arrays", "attribute values"])
def test_a_json_bomb_of_nesting_is_an_input_error(tmp_path: Path, shape: str) -> None:
    """Nesting deeper than Python's recursion limit (in the JSON itself, or in nested
    attribute values that parse) is a clear input error, never a RecursionError."""
    path = tmp_path / "bomb.json"
    if shape == "arrays":
        path.write_text('{"resourceSpans":' + "[" * 100_000 + "]" * 100_000 + "}")
    else:
        inner = '{"stringValue":"x"}'
        for _ in range(700):
            inner = '{"kvlistValue":{"values":[{"key":"k","value":' + inner + "}]}}"
        span = (
            '{"traceId":"' + "0" * 31 + '1","spanId":"' + "0" * 15 + '1","name":"s",'
            '"startTimeUnixNano":"1","endTimeUnixNano":"2",'
            '"attributes":[{"key":"a","value":' + inner + "}]}"
        )
        path.write_text('{"resourceSpans":[{"scopeSpans":[{"spans":[' + span + "]}]}]}")
    for args in (
        ("timeline", path, "--catalog", CATALOG),
        ("recover", "--trace", path, "--catalog", CATALOG, "--policy", POLICY, "--dry-run"),
    ):
        done = invoke(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert "nested too deeply" in done.stderr
        assert "Traceback" not in done.stderr
