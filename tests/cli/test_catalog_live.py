"""`agentundo catalog import --url` against real MCP servers built with the official SDK.

The servers run on 127.0.0.1 in a thread (uvicorn), started and stopped by each test.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp")

import uvicorn
from mcp import types
from mcp.server.fastmcp import FastMCP
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.applications import Starlette
from starlette.routing import Mount

from agentundo.catalog.mcp_client import fetch_tools
from agentundo.cli.main import main
from agentundo.errors import InputError
from agentundo.lint.engine import lint_paths

TOKEN = "s3cret-header-value"


def _tickets_server() -> Any:
    """The high-level server, with annotated tools; it also requires a bearer token."""
    server = FastMCP("tickets", log_level="WARNING")

    @server.tool(annotations=types.ToolAnnotations(readOnlyHint=True, openWorldHint=False))
    def search_tickets(query: str) -> str:
        """Search tickets by text."""
        return query

    @server.tool(
        annotations=types.ToolAnnotations(
            destructiveHint=False, idempotentHint=False, openWorldHint=False
        )
    )
    def create_ticket(title: str) -> str:
        """Create a ticket."""
        return title

    @server.tool(annotations=types.ToolAnnotations(destructiveHint=True, openWorldHint=True))
    def purge_tickets(older_than_days: int) -> int:
        """Delete old tickets for good."""
        return older_than_days

    @server.tool()
    def run_macro(name: str) -> str:
        """Run a stored macro (no annotations)."""
        return name

    app = server.streamable_http_app()

    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            if headers.get(b"authorization") != f"Bearer {TOKEN}".encode():
                body = b'{"error": "unauthorized"}'
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await app(scope, receive, send)

    return guarded


PAGED_TOOLS = [
    types.Tool(
        name=f"tool_{i}",
        description=f"Tool number {i}.",
        inputSchema={"type": "object"},
        annotations=types.ToolAnnotations(readOnlyHint=i % 2 == 0),
    )
    for i in range(5)
]


def _paged_server(*, endless: bool = False) -> Any:
    """The low-level server, answering tools/list two tools per page (JSON answers)."""
    server: Server[Any, Any] = Server("paged")

    @server.list_tools()
    async def list_tools(request: types.ListToolsRequest) -> types.ListToolsResult:
        cursor = request.params.cursor if request.params else None
        start = int(cursor or 0)
        nxt = start + 2
        if endless:
            return types.ListToolsResult(tools=PAGED_TOOLS[:1], nextCursor=str(nxt))
        return types.ListToolsResult(
            tools=PAGED_TOOLS[start:nxt], nextCursor=str(nxt) if nxt < len(PAGED_TOOLS) else None
        )

    manager = StreamableHTTPSessionManager(app=server, json_response=True)

    async def handle(scope: Any, receive: Any, send: Any) -> None:
        await manager.handle_request(scope, receive, send)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with manager.run():
            yield

    return Starlette(routes=[Mount("/mcp", app=handle)], lifespan=lifespan)


@contextlib.contextmanager
def _serve(app: Any) -> Iterator[str]:
    """Serve an ASGI app on 127.0.0.1 (a free port) in a thread; yield its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the MCP test server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextlib.contextmanager
def _plain(answer: bytes | None, content_type: str = "application/json") -> Iterator[str]:
    """A stdlib server answering every POST with ``answer`` (None: never answers)."""
    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if answer is None:
                stop.wait(10)
                return
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def do_DELETE(self) -> None:
            self.send_response(405)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_import_from_a_live_server_writes_a_skeleton_that_lint_rejects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "catalog.yaml"
    with _serve(_tickets_server()) as base:
        code = main(
            [
                "catalog", "import", "--url", f"{base}/mcp", "--output", str(out),
                "--header", f"Authorization=Bearer {TOKEN}", "--prefix", "tickets.",
            ]
        )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    text = out.read_text()
    assert TOKEN not in text
    assert "added 4 topic(s)" in err
    result = lint_paths([str(out)], envs=("production",))
    au109 = sorted(f.message.split("'")[1] for f in result.findings if f.code == "AU109")
    assert au109 == ["tickets.create_ticket", "tickets.purge_tickets", "tickets.run_macro"]
    from agentundo.load.files import load_file

    topics = load_file(out).model.topics
    assert topics["tickets.search_tickets"].side_effect is False
    assert topics["tickets.search_tickets"].needs_review is False
    assert (topics["tickets.create_ticket"].rollback, topics["tickets.create_ticket"].risk) == (
        "compensatable",
        "medium",
    )
    assert (topics["tickets.purge_tickets"].rollback, topics["tickets.purge_tickets"].risk) == (
        "irreversible",
        "critical",
    )
    assert topics["tickets.run_macro"].risk == "critical"  # no hints: the MCP defaults


def test_missing_header_is_reported_as_the_http_status(capsys: pytest.CaptureFixture[str]) -> None:
    with _serve(_tickets_server()) as base:
        code = main(["catalog", "import", "--url", f"{base}/mcp", "--timeout", "5"])
    err = capsys.readouterr().err
    assert code == 2
    assert (
        err.strip()
        == f"{base}/mcp: error: the server answered HTTP 401 (is this an MCP streamable HTTP endpoint?)"
    )


def test_pagination_reads_every_page() -> None:
    with _serve(_paged_server()) as base:
        tools = fetch_tools(f"{base}/mcp", timeout_s=10)
    assert [t["name"] for t in tools] == [f"tool_{i}" for i in range(5)]
    assert tools[0]["annotations"] == {"readOnlyHint": True}


