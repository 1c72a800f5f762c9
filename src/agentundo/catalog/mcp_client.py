"""Ask a live MCP server for its tools over streamable HTTP, with the official ``mcp`` SDK.

The SDK is an optional extra (``pip install 'agentundo[mcp]'``) imported only here, and
only when a URL is given. We use its 1.x line: it runs on httpx<1, which agentundo
already depends on, whereas 2.x moves to httpx2 (a second HTTP stack in the same
process, with its own exception types). Every failure becomes an
:class:`~agentundo.errors.InputError` naming the URL: unreachable servers, bad URLs,
TLS failures, HTTP errors and answers that are not JSON-RPC.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from agentundo.errors import InputError, Position, UsageError

MAX_PAGES = 100
"""A server that keeps sending cursors is cut off after this many pages."""
DEFAULT_TIMEOUT_S = 15.0


def check_url(url: str) -> None:
    """A usable MCP endpoint URL: http(s) with a host; UsageError otherwise."""
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise UsageError(
            f"bad URL {url!r}: it holds a space or control character; percent-encode it"
        )
    parts = urlsplit(url)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise UsageError(
            f"bad URL {url!r}: expected http(s)://host[:port]/path of an MCP streamable HTTP endpoint"
        )


def fetch_tools(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    verify: bool | str = True,
    max_pages: int = MAX_PAGES,
) -> list[dict[str, Any]]:
    """``initialize``, then ``tools/list`` page by page; the tools as JSON objects."""
    check_url(url)
    try:
        import anyio
        import httpx
        import mcp  # noqa: F401
    except ModuleNotFoundError as exc:
        raise UsageError(
            f"importing from a live MCP server needs the mcp SDK ({exc.name} is not installed); "
            "install it with: pip install 'agentundo[mcp]'"
        ) from None

    watch = _Watch()

    async def run() -> list[dict[str, Any]]:
        with anyio.fail_after(timeout_s), anyio.CancelScope() as scope:
            watch.scope = scope
            tools = await _list_tools(url, dict(headers or {}), timeout_s, verify, watch, max_pages)
            if tools is None:
                raise _error(url, f"tools/list still had more pages after {max_pages}")
            return tools
        raise _error(url, watch.problem or "cancelled")

    try:
        return anyio.run(run)
    except InputError:
        raise
    except TimeoutError:
        raise _error(url, watch.problem or f"no answer within {timeout_s:g}s") from None
    except Exception as exc:  # the SDK raises from task groups: ExceptionGroup too
        raise _error(url, watch.problem or _describe(exc, httpx)) from None


class _Watch:
    """Looks at each answer to a POST; stops everything at the first one that is wrong.

    The SDK logs and drops an answer it cannot parse and would wait for its timeout; we
    would rather say at once that the server answered 404, or HTML, or non-JSON-RPC.
    """

    def __init__(self) -> None:
        self.problem: str | None = None
        self.scope: Any = None

    async def __call__(self, response: Any) -> None:
        if response.request.method != "POST" or self.problem is not None:
            return
        problem = await _problem(response)
        if problem is not None:
            self.problem = problem
            if self.scope is not None:
                self.scope.cancel()


async def _problem(response: Any) -> str | None:
    status = response.status_code
    if status >= 400:
        return f"the server answered HTTP {status} (is this an MCP streamable HTTP endpoint?)"
    if status == 202 or not 200 <= status < 300:
        return None
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "text/event-stream":
        return None
    if kind != "application/json":
        return f"not an MCP server: the answer is {kind or 'untyped'}, not JSON"
    await response.aread()  # cached: the SDK reads the same bytes afterwards
    try:
        data = json.loads(response.content)
    except ValueError:
        return "not an MCP server: the answer is not JSON"
    except RecursionError:
        return "not an MCP server: the answer nests arrays or objects too deeply to read"
    messages = data if isinstance(data, list) else [data]
    if not all(isinstance(m, dict) and m.get("jsonrpc") == "2.0" for m in messages):
        return "not an MCP server: the answer is JSON but not JSON-RPC 2.0"
    return None


async def _list_tools(
    url: str,
    headers: dict[str, str],
    timeout_s: float,
    verify: bool | str,
    watch: _Watch,
    max_pages: int,
) -> list[dict[str, Any]] | None:
    """Every tool, or None when the server still had pages after ``max_pages``."""
    import httpx
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp.types import PaginatedRequestParams

    timeout = httpx.Timeout(timeout_s)

    async with (
        httpx.AsyncClient(
            headers=headers,
            timeout=timeout,
            verify=verify,
            follow_redirects=False,
            event_hooks={"response": [watch]},
        ) as http,
        streamable_http_client(url, http_client=http) as (read, write, _session_id),
        ClientSession(read, write, read_timeout_seconds=timedelta(seconds=timeout_s)) as session,
    ):
        await session.initialize()
        tools: list[dict[str, Any]] = []
        cursor: str | None = None
        for _page in range(max_pages):
            params = PaginatedRequestParams(cursor=cursor) if cursor else None
            result = await session.list_tools(params=params)
            tools.extend(
                tool.model_dump(mode="json", by_alias=True, exclude_none=True)
                for tool in result.tools
            )
            cursor = result.nextCursor
            if not cursor:
                return tools
        return None


def _error(url: str, message: str) -> InputError:
    return InputError(Position(url), message)


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    """The exceptions inside (nested) exception groups, and their causes; bounded."""
    stack: list[BaseException] = [exc]
    seen = 0
    while stack and seen < 50:
        seen += 1
        item = stack.pop()
        if isinstance(item, BaseExceptionGroup):
            stack.extend(item.exceptions)
            continue
        yield item
        if item.__cause__ is not None:
            stack.append(item.__cause__)
        elif item.__context__ is not None and not item.__suppress_context__:
            stack.append(item.__context__)


def _describe(exc: BaseException, httpx: Any) -> str:
    """One line for the most telling exception inside ``exc``."""
    leaves = list(_leaves(exc))
    for leaf in leaves:
        if isinstance(leaf, ssl.SSLError) or "[SSL" in str(leaf):
            return f"TLS failure: {leaf}"
    for leaf in leaves:
        if isinstance(leaf, httpx.HTTPStatusError):
            status = leaf.response.status_code
            return f"the server answered HTTP {status} (is this an MCP streamable HTTP endpoint?)"
        if isinstance(leaf, httpx.ConnectError):
            return f"cannot connect to the MCP server: {leaf or 'connection refused'}"
        if isinstance(leaf, httpx.TimeoutException):
            return "timed out"
        if isinstance(leaf, httpx.TransportError):
            return f"connection failed: {type(leaf).__name__}: {leaf}"
    for leaf in leaves:
        name = type(leaf).__name__
        if name in ("ValidationError", "JSONDecodeError") or isinstance(leaf, ValueError):
            return "the answer is not MCP JSON-RPC (not JSON, or not a valid MCP message)"
        if name == "McpError":
            return f"MCP error: {leaf}"
    first = leaves[0] if leaves else exc
    return f"{type(first).__name__}: {first}"
