"""Ask a live MCP server for its tools over streamable HTTP, with the official ``mcp`` SDK.

The SDK is an optional extra (``pip install 'agentundo[mcp]'``) imported only here, and
only when a URL is given. We use its 1.x line: it runs on httpx<1, which agentundo
already depends on, whereas 2.x moves to httpx2 (a second HTTP stack in the same
process, with its own exception types). Every failure becomes an
:class:`~agentundo.errors.InputError` naming the URL: unreachable servers, bad URLs,
TLS failures, HTTP errors and answers that are not JSON-RPC.
"""

from __future__ import annotations

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

    async def run() -> list[dict[str, Any]]:
        with anyio.fail_after(timeout_s):
            return await _list_tools(url, dict(headers or {}), timeout_s, verify)

    try:
        return anyio.run(run)
    except InputError:
        raise
    except TimeoutError:
        raise _error(url, f"no answer within {timeout_s:g}s") from None
    except (Exception, ExceptionGroup) as exc:  # the SDK raises from a task group
        raise _error(url, _describe(exc, httpx)) from None


async def _list_tools(
    url: str, headers: dict[str, str], timeout_s: float, verify: bool | str
) -> list[dict[str, Any]]:
    import httpx
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp.types import PaginatedRequestParams

    timeout = httpx.Timeout(timeout_s)
    async with (
        httpx.AsyncClient(
            headers=headers, timeout=timeout, verify=verify, follow_redirects=False
        ) as http,
        streamable_http_client(url, http_client=http) as (read, write, _session_id),
        ClientSession(read, write, read_timeout_seconds=timedelta(seconds=timeout_s)) as session,
    ):
        await session.initialize()
        tools: list[dict[str, Any]] = []
        cursor: str | None = None
        for _page in range(MAX_PAGES):
            params = PaginatedRequestParams(cursor=cursor) if cursor else None
            result = await session.list_tools(params=params)
            tools.extend(
                tool.model_dump(mode="json", by_alias=True, exclude_none=True)
                for tool in result.tools
            )
            cursor = result.nextCursor
            if not cursor:
                return tools
        raise _error(url, f"tools/list still had more pages after {MAX_PAGES}")


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
        if isinstance(leaf, ssl.SSLError) or "CERTIFICATE_VERIFY_FAILED" in str(leaf):
            return f"TLS failure: {leaf}"
    for leaf in leaves:
        if isinstance(leaf, httpx.HTTPStatusError):
            status = leaf.response.status_code
            return f"the server answered HTTP {status} (is this an MCP streamable HTTP endpoint?)"
        if isinstance(leaf, httpx.ConnectError):
            return f"cannot connect: {leaf or 'connection refused'}"
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
