"""The HTTP executor against the example ledger service, served on 127.0.0.1 by the test."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from agentundo.errors import UsageError
from agentundo.evidence.redact import REDACTED
from agentundo.model.catalog import Catalog
from agentundo.saga.executor import Call, CallKind, Outcome
from agentundo.saga.http import BODY_LIMIT, HttpExecutor

LEDGER_PATH = Path(__file__).parents[2] / "examples" / "ledger" / "ledger_service.py"


def _load_ledger() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ledger_service", LEDGER_PATH)
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


def _catalog(**overrides: Any) -> Catalog:
    charge_http: dict[str, Any] = {
        "method": "POST",
        "url": "${LEDGER_URL}/charges",
        "headers": {"Authorization": "Bearer ${LEDGER_TOKEN}"},
        "body": {"order_id": "{params.order_id}", "amount": "{params.amount}"},
        "timeout": "2s",
    }
    refund_http: dict[str, Any] = {
        "method": "POST",
        "url": "${LEDGER_URL}/refunds",
        "headers": {"Authorization": "Bearer ${LEDGER_TOKEN}"},
        "body": {"order_id": "{params.order_id}", "amount": "{params.amount}"},
        "timeout": "2s",
    }
    charge_http.update(overrides.get("charge", {}))
    refund_http.update(overrides.get("refund", {}))
    return Catalog.model_validate(
        {
            "version": "v1",
            "environment": [{"name": "LEDGER_URL", "secret": False}, "LEDGER_TOKEN"],
            "topics": {
                "payments.charge": {
                    "side_effect": True,
                    "rollback": "compensatable",
                    "idempotency_key": "{run_id}:{step_id}",
                    "http": charge_http,
                    "compensation": {
                        "topic": "payments.refund",
                        "idempotency_key": "{run_id}:{step_id}:refund",
                        "http": refund_http,
                    },
                },
                "payments.refund": {
                    "side_effect": True,
                    "rollback": "irreversible",
                    "no_rollback_reason": "money returned is not taken back",
                },
            },
        }
    )


TOKEN = "tok-5ecret-value-123"


def _executor(url: str, catalog: Catalog | None = None, **kwargs: Any) -> HttpExecutor:
    env = {"LEDGER_URL": url, "LEDGER_TOKEN": TOKEN}
    return HttpExecutor(catalog or _catalog(), env=env, **kwargs)


def _charge(
    order: str = "A1", amount: int = 1200, *, key: str = "run1:charge", attempt: int = 1
) -> Call:
    return Call(
        kind=CallKind.FORWARD,
        run_id="run1",
        workflow_id="checkout",
        job_id="job1",
        step_id="charge",
        step_index=0,
        topic="payments.charge",
        params={"order_id": order, "amount": amount},
        idempotency_key=key,
        attempt=attempt,
    )


def _refund(order: str = "A1", amount: int = 1200, *, key: str = "run1:charge:refund") -> Call:
    return Call(
        kind=CallKind.COMPENSATION,
        run_id="run1",
        workflow_id="checkout",
        job_id="job1",
        step_id="charge",
        step_index=0,
        topic="payments.refund",
        for_topic="payments.charge",
        params={"order_id": order, "amount": amount},
        idempotency_key=key,
    )


def _balance(url: str) -> dict[str, Any]:
    data = httpx.get(f"{url}/balance", timeout=5).json()
    assert isinstance(data, dict)
    return data


def _faults(url: str, **options: Any) -> None:
    httpx.post(f"{url}/admin/faults", json=options, timeout=5).raise_for_status()


def test_charge_then_refund_balances_the_ledger(ledger: Any) -> None:
    with _executor(ledger.url) as executor:
        charged = executor.execute(_charge())
        assert charged.outcome is Outcome.OK
        assert charged.detail["status"] == 201
        assert charged.detail["method"] == "POST"
        assert charged.detail["url"] == f"{ledger.url}/charges"
        assert isinstance(charged.detail["elapsed_ms"], float)
        assert json.loads(charged.detail["body"])["amount"] == 1200  # the int kept its type
        assert charged.applied is None
        assert _balance(ledger.url)["balance"] == 1200

        refunded = executor.execute(_refund())
        assert refunded.outcome is Outcome.OK
        assert refunded.applied is True
    balance = _balance(ledger.url)
    assert (balance["charged"], balance["refunded"], balance["balance"]) == (1200, 1200, 0)


def test_idempotency_key_header_deduplicates_a_retried_charge(ledger: Any) -> None:
    with _executor(ledger.url) as executor:
        first = executor.execute(_charge())
        again = executor.execute(_charge(attempt=2))
    assert first.outcome is again.outcome is Outcome.OK
    assert again.detail.get("replayed") is True
    assert json.loads(again.detail["body"]) == json.loads(first.detail["body"])
    assert _balance(ledger.url)["charges"] == 1


def test_duplicate_compensation_is_not_applied_twice(ledger: Any) -> None:
    with _executor(ledger.url) as executor:
        executor.execute(_charge(amount=500))
        executor.execute(_charge("B2", 700, key="run1:charge-b"))
        once = executor.execute(_refund(amount=500))
        twice = executor.execute(_refund(amount=500))
    assert once.outcome is twice.outcome is Outcome.OK
    assert twice.detail.get("replayed") is True
    balance = _balance(ledger.url)
    assert (balance["refunds"], balance["refunded"], balance["balance"]) == (1, 500, 700)


def test_compensation_with_nothing_to_undo_is_not_applied(ledger: Any) -> None:
    with _executor(ledger.url) as executor:
        result = executor.execute(_refund("never-charged"))
    assert result.outcome is Outcome.OK
    assert result.applied is False


def test_same_key_different_payload_is_fatal(ledger: Any) -> None:
    with _executor(ledger.url) as executor:
        executor.execute(_charge(amount=100))
        clash = executor.execute(_charge(amount=999))
    assert clash.outcome is Outcome.FATAL
    assert clash.detail["status"] == 422
    assert "HTTP 422" in (clash.error or "")


def test_500_is_transient_and_the_retry_applies_once(ledger: Any) -> None:
    _faults(ledger.url, fail_next=1, status=500)
    with _executor(ledger.url) as executor:
        failed = executor.execute(_charge())
        retried = executor.execute(_charge(attempt=2))
    assert failed.outcome is Outcome.TRANSIENT
    assert failed.detail["status"] == 500
    assert retried.outcome is Outcome.OK
    assert _balance(ledger.url)["charges"] == 1


def test_500_after_applying_is_deduplicated_by_the_key(ledger: Any) -> None:
    _faults(ledger.url, fail_next=1, status=502, apply_then_fail=True)
    with _executor(ledger.url) as executor:
        failed = executor.execute(_charge())
        retried = executor.execute(_charge(attempt=2))
    assert failed.outcome is Outcome.TRANSIENT
    assert retried.outcome is Outcome.OK
    assert retried.detail.get("replayed") is True
    assert _balance(ledger.url)["charged"] == 1200


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [(429, "3", 3.0), (503, "0.5", 0.5), (429, None, None), (503, "not a date", None)],
)
def test_throttling_is_transient_with_retry_after(
    ledger: Any, status: int, retry_after: str | None, expected: float | None
) -> None:
    _faults(ledger.url, fail_next=1, status=status, retry_after=retry_after)
    with _executor(ledger.url) as executor:
        result = executor.execute(_charge())
    assert result.outcome is Outcome.TRANSIENT
    assert result.retry_after_s == expected


def test_retry_after_http_date_is_seconds_from_now(ledger: Any) -> None:
    _faults(ledger.url, fail_next=1, status=429, retry_after="Wed, 21 Oct 2015 07:28:00 GMT")
    with _executor(ledger.url) as executor:
        result = executor.execute(_charge())
    assert result.retry_after_s == 0.0  # a date in the past: retry now


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409])
def test_other_4xx_are_fatal(ledger: Any, status: int) -> None:
    _faults(ledger.url, fail_next=1, status=status)
    with _executor(ledger.url) as executor:
        result = executor.execute(_charge())
    assert result.outcome is Outcome.FATAL
    assert result.retry_after_s is None


def test_a_key_with_a_line_break_is_fatal_and_never_sent(ledger: Any) -> None:
    with _executor(ledger.url) as executor:
        result = executor.execute(_charge(key="run1:charge\r\nX-Injected: 1"))
    assert result.outcome is Outcome.FATAL
    assert result.error is not None
    assert result.error.startswith("the request cannot be sent: Illegal header value")
    assert _balance(ledger.url)["charged"] == 0


def test_slow_answer_times_out_as_transient_and_the_retry_replays(ledger: Any) -> None:
    _faults(ledger.url, delay_ms=1500, slow_next=1)
    catalog = _catalog(charge={"timeout": "200ms"})
    with _executor(ledger.url, catalog) as executor:
        slow = executor.execute(_charge())
        retried = executor.execute(_charge(attempt=2))
    assert slow.outcome is Outcome.TRANSIENT
    assert "timed out" in (slow.error or "")
    assert "status" not in slow.detail
    assert slow.sent  # the ledger applied it before answering: it may have landed
    assert retried.outcome is Outcome.OK
    assert _balance(ledger.url)["charges"] == 1


def test_server_gone_mid_rollback_is_transient_and_recovers_once(ledger: Any) -> None:
    with _executor(ledger.url) as executor:
        executor.execute(_charge())
        state, port = ledger.ledger, ledger.server.server_address[1]
        ledger.stop()
        gone = executor.execute(_refund())
        assert gone.outcome is Outcome.TRANSIENT
        assert "cannot connect" in (gone.error or "")
        back = ledger_service.start(port=port, ledger=state)
        try:
            first = executor.execute(_refund())
            second = executor.execute(_refund())
        finally:
            back.stop()
    assert first.outcome is second.outcome is Outcome.OK
    assert state.balance()["balance"] == 0
    assert state.balance()["refunds"] == 1


def test_secrets_never_reach_evidence(ledger: Any) -> None:
    """A server echoing the token back: the body in detail is redacted."""
    echo = _EchoServer()
    try:
        catalog = _catalog(charge={"url": echo.url + "/charges"})
        with _executor(ledger.url, catalog) as executor:
            assert TOKEN in executor.secrets  # every value read from the environment
            result = executor.execute(_charge())
    finally:
        echo.stop()
    assert result.outcome is Outcome.OK
    assert TOKEN not in json.dumps(result.detail)
    assert REDACTED in result.detail["body"]
    assert echo.seen["Idempotency-Key"] == "run1:charge"
    assert echo.seen["Authorization"] == f"Bearer {TOKEN}"


def test_long_bodies_are_truncated(ledger: Any) -> None:
    echo = _EchoServer(padding=5000)
    try:
        catalog = _catalog(charge={"url": echo.url + "/charges"})
        with _executor(ledger.url, catalog) as executor:
            result = executor.execute(_charge())
    finally:
        echo.stop()
    body = result.detail["body"]
    assert len(body) < BODY_LIMIT + 40
    assert body.endswith("more]")


def test_missing_environment_variable_is_a_usage_error_before_any_call() -> None:
    with pytest.raises(UsageError, match=r"header 'Authorization' uses \$\{LEDGER_TOKEN\}"):
        HttpExecutor(_catalog(), env={"LEDGER_URL": "http://127.0.0.1:1"})


def test_env_default_fills_a_missing_variable(ledger: Any) -> None:
    catalog = _catalog(charge={"url": "${NOT_SET_ANYWHERE:-" + ledger.url + "}/charges"})
    readable = ["NOT_SET_ANYWHERE", "LEDGER_URL", "LEDGER_TOKEN"]
    catalog = catalog.model_copy(update={"environment": readable})
    with _executor(ledger.url, catalog) as executor:
        assert executor.execute(_charge()).outcome is Outcome.OK


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.test/x", "is not an http:// or https:// URL"),
        ("/charges", "is not an http:// or https:// URL"),
        ("http://h/{attempt}", "unknown field {attempt}"),
        ("http://h/{params.x!r}", "invalid field"),
    ],
)
def test_bad_urls_are_usage_errors(url: str, message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        _executor("http://127.0.0.1:1", _catalog(charge={"url": url}))


def test_a_zero_timeout_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="an http timeout of 0 would fail every call"):
        _executor("http://127.0.0.1:1", _catalog(charge={"timeout": "0s"}))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"a": "x{oops"}, "body template 'x{oops' is malformed: expected '}' before end"),
        ("}", "body template '}' is malformed: Single '}' encountered"),
        ({"a": ["{params.p"]}, "body template '{params.p' is malformed"),
        ({"a": "{attempt}"}, "body template uses unknown field {attempt}"),
    ],
)
def test_bad_body_templates_are_usage_errors_before_any_call(body: Any, message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        _executor("http://127.0.0.1:1", _catalog(charge={"body": body}))


def test_url_fields_are_percent_encoded(ledger: Any) -> None:
    echo = _EchoServer()
    try:
        catalog = _catalog(charge={"url": echo.url + "/orders/{params.order_id}/charge"})
        with _executor(ledger.url, catalog) as executor:
            executor.execute(_charge("a/b c"))
    finally:
        echo.stop()
    assert echo.seen["path"] == "/orders/a%2Fb%20c/charge"


def test_missing_template_param_is_fatal_without_a_call(ledger: Any) -> None:
    call = Call(
        kind=CallKind.FORWARD,
        run_id="r",
        workflow_id="w",
        job_id="j",
        step_id="s",
        step_index=0,
        topic="payments.charge",
        params={"order_id": "A1"},
        idempotency_key="k",
    )
    with _executor(ledger.url) as executor:
        result = executor.execute(call)
    assert result.outcome is Outcome.FATAL
    assert "{params.amount}" in (result.error or "")
    assert ledger.ledger.requests == 0


def test_topic_without_http_is_fatal(ledger: Any) -> None:
    catalog = Catalog.model_validate({"version": "v1", "topics": {"x.y": {"side_effect": False}}})
    with HttpExecutor(catalog, env={}) as executor:
        result = executor.execute(dataclasses.replace(_charge(), topic="x.y"))
    assert result.outcome is Outcome.FATAL
    assert "declares no http endpoint" in (result.error or "")


def test_tls_failure_is_fatal() -> None:
    """A plain-HTTP server spoken to over https: the TLS handshake fails."""
    echo = _EchoServer()
    try:
        url = echo.url.replace("http://", "https://")
        catalog = _catalog(charge={"url": url + "/charges"})
        with _executor(url, catalog) as executor:
            result = executor.execute(_charge())
    finally:
        echo.stop()
    assert result.outcome is Outcome.FATAL
    assert "TLS failure" in (result.error or "")


class _EchoServer:
    """Answers every request with its headers (and optional padding) as JSON."""

    def __init__(self, padding: int = 0) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.seen: dict[str, str] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.seen = {**dict(self.headers.items()), "path": self.path}
                data = json.dumps({"headers": dict(self.headers.items()), "pad": "x" * padding})
                raw = data.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def test_server_dying_during_a_refund_is_transient_and_the_retry_does_not_refund_twice(
    ledger: Any,
) -> None:
    """The refund is applied, then the server dies before answering (the worst case)."""
    with _executor(ledger.url) as executor:
        executor.execute(_charge())
        _faults(ledger.url, delay_ms=2000, only="/refunds")
        state, port = ledger.ledger, ledger.server.server_address[1]
        killer = threading.Timer(0.3, ledger.stop)
        killer.start()
        lost = executor.execute(_refund())
        killer.join(timeout=5)
        assert lost.outcome is Outcome.TRANSIENT
        assert state.balance()["refunds"] == 1  # applied, but the answer was lost
        state.set_faults({})
        back = ledger_service.start(port=port, ledger=state)
        try:
            retried = executor.execute(_refund())
        finally:
            back.stop()
    assert retried.outcome is Outcome.OK
    assert retried.detail.get("replayed") is True
    assert state.balance()["refunds"] == 1
    assert state.balance()["balance"] == 0


def test_check_endpoints_names_every_step_without_http() -> None:
    from agentundo.model.workflow import Workflow
    from agentundo.saga.http import check_endpoints

    catalog = Catalog.model_validate(
        {
            "version": "v1",
            "environment": ["LEDGER_URL", "LEDGER_TOKEN"],
            "topics": {
                **_catalog().model_dump(exclude_none=True)["topics"],
                "email.send": {
                    "side_effect": True,
                    "rollback": "compensatable",
                    "compensation": {"topic": "email.recall"},
                },
                "email.recall": {"side_effect": False},
            },
        }
    )
    workflow = Workflow.model_validate(
        {
            "version": "v1",
            "workflow": "w",
            "env": "e",
            "steps": [
                {"id": "charge", "topic": "payments.charge"},
                {"id": "mail", "topic": "email.send"},
            ],
        }
    )
    executor = _executor("http://127.0.0.1:1", catalog)
    with pytest.raises(UsageError) as caught:
        check_endpoints(executor, workflow, catalog)
    assert str(caught.value) == (
        "--executor http needs an 'http' block for: step 'mail' (topic 'email.send'), "
        "compensation of step 'mail' (topic 'email.recall') (see docs/http-executor.md)"
    )
    executor.close()


class _DripServer:
    """Answers 200 with ``Content-Length: 100000`` and then drips one byte every 0.5 s."""

    def __init__(self) -> None:
        import socket

        self.requested = threading.Event()
        self._closing = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: Any) -> None:
        with conn:
            try:
                conn.recv(65536)
                self.requested.set()
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                while not self._closing.wait(0.5):
                    conn.sendall(b"x")
            except OSError:
                pass

    def stop(self) -> None:
        self._closing.set()
        self._listener.close()
        self._thread.join(timeout=5)


@pytest.fixture
def drip() -> Iterator[_DripServer]:
    server = _DripServer()
    yield server
    server.stop()


def test_a_dripping_body_times_out_within_the_total_timeout(drip: _DripServer) -> None:
    """The timeout bounds the whole call, not each read: 1 byte per 0.5 s never resets it."""
    import time

    catalog = _catalog(charge={"timeout": "1s"})
    with _executor(drip.url, catalog) as executor:
        started = time.monotonic()
        result = executor.execute(_charge())
        took = time.monotonic() - started
    assert result.outcome is Outcome.TRANSIENT
    assert "timed out" in (result.error or "")
    assert "status" not in result.detail
    assert 0.9 <= took < 1.6


def test_a_stop_request_abandons_a_call_in_flight(drip: _DripServer) -> None:
    import time

    stop = threading.Event()
    catalog = _catalog(charge={"timeout": "10s"})
    with _executor(drip.url, catalog, stop=stop) as executor:
        threading.Thread(target=lambda: (drip.requested.wait(5), stop.set()), daemon=True).start()
        started = time.monotonic()
        result = executor.execute(_charge())
        took = time.monotonic() - started
    assert result.outcome is Outcome.TRANSIENT
    assert "interrupted" in (result.error or "")
    assert took < 2.0


def test_only_the_first_bytes_of_a_long_body_are_read() -> None:
    from agentundo.saga.http import READ_LIMIT

    body = "y" * (READ_LIMIT * 4)
    echo = _EchoServer(padding=len(body))
    try:
        catalog = _catalog(charge={"url": echo.url + "/charges"})
        with _executor(echo.url, catalog) as executor:
            result = executor.execute(_charge())
    finally:
        echo.stop()
    assert result.outcome is Outcome.OK
    more = re.search(r"… \[(\d+) more\]$", result.detail["body"])
    assert more is not None
    assert READ_LIMIT - 2 * BODY_LIMIT < int(more.group(1)) <= READ_LIMIT - BODY_LIMIT


def test_a_compensation_renders_the_forward_answer_in_url_header_and_body() -> None:
    echo = _EchoServer()
    try:
        catalog = _catalog(
            refund={
                "url": "${LEDGER_URL}/charges/{response.charge_id}/refund",
                "headers": {
                    "Authorization": "Bearer ${LEDGER_TOKEN}",
                    "X-Charge": "{response.charge_id}",
                },
                "body": {"charge": "{response.data.id}", "note": "undo {response.charge_id}"},
            }
        )
        refund = dataclasses.replace(_refund(), response={"charge_id": "ch 7", "data": {"id": 42}})
        with _executor(echo.url, catalog) as executor:
            result = executor.execute(refund)
        assert result.outcome is Outcome.OK and result.sent
        assert echo.seen["path"] == "/charges/ch%207/refund"  # percent-encoded in the URL
        assert echo.seen["X-Charge"] == "ch 7"
        missing = dataclasses.replace(_refund(), response={"charge_id": "ch_1"})  # no data.id
        with _executor(echo.url, catalog) as executor:
            failed = executor.execute(missing)
        assert failed.outcome is Outcome.FATAL and not failed.sent
        assert "{response.data.id}" in (failed.error or "")
    finally:
        echo.stop()


def test_response_fields_are_refused_where_no_answer_exists() -> None:
    with pytest.raises(UsageError, match=r"unknown field \{response.charge_id\}"):
        _executor(
            "http://127.0.0.1:1", _catalog(charge={"url": "${LEDGER_URL}/{response.charge_id}"})
        )


def test_a_forward_answer_is_kept_as_a_json_object(ledger: Any) -> None:
    with _executor(ledger.url) as executor:
        result = executor.execute(_charge())
    assert result.response == {"charge_id": "ch_1", "order_id": "A1", "amount": 1200}
    with _executor(ledger.url) as executor:
        replay = executor.execute(_charge())
    assert replay.replayed and replay.response == result.response


def test_a_connection_never_made_was_not_sent() -> None:
    with _executor("http://127.0.0.1:1") as executor:  # nothing listens on port 1
        refused = executor.execute(_charge())
    assert refused.outcome is Outcome.TRANSIENT and refused.sent is False


def test_a_compensation_carries_the_lock_epoch_as_a_fencing_token() -> None:
    echo = _EchoServer()
    try:
        with _executor(echo.url) as executor:
            executor.execute(dataclasses.replace(_refund(), epoch=7, lock_owner="owner:run1"))
            assert echo.seen["Agentundo-Fencing-Token"] == "7"
            executor.execute(_charge())
            assert "Agentundo-Fencing-Token" not in echo.seen  # forward calls hold no lock
    finally:
        echo.stop()
