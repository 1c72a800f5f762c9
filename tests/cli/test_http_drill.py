"""Drills of the ledger example with real HTTP calls: the rollback leaves the ledger balanced.

The ledger service (examples/ledger) runs on 127.0.0.1 in a thread started by each test.
The engine is driven through :mod:`agentundo.saga.drills` with an :class:`HttpExecutor`;
the last test runs ``agentundo drill --executor http`` once the CLI has the option.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from agentundo.evidence.writer import EvidenceWriter
from agentundo.model.scenario import Fault, FaultType
from agentundo.saga.clock import Clock, RealClock, VirtualClock
from agentundo.saga.drills import Options, load_drill
from agentundo.saga.engine import drill
from agentundo.saga.faults import FaultPlan
from agentundo.saga.http import HttpExecutor
from agentundo.saga.result import DrillResult
from tests.cli_runner import invoke

EXAMPLE = Path(__file__).parents[2] / "examples" / "ledger"
TOKEN = "ledger-t0ken-never-in-evidence"


def _load_ledger() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ledger_service", EXAMPLE / "ledger_service.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["ledger_service"] = module
    spec.loader.exec_module(module)
    return module


ledger_service = _load_ledger()


@pytest.fixture
def ledger() -> Iterator[Any]:
    running = ledger_service.start()
    yield running
    running.stop()


def _drill(
    url: str,
    tmp_path: Path,
    options: Options,
    *,
    extra: list[Fault] | None = None,
    clock: Clock | None = None,
    workflow: Path = EXAMPLE / "workflow.yaml",
    catalog: Path = EXAMPLE / "catalog.yaml",
    settings: dict[str, Any] | None = None,
) -> tuple[DrillResult, list[dict[str, Any]], str]:
    loaded = load_drill(
        str(workflow),
        str(catalog),
        str(EXAMPLE / "policy.yaml"),
        None,
        options,
    )
    setup = loaded.setup
    if extra:
        setup = replace(setup, plan=FaultPlan.of([*setup.plan.faults, *extra]))
    if settings:
        setup = replace(setup, settings=replace(setup.settings, **settings))
    env = {"LEDGER_URL": url, "LEDGER_TOKEN": TOKEN}
    path = tmp_path / "run.jsonl"
    with (
        HttpExecutor(setup.catalog, env=env) as executor,
        EvidenceWriter(path, secrets=executor.secrets) as writer,
    ):
        result = drill(
            setup,
            run_id="run_test",
            sink=writer.write,
            clock=clock or VirtualClock(time.time()),
            executor=executor,
        )
    text = path.read_text()
    return result, [json.loads(line) for line in text.splitlines()], text


def _balance(url: str) -> dict[str, Any]:
    data = httpx.get(f"{url}/balance", timeout=5).json()
    assert isinstance(data, dict)
    return data


def _events(records: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [r for r in records if r["event"] == name]


def test_third_charge_fails_and_the_rollback_balances_the_ledger(
    ledger: Any, tmp_path: Path
) -> None:
    result, records, text = _drill(
        ledger.url, tmp_path, Options(fail_at=["charge_c"], compensate_failed_step=False)
    )
    balance = _balance(ledger.url)
    assert (balance["charged"], balance["refunded"], balance["balance"]) == (4600, 4600, 0)
    assert balance["open_orders"] == []
    assert result.verdict.value == "recovered"
    succeeded = _events(records, "step_succeeded")
    assert [e["detail"]["status"] for e in succeeded] == [201, 201]
    assert all(isinstance(e["detail"]["elapsed_ms"], float) for e in succeeded)
    refunds = _events(records, "compensation_succeeded")
    assert [e["step_id"] for e in refunds] == ["charge_b", "charge_a"]
    assert all(e["applied"] is True for e in refunds)
    assert TOKEN not in text


def test_a_failed_step_whose_call_never_went_out_is_not_compensated(
    ledger: Any, tmp_path: Path
) -> None:
    result, records, _text = _drill(ledger.url, tmp_path, Options(fail_at=["charge_c"]))
    assert _balance(ledger.url)["balance"] == 0
    applied = {e["step_id"]: e["applied"] for e in _events(records, "compensation_succeeded")}
    assert applied == {"charge_b": True, "charge_a": True}
    (failed,) = _events(records, "step_failed_fatal")
    assert (failed["step_id"], failed["sent"]) == ("charge_c", False)
    assert result.verdict.value == "recovered"


def test_a_forced_compensation_of_a_call_that_never_went_out_is_not_needed(
    ledger: Any, tmp_path: Path
) -> None:
    """The refund names the charge's id, and the charge never reached the ledger: there is
    no id and nothing to refund, and the evidence says so instead of refunding anything."""
    result, records, _text = _drill(
        ledger.url, tmp_path, Options(fail_at=["charge_c"], compensate_failed_step=True)
    )
    balance = _balance(ledger.url)
    assert (balance["charges"], balance["refunds"], balance["balance"]) == (2, 2, 0)
    assert balance["refunds_by_charge"] == {"ch_1": 1, "ch_2": 1}
    applied = {e["step_id"]: e["applied"] for e in _events(records, "compensation_succeeded")}
    assert applied == {"charge_b": True, "charge_a": True}
    (not_needed,) = _events(records, "compensation_not_needed")
    assert not_needed["step_id"] == "charge_c"
    assert "{response.charge_id}" in not_needed["reason"]
    assert "nothing is owed" in not_needed["reason"]
    assert result.verdict.value == "recovered", result.problems


def test_a_partial_fault_lands_the_real_effect_first(ledger: Any, tmp_path: Path) -> None:
    result, records, _text = _drill(ledger.url, tmp_path, Options(partial=["charge_b"]))
    failed = _events(records, "step_failed")
    assert [(e["step_id"], e["detail"]["status"], e["detail"]["injected"]) for e in failed] == [
        ("charge_b", 201, "partial")
    ]
    balance = _balance(ledger.url)
    assert (balance["charged"], balance["refunded"], balance["balance"]) == (4600, 4600, 0)
    applied = {e["step_id"]: e["applied"] for e in _events(records, "compensation_succeeded")}
    assert applied == {"charge_b": True, "charge_a": True}
    assert result.verdict.value == "recovered", result.problems


def test_a_partial_effect_not_compensated_is_left_behind(ledger: Any, tmp_path: Path) -> None:
    """With the failed step's compensation switched off, the drill sees what the ledger
    keeps: the partial charge, left behind."""
    result, _records, _text = _drill(
        ledger.url, tmp_path, Options(partial=["charge_b"], compensate_failed_step=False)
    )
    assert _balance(ledger.url)["balance"] == 3400
    assert result.verdict.value == "failed"
    assert result.problems == [
        "step 'charge_b': effect of payments.charge left behind with no compensation and no "
        "manual follow-up"
    ]


def test_a_partial_fault_does_not_hide_a_real_failure(ledger: Any, tmp_path: Path) -> None:
    """The endpoint answers 404: no effect landed, and the drill says so instead of
    reporting the injected failure as rehearsed."""
    result, records, _text = _drill(
        f"{ledger.url}/no-such-prefix", tmp_path, Options(partial=["charge_a"])
    )
    failed = _events(records, "step_failed")
    assert [(e["step_id"], e["detail"]["status"]) for e in failed] == [("charge_a", 404)]
    assert "injected" not in failed[0]["detail"]
    assert result.verdict.value == "failed"
    assert _balance(ledger.url)["charged"] == 0


def test_refunds_answering_500_are_retried_and_applied_once(ledger: Any, tmp_path: Path) -> None:
    httpx.post(
        f"{ledger.url}/admin/faults",
        json={"fail_next": 2, "status": 500, "only": "refund", "apply_then_fail": True},
        timeout=5,
    ).raise_for_status()
    result, records, _text = _drill(
        ledger.url, tmp_path, Options(fail_at=["charge_c"], compensate_failed_step=False)
    )
    balance = _balance(ledger.url)
    assert (balance["refunds"], balance["balance"]) == (2, 0)
    failed = _events(records, "compensation_failed")
    assert [(e["detail"]["status"], e["transient"]) for e in failed] == [(500, True), (500, True)]
    assert result.verdict.value == "recovered"


def test_throttled_charges_wait_and_succeed(ledger: Any, tmp_path: Path) -> None:
    httpx.post(
        f"{ledger.url}/admin/faults",
        json={"fail_next": 1, "status": 429, "retry_after": "2", "only": "/charges"},
        timeout=5,
    ).raise_for_status()
    _result, records, _text = _drill(
        ledger.url, tmp_path, Options(fail_at=["charge_c"], compensate_failed_step=False)
    )
    failed = _events(records, "step_failed")
    assert failed[0]["detail"]["status"] == 429
    assert _balance(ledger.url)["balance"] == 0


def test_duplicate_compensation_delivery_refunds_once(ledger: Any, tmp_path: Path) -> None:
    _result, _records, _text = _drill(
        ledger.url,
        tmp_path,
        Options(fail_at=["charge_c"], compensate_failed_step=False),
        extra=[Fault(type=FaultType.DUPLICATE_DELIVERY, step="charge_b")],
    )
    balance = _balance(ledger.url)
    assert (balance["refunds"], balance["refunded"], balance["balance"]) == (2, 4600, 0)
    assert len(ledger.ledger.keys) == 4  # 2 charges + 2 refunds; the duplicate was replayed


def test_server_gone_mid_rollback_sends_the_rest_to_manual_follow_up(
    ledger: Any, tmp_path: Path
) -> None:
    """The ledger dies after the first refund: the second cannot be made, and says so."""
    httpx.post(
        f"{ledger.url}/admin/faults", json={"exit_after": 1, "only": "refund"}, timeout=5
    ).raise_for_status()
    result, records, _text = _drill(
        ledger.url, tmp_path, Options(fail_at=["charge_c"], compensate_failed_step=False)
    )
    balance = ledger.ledger.balance()
    assert balance["open_orders"] == ["A-1001"]  # refunded B, could not refund A
    failed = _events(records, "compensation_failed")
    assert failed and all(e["transient"] for e in failed)
    assert {e["step_id"] for e in failed} == {"charge_a"}
    assert [f.step_id for f in result.followups] == ["charge_a"]


def test_drill_cli_with_http_executor(ledger: Any, tmp_path: Path) -> None:
    """`agentundo drill --executor http` end to end (skipped until the CLI has the option)."""
    helptext = invoke("drill", "--help").stdout
    if "--executor" not in helptext:
        pytest.skip("agentundo drill has no --executor option yet")
    env = {"LEDGER_URL": ledger.url, "LEDGER_TOKEN": TOKEN}
    done = invoke(
        "drill", str(EXAMPLE / "workflow.yaml"),
        "--catalog", str(EXAMPLE / "catalog.yaml"),
        "--policy", str(EXAMPLE / "policy.yaml"),
        "--executor", "http", "--fail-at", "charge_c", "--clock", "virtual",
        "--no-compensate-failed-step", "--evidence", str(tmp_path), "--format", "json",
        env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert _balance(ledger.url)["balance"] == 0
    for evidence in tmp_path.glob("*.jsonl"):
        assert TOKEN not in evidence.read_text()


def test_retry_after_is_waited_for(ledger: Any, tmp_path: Path) -> None:
    """A 429 with ``Retry-After: 5`` waits 5 s (virtual), not the 1 s first backoff."""
    httpx.post(
        f"{ledger.url}/admin/faults",
        json={"fail_next": 1, "status": 429, "retry_after": "5", "only": "/charges"},
        timeout=5,
    ).raise_for_status()
    result, records, _text = _drill(ledger.url, tmp_path, Options(fail_at=["charge_c"]))
    assert [r["delay_s"] for r in _events(records, "retry_scheduled")] == [5.0]
    assert result.verdict.value == "recovered"


def test_no_step_starts_after_the_deadline(ledger: Any, tmp_path: Path) -> None:
    """On the real clock a slow first charge uses up the deadline: the second never starts,
    the first is refunded, and the drill fails (it was cut short, not rehearsed)."""
    httpx.post(
        f"{ledger.url}/admin/faults",
        json={"delay_ms": 700, "slow_next": 1, "only": "/charges"},
        timeout=5,
    ).raise_for_status()
    result, records, _text = _drill(
        ledger.url,
        tmp_path,
        Options(deadline="300ms", compensate_failed_step=False),
        clock=RealClock(),
    )
    assert [s.state.value for s in result.steps] == ["succeeded", "FAILED_FATAL", "not_run"]
    assert result.steps[1].attempts == 0
    assert result.steps[1].error == "not started: the drill deadline of 0.3s had passed"
    assert [r["step_id"] for r in _events(records, "step_dispatched")] == ["charge_a"]
    assert result.verdict.value == "failed"
    assert result.problems == [
        "step 'charge_b': not started: the drill deadline of 0.3s had passed; the run was cut short"
    ]
    assert _balance(ledger.url)["balance"] == 0  # charge_a was refunded for real


def test_an_unreachable_endpoint_is_no_rehearsal(tmp_path: Path) -> None:
    """Nothing listens: the first charge gives up, and the drill fails instead of
    calling the rollback of an outage "recovered"."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result, _records, _text = _drill(
        f"http://127.0.0.1:{port}", tmp_path, Options(compensate_failed_step=False)
    )
    assert result.status.value == "FAILED_FATAL"
    assert result.verdict.value == "failed"
    assert result.problems[0].startswith(
        "step 'charge_a': its endpoint was unreachable or kept failing (cannot connect: "
    )
    assert "gave up after 50 retries" in result.problems[0]


