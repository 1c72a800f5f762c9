"""`agentundo recover --trace`: undo a failed agent run from its trace, against the real ledger.

The ledger service (examples/ledger) runs on 127.0.0.1, pre-loaded with the effects the
trace says landed (the charge ch_1 of o-1001, the grant gr_1); the assertions are on its
own state: each charge refunded once, each grant revoked once, nothing sent twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.test_http_drill import EXAMPLE, TOKEN, ledger_service
from tests.cli_runner import invoke

CATALOG = str(EXAMPLE / "catalog.yaml")
POLICY = str(EXAMPLE / "policy.yaml")
FIXTURES = Path(__file__).parents[1] / "fixtures" / "otlp"
FAILED = str(FIXTURES / "failed-run.otlp.jsonl")
FAILED_TRACE = "1f0cb25e65c45d7a603c1b4abb712fe8"
TWO_RUNS = str(FIXTURES / "two-runs.otlp.json")


@pytest.fixture
def ledger() -> Iterator[Any]:
    running = ledger_service.start()
    yield running
    running.stop()


def _post(url: str, path: str, body: dict[str, Any], key: str) -> dict[str, Any]:
    answer = httpx.post(f"{url}{path}", json=body, headers={"Idempotency-Key": key}, timeout=5)
    answer.raise_for_status()
    data = answer.json()
    assert isinstance(data, dict)
    return data


def _preload(url: str) -> None:
    """What the failed run left behind: its charge of o-1001 and its grant, as ch_1, gr_1."""
    assert (
        _post(url, "/charges", {"order_id": "o-1001", "amount": 1200}, "agent:1")["charge_id"]
        == "ch_1"
    )
    grant = _post(url, "/grants", {"user": "ana@example.com", "role": "premium"}, "agent:2")
    assert grant["grant_id"] == "gr_1"


def _recover(url: str, evidence: Path, *extra: str, trace: str = FAILED) -> Any:
    return invoke(
        "recover", "--trace", trace, "--catalog", CATALOG, "--policy", POLICY,
        "--evidence", str(evidence), *extra,
        env={"LEDGER_URL": url, "LEDGER_TOKEN": TOKEN, "AGENTUNDO_EVIDENCE_KEY": None},
    )  # fmt: skip


def _state(url: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    balance = httpx.get(f"{url}/balance", timeout=5).json()
    grants = httpx.get(f"{url}/grants", timeout=5).json()["grants"]
    return balance, grants


def test_recover_undoes_the_landed_effects_once_and_again_is_a_no_op(
    ledger: Any, tmp_path: Path
) -> None:
    _preload(ledger.url)
    done = _recover(ledger.url, tmp_path, "--executor", "http", "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(done.stdout)
    assert data["trace_id"] == FAILED_TRACE and data["result"]["verdict"] == "recovered"
    assert data["result"]["compensated"] == ["call_3", "call_2"]  # last landed first
    assert data["result"]["followups"] == [
        {
            "call_id": "call_4",
            "category": "irreversible",
            "reason": "a sent email cannot be recalled",
        }
    ]
    balance, grants = _state(ledger.url)
    assert balance["balance"] == 0 and balance["refunds_by_charge"] == {"ch_1": 1}
    assert grants == [
        {
            "grant_id": "gr_1",
            "user": "ana@example.com",
            "role": "premium",
            "revoked": True,
            "revokes": 1,
        }
    ]
    keys = set(ledger.ledger.keys)
    assert f"{FAILED_TRACE}:call_2:refund" in keys and f"{FAILED_TRACE}:call_3:revoke" in keys
    evidence = tmp_path / f"trace-{FAILED_TRACE}.jsonl"
    first = json.loads(evidence.read_text(encoding="utf-8").splitlines()[0])
    assert first["event"] == "run_started" and first["source"] == "trace"
    assert first["trace"]["path"] == FAILED and first["trace"]["trace_id"] == FAILED_TRACE
    assert TOKEN not in evidence.read_text(encoding="utf-8")
    verified = invoke("timeline", str(evidence), "--verify", "-q")
    assert verified.returncode == 0, verified.stderr

    size, requests = evidence.stat().st_size, ledger.ledger.requests
    again = _recover(ledger.url, tmp_path, "--executor", "http")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing is owed" in again.stdout and "undone by agentundo recover" in again.stdout
    assert evidence.stat().st_size == size and ledger.ledger.requests == requests
    assert _state(ledger.url)[0]["refunds_by_charge"] == {"ch_1": 1}


def test_dry_run_prints_the_plan_and_calls_locks_writes_nothing(
    ledger: Any, tmp_path: Path
) -> None:
    _preload(ledger.url)
    requests = ledger.ledger.requests
    done = _recover(ledger.url, tmp_path / "ev", "--executor", "http", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:8] == [
        "undo, last landed first:",
        f"  1. call_3 grant_access (access.grant): access.revoke, key {FAILED_TRACE}:call_3:revoke",
        f"  2. call_2 charge_card (payments.charge): payments.refund, key {FAILED_TRACE}:call_2:refund",
        "for a human:",
        "  call_4 send_email (email.send): a sent email cannot be recalled "
        "(mitigation: send a correction to the same recipient)",
        "not compensated (failed, no effect):",
        "  call_5 charge_card (payments.charge): failed: RuntimeError: ledger answered 502 Bad "
        "Gateway to POST /charges (o-1002); no effect, nothing to undo",
    ]
    assert "dry run: nothing was called, locked or written" in done.stdout
    assert not (tmp_path / "ev").exists() and ledger.ledger.requests == requests


def test_a_trace_without_content_names_the_call_and_field_and_still_prints_the_plan(
    ledger: Any, tmp_path: Path
) -> None:
    trace = str(FIXTURES / "no-content.otlp.jsonl")
    for extra in (("--dry-run",), ("--executor", "http")):
        done = _recover(ledger.url, tmp_path, *extra, trace=trace)
        assert done.returncode == 2
        assert "undo, last landed first:" in done.stdout and "1. call_3 grant_access" in done.stdout
        assert (
            f"{trace}: error: call call_2 (charge_card): its compensation needs "
            "{response.charge_id}, {params.amount}, which the trace does not hold (content "
            "capture was off"
        ) in done.stderr
        assert (
            "call call_3 (grant_access): its compensation needs {response.grant_id}" in done.stderr
        )
    assert list(tmp_path.iterdir()) == [] and ledger.ledger.requests == 0


def test_several_runs_pick_the_failed_one_or_the_one_named(ledger: Any, tmp_path: Path) -> None:
    done = _recover(ledger.url, tmp_path, "--dry-run", "--format", "json", trace=TWO_RUNS)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["trace_id"] == "031420bb5147e6151c82105955f5a45a"
    done = _recover(ledger.url, tmp_path, "--run", "b896", trace=TWO_RUNS)
    assert done.returncode == 0, done.stderr
    assert "the run did not fail: its effects are kept" in done.stdout
    assert list(tmp_path.iterdir()) == []
    done = _recover(ledger.url, tmp_path, "--run", "ffff", trace=TWO_RUNS)
    assert done.returncode == 2 and "--run ffff matches no run" in done.stderr


def test_an_unknown_tool_in_a_failed_run_is_left_owed_to_a_human(tmp_path: Path) -> None:
    documents = []
    for line in (FIXTURES / "unknown-tool.otlp.jsonl").read_text(encoding="utf-8").splitlines():
        document = json.loads(line)
        for resource in document["resourceSpans"]:
            for scope in resource["scopeSpans"]:
                for span in scope["spans"]:
                    if span["name"].startswith("invoke_agent"):
                        span["status"] = {"code": 2, "message": "boom"}
        documents.append(json.dumps(document))
    failed = tmp_path / "failed-coupon.otlp.jsonl"  # the same run, its agent span an ERROR
    failed.write_text("\n".join(documents) + "\n", encoding="utf-8")
    done = invoke(
        "recover", "--trace", str(failed), "--catalog", CATALOG, "--policy", POLICY,
        "--evidence", str(tmp_path / "ev"),
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "unknown (no catalog topic: a human must judge):" in done.stdout
    assert (
        "follow-up call_2: no_compensation: topic 'apply_coupon' is not in the catalog"
        in done.stdout
    )
    assert "undone call_3" in done.stdout and "still owed: call_2" in done.stdout
    verified = invoke("timeline", str(tmp_path / "ev"), "--verify", "-q")
    assert verified.returncode == 0, verified.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ev.jsonl", "--trace", FAILED), "give an evidence file or --trace, not both"),
        ((), "give the evidence file of the run to recover, or --trace TRACE"),
        (("ev.jsonl", "--run", "x"), "--run only applies with --trace"),
    ],
)
def test_usage_errors(args: tuple[str, ...], message: str) -> None:
    done = invoke("recover", *args, "--catalog", CATALOG, "--policy", POLICY)
    assert done.returncode == 2 and message in done.stderr


def test_a_broken_trace_is_an_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": 5}]}]}]}\n')
    done = invoke("recover", "--trace", str(bad), "--catalog", CATALOG, "--policy", POLICY)
    assert done.returncode == 2
    assert done.stderr.startswith(f"{bad}:1:1: error: resourceSpans[0].scopeSpans[0].spans[0]")
    assert "Traceback" not in done.stderr


def _failing(tmp_path: Path, trace_prefix: str) -> Path:
    """two-runs.otlp.json with the agent span of run ``trace_prefix`` an ERROR."""
    document = json.loads(Path(TWO_RUNS).read_text(encoding="utf-8"))
    for resource in document["resourceSpans"]:
        for scope in resource["scopeSpans"]:
            for span in scope["spans"]:
                if span["traceId"].startswith(trace_prefix) and span["name"].startswith(
                    "invoke_agent"
                ):
                    span["status"] = {"code": 2, "message": "boom"}
    path = tmp_path / "failed-refund.otlp.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_an_effect_the_agent_undid_itself_is_not_undone_again(ledger: Any, tmp_path: Path) -> None:
    trace = str(_failing(tmp_path, "b896"))
    done = _recover(ledger.url, tmp_path / "ev", "--run", "b896", "--executor", "http", trace=trace)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "call_1 charge_card (payments.charge): undone by the agent's call call_2" in done.stdout
    assert "verdict: recovered; still owed: nothing" in done.stdout
    assert ledger.ledger.requests == 0  # nothing to send
    verified = invoke("timeline", str(tmp_path / "ev"), "--verify", "-q")
    assert verified.returncode == 0, verified.stderr


def test_with_an_evidence_key_the_recovery_is_sealed(tmp_path: Path) -> None:
    key = {"AGENTUNDO_EVIDENCE_KEY": "k" * 32}
    done = invoke(
        "recover", "--trace", FAILED, "--catalog", CATALOG, "--policy", POLICY,
        "--evidence", str(tmp_path), env=key,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    again = invoke(
        "recover", "--trace", FAILED, "--catalog", CATALOG, "--policy", POLICY,
        "--evidence", str(tmp_path), env=key,
    )  # fmt: skip
    assert again.returncode == 0 and "nothing is owed" in again.stdout
    verified = invoke("timeline", str(tmp_path), "--verify", "--require-key", "-q", env=key)
    assert verified.returncode == 0, verified.stderr
    unkeyed = invoke(
        "timeline", str(tmp_path), "--verify", "-q", env={"AGENTUNDO_EVIDENCE_KEY": None}
    )
    assert unkeyed.returncode == 1  # a keyed chain checked without its key is not verified


def test_the_grant_endpoints_of_the_ledger(ledger: Any) -> None:
    grant = _post(ledger.url, "/grants", {"user": "bo@example.com", "role": "admin"}, "g:1")
    assert _post(ledger.url, "/grants", {"user": "bo@example.com", "role": "admin"}, "g:1") == grant
    revoke = f"/grants/{grant['grant_id']}/revoke"
    assert _post(ledger.url, revoke, {}, "r:1")["applied"] is True
    assert _post(ledger.url, revoke, {}, "r:2")["applied"] is False  # revoked already
    missing = httpx.post(
        f"{ledger.url}/grants/gr_9/revoke", json={}, headers={"Idempotency-Key": "r:3"}
    )
    assert missing.status_code == 404
    bad = httpx.post(f"{ledger.url}/grants", json={"user": ""}, headers={"Idempotency-Key": "g:2"})
    assert bad.status_code == 400
    assert _state(ledger.url)[1][0]["revokes"] == 1


def test_a_call_id_used_twice_in_a_run_undoes_both_effects(ledger: Any, tmp_path: Path) -> None:
    documents = []
    for line in Path(FAILED).read_text(encoding="utf-8").splitlines():
        document = json.loads(line)
        for resource in document["resourceSpans"]:
            for scope in resource["scopeSpans"]:
                for span in scope["spans"]:
                    for attribute in span["attributes"]:
                        if attribute["value"] == {"stringValue": "call_3"}:
                            attribute["value"] = {"stringValue": "call_2"}  # the grant's id
        documents.append(json.dumps(document))
    trace = tmp_path / "reused-ids.otlp.jsonl"
    trace.write_text("\n".join(documents) + "\n", encoding="utf-8")
    _preload(ledger.url)
    done = _recover(ledger.url, tmp_path / "ev", "--executor", "http", trace=str(trace))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"key {FAILED_TRACE}:call_2#2:revoke" in done.stdout
    balance, grants = _state(ledger.url)
    assert balance["refunds_by_charge"] == {"ch_1": 1} and grants[0]["revokes"] == 1
    verified = invoke("timeline", str(tmp_path / "ev"), "--verify", "-q")
    assert verified.returncode == 0, verified.stderr
