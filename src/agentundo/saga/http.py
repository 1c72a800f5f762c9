"""The HTTP executor: perform forward steps and compensations against real endpoints.

A catalog topic (or its compensation) declares an ``http`` block. The executor renders
the URL and body templates from the call, sends the call's idempotency key in an
``Idempotency-Key`` header and classifies the answer for the engine:

* 2xx: OK (a compensation answering a JSON object with ``"applied": false`` had
  nothing to undo);
* connection errors, timeouts, 408, 429 and 5xx: TRANSIENT, with ``Retry-After``
  (seconds or an HTTP date) passed on as ``retry_after_s``;
* other statuses, TLS failures and bad URLs: FATAL.

URLs and header values may read the environment as ``${VAR}``; a missing variable, a
URL that is malformed once resolved and a header value HTTP cannot carry are a
:class:`~agentundo.errors.UsageError` when the executor is built, before any call. The
resolved header values are exposed as :attr:`HttpExecutor.secrets` for the evidence
writer, request headers are never put into a result's ``detail``, and credentials in a
URL (``user:password@``) are masked wherever the URL is shown.

A call's timeout bounds the whole call (connect, headers and body), not each read: an
endpoint that drips its body byte by byte times out like one that never answers. The call
runs in a worker thread while the caller waits in short slices, so a stop request (the
``stop`` event, or SIGINT/SIGTERM arriving while a call is in flight on the main thread)
abandons it at once. At most :data:`READ_LIMIT` bytes of a body are read.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from agentundo.errors import UsageError
from agentundo.evidence.redact import redact
from agentundo.model.catalog import Catalog, HttpCall
from agentundo.model.common import Rollback
from agentundo.model.templates import (
    PARAMS_PREFIX,
    TemplatePlace,
    allowed_text,
    field_allowed,
    lookup_response,
    render_key,
    response_path,
    strings_in,
    template_fields,
)
from agentundo.model.workflow import Workflow
from agentundo.saga.clock import bounded_wait
from agentundo.saga.executor import Call, CallKind, Outcome, Result

DEFAULT_TIMEOUT_S = 10.0
FENCING_HEADER = "Agentundo-Fencing-Token"
"""A compensation carries its rollback lock's epoch here: a service that remembers the
highest token it has seen can refuse a stale runner (its refusal is a fatal answer)."""
BODY_LIMIT = 512
"""Characters of a response body kept in evidence."""
READ_LIMIT = 64 * 1024
"""Bytes of a response body read at most; the rest is not waited for."""
POLL_S = 0.05
"""How often a caller waiting for a call checks its deadline and the stop request."""

_ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SINGLE_FIELD = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_.]*)\}$")
_TRANSIENT_STATUS = frozenset({408, 429})
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE = re.compile(r"(?:[\x21-\x7e](?:[\t\x20-\x7e]*[\x21-\x7e])?)?")
"""Visible ASCII, with spaces and tabs inside but not at either end (RFC 9110, 5.5)."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An ``http`` block with its environment resolved, ready to render per call."""

    where: str
    method: str
    url: str  # a template: {fields} remain, ${VAR} resolved
    headers: dict[str, str]
    body: dict[str, Any] | str | None
    timeout_s: float | None


@dataclass(slots=True)
class _Answer:
    """What the worker thread of one call got: an answer, an error, or nothing yet."""

    done: threading.Event = field(default_factory=threading.Event)
    cancel: threading.Event = field(default_factory=threading.Event)
    status: int = 0
    headers: httpx.Headers | None = None
    text: str = ""
    error: httpx.HTTPError | None = None
    timed_out: bool = False


