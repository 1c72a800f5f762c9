"""MCP over HTTP: streamable HTTP, and the legacy HTTP+SSE transport for older servers.

Streamable HTTP: each message is a POST of JSON to the endpoint, accepting
``application/json`` or ``text/event-stream``; the server may give an
``Mcp-Session-Id`` that every later request repeats, and is sent a DELETE at the end.

Legacy HTTP+SSE (protocol revision 2024-11-05): a GET opens an event stream whose first
``endpoint`` event names the URL to POST messages to; the answers come on the stream.
As the specification advises, a POST ``initialize`` answered 400, 404 or 405 makes us
try a GET for such a stream before giving up.
"""

from __future__ import annotations

import contextlib
import json
import ssl
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from agentundo.catalog.mcp_client import (
    MAX_MESSAGE_BYTES,
    Deadline,
    McpFailure,
    check_message,
    list_tools,
)
from agentundo.errors import UsageError

if TYPE_CHECKING:
    import httpx

FALLBACK_STATUSES = frozenset({400, 404, 405})
"""Answers to POST ``initialize`` after which a legacy SSE endpoint is tried."""


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
            f"bad URL {url!r}: expected http(s)://host[:port]/path of an MCP streamable HTTP "
            "or SSE endpoint"
        )


class _Fallback(McpFailure):
    """POST ``initialize`` was refused in a way that suggests a legacy SSE server."""


def _status_text(status: int) -> str:
    return f"the server answered HTTP {status} (is this an MCP streamable HTTP endpoint?)"


def _events(lines: Iterator[str], deadline: Deadline) -> Iterator[tuple[str, str]]:
    """Server-sent events as (event name, data); comments and ids are skipped."""
    name, size = "message", 0
    data: list[str] = []
    for line in lines:
        if deadline.expired():
            raise McpFailure(f"no answer within {deadline.seconds:g}s")
        if not line:
            if data:
                yield name, "\n".join(data)
            name, data, size = "message", [], 0
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            size += len(value)
            if size > MAX_MESSAGE_BYTES:
                raise McpFailure("the server sent an event longer than 16 MiB")
            data.append(value)
    if data:
        yield name, "\n".join(data)


