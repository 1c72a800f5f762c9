"""Secrets stay secret: a real echoing HTTP service on 127.0.0.1 sends the bearer token,
a query key and secret params back in every form servers use, and none of them reaches
the evidence or the terminal; a catalog cannot read a variable it does not list, and no
request is made when it tries; proxies are never used for loopback.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest

from tests.cli_runner import invoke
from tests.saga_helpers import write

TOKEN = "tok/en&<x>-Zq81"
KEY = "qk-9F2a/b+c=="
PASSWORD = "pa$$w/rd&<é7>"


class Echo:
    """Answers every request with what it got, in the forms leaky servers use."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                auth = self.headers.get("Authorization", "")
                seen = {"path": self.path, "auth": auth, "body": raw.decode()}
                outer.requests.append(seen)
                token = auth.removeprefix("Bearer ")
                query = unquote(self.path.partition("api_key=")[2])
                echoed = {
                    "raw": f"{token} {query}",
                    "php": json.dumps(token).replace("/", "\\/"),  # PHP's escaping
                    "go": token.replace("&", "\\u0026").replace("<", "\\u003c"),
                    "ascii": json.dumps(token),  # \\u00e9 for é
                    "nested": json.dumps(json.dumps({"t": token, "k": query})),
                    "percent": quote(token, safe=""),
                    "basic": base64.b64encode(f"user:{token}".encode()).decode(),
                    "b64": base64.b64encode(token.encode()).decode(),
                    "body": raw.decode(),
                }
                data = json.dumps(echoed, ensure_ascii=False).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def echo() -> Iterator[Echo]:
    server = Echo()
    yield server
    server.stop()


CATALOG = """
version: v1
environment: [{name: ECHO_URL, secret: false}, ECHO_TOKEN, ECHO_KEY]
topics:
  accounts.create:
    side_effect: true
    rollback: compensatable
    idempotency_key: "{run_id}:{step_id}"
    secret_params: [password]
    http:
      method: POST
      url: "${ECHO_URL}/accounts?api_key=${ECHO_KEY}"
      headers: {Authorization: "Bearer ${ECHO_TOKEN}"}
      body: {user: "{params.user}", password: "{params.password}"}
    compensation:
      topic: accounts.delete
      idempotency_key: "{run_id}:{step_id}:undo"
      http:
        method: POST
        url: "${ECHO_URL}/accounts/delete"
        headers: {Authorization: "Bearer ${ECHO_TOKEN}"}
        body: {user: "{params.user}"}
  accounts.delete:
    side_effect: true
    rollback: irreversible
    no_rollback_reason: a deleted account is gone
"""

WORKFLOW = """
version: v1
workflow: onboard
env: staging
steps:
  - {id: create, topic: accounts.create, params: {user: ada, password: PASSWORD}}
  - {id: create2, topic: accounts.create, params: {user: bob, password: PASSWORD}}
"""

POLICY = """
version: v1
default_decision: allow
rules: []
"""


def _drill(tmp_path: Path, env: dict[str, str], catalog: str = CATALOG) -> Any:
    return invoke(
        "drill",
        str(write(tmp_path, "wf.yaml", WORKFLOW.replace("PASSWORD", json.dumps(PASSWORD)))),
        "--catalog", str(write(tmp_path, "catalog.yaml", catalog)),
        "--policy", str(write(tmp_path, "policy.yaml", POLICY)),
        "--executor", "http", "--clock", "virtual", "--fail-at", "create2",
        "--evidence", str(tmp_path / "ev"), "--lock", "memory",
        env=env,
    )  # fmt: skip


def _forms(secret: str) -> list[str]:
    """What must never appear in evidence: the secret as servers echo it."""
    escaped = json.dumps(secret)[1:-1]
    return [
        secret,
        escaped,
        escaped.replace("/", "\\/"),
        json.dumps(secret, ensure_ascii=True)[1:-1],
        json.dumps(json.dumps(secret))[3:-3],
        quote(secret, safe=""),
        base64.b64encode(secret.encode()).decode().rstrip("="),
    ]


def test_no_echoed_form_of_a_secret_reaches_evidence_or_the_terminal(
    echo: Echo, tmp_path: Path
) -> None:
    env = {"ECHO_URL": echo.url, "ECHO_TOKEN": TOKEN, "ECHO_KEY": KEY}
    done = _drill(tmp_path, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert echo.requests, "the service was called"
    assert echo.requests[0]["auth"] == f"Bearer {TOKEN}"  # the real secret went out
    (evidence,) = (tmp_path / "ev").glob("*.jsonl")
    text = evidence.read_text(encoding="utf-8")
    assert "[REDACTED]" in text
    for secret in (TOKEN, KEY, PASSWORD):
        for form in _forms(secret):
            assert form not in text, (secret, form)
            assert form not in done.stdout + done.stderr, (secret, form)
    basic = base64.b64encode(f"user:{TOKEN}".encode()).decode()
    assert basic[8:-4] not in text  # the token inside Basic auth's base64


def test_a_variable_the_catalog_does_not_list_is_never_read_or_sent(
    echo: Echo, tmp_path: Path
) -> None:
    leaky = CATALOG.replace("Bearer ${ECHO_TOKEN}", "Bearer ${CI_SECRET}", 1)
    env = {"ECHO_URL": echo.url, "ECHO_TOKEN": TOKEN, "ECHO_KEY": KEY, "CI_SECRET": "hunter2-ci"}
    done = _drill(tmp_path, env, leaky)
    assert done.returncode == 2
    assert "${CI_SECRET}" in done.stderr and "environment:" in done.stderr
    assert "hunter2-ci" not in done.stdout + done.stderr
    assert echo.requests == []  # refused before any call


def test_the_evidence_key_is_never_readable_by_a_template(echo: Echo, tmp_path: Path) -> None:
    leaky = CATALOG.replace("Bearer ${ECHO_TOKEN}", "Bearer ${AGENTUNDO_EVIDENCE_KEY}", 1).replace(
        "ECHO_TOKEN, ECHO_KEY]", "ECHO_TOKEN, ECHO_KEY, AGENTUNDO_EVIDENCE_KEY]"
    )
    key = "k" * 40
    env = {
        "ECHO_URL": echo.url,
        "ECHO_TOKEN": TOKEN,
        "ECHO_KEY": KEY,
        "AGENTUNDO_EVIDENCE_KEY": key,
    }
    done = _drill(tmp_path, env, leaky)
    assert done.returncode == 2
    assert "AGENTUNDO_" in done.stderr and key not in done.stdout + done.stderr
    assert echo.requests == []


def test_loopback_never_goes_through_a_proxy(echo: Echo, tmp_path: Path) -> None:
    env = {
        "ECHO_URL": echo.url,
        "ECHO_TOKEN": TOKEN,
        "ECHO_KEY": KEY,
        "HTTP_PROXY": "http://127.0.0.1:9",  # nothing listens there
        "http_proxy": "http://127.0.0.1:9",
    }
    done = _drill(tmp_path, env)
    assert done.returncode == 0, done.stdout + done.stderr
    (evidence,) = (tmp_path / "ev").glob("*.jsonl")
    assert '"proxy"' not in evidence.read_text(encoding="utf-8")