def test_endless_pagination_is_cut_off() -> None:
    with (
        _serve(_paged_server(endless=True)) as base,
        pytest.raises(InputError, match="more pages after 3"),
    ):
        fetch_tools(f"{base}/mcp", timeout_s=10, max_pages=3)


def test_wrong_path_is_an_http_404(capsys: pytest.CaptureFixture[str]) -> None:
    with _serve(_paged_server()) as base:
        code = main(["catalog", "import", "--url", f"{base}/nope", "--timeout", "5"])
    assert code == 2
    assert "answered HTTP 404" in capsys.readouterr().err


def test_unreachable_server_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{_free_port()}/mcp"
    code = main(["catalog", "import", "--url", url, "--timeout", "5"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"{url}: error: cannot connect to the MCP server")
    assert len(err.strip().splitlines()) == 1


def test_tls_failure_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with _plain(b"{}") as base:
        url = base.replace("http://", "https://") + "/mcp"
        code = main(["catalog", "import", "--url", url, "--timeout", "5"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{url}: error: TLS failure" in err


@pytest.mark.parametrize(
    ("answer", "content_type", "message"),
    [
        (b"<html>hello</html>", "text/html", "the answer is text/html, not JSON"),
        (b"not json", "application/json", "the answer is not JSON"),
        (b'{"hello": "world"}', "application/json", "the answer is JSON but not JSON-RPC 2.0"),
    ],
)
def test_non_mcp_answers_exit_2_at_once(
    capsys: pytest.CaptureFixture[str], answer: bytes, content_type: str, message: str
) -> None:
    with _plain(answer, content_type) as base:
        started = time.monotonic()
        code = main(["catalog", "import", "--url", f"{base}/mcp", "--timeout", "10"])
        took = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == 2
    assert f"not an MCP server: {message}" in err
    assert took < 5  # no waiting for the timeout


def test_silent_server_times_out(capsys: pytest.CaptureFixture[str]) -> None:
    with _plain(None) as base:
        code = main(["catalog", "import", "--url", f"{base}/mcp", "--timeout", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert "no answer within 1s" in err


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/mcp", "127.0.0.1:8000/mcp", "http:///mcp", "http://host:99999/"]
)
def test_bad_urls_exit_2(capsys: pytest.CaptureFixture[str], url: str) -> None:
    code = main(["catalog", "import", "--url", url])
    assert code == 2
    assert f"agentundo: error: bad URL {url!r}" in capsys.readouterr().err


def test_fetch_returns_plain_json(tmp_path: Path) -> None:
    """What --url reads can be saved and imported again with --from-json."""
    with _serve(_paged_server()) as base:
        tools = fetch_tools(f"{base}/mcp", timeout_s=10)
    saved = tmp_path / "tools.json"
    saved.write_text(json.dumps({"tools": tools}))
    assert (
        main(["catalog", "import", "--from-json", str(saved), "-o", str(tmp_path / "c.yaml")]) == 0
    )


def _notes_server() -> Any:
    """A 1.x SDK server whose tools carry no annotations, served over legacy SSE (/sse)."""
    server = FastMCP("notes", log_level="WARNING")

    @server.tool()
    def star_note(note_id: str) -> str:
        """Star a note."""
        return note_id

    @server.tool()
    def unstar_note(note_id: str) -> str:
        """Unstar a note."""
        return note_id

    return server.sse_app()


def test_a_legacy_sse_server_is_found_at_its_sse_url(capsys: pytest.CaptureFixture[str]) -> None:
    with _serve(_notes_server()) as base:
        code = main(["catalog", "import", "--url", f"{base}/sse", "--timeout", "10"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "added 2 topic(s)" in err
    assert (
        "  star_note:\n    side_effect: true\n    rollback: compensatable\n    risk: high\n"
        '    compensation:\n      topic: unstar_note\n      params:\n        note_id: "{params.note_id}"\n'
        in out
    )


@contextlib.contextmanager
def _sse(first_event: bytes) -> Iterator[str]:
    """A stdlib server: POST is 405, GET opens an event stream that starts with ``first_event``."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(405)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.write(first_event)
            self.wfile.flush()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (
            b"event: endpoint\ndata: http://elsewhere.example/messages\n\n",
            "the SSE endpoint event names another origin (http://elsewhere.example/messages); refused",
        ),
        (
            b"event: message\ndata: {}\n\n",
            "the SSE stream did not start with an 'endpoint' event (is this an MCP server?)",
        ),
    ],
)
def test_a_bad_legacy_sse_stream_exits_2(
    capsys: pytest.CaptureFixture[str], event: bytes, message: str
) -> None:
    with _sse(event) as base:
        code = main(["catalog", "import", "--url", f"{base}/sse", "--timeout", "5"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == f"{base}/sse: error: {message}"


def test_a_1x_sdk_server_over_stdio(tmp_path: Path) -> None:
    """The SDK installed here (1.x) runs tests/fixtures/mcp/servers/sdk_server.py on stdio."""
    import importlib.metadata
    import shlex
    import sys

    assert importlib.metadata.version("mcp").startswith("1.")
    server = Path(__file__).parents[1] / "fixtures" / "mcp" / "servers" / "sdk_server.py"
    command = shlex.join([sys.executable, str(server), "stdio"])
    out = tmp_path / "notes.yaml"
    code = main(["catalog", "import", "--command", command, "-o", str(out), "--timeout", "30"])
    assert code == 0
    from agentundo.load.files import load_file

    topics = load_file(out).model.topics
    assert list(topics) == ["list_notes", "add_note", "remove_note"]
    add = topics["add_note"].compensation
    assert add is not None
    assert (add.topic, add.params) == (
        "remove_note",
        {"folder": "{params.folder}", "title": "{params.title}"},
    )