def test_sigterm_ends_a_drill_stuck_on_a_dripping_endpoint(tmp_path: Path) -> None:
    """A charge whose answer drips 1 byte every 0.5 s. A first SIGTERM abandons the call
    and starts the rollback, which asks the endpoint again (bounded by its timeout); a
    second SIGTERM ends the drill at once with 130, the charge listed as owed."""
    import signal
    import socket
    import threading

    requested, closing = threading.Event(), threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)

    def drip(conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                requested.set()
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                while not closing.wait(0.5):
                    conn.sendall(b"x")
            except OSError:
                pass

    def serve() -> None:
        while not closing.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=drip, args=(conn,), daemon=True).start()

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    env = {**os.environ, "LEDGER_URL": url, "LEDGER_TOKEN": TOKEN}
    process = subprocess.Popen(
        [
            sys.executable, "-m", "agentundo", "drill", str(EXAMPLE / "workflow.yaml"),
            "--catalog", str(EXAMPLE / "catalog.yaml"),
            "--policy", str(EXAMPLE / "policy.yaml"),
            "--executor", "http", "--clock", "virtual",
            "--evidence", str(tmp_path), "--format", "json",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        assert requested.wait(30), "the drill never called the endpoint"
        time.sleep(0.3)
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=20)
        took = time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        _out, err = process.communicate()
        closing.set()
        listener.close()
        server.join(timeout=5)
    assert code == 130
    assert took < 3.0
    assert b"still owed: charge_a" in err


# -- honest verdicts: the undo path itself, against the ledger's own state ----------------


def _faults(url: str, **knobs: Any) -> None:
    httpx.post(f"{url}/admin/faults", json=knobs, timeout=5).raise_for_status()


def _refund_problems(result: DrillResult) -> list[str]:
    return [p for p in result.problems if "compensation payments.refund" in p]


@pytest.mark.parametrize(
    ("status", "answer"),
    [(404, "HTTP 404 from POST"), (302, "HTTP 302 from POST")],
)
def test_a_refund_the_service_refuses_fails_the_drill_and_names_it(
    ledger: Any, tmp_path: Path, status: int, answer: str
) -> None:
    _faults(ledger.url, fail_next=100, status=status, only="refund")
    result, _records, _text = _drill(ledger.url, tmp_path, Options(fail_at=["charge_c"]))
    balance = _balance(ledger.url)
    assert (balance["charged"], balance["refunded"], balance["balance"]) == (4600, 0, 4600)
    assert result.verdict.value == "failed"
    problems = _refund_problems(result)
    assert [p.split(":")[0] for p in problems] == ["step 'charge_b'", "step 'charge_a'"]
    for problem, charge in zip(problems, ("ch_2", "ch_1"), strict=True):
        assert "compensation payments.refund failed" in problem
        assert f"{answer} {ledger.url}/charges/{charge}/refund" in problem
        assert "the undo path is broken" in problem


def test_refunds_failing_until_the_window_closes_fail_the_drill(
    ledger: Any, tmp_path: Path
) -> None:
    _faults(ledger.url, fail_next=1000, status=500, only="refund")
    result, records, _text = _drill(
        ledger.url,
        tmp_path,
        Options(fail_at=["charge_c"]),
        settings={"rollback_window_s": 6.0, "compensation_max_retries": 50},
    )
    assert _balance(ledger.url)["balance"] == 4600
    timed_out = _events(records, "compensation_timed_out")
    assert [e["step_id"] for e in timed_out] == ["charge_b", "charge_a"]
    assert result.verdict.value == "failed"
    problems = _refund_problems(result)
    assert len(problems) == 2
    assert "was left pending by the rollback window" in problems[0]
    assert f"last answer: HTTP 500 from POST {ledger.url}/charges/ch_2/refund" in problems[0]


def test_the_refund_names_the_charge_the_forward_call_returned(ledger: Any, tmp_path: Path) -> None:
    """Another run's charge of the same order stays: the undo goes by the returned id."""
    httpx.post(
        f"{ledger.url}/charges",
        json={"order_id": "A-1001", "amount": 1200},
        headers={"Idempotency-Key": "someone-else"},
        timeout=5,
    ).raise_for_status()  # ch_1, not this drill's
    result, records, _text = _drill(ledger.url, tmp_path, Options(fail_at=["charge_c"]))
    succeeded = _events(records, "step_succeeded")
    assert [e["response"] for e in succeeded] == [{"charge_id": "ch_2"}, {"charge_id": "ch_3"}]
    urls = [e["detail"]["url"] for e in _events(records, "compensation_succeeded")]
    assert urls == [f"{ledger.url}/charges/ch_3/refund", f"{ledger.url}/charges/ch_2/refund"]
    balance = _balance(ledger.url)
    assert balance["refunds_by_charge"] == {"ch_1": 0, "ch_2": 1, "ch_3": 1}
    assert balance["open_orders"] == ["A-1001"]  # the other run's charge is still there
    assert result.verdict.value == "recovered", result.problems


def test_response_fields_fill_a_compensation_body(ledger: Any, tmp_path: Path) -> None:
    catalog = (EXAMPLE / "catalog.yaml").read_text(encoding="utf-8")
    by_body = catalog.replace('/charges/{response.charge_id}/refund"', '/refunds"').replace(
        '          amount: "{params.amount}"\n        timeout: 5s\n  ledger.balance',
        '          order_id: "{response.order_id}"\n          amount: "{response.amount}"\n'
        "        timeout: 5s\n  ledger.balance",
    )
    assert '/refunds"' in by_body and 'amount: "{response.amount}"' in by_body
    path = tmp_path / "catalog.yaml"
    path.write_text(by_body, encoding="utf-8")
    result, _records, _text = _drill(
        ledger.url, tmp_path, Options(fail_at=["charge_c"]), catalog=path
    )
    refunds = [e for e in ledger.ledger.entries if e["type"] == "refund"]
    assert [(e["order_id"], e["amount"]) for e in refunds] == [("B-2002", 3400), ("A-1001", 1200)]
    assert _balance(ledger.url)["balance"] == 0
    assert result.verdict.value == "recovered", result.problems


def test_a_read_only_first_step_is_read_not_left_behind(ledger: Any, tmp_path: Path) -> None:
    workflow = (
        (EXAMPLE / "workflow.yaml")
        .read_text(encoding="utf-8")
        .replace("steps:\n", "steps:\n  - id: look\n    topic: ledger.balance\n", 1)
    )
    path = tmp_path / "workflow.yaml"
    path.write_text(workflow, encoding="utf-8")
    result, records, _text = _drill(
        ledger.url, tmp_path, Options(fail_at=["charge_c"]), workflow=path
    )
    assert {row.step_id: row.state.value for row in result.ledger}["look"] == "read"
    assert result.summary["read"] == ["look"]
    assert "look" not in [e["step_id"] for e in _events(records, "compensation_dispatched")]
    assert _balance(ledger.url)["balance"] == 0
    assert result.verdict.value == "recovered", result.problems


def test_a_partial_charge_is_refunded_by_its_id_exactly_once(ledger: Any, tmp_path: Path) -> None:
    result, records, _text = _drill(ledger.url, tmp_path, Options(partial=["charge_b"]))
    (failed,) = _events(records, "step_failed_fatal")
    assert (failed["sent"], failed["response"]) == (True, {"charge_id": "ch_2"})
    assert _balance(ledger.url)["refunds_by_charge"] == {"ch_1": 1, "ch_2": 1}
    assert result.verdict.value == "recovered", result.problems


def test_a_duplicate_the_service_applies_again_fails_the_drill(ledger: Any, tmp_path: Path) -> None:
    _faults(ledger.url, ignore_keys=True, double_refunds=True)
    result, records, _text = _drill(
        ledger.url,
        tmp_path,
        Options(fail_at=["charge_c"]),
        extra=[Fault(type=FaultType.DUPLICATE_DELIVERY, step="charge_a")],
    )
    assert _balance(ledger.url)["refunds_by_charge"] == {"ch_1": 2, "ch_2": 1}
    refund_a = next(
        e for e in _events(records, "compensation_succeeded") if e["step_id"] == "charge_a"
    )
    assert refund_a["detail"]["second_applied"] is True
    assert result.verdict.value == "failed"
    assert [p for p in result.problems if "applied twice" in p] == [
        "step 'charge_a': compensation applied twice: 2 times for 1 effect(s) (the service "
        "did not deduplicate it; no idempotency key?)"
    ]


def test_the_cli_exits_1_when_refunds_are_refused(ledger: Any, tmp_path: Path) -> None:
    _faults(ledger.url, fail_next=100, status=404, only="refund")
    env = {"LEDGER_URL": ledger.url, "LEDGER_TOKEN": TOKEN}
    done = invoke(
        "drill", str(EXAMPLE / "workflow.yaml"),
        "--catalog", str(EXAMPLE / "catalog.yaml"),
        "--policy", str(EXAMPLE / "policy.yaml"),
        "--executor", "http", "--fail-at", "charge_c", "--clock", "virtual",
        "--evidence", str(tmp_path),
        env=env,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout
    assert "verdict: failed" in done.stdout
    assert "compensation payments.refund failed" in done.stdout
    assert _balance(ledger.url)["balance"] == 4600


# -- evidence that cannot be written never stops the undo -----------------------------


def _limited(size: int) -> Any:
    """A child process whose files may not grow past ``size`` bytes (a full disk, as far
    as the evidence writer can tell: EFBIG instead of a SIGXFSZ kill)."""
    import resource

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return limit


def test_a_full_disk_still_rolls_back_and_exits_3(ledger: Any, tmp_path: Path) -> None:
    env = {**os.environ, "LEDGER_URL": ledger.url, "LEDGER_TOKEN": TOKEN}
    env.pop("AGENTUNDO_EVIDENCE_KEY", None)
    done = subprocess.run(
        [
            sys.executable, "-m", "agentundo", "drill", str(EXAMPLE / "workflow.yaml"),
            "--catalog", str(EXAMPLE / "catalog.yaml"), "--policy", str(EXAMPLE / "policy.yaml"),
            "--executor", "http", "--clock", "virtual", "--fail-at", "charge_c",
            "--evidence", str(tmp_path), "--lock", "memory",
        ],
        env=env, capture_output=True, text=True, timeout=60, preexec_fn=_limited(4000),
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    assert "evidence incomplete" in done.stderr and "File too large" in done.stderr
    assert "charge_a (payments.charge): undone" in done.stderr  # what the file cannot say
    assert _balance(ledger.url)["balance"] == 0  # the rollback ran regardless
    (evidence,) = tmp_path.glob("*.jsonl")
    assert evidence.stat().st_size <= 4000
    assert all(json.loads(line) for line in evidence.read_text().splitlines())


def test_a_deleted_evidence_file_is_not_silent(ledger: Any, tmp_path: Path) -> None:
    httpx.post(
        f"{ledger.url}/admin/faults", json={"delay_ms": 300, "only": "charge"}, timeout=5
    ).raise_for_status()
    env = {**os.environ, "LEDGER_URL": ledger.url, "LEDGER_TOKEN": TOKEN}
    process = subprocess.Popen(
        [
            sys.executable, "-m", "agentundo", "drill", str(EXAMPLE / "workflow.yaml"),
            "--catalog", str(EXAMPLE / "catalog.yaml"), "--policy", str(EXAMPLE / "policy.yaml"),
            "--executor", "http", "--fail-at", "charge_c", "--evidence", str(tmp_path),
        ],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not list(tmp_path.glob("*.jsonl")):
        time.sleep(0.01)
    (evidence,) = tmp_path.glob("*.jsonl")
    evidence.unlink()
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 3, err
    assert "deleted" in err
    assert _balance(ledger.url)["balance"] == 0