class HttpExecutor:
    """Calls the endpoints a catalog declares; see the module docstring for outcomes."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        client: httpx.Client | None = None,
        env: Mapping[str, str] = os.environ,
        timer: Callable[[], float] = time.perf_counter,
        default_timeout_s: float = DEFAULT_TIMEOUT_S,
        stop: threading.Event | None = None,
        halt: threading.Event | None = None,
    ) -> None:
        environment = _Environment(env, catalog.readable())
        self._forward: dict[str, Endpoint] = {}
        self._compensation: dict[str, Endpoint] = {}
        for name, topic in catalog.topics.items():
            if topic.http is not None:
                self._forward[name] = _resolve(
                    topic.http, f"topic '{name}'", environment, TemplatePlace.HTTP, has_http=True
                )
            if topic.compensation is not None and topic.compensation.http is not None:
                where = f"compensation of topic '{name}'"
                self._compensation[name] = _resolve(
                    topic.compensation.http,
                    where,
                    environment,
                    TemplatePlace.COMPENSATION_HTTP,
                    has_http=topic.http is not None,
                )
        self.secrets: frozenset[str] = frozenset(s for s in environment.secrets if s)
        self._owns_client = client is None
        self._client = client or httpx.Client(follow_redirects=False, trust_env=False)
        self._proxies = None if client is not None else Proxies.from_env(env)
        self._proxy_clients: dict[str, httpx.Client] = {}
        self._timer = timer
        self._default_timeout_s = default_timeout_s
        self._stop = stop  # abandons a forward call in flight (its outcome is unknown)
        self._halt = halt  # abandons any call in flight, compensations too

    @property
    def topics(self) -> frozenset[str]:
        """Topics this executor can call forward (those with an ``http`` block)."""
        return frozenset(self._forward)

    @property
    def compensation_topics(self) -> frozenset[str]:
        """Forward topics whose compensation has its own ``http`` block."""
        return frozenset(self._compensation)

    def endpoint(self, call: Call) -> Endpoint | None:
        """The endpoint of a call: a compensation's own block, else its topic's."""
        if call.kind is CallKind.COMPENSATION and call.for_topic in self._compensation:
            return self._compensation[call.for_topic]
        return self._forward.get(call.topic)

    def describe(self, call: Call) -> dict[str, Any] | None:
        """The method and URL a call would be sent to (credentials masked; no headers, no
        body), for the intent record written before it; None when it cannot be rendered."""
        endpoint = self.endpoint(call)
        if endpoint is None:
            return None
        try:
            url, _headers, _body = _render(endpoint, call)
        except KeyError:
            return None
        return {"method": endpoint.method, "url": _shown(str(redact(url, self.secrets)))}

    def execute(self, call: Call) -> Result:
        endpoint = self.endpoint(call)
        if endpoint is None:
            which = "compensation topic" if call.kind is CallKind.COMPENSATION else "topic"
            return Result(
                outcome=Outcome.FATAL,
                error=f"{which} '{call.topic}' declares no http endpoint",
                sent=False,
            )
        try:
            url, headers, body = _render(endpoint, call)
        except KeyError as exc:
            return Result(
                outcome=Outcome.FATAL,
                error=f"{endpoint.where}: template field {{{exc.args[0]}}} has no value in step '{call.step_id}'",
                sent=False,
            )
        if call.idempotency_key is not None:
            headers["Idempotency-Key"] = call.idempotency_key
        if call.kind is CallKind.COMPENSATION and call.epoch is not None:
            headers[FENCING_HEADER] = str(call.epoch)
        timeout = bounded_wait(endpoint.timeout_s or call.timeout_s or self._default_timeout_s)
        shown_url = _shown(str(redact(url, self.secrets)))
        request: dict[str, Any] = {"headers": headers, "timeout": timeout}
        if isinstance(body, str):
            request["content"] = body.encode()
        elif body is not None:
            request["json"] = body
        proxy = None if self._proxies is None else self._proxies.for_url(url)
        client = self._client if proxy is None else self._proxy_client(proxy)
        started = self._timer()
        answer = _Answer()
        worker = threading.Thread(
            target=self._send,
            args=(client, answer, endpoint.method, url, request, time.monotonic() + timeout),
            name=f"agentundo-http-{call.step_id}",
            daemon=True,
        )
        worker.start()
        rollback = call.rollback or call.kind is CallKind.COMPENSATION
        abort = self._halt if rollback else self._stop
        stopped = self._wait(answer, timeout, abort)
        elapsed_ms = round((self._timer() - started) * 1000, 1)
        detail: dict[str, Any] = {
            "method": endpoint.method,
            "url": shown_url,
            "elapsed_ms": elapsed_ms,
        }
        if proxy is not None:  # say so: a proxy sees (and may log) the whole call
            detail["proxy"] = _shown(proxy)
        if stopped is not None or answer.timed_out:
            answer.cancel.set()  # the worker gives up at its next read
            reason = stopped or f"timed out (no complete answer within {timeout:g}s)"
            return Result(
                outcome=Outcome.TRANSIENT,
                error=f"{reason} ({endpoint.method} {shown_url})",
                detail=detail,
            )
        if answer.error is not None or answer.headers is None:
            outcome, reason = (
                _classify_error(answer.error)
                if answer.error is not None
                else (Outcome.FATAL, "no answer")
            )
            reason = str(redact(reason, self.secrets))  # an exception may quote a header
            return Result(
                outcome=outcome,
                error=f"{reason} ({endpoint.method} {shown_url})",
                detail=detail,
                sent=answer.error is not None and _was_sent(answer.error),
            )
        result = self._result(
            call, endpoint, shown_url, answer.status, answer.headers, answer.text, elapsed_ms
        )
        if proxy is not None:
            result.detail["proxy"] = _shown(proxy)
        return result

    def _wait(self, answer: _Answer, timeout: float, abort: threading.Event | None) -> str | None:
        """Wait for the worker; why the call was abandoned (a stop request), else None.

        A call still running at its deadline is marked ``timed_out``.
        """
        deadline = time.monotonic() + timeout
        while True:
            if abort is not None and abort.is_set():
                return "interrupted (stop requested while the call was in flight)"
            left = deadline - time.monotonic()
            if left <= 0:
                answer.timed_out = True
                return None
            if answer.done.wait(min(POLL_S, left)):
                return None

    def _proxy_client(self, proxy: str) -> httpx.Client:
        client = self._proxy_clients.get(proxy)
        if client is None:
            client = httpx.Client(follow_redirects=False, trust_env=False, proxy=proxy)
            self._proxy_clients[proxy] = client
        return client

    def _send(
        self,
        client: httpx.Client,
        answer: _Answer,
        method: str,
        url: str,
        request: dict[str, Any],
        deadline: float,
    ) -> None:
        """The worker of one call: stream the answer, reading at most READ_LIMIT bytes."""
        try:
            with client.stream(method, url, **request) as response:
                body = bytearray()
                for chunk in response.iter_bytes():
                    if answer.cancel.is_set() or time.monotonic() >= deadline:
                        answer.timed_out = True
                        return
                    body += chunk
                    if len(body) >= READ_LIMIT:
                        del body[READ_LIMIT:]
                        break
                answer.status = response.status_code
                answer.text = body.decode(response.encoding or "utf-8", errors="replace")
                answer.headers = response.headers
        except httpx.HTTPError as exc:
            answer.error = exc
        except Exception as exc:  # e.g. the client closed under an abandoned call
            answer.error = httpx.TransportError(f"{type(exc).__name__}: {exc}")
        finally:
            answer.done.set()

    def _result(
        self,
        call: Call,
        endpoint: Endpoint,
        url: str,
        status: int,
        headers: httpx.Headers,
        text: str,
        elapsed_ms: float,
    ) -> Result:
        detail: dict[str, Any] = {
            "method": endpoint.method,
            "url": url,
            "status": status,
            "elapsed_ms": elapsed_ms,
            "body": _truncate(str(redact(text, self.secrets)), BODY_LIMIT),
        }
        replayed = bool(headers.get("Idempotent-Replayed"))
        if replayed:
            detail["replayed"] = True
        if 200 <= status < 300:
            applied: bool | None = None
            if call.kind is CallKind.COMPENSATION:
                applied = _applied(text)
            return Result(
                outcome=Outcome.OK,
                applied=applied,
                detail=detail,
                replayed=replayed,
                response=_json_object(text),
            )
        error = f"HTTP {status} from {endpoint.method} {url}"
        if status in _TRANSIENT_STATUS or status >= 500:
            retry_after = _retry_after(headers.get("Retry-After"))
            return Result(
                outcome=Outcome.TRANSIENT, error=error, retry_after_s=retry_after, detail=detail
            )
        return Result(outcome=Outcome.FATAL, error=error, detail=detail)

    def close(self) -> None:
        if self._owns_client:
            self._client.close()
        for client in self._proxy_clients.values():
            client.close()

    def __enter__(self) -> HttpExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_endpoints(executor: HttpExecutor, workflow: Workflow, catalog: Catalog) -> None:
    """UsageError naming every step (or its compensation) that has no http endpoint."""
    missing: list[str] = []
    for step in workflow.steps:
        topic = catalog.topics.get(step.topic)
        if step.topic not in executor.topics:
            missing.append(f"step '{step.id}' (topic '{step.topic}')")
        if topic is None or topic.compensation is None:
            continue
        if topic.rollback not in (Rollback.REVERSIBLE, Rollback.COMPENSATABLE):
            continue
        has_own = step.topic in executor.compensation_topics
        if not has_own and topic.compensation.topic not in executor.topics:
            missing.append(f"compensation of step '{step.id}' (topic '{topic.compensation.topic}')")
    if missing:
        raise UsageError(
            "--executor http needs an 'http' block for: "
            + ", ".join(dict.fromkeys(missing))
            + " (see docs/http-executor.md)"
        )


def _resolve(
    spec: HttpCall,
    where: str,
    environment: _Environment,
    place: TemplatePlace,
    *,
    has_http: bool,
) -> Endpoint:
    """Resolve ``${VAR}`` in the URL and headers; check the templates' fields."""
    if spec.timeout_seconds == 0:
        raise UsageError(f"{where}: an http timeout of 0 would fail every call; give more")
    url = environment.substitute(spec.url, f"{where}: url")
    _check_template(url, where, "url", place, has_http)
    for text in strings_in(spec.body):
        _check_template(text, where, "body", place, has_http)
    resolved = f" (it resolved to {_shown(url)!r})" if url != spec.url else ""
    try:
        parts = urlsplit(url)
        if "{" not in parts.netloc:  # a templated host or port is checked when rendered
            parts.port  # noqa: B018 -- raises ValueError for a port out of range
    except ValueError as exc:
        raise UsageError(
            f"{where}: url {_shown(spec.url)!r}{resolved} is malformed: {exc}"
        ) from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(
            f"{where}: url {_shown(spec.url)!r} is not an http:// or https:// URL{resolved}"
        )
    headers = {
        name: environment.substitute(value, f"{where}: header '{name}'")
        for name, value in (spec.headers or {}).items()
    }
    for name, value in headers.items():
        _check_template(value, where, f"header '{name}'", place, has_http)
        if _HEADER_NAME.fullmatch(name) is None:
            raise UsageError(f"{where}: {name!r} is not a valid HTTP header name")
        if _HEADER_VALUE.fullmatch(value) is None:  # the value may be a secret: not shown
            raise UsageError(
                f"{where}: header '{name}' has characters an HTTP header cannot carry "
                "(line breaks, control or non-ASCII characters, or a space at either end; "
                "an empty variable in 'Bearer ${VAR}' leaves one)"
            )
    return Endpoint(
        where=where,
        method=spec.method,
        url=url,
        headers=headers,
        body=spec.body,
        timeout_s=spec.timeout_seconds,
    )


