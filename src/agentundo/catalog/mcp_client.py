"""Ask a live MCP server for its tools: ``initialize``, then ``tools/list`` page by page.

We speak the few messages this needs ourselves (JSON-RPC 2.0 over stdio, streamable HTTP
or legacy HTTP+SSE) rather than through the ``mcp`` SDK: the SDK's 1.x and 2.x lines
need different HTTP stacks and pin versions that current servers conflict with, while
listing tools is four messages that have not changed since the first protocol revision.
So agentundo works with servers built on any SDK version, and installs none.

Every failure becomes an :class:`~agentundo.errors.InputError` naming the server (its
URL, or the command that runs it): a server that cannot be started or reached, TLS
failures, HTTP errors, answers that are not JSON-RPC, JSON-RPC errors, and no answer
within the deadline. The transports live in ``mcp_stdio.py`` and ``mcp_http.py``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from agentundo.errors import InputError, Position

MAX_PAGES = 100
"""A server that keeps sending cursors is cut off after this many pages."""
DEFAULT_TIMEOUT_S = 15.0
PROTOCOL_VERSION = "2025-11-25"
"""The revision we offer in ``initialize``; a server that speaks an older one answers
with its own, and ``tools/list`` is the same in every revision."""
CLIENT_INFO = {"name": "agentundo", "version": "1"}
MIN_MASKED = 6
"""``--env`` values this long or longer are masked wherever the server echoes them (in
its tools, on its stderr); a shorter one, ``LOG_LEVEL=info``, would mangle words."""
MASK = "***"
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
"""Longest single message read from a server (a tools/list page of thousands of tools
is well below it)."""


class Deadline:
    """The time left of one exchange: every read waits at most this long."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self.end


class McpFailure(Exception):
    """Something a transport could not do; the client adds the server's name."""


class Transport(Protocol):
    """Sends one JSON-RPC message and waits for the answer to it (if it is a request)."""

    def request(self, message: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        """Send a request; return the response with the same ``id``."""
        ...

    def notify(self, message: dict[str, Any], deadline: Deadline) -> None:
        """Send a notification (no answer expected)."""
        ...

    def set_protocol_version(self, version: str) -> None:
        """The revision the server chose (HTTP sends it as a header)."""
        ...


def list_tools(
    transport: Transport, deadline: Deadline, *, max_pages: int = MAX_PAGES
) -> list[dict[str, Any]]:
    """The handshake, then every page of ``tools/list``; the tools as JSON objects."""
    answer = transport.request(
        _request(
            0,
            "initialize",
            {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": CLIENT_INFO,
            },
        ),
        deadline,
    )
    result = _result(answer, "initialize")
    version = result.get("protocolVersion")
    if isinstance(version, str):
        transport.set_protocol_version(version)
    transport.notify({"jsonrpc": "2.0", "method": "notifications/initialized"}, deadline)
    tools: list[dict[str, Any]] = []
    cursor: str | None = None
    for page in range(max_pages):
        params = {"cursor": cursor} if cursor else {}
        result = _result(
            transport.request(_request(page + 1, "tools/list", params), deadline), "tools/list"
        )
        listed = result.get("tools")
        if not isinstance(listed, list):
            raise McpFailure("the tools/list answer has no 'tools' list")
        tools.extend(listed)
        cursor = result.get("nextCursor")
        if cursor is not None and not isinstance(cursor, str):
            raise McpFailure("the tools/list answer's 'nextCursor' is not a string")
        if not cursor:
            return tools
    raise McpFailure(f"tools/list still had more pages after {max_pages}")


def _request(number: int, method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": number, "method": method, "params": params}


def _result(answer: dict[str, Any], method: str) -> dict[str, Any]:
    error = answer.get("error")
    if error is not None:
        if isinstance(error, dict):
            code, message = error.get("code"), error.get("message")
            raise McpFailure(f"the server refused {method}: JSON-RPC error {code}: {message}")
        raise McpFailure(f"the server refused {method} with a malformed JSON-RPC error")
    result = answer.get("result")
    if not isinstance(result, dict):
        raise McpFailure(f"the {method} answer has no 'result' object")
    return result


def check_message(data: Any) -> dict[str, Any]:
    """``data`` as a JSON-RPC 2.0 message, or McpFailure."""
    if not isinstance(data, dict) or data.get("jsonrpc") != "2.0":
        raise McpFailure("not an MCP server: the answer is JSON but not JSON-RPC 2.0")
    return data


def fetch_tools(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    verify: bool | str = True,
    max_pages: int = MAX_PAGES,
) -> list[dict[str, Any]]:
    """The tools of the server at ``url`` (streamable HTTP, or legacy HTTP+SSE)."""
    from agentundo.catalog.mcp_http import check_url, http_tools

    check_url(url)
    deadline = Deadline(timeout_s)
    try:
        return http_tools(
            url, headers=dict(headers or {}), deadline=deadline, verify=verify, max_pages=max_pages
        )
    except McpFailure as exc:
        raise InputError(Position(url), str(exc)) from None


def run_tools(
    command: Sequence[str],
    *,
    shown: str,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_pages: int = MAX_PAGES,
) -> list[dict[str, Any]]:
    """The tools of the stdio server that ``command`` starts; it is stopped afterwards.

    ``shown`` names the server in messages; values of ``env`` never appear in them.
    """
    from agentundo.catalog.mcp_stdio import stdio_tools

    deadline = Deadline(timeout_s)
    try:
        return stdio_tools(
            command, env=dict(env or {}), cwd=cwd, deadline=deadline, max_pages=max_pages
        )
    except McpFailure as exc:
        raise InputError(Position(shown), str(exc)) from None
