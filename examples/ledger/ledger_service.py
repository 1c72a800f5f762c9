"""A tiny payments ledger to rehearse rollbacks against: ``--executor http`` in two commands.

Standard library only. Run it with ``python examples/ledger/ledger_service.py`` (port 8787)
and point ``LEDGER_URL`` at it. It keeps everything in memory.

Endpoints (JSON in, JSON out):

``POST /charges`` ``{"order_id": "A1", "amount": 1200}``
    Records a charge, answers 201 ``{"charge_id", "order_id", "amount"}``.
``POST /refunds`` ``{"order_id": "A1", "amount": 1200}``
    Refunds what is left of the order's charges (at most ``amount`` when given), answers
    200 ``{"refund_id", "order_id", "amount", "applied": true}``; an order with nothing
    left to refund answers 200 ``{"applied": false, "amount": 0}``.
``POST /charges/{charge_id}/refund`` ``{"amount": 500}`` (body optional)
    Refunds what is left of that one charge (at most ``amount`` when given), answers
    200 ``{"refund_id", "charge_id", "order_id", "amount", "applied": true}``; a charge
    with nothing left to refund answers 200 ``{"charge_id", "amount": 0, "applied": false}``
    and an unknown charge 404. Refunds by order count against the charge and the other
    way round: neither ever refunds more than the order has open.
``GET /orders/{order_id}``
    ``{"order_id", "charges": [charge ids], "charged", "refunded", "open"}``, 404 for an
    order with no entries. Read-only; needs no key.
``GET /balance``
    ``{"charged", "refunded", "balance", "charges", "refunds", "open_orders",
    "refunds_by_charge"}``; the ledger is balanced when ``balance`` is 0.
    ``refunds_by_charge`` counts the refunds by id of every charge (0 when none).
``GET /entries``
    Every charge and refund in order (a refund by id carries its ``charge_id``).
``POST /grants`` ``{"user": "ana@example.com", "role": "premium"}``
    Grants a role (access that comes with a purchase), answers 201
    ``{"grant_id", "user", "role"}``.
``POST /grants/{grant_id}/revoke`` (body optional)
    Revokes that grant, answers 200 ``{"grant_id", "revoked": true, "applied": true}``, or
    ``"applied": false`` when it was revoked already; 404 for an unknown grant.
``GET /grants``
    ``{"grants": [{"grant_id", "user", "role", "revoked", "revokes"}]}``: ``revokes``
    counts the revocations applied, so a test can check each grant was revoked once.

Every POST to /charges, /refunds, /charges/{charge_id}/refund and /grants… needs an
``Idempotency-Key`` header. The same key with the same request replays the first answer
(header ``Idempotent-Replayed: true``) and applies nothing; the same key with a different
request answers 422.

Fault knobs, to rehearse what goes wrong (``POST /admin/faults``, JSON, all optional;
each call replaces every knob set before):

``fail_next`` / ``status`` / ``retry_after``
    The next N charge/refund requests answer ``status`` (default 500) without applying
    anything; ``retry_after`` adds a ``Retry-After`` header (use status 429 for throttling).
    A 3xx ``status`` adds ``Location: /elsewhere``: a redirect the client must not follow
    blindly (the refund did not happen there either).
``apply_then_fail``
    With ``fail_next``: apply the request, then answer the failure anyway (the client
    cannot tell; only the idempotency key saves it from applying twice).
``delay_ms`` / ``slow_next``
    The next N requests (all while ``slow_next`` is absent) are answered ``delay_ms``
    late, after they are applied.
``exit_after``
    The server goes away (stops listening, drops every connection) right after
    answering the next N charge/refund requests: "the server died mid-rollback".
``only``
    What the faults are limited to: an exact path (``/charges``, ``/refunds`` or
    ``/charges/{charge_id}/refund``), ``charge`` (POST /charges) or ``refund`` (both refund
    paths). Anything else is rejected with 400.
``ignore_keys``
    A broken service: it does not deduplicate by ``Idempotency-Key`` (still required),
    never replays and applies every request again.
``double_refunds``
    A broken service: a refund forgets the earlier refunds and applies even when nothing
    is left, as a new entry with a new ``refund_id`` (the whole charge, or the order's
    charges, at most ``amount``). With ``ignore_keys`` a duplicate delivery is applied
    twice and the balance goes negative.

The counters (``fail_next``, ``slow_next``, ``exit_after``) go down as requests use them;
the other knobs stay until the next ``POST /admin/faults`` or ``POST /admin/reset``, which
forgets every entry, key and fault. Query strings work too, e.g.
``POST /admin/faults?fail_next=2&status=503&retry_after=1``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

FAULTED_PATHS = {"/charges": "charge", "/refunds": "refund", "/grants": "grant"}
CHARGE_REFUND = re.compile(r"/charges/([^/]+)/refund")
GRANT_REVOKE = re.compile(r"/grants/([^/]+)/revoke")
ORDER = re.compile(r"/orders/([^/]+)")
ONLY_KINDS = ("charge", "refund")
REDIRECT_TO = "/elsewhere"


def _kind(path: str) -> str | None:
    """``charge`` or ``refund`` for a POST the ledger applies (and faults hit), else None."""
    if path in FAULTED_PATHS:
        return FAULTED_PATHS[path]
    if GRANT_REVOKE.fullmatch(path):
        return "revoke"
    return "refund" if CHARGE_REFUND.fullmatch(path) else None


@dataclass
class Faults:
    """What the next requests suffer; counters go down as requests use them."""

    fail_next: int = 0
    status: int = 500
    retry_after: str | None = None
    apply_then_fail: bool = False
    delay_ms: int = 0
    slow_next: int | None = None
    exit_after: int | None = None
    only: str | None = None
    ignore_keys: bool = False
    double_refunds: bool = False

    def applies_to(self, path: str) -> bool:
        kind = _kind(path)
        return kind is not None and self.only in (None, path, kind)

    def failure(self) -> Answer:
        headers = {"Retry-After": self.retry_after} if self.retry_after else {}
        if 300 <= self.status < 400:
            headers["Location"] = REDIRECT_TO
        return Answer(self.status, {"error": "injected failure"}, headers)


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Stored:
    fingerprint: str
    answer: Answer


class Ledger:
    """The ledger's state; survives a server restart when passed to a new server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.grants: list[dict[str, Any]] = []
        self.keys: dict[str, _Stored] = {}
        self.faults = Faults()
        self.requests = 0

    def set_faults(self, options: dict[str, Any]) -> Faults:
        with self._lock:
            known = set(Faults.__dataclass_fields__)
            unknown = set(options) - known
            if unknown:
                raise ValueError(f"unknown fault option(s): {', '.join(sorted(unknown))}")
            only = options.get("only")
            if only is not None and only not in ONLY_KINDS and _kind(str(only)) is None:
                raise ValueError(
                    "only must be /charges, /refunds, /charges/{charge_id}/refund, "
                    f"charge or refund, not {only!r}"
                )
            self.faults = Faults(
                fail_next=int(options.get("fail_next", 0)),
                status=int(options.get("status", 500)),
                retry_after=None
                if options.get("retry_after") is None
                else str(options["retry_after"]),
                apply_then_fail=_flag(options.get("apply_then_fail", False)),
                delay_ms=int(options.get("delay_ms", 0)),
                slow_next=None if options.get("slow_next") is None else int(options["slow_next"]),
                exit_after=None
                if options.get("exit_after") is None
                else int(options["exit_after"]),
                only=only,
                ignore_keys=_flag(options.get("ignore_keys", False)),
                double_refunds=_flag(options.get("double_refunds", False)),
            )
            return self.faults

    def balance(self) -> dict[str, Any]:
        with self._lock:
            charged = sum(e["amount"] for e in self.entries if e["type"] == "charge")
            refunded = sum(e["amount"] for e in self.entries if e["type"] == "refund")
            open_orders = sorted(o for o, left in self._left().items() if left > 0)
            return {
                "charged": charged,
                "refunded": refunded,
                "balance": charged - refunded,
                "charges": sum(1 for e in self.entries if e["type"] == "charge"),
                "refunds": sum(1 for e in self.entries if e["type"] == "refund"),
                "open_orders": open_orders,
                "refunds_by_charge": self._refunds_by_charge(),
            }

    def entries_now(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self.entries]

    def grants_now(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(grant) for grant in self.grants]

    def order(self, order_id: str) -> dict[str, Any] | None:
        """The order's charges and what is left open; None for an order with no entries."""
        with self._lock:
            mine = [e for e in self.entries if e["order_id"] == order_id]
            if not mine:
                return None
            charged = sum(e["amount"] for e in mine if e["type"] == "charge")
            refunded = sum(e["amount"] for e in mine if e["type"] == "refund")
            return {
                "order_id": order_id,
                "charges": [e["id"] for e in mine if e["type"] == "charge"],
                "charged": charged,
                "refunded": refunded,
                "open": charged - refunded,
            }

    def post(self, path: str, key: str | None, payload: Any) -> tuple[Answer, float, bool]:
        """Answer a charge or refund POST: the answer, a delay, and whether to exit."""
        answer, delay = self._post(path, key, payload)
        with self._lock:
            faults = self.faults
            if faults.exit_after is not None and faults.applies_to(path):
                faults.exit_after -= 1
                return answer, delay, faults.exit_after <= 0
        return answer, delay, False

    def _post(self, path: str, key: str | None, payload: Any) -> tuple[Answer, float]:
        with self._lock:
            self.requests += 1
            if not key:
                return _error(400, "missing Idempotency-Key header"), 0.0
            faults = self.faults
            fingerprint = json.dumps([path, payload], sort_keys=True)
            stored = None if faults.ignore_keys else self.keys.get(key)
            if stored is not None:
                if stored.fingerprint != fingerprint:
                    return _error(422, "Idempotency-Key reused with a different request"), 0.0
                replay = Answer(
                    stored.answer.status,
                    stored.answer.body,
                    {**stored.answer.headers, "Idempotent-Replayed": "true"},
                )
                return replay, 0.0
            delay = 0.0
            if faults.applies_to(path) and faults.delay_ms and faults.slow_next != 0:
                delay = faults.delay_ms / 1000
                if faults.slow_next is not None:
                    faults.slow_next -= 1
            failure: Answer | None = None
            if faults.applies_to(path) and faults.fail_next > 0:
                faults.fail_next -= 1
                failure = faults.failure()
                if not faults.apply_then_fail:
                    return failure, delay
            answer = self._apply(path, payload)
            if answer.status < 500 and not faults.ignore_keys:
                self.keys[key] = _Stored(fingerprint, answer)
            return (failure or answer), delay

    def _left(self) -> dict[str, int]:
        left: dict[str, int] = {}
        for entry in self.entries:
            sign = 1 if entry["type"] == "charge" else -1
            left[entry["order_id"]] = left.get(entry["order_id"], 0) + sign * entry["amount"]
        return left

    def _refunds_by_charge(self) -> dict[str, int]:
        counts = {e["id"]: 0 for e in self.entries if e["type"] == "charge"}
        for entry in self.entries:
            if entry["type"] == "refund" and "charge_id" in entry:
                counts[entry["charge_id"]] += 1
        return counts

    def _apply(self, path: str, payload: Any) -> Answer:
        if not isinstance(payload, dict):
            return _error(400, "expected a JSON object")
        if path == "/grants" or GRANT_REVOKE.fullmatch(path):
            return self._grant(path, payload)
        by_id = CHARGE_REFUND.fullmatch(path)
        if by_id:
            return self._refund_charge(unquote(by_id.group(1)), payload)
        order_id = payload.get("order_id")
        amount = payload.get("amount")
        if not isinstance(order_id, str) or not order_id:
            return _error(400, "order_id must be a non-empty string")
        if path == "/charges":
            if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
                return _error(400, "amount must be a positive integer")
            entry = {
                "type": "charge",
                "id": f"ch_{len(self.entries) + 1}",
                "order_id": order_id,
                "amount": amount,
            }
            self.entries.append(entry)
            return Answer(201, {"charge_id": entry["id"], "order_id": order_id, "amount": amount})
        if amount is not None and (not isinstance(amount, int) or amount <= 0):
            return _error(400, "amount must be a positive integer when given")
        if self.faults.double_refunds:  # forgets the refunds: "nothing left" never stops it
            left = sum(
                e["amount"]
                for e in self.entries
                if e["type"] == "charge" and e["order_id"] == order_id
            )
        else:
            left = self._left().get(order_id, 0)
        refund = left if amount is None else min(left, amount)
        if refund <= 0:
            return Answer(200, {"order_id": order_id, "amount": 0, "applied": False})
        entry = {
            "type": "refund",
            "id": f"re_{len(self.entries) + 1}",
            "order_id": order_id,
            "amount": refund,
        }
        self.entries.append(entry)
        body = {"refund_id": entry["id"], "order_id": order_id, "amount": refund, "applied": True}
        return Answer(200, body)

    def _refund_charge(self, charge_id: str, payload: dict[str, Any]) -> Answer:
        amount = payload.get("amount")
        if amount is not None and (
            not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0
        ):
            return _error(400, "amount must be a positive integer when given")
        charge = next(
            (e for e in self.entries if e["type"] == "charge" and e["id"] == charge_id), None
        )
        if charge is None:
            return _error(404, f"no such charge: {charge_id}")
        order_id = charge["order_id"]
        left = charge["amount"]
        if not self.faults.double_refunds:
            left -= sum(
                e["amount"]
                for e in self.entries
                if e["type"] == "refund" and e.get("charge_id") == charge_id
            )
            left = min(left, self._left().get(order_id, 0))
        refund = left if amount is None else min(left, amount)
        if refund <= 0:
            return Answer(200, {"charge_id": charge_id, "amount": 0, "applied": False})
        entry = {
            "type": "refund",
            "id": f"re_{len(self.entries) + 1}",
            "order_id": order_id,
            "amount": refund,
            "charge_id": charge_id,
        }
        self.entries.append(entry)
        body = {
            "refund_id": entry["id"],
            "charge_id": charge_id,
            "order_id": order_id,
            "amount": refund,
            "applied": True,
        }
        return Answer(200, body)

    def _grant(self, path: str, payload: dict[str, Any]) -> Answer:
        revoke = GRANT_REVOKE.fullmatch(path)
        if revoke is None:
            user, role = payload.get("user"), payload.get("role")
            if not isinstance(user, str) or not user or not isinstance(role, str) or not role:
                return _error(400, "user and role must be non-empty strings")
            grant = {"grant_id": f"gr_{len(self.grants) + 1}", "user": user, "role": role}
            self.grants.append({**grant, "revoked": False, "revokes": 0})
            return Answer(201, grant)
        grant_id = unquote(revoke.group(1))
        found = next((g for g in self.grants if g["grant_id"] == grant_id), None)
        if found is None:
            return _error(404, f"no such grant: {grant_id}")
        applied = not found["revoked"]
        if applied:
            found["revoked"] = True
            found["revokes"] += 1
        return Answer(200, {"grant_id": grant_id, "revoked": True, "applied": applied})


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes", "on")
    return bool(value)