def _check_template(text: str, where: str, what: str, place: TemplatePlace, has_http: bool) -> None:
    """UsageError for a malformed template or a field no call has at ``place``."""
    try:
        fields = template_fields(text)
    except ValueError as exc:
        shown = "(not shown: it may hold a secret)" if what.startswith("header") else _shown(text)
        raise UsageError(f"{where}: {what} template {shown!r} is malformed: {exc}") from None
    for name in fields:
        if name.startswith(PARAMS_PREFIX) or field_allowed(name, place, has_http=has_http):
            continue
        raise UsageError(
            f"{where}: {what} template uses unknown field {{{name}}}; use one of: "
            f"{allowed_text(place, has_http=has_http)}"
        )


_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#@]*@")


def _shown(url: str) -> str:
    """``url`` fit for a message: credentials in it (``user:password@``) replaced."""
    return _USERINFO.sub(r"\1***@", url)


@dataclass(frozen=True, slots=True)
class Proxies:
    """The proxy variables of the environment (``HTTP_PROXY``, ``HTTPS_PROXY``,
    ``ALL_PROXY``, ``NO_PROXY``, either case). A loopback address never goes through one:
    a drill against a service on 127.0.0.1 must reach that service."""

    http: str | None = None
    https: str | None = None
    no_proxy: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Proxies | None:
        def get(name: str) -> str | None:
            return env.get(name.lower()) or env.get(name) or None

        every = get("ALL_PROXY")
        found = cls(
            http=get("HTTP_PROXY") or every,
            https=get("HTTPS_PROXY") or every,
            no_proxy=tuple(
                part.strip().lower() for part in (get("NO_PROXY") or "").split(",") if part.strip()
            ),
        )
        return found if found.http or found.https else None

    def for_url(self, url: str) -> str | None:
        """The proxy a call to ``url`` goes through, or None."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if _loopback(host) or self._bypassed(host):
            return None
        return self.https if parts.scheme == "https" else self.http

    def _bypassed(self, host: str) -> bool:
        for entry in self.no_proxy:
            if entry == "*":
                return True
            suffix = entry.lstrip(".")
            if host == suffix or host.endswith("." + suffix):
                return True
        return False


def _loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Environment:
    """The environment as templates may read it: only the variables the catalog lists
    (never ``AGENTUNDO_*``); every value read is a secret unless listed as not one."""

    def __init__(self, env: Mapping[str, str], readable: Mapping[str, bool]) -> None:
        self.env = env
        self.readable = readable
        self.secrets: set[str] = set()

    def substitute(self, text: str, where: str) -> str:
        """Replace ``${VAR}``/``${VAR:-default}``; braces of values are escaped for templates."""

        def value(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            self.check(name, where)
            found = self.env.get(name)
            if found is None:
                if default is None:
                    raise UsageError(
                        f"{where} uses ${{{name}}}, which is not set in the environment"
                    )
                return default.replace("{", "{{").replace("}", "}}")  # the catalog's own text
            if self.readable[name]:
                self.secrets.add(found)
            return found.replace("{", "{{").replace("}", "}}")

        resolved = _ENV_VAR.sub(value, text)
        if "${" in _ENV_VAR.sub("", text):  # `${TOKEN` or `${}`: it would be sent as it is
            raise UsageError(
                f"{where} has a '${{' that does not start a variable: write ${{NAME}} or "
                "${NAME:-default}"
            )
        return resolved

    def check(self, name: str, where: str) -> None:
        """UsageError (naming the variable, never its value) unless templates may read it."""
        if name.startswith("AGENTUNDO_"):
            raise UsageError(
                f"{where} reads ${{{name}}}: agentundo's own variables (AGENTUNDO_*, such as "
                "the evidence key) are never readable by templates"
            )
        if name not in self.readable:
            raise UsageError(
                f"{where} reads ${{{name}}}, which the catalog's `environment:` list does not "
                "name: templates read only the variables a catalog lists (a catalog change "
                "must not be able to send a CI secret to any host)"
            )


def _fields(call: Call, *, quoted: bool) -> dict[str, Any]:
    def q(value: Any) -> Any:
        return quote(str(value), safe="") if quoted else value

    return {
        "run_id": q(call.run_id),
        "workflow_id": q(call.workflow_id),
        "job_id": q(call.job_id),
        "step_id": q(call.step_id),
        "step_index": q(call.step_index),
        "topic": q(call.topic),
        "env": q(call.env),
        "idempotency_key": q(call.idempotency_key or ""),
        "params": {k: q(v) for k, v in call.params.items()},
        "response": _quoted(call.response, q) if call.response is not None else None,
    }


def _quoted(value: Any, q: Callable[[Any], Any]) -> Any:
    if isinstance(value, dict):
        return {k: _quoted(v, q) for k, v in value.items()}
    return q(value)


def _render(endpoint: Endpoint, call: Call) -> tuple[str, dict[str, str], Any]:
    """The URL (values percent-encoded), the header values and the body of one call."""
    url = render_key(endpoint.url, _fields(call, quoted=True))
    raw = _fields(call, quoted=False)
    headers = {name: render_key(value, raw) for name, value in endpoint.headers.items()}
    body = endpoint.body
    if isinstance(body, str):
        return url, headers, render_key(body, raw)
    return url, headers, None if body is None else _render_value(body, raw)


def _render_value(value: Any, fields: dict[str, Any]) -> Any:
    """Render the strings of a JSON body; a string that is one field keeps its type."""
    if isinstance(value, dict):
        return {k: _render_value(v, fields) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_value(v, fields) for v in value]
    if isinstance(value, str):
        single = _SINGLE_FIELD.match(value)
        if single is not None:
            name = single.group(1)
            if name.startswith(PARAMS_PREFIX):
                params = fields["params"]
                if name[len(PARAMS_PREFIX) :] not in params:
                    raise KeyError(name)
                return params[name[len(PARAMS_PREFIX) :]]
            path = response_path(name)
            if path is not None:
                return lookup_response(fields.get("response"), path)
            return fields[name]
        return render_key(value, fields)
    return value


def _classify_error(exc: httpx.HTTPError) -> tuple[Outcome, str]:
    """Transport errors are transient except TLS failures, unusable URLs and requests
    that cannot be sent as they are."""
    if isinstance(exc, httpx.TimeoutException):
        return Outcome.TRANSIENT, f"timed out ({type(exc).__name__})"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return Outcome.FATAL, f"bad URL: {exc}"
    if _is_tls(exc):
        return Outcome.FATAL, f"TLS failure: {exc}"
    if isinstance(exc, httpx.LocalProtocolError):
        # the request itself cannot be sent (a header value with a line break, say):
        # sending it again changes nothing
        return Outcome.FATAL, f"the request cannot be sent: {exc}"
    if isinstance(exc, httpx.ConnectError):
        return Outcome.TRANSIENT, f"cannot connect: {exc}"
    if isinstance(exc, httpx.TransportError):
        return Outcome.TRANSIENT, f"connection failed: {type(exc).__name__}: {exc}"
    return Outcome.FATAL, f"{type(exc).__name__}: {exc}"


def _was_sent(exc: httpx.HTTPError) -> bool:
    """Whether a failed call may have reached the service (and so had an effect).

    Not when the connection was never made or the request could not be written at all;
    anything later (a read timeout, a dropped connection) may follow an applied effect.
    """
    never = (
        httpx.ConnectError,
        httpx.ConnectTimeout,
        httpx.UnsupportedProtocol,
        httpx.InvalidURL,
        httpx.LocalProtocolError,
        httpx.PoolTimeout,
    )
    return not isinstance(exc, never) and not _is_tls(exc)


def _json_object(text: str) -> dict[str, Any] | None:
    """The answer as a JSON object, or None (not JSON, or not an object)."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _is_tls(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(8):  # bounded walk down the cause chain
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLError) or "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds: a number of seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _applied(text: str) -> bool:
    """A compensation applied something unless it answered ``{"applied": false}``."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return True
    return not (isinstance(data, dict) and data.get("applied") is False)


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit} more]"