def _parse(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise McpFailure("not an MCP server: the answer is not JSON") from None
    except RecursionError:
        raise McpFailure(
            "not an MCP server: the answer nests arrays or objects too deeply to read"
        ) from None


def _find(data: Any, wanted: object) -> dict[str, Any] | None:
    """The response with id ``wanted`` in one message or a batch; None when absent."""
    for message in data if isinstance(data, list) else [data]:
        checked = check_message(message)
        if "method" not in checked and checked.get("id") == wanted:
            return checked
    return None


class HttpTransport:
    """Streamable HTTP: one POST per message."""

    def __init__(self, client: httpx.Client, url: str) -> None:
        self.client = client
        self.url = url
        self.session_id: str | None = None
        self.version: str | None = None

    def set_protocol_version(self, version: str) -> None:
        self.version = version

    def _headers(self) -> dict[str, str]:
        headers = {
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
        }
        if self.session_id:
            headers["Mcp-Session-Id"] = self.session_id
        if self.version:
            headers["MCP-Protocol-Version"] = self.version
        return headers

    def notify(self, message: dict[str, Any], deadline: Deadline) -> None:
        response = self.client.post(
            self.url, content=json.dumps(message), headers=self._headers(), timeout=deadline.left()
        )
        if response.status_code >= 400:
            raise McpFailure(_status_text(response.status_code))

    def request(self, message: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        with self.client.stream(
            "POST",
            self.url,
            content=json.dumps(message),
            headers=self._headers(),
            timeout=deadline.left(),
        ) as response:
            status = response.status_code
            if status >= 400:
                failure = _Fallback if message["method"] == "initialize" else McpFailure
                if status not in FALLBACK_STATUSES:
                    failure = McpFailure
                raise failure(_status_text(status))
            if not 200 <= status < 300:
                raise McpFailure(f"the server answered HTTP {status}, not an MCP message")
            self.session_id = response.headers.get("mcp-session-id") or self.session_id
            kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind == "text/event-stream":
                for _name, data in _events(response.iter_lines(), deadline):
                    found = _find(_parse(data), message["id"])
                    if found is not None:
                        return found
                raise McpFailure("the server ended its event stream without answering")
            if kind != "application/json":
                raise McpFailure(f"not an MCP server: the answer is {kind or 'untyped'}, not JSON")
            found = _find(_parse(_body(response)), message["id"])
            if found is None:
                raise McpFailure("the server's JSON-RPC answer is not the response to our request")
            return found

    def close(self) -> None:
        """End the session politely (DELETE); a server that refuses is no concern of ours."""
        if self.session_id:
            with contextlib.suppress(Exception):
                self.client.delete(self.url, headers=self._headers(), timeout=2.0)


def _body(response: httpx.Response) -> bytes:
    data = bytearray()
    for chunk in response.iter_bytes():
        data.extend(chunk)
        if len(data) > MAX_MESSAGE_BYTES:
            raise McpFailure("the server's answer is longer than 16 MiB")
    return bytes(data)


class SseTransport:
    """Legacy HTTP+SSE: answers arrive on a GET event stream, messages are POSTed."""

    def __init__(self, client: httpx.Client, url: str, deadline: Deadline) -> None:
        self.client = client
        self.stack = contextlib.ExitStack()
        response = self.stack.enter_context(
            client.stream(
                "GET", url, headers={"Accept": "text/event-stream"}, timeout=deadline.left()
            )
        )
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if response.status_code != 200 or kind != "text/event-stream":
            self.stack.close()
            raise McpFailure("no SSE stream")
        self.events = _events(response.iter_lines(), deadline)
        name, data = next(self.events, ("", ""))
        if name != "endpoint" or not data.strip():
            self.stack.close()
            raise McpFailure(
                "the SSE stream did not start with an 'endpoint' event (is this an MCP server?)"
            )
        self.endpoint = urljoin(url, data.strip())
        if urlsplit(self.endpoint)[:2] != urlsplit(url)[:2]:
            self.stack.close()
            raise McpFailure(
                f"the SSE endpoint event names another origin ({self.endpoint}); refused"
            )

    def set_protocol_version(self, version: str) -> None:
        pass  # the legacy transport predates the header

    def _post(self, message: dict[str, Any], deadline: Deadline) -> None:
        response = self.client.post(
            self.endpoint,
            content=json.dumps(message),
            headers={"Content-Type": "application/json"},
            timeout=deadline.left(),
        )
        if response.status_code >= 300:
            raise McpFailure(
                f"the SSE server's message endpoint answered HTTP {response.status_code}"
            )

    def notify(self, message: dict[str, Any], deadline: Deadline) -> None:
        self._post(message, deadline)

    def request(self, message: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        self._post(message, deadline)
        for name, data in self.events:
            if name != "message":
                continue
            found = _find(_parse(data), message["id"])
            if found is not None:
                return found
        raise McpFailure("the server ended its SSE stream without answering")

    def close(self) -> None:
        self.stack.close()


def http_tools(
    url: str,
    *,
    headers: dict[str, str],
    deadline: Deadline,
    verify: bool | str,
    max_pages: int,
) -> list[dict[str, Any]]:
    """List the tools over streamable HTTP, or over legacy SSE when that is refused."""
    import httpx

    try:
        with httpx.Client(
            headers=headers,
            verify=verify,
            follow_redirects=True,
            timeout=deadline.left(),
            event_hooks={"request": [_same_origin(url)]},
        ) as client:
            transport = HttpTransport(client, url)
            try:
                return list_tools(transport, deadline, max_pages=max_pages)
            except _Fallback as refused:
                legacy = _legacy(client, url, deadline)
                if legacy is None:
                    raise McpFailure(str(refused)) from None
                try:
                    return list_tools(legacy, deadline, max_pages=max_pages)
                finally:
                    legacy.close()
            finally:
                transport.close()
    except httpx.HTTPError as exc:
        raise McpFailure(_describe(exc, deadline)) from None


def _same_origin(url: str) -> Any:
    """A request hook refusing redirects to another origin: they would get our headers."""
    origin = urlsplit(url)[:2]

    def check(request: httpx.Request) -> None:
        if (request.url.scheme, request.url.netloc.decode("ascii")) != origin:
            raise McpFailure(f"the server redirects to another origin ({request.url}); refused")

    return check


def _legacy(client: httpx.Client, url: str, deadline: Deadline) -> SseTransport | None:
    """A legacy SSE session at ``url``; None when the server offers no event stream there."""
    import httpx

    try:
        return SseTransport(client, url, deadline)
    except McpFailure as exc:
        if str(exc) == "no SSE stream":
            return None
        raise
    except httpx.HTTPError:
        return None


def _describe(exc: BaseException, deadline: Deadline) -> str:
    """One line for an httpx failure."""
    import httpx

    text = str(exc)
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError) or "[SSL" in str(cause):
            return f"TLS failure: {cause}"
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within {deadline.seconds:g}s"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect to the MCP server: {text or 'connection refused'}"
    if isinstance(exc, httpx.TransportError):
        return f"connection failed: {type(exc).__name__}: {text}"
    return f"{type(exc).__name__}: {text}"