def _error(status: int, message: str) -> Answer:
    return Answer(status, {"error": message})


def _phrase(status: int) -> str:
    """The reason phrase; a status the standard library does not name (say 599) gets none."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


class _Handler(BaseHTTPRequestHandler):
    server: LedgerServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def _gone(self) -> bool:
        """A server that went away answers nothing: drop the connection."""
        if self.server.gone:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
        return self.server.gone

    def do_GET(self) -> None:
        if self._gone():
            return
        path = urlsplit(self.path).path
        ledger = self.server.ledger
        if path == "/balance":
            self._send(Answer(200, ledger.balance()))
        elif path == "/entries":
            self._send(Answer(200, {"entries": ledger.entries_now()}))
        elif path == "/grants":
            self._send(Answer(200, {"grants": ledger.grants_now()}))
        elif path == "/health":
            self._send(Answer(200, {"ok": True}))
        elif order := ORDER.fullmatch(path):
            order_id = unquote(order.group(1))
            found = ledger.order(order_id)
            if found is None:
                self._send(_error(404, f"no such order: {order_id}"))
            else:
                self._send(Answer(200, found))
        else:
            self._send(_error(404, f"no such endpoint: GET {path}"))

    def do_POST(self) -> None:
        if self._gone():
            return
        parts = urlsplit(self.path)
        ledger = self.server.ledger
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if len(raw) < length:  # the client went away mid-request: it was never made
            self.close_connection = True
            return
        try:
            payload: Any = json.loads(raw) if raw else {}
        except ValueError:
            self._send(_error(400, "body is not JSON"))
            return
        if parts.path == "/admin/reset":
            ledger.reset()
            self._send(Answer(200, {"ok": True}))
        elif parts.path == "/admin/faults":
            options = {**dict(parse_qsl(parts.query)), **(payload or {})}
            try:
                faults = ledger.set_faults(options)
            except (TypeError, ValueError) as exc:
                self._send(_error(400, str(exc)))
                return
            self._send(Answer(200, {"faults": faults.__dict__}))
        elif _kind(parts.path) is not None:
            key = self.headers.get("Idempotency-Key")
            answer, delay, exit_now = ledger.post(parts.path, key, payload)
            if delay:
                time.sleep(delay)
            if exit_now:
                self.server.gone = True
                self.close_connection = True
            self._send(answer)
            if exit_now:
                threading.Thread(target=self.server.go_away, daemon=True).start()
        else:
            self._send(_error(404, f"no such endpoint: POST {parts.path}"))

    def _send(self, answer: Answer) -> None:
        data = json.dumps(answer.body).encode()
        try:
            self.send_response(answer.status, _phrase(answer.status))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client gave up or the server went away; the request stays applied


class LedgerServer(ThreadingHTTPServer):
    """The HTTP server; ``ledger`` may be shared with a previous server (a restart)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int] = ("127.0.0.1", 8787),
        *,
        ledger: Ledger | None = None,
        verbose: bool = False,
    ) -> None:
        self.ledger = ledger or Ledger()
        self.verbose = verbose
        self.gone = False
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def go_away(self) -> None:
        """Stop serving (serve_forever returns), close the socket, cut connections."""
        self.gone = True
        self.shutdown()
        self.server_close()
        self.drop_connections()

    def drop_connections(self) -> None:
        """Cut every open connection, as a crashing server would."""
        with self._open_lock:
            open_now = list(self._open)
        for sock in open_now:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class RunningLedger:
    """A ledger served from a background thread (for tests and notebooks)."""

    def __init__(self, server: LedgerServer) -> None:
        self.server = server
        self.url = server.url
        self.ledger = server.ledger
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="ledger", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Go away: stop listening and cut open connections (in-flight answers are lost)."""
        if not self.server.gone:
            self.server.go_away()
        self._thread.join(timeout=5)


def start(host: str = "127.0.0.1", port: int = 0, *, ledger: Ledger | None = None) -> RunningLedger:
    """Start a ledger on ``host:port`` (0 picks a free port) in a background thread."""
    return RunningLedger(LedgerServer((host, port), ledger=ledger))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A payments ledger to rehearse rollbacks.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument("--quiet", action="store_true", help="do not log requests")
    args = parser.parse_args(argv)
    server = LedgerServer((args.host, args.port), verbose=not args.quiet)
    print(f"ledger listening on {server.url} (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
