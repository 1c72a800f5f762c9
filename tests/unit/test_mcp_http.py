"""The streamable HTTP client against a scripted server: SSE-framed answers, batches,
sessions, protocol version headers, and redirects (agentundo.catalog.mcp_http)."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from agentundo.catalog.mcp_client import fetch_tools
from agentundo.errors import InputError

TOOLS = [{"name": "list_a"}, {"name": "create_a"}]


@contextlib.contextmanager
def _server(redirect: str | None = None) -> Iterator[tuple[str, list[tuple[str, dict[str, str]]]]]:
    """Answers initialize as an event stream with a session id, tools/list as a JSON batch,
    and records each request (method and headers); ``redirect`` answers POST /old with 307."""
    seen: list[tuple[str, dict[str, str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, kind: str, **headers: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            self.wfile.write(body)

        def do_DELETE(self) -> None:
            seen.append(("DELETE", dict(self.headers)))
            self._send(200, b"", "text/plain")

        def do_POST(self) -> None:
            message = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((message.get("method", ""), dict(self.headers)))
            if self.path == "/old":
                self.send_response(307)
                self.send_header("Location", redirect or "/mcp")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if "id" not in message:
                self._send(202, b"", "text/plain")
            elif message["method"] == "initialize":
                result = {"protocolVersion": "2025-03-26", "capabilities": {}, "serverInfo": {}}
                log = {"jsonrpc": "2.0", "method": "notifications/message", "params": {}}
                events = (
                    ": a comment\n\n"
                    f"event: message\ndata: {json.dumps(log)}\n\n"
                    "event: message\ndata: "
                    + json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result})
                    + "\n\n"
                )
                self._send(200, events.encode(), "text/event-stream", Mcp_Session_Id="s-1")
            else:
                answer = {"jsonrpc": "2.0", "id": message["id"], "result": {"tools": TOOLS}}
                batch = [{"jsonrpc": "2.0", "method": "notifications/progress"}, answer]
                self._send(200, json.dumps(batch).encode(), "application/json; charset=utf-8")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_event_stream_answers_batches_and_the_session() -> None:
    with _server() as (base, seen):
        tools = fetch_tools(f"{base}/mcp", headers={"X-Team": "a"}, timeout_s=5)
    assert tools == TOOLS
    methods = [method for method, _ in seen]
    assert methods == ["initialize", "notifications/initialized", "tools/list", "DELETE"]
    headers = [h for _, h in seen]
    assert "Mcp-Session-Id" not in headers[0]
    assert all(h["Mcp-Session-Id"] == "s-1" for h in headers[1:])
    assert all(h["MCP-Protocol-Version"] == "2025-03-26" for h in headers[1:])
    assert all(h["X-Team"] == "a" for h in headers)
    assert headers[0]["Accept"] == "application/json, text/event-stream"


def test_a_redirect_within_the_origin_is_followed() -> None:
    with _server() as (base, seen):
        assert fetch_tools(f"{base}/old", timeout_s=5) == TOOLS
    assert [method for method, _ in seen[:2]] == ["initialize", "initialize"]  # /old, then /mcp


def test_a_redirect_to_another_origin_is_refused() -> None:
    with (
        _server(redirect="http://localhost:9/mcp") as (base, _seen),
        pytest.raises(InputError) as caught,
    ):
        fetch_tools(f"{base}/old", headers={"Authorization": "Bearer x"}, timeout_s=5)
    assert caught.value.message == (
        "the server redirects to another origin (http://localhost:9/mcp); refused"
    )
