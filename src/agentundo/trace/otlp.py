"""Read OTLP JSON span exports (``{"resourceSpans": [...]}``) into plain :class:`Span` objects.

A file holds one document (pretty-printed or not) or one document per line, as the
OpenTelemetry Collector's file exporter writes them. Which one is decided by content: the
whole file is tried as one JSON document first. Attribute values (``stringValue``,
``intValue``, ``boolValue``, ``doubleValue``, ``arrayValue``, ``kvlistValue``,
``bytesValue``) become plain Python values; ids are lower-case hex strings; times are
integers of nanoseconds since the epoch.

Anything that is not such a document is an :class:`~agentundo.errors.InputError` at the
line of the document (or of the JSON syntax error) that says what is wrong, and where in
the document (``resourceSpans[0].scopeSpans[1].spans[2].traceId``).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from agentundo.errors import InputError, Position

_SNIFF_BYTES = 4096
_STARTS_LIKE_OTLP = re.compile(rb'\A(?:\xef\xbb\xbf)?\s*\{\s*"resourceSpans"\s*:')
_HEX = re.compile(r"^[0-9a-fA-F]+$")
MAX_TRACE_BYTES = 256 * 1024 * 1024
"""A larger file is refused rather than read into memory."""


class SpanStatus(StrEnum):
    """A span's status code (OTLP ``status.code``: 0 unset, 1 ok, 2 error)."""

    UNSET = "unset"
    OK = "ok"
    ERROR = "error"


_STATUS_CODES = {
    0: SpanStatus.UNSET,
    1: SpanStatus.OK,
    2: SpanStatus.ERROR,
    "STATUS_CODE_UNSET": SpanStatus.UNSET,
    "STATUS_CODE_OK": SpanStatus.OK,
    "STATUS_CODE_ERROR": SpanStatus.ERROR,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SpanEvent:
    """An event recorded on a span (an ``exception``, say)."""

    name: str
    time_ns: int
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Span:
    """One span as exported, with where it was read (for messages)."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    start_ns: int
    end_ns: int
    status: SpanStatus
    status_message: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    events: tuple[SpanEvent, ...]
    path: str
    line: int

    @property
    def error_text(self) -> str | None:
        """Why the span failed: its status message, else its exception event's message."""
        if self.status is not SpanStatus.ERROR:
            return None
        if self.status_message:
            return self.status_message
        for event in self.events:
            if event.name == "exception":
                kind = event.attributes.get("exception.type")
                message = event.attributes.get("exception.message")
                if kind or message:
                    return ": ".join(str(p) for p in (kind, message) if p)
        return "the span's status is ERROR"


def looks_like_otlp(path: str) -> bool:
    """Whether a file starts like an OTLP JSON document (its first key is resourceSpans)."""
    if path == "-":
        return False
    try:
        with open(path, "rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    except OSError:
        return False  # the evidence reader reports it
    return _STARTS_LIKE_OTLP.match(head) is not None


def read_spans(path: str) -> list[Span]:
    """Every span of an OTLP JSON file, in file order."""
    text = _text(path)
    spans: list[Span] = []
    try:
        for line, document in _documents(path, text):
            spans.extend(_spans(document, path, line))
    except RecursionError:  # a JSON bomb of nested arrays or attribute values
        raise InputError(
            Position(path), "is nested too deeply to be OTLP JSON (a JSON bomb?)"
        ) from None
    return spans


def _text(path: str) -> str:
    try:
        file = Path(path)
        if file.is_dir():
            raise InputError(Position(path), "is a directory, not an OTLP JSON file")
        if file.stat().st_size > MAX_TRACE_BYTES:
            raise InputError(Position(path), "is larger than 256 MiB: split the export")
        data = file.read_bytes()
    except FileNotFoundError:
        raise InputError(Position(path), "no such file") from None
    except OSError as error:
        raise InputError(Position(path), f"cannot be read: {error.strerror or error}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise InputError(Position(path, line, 1), "is not UTF-8 text (binary?)") from None


def _documents(path: str, text: str) -> Iterator[tuple[int, Any]]:
    """(line, document): the whole text as one document, else one per non-blank line."""
    if not text.strip():
        raise InputError(Position(path), "is empty: no OTLP JSON document in it")
    try:
        yield 1, json.loads(text)
        return
    except json.JSONDecodeError as whole:
        first = text.lstrip().split("\n", 1)[0]
        try:
            json.loads(first)
        except json.JSONDecodeError:
            raise _syntax(path, whole, 0) from None
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as error:
            raise _syntax(path, error, number - 1) from None


def _syntax(path: str, error: json.JSONDecodeError, before: int) -> InputError:
    return InputError(
        Position(path, before + error.lineno, error.colno),
        f"not OTLP JSON: {error.msg}",
        "an OTLP export is one JSON document, or one per line",
    )


class _Where:
    """A place inside one document, for messages: ``resourceSpans[0].scopeSpans[1]``."""

    def __init__(self, path: str, line: int) -> None:
        self.path = path
        self.line = line

    def error(self, at: str, message: str) -> InputError:
        where = f"{at}: " if at else ""
        return InputError(Position(self.path, self.line, 1), f"{where}{message}")


def _spans(document: Any, path: str, line: int) -> Iterator[Span]:
    where = _Where(path, line)
    if not isinstance(document, dict) or "resourceSpans" not in document:
        found = "an evidence record" if isinstance(document, dict) and "event" in document else ""
        raise where.error(
            "",
            "not an OTLP JSON trace document: it has no resourceSpans"
            + (f" (it looks like {found})" if found else ""),
        )
    for r_index, resource_spans in enumerate(_list(document, "resourceSpans", "", where)):
        at = f"resourceSpans[{r_index}]"
        _object(resource_spans, at, where)
        resource_obj = resource_spans.get("resource") or {}
        _object(resource_obj, f"{at}.resource", where)
        resource = _attributes(resource_obj, f"{at}.resource", where)
        for s_index, scope_spans in enumerate(_list(resource_spans, "scopeSpans", at, where)):
            scope_at = f"{at}.scopeSpans[{s_index}]"
            _object(scope_spans, scope_at, where)
            for index, raw in enumerate(_list(scope_spans, "spans", scope_at, where)):
                yield _span(raw, f"{scope_at}.spans[{index}]", resource, where)


def _span(raw: Any, at: str, resource: dict[str, Any], where: _Where) -> Span:
    _object(raw, at, where)
    status = raw.get("status") or {}
    _object(status, f"{at}.status", where)
    code = status.get("code", 0)
    if code not in _STATUS_CODES or isinstance(code, bool):
        raise where.error(f"{at}.status.code", f"expected 0, 1 or 2, got {code!r}")
    message = status.get("message", "")
    if not isinstance(message, str):
        raise where.error(f"{at}.status.message", "expected a string")
    parent = raw.get("parentSpanId") or None
    return Span(
        trace_id=_id(raw, "traceId", at, where),
        span_id=_id(raw, "spanId", at, where),
        parent_id=None if parent is None else _id(raw, "parentSpanId", at, where),
        name=_string(raw, "name", at, where),
        start_ns=_nanos(raw, "startTimeUnixNano", at, where),
        end_ns=_nanos(raw, "endTimeUnixNano", at, where),
        status=_STATUS_CODES[code],
        status_message=message,
        attributes=_attributes(raw, at, where),
        resource=resource,
        events=tuple(_events(raw, at, where)),
        path=where.path,
        line=where.line,
    )


def _events(raw: dict[str, Any], at: str, where: _Where) -> Iterator[SpanEvent]:
    for index, event in enumerate(_list(raw, "events", at, where)):
        event_at = f"{at}.events[{index}]"
        _object(event, event_at, where)
        yield SpanEvent(
            name=str(event.get("name", "")),
            time_ns=_nanos(event, "timeUnixNano", event_at, where, required=False),
            attributes=_attributes(event, event_at, where),
        )


def _object(value: Any, at: str, where: _Where) -> None:
    if not isinstance(value, dict):
        raise where.error(at, f"expected an object, got {_kind(value)}")


def _list(obj: dict[str, Any], key: str, at: str, where: _Where) -> list[Any]:
    """A list field; absent or null is empty (protobuf's JSON leaves out empty lists)."""
    value = obj.get(key)
    name = f"{at}.{key}" if at else key
    if value is None:
        return []
    if not isinstance(value, list):
        raise where.error(name, f"expected a list, got {_kind(value)}")
    return value


def _id(obj: dict[str, Any], key: str, at: str, where: _Where) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value or _HEX.match(value) is None:
        raise where.error(f"{at}.{key}", f"expected a hex id, got {value!r}")
    return value.lower()


def _string(obj: dict[str, Any], key: str, at: str, where: _Where) -> str:
    value = obj.get(key, "")
    if not isinstance(value, str):
        raise where.error(f"{at}.{key}", f"expected a string, got {_kind(value)}")
    return value


def _nanos(obj: dict[str, Any], key: str, at: str, where: _Where, *, required: bool = True) -> int:
    value = obj.get(key)
    if value is None and not required:
        return 0
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise where.error(f"{at}.{key}", f"expected nanoseconds since the epoch, got {value!r}")


def _attributes(obj: dict[str, Any], at: str, where: _Where) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for index, item in enumerate(_list(obj, "attributes", at, where)):
        item_at = f"{at}.attributes[{index}]"
        _object(item, item_at, where)
        key = item.get("key")
        if not isinstance(key, str):
            raise where.error(f"{item_at}.key", f"expected a string, got {_kind(key)}")
        found[key] = _value(item.get("value"), f"{item_at}.value", where)
    return found


def _value(value: Any, at: str, where: _Where) -> Any:
    """An OTLP ``AnyValue`` as a plain value (an empty one is None)."""
    if value is None:
        return None
    _object(value, at, where)
    if not value:
        return None
    if len(value) != 1:
        raise where.error(at, f"expected one of stringValue, intValue, …; got {sorted(value)}")
    ((kind, inner),) = value.items()
    if kind == "stringValue" and isinstance(inner, str):
        return inner
    if kind == "boolValue" and isinstance(inner, bool):
        return inner
    if kind == "intValue" and not isinstance(inner, bool):
        if isinstance(inner, int):
            return inner
        if isinstance(inner, str) and re.fullmatch(r"-?\d+", inner):
            return int(inner)
    if kind == "doubleValue" and isinstance(inner, int | float) and not isinstance(inner, bool):
        return float(inner)
    if kind == "doubleValue" and inner in ("NaN", "Infinity", "-Infinity"):
        return inner
    if kind == "bytesValue" and isinstance(inner, str):
        try:
            return base64.b64decode(inner, validate=True).hex()
        except ValueError:
            raise where.error(at, "bytesValue is not base64") from None
    if kind == "arrayValue" and isinstance(inner, dict):
        values = inner.get("values") or []
        if isinstance(values, list):
            return [_value(v, f"{at}.arrayValue.values[{i}]", where) for i, v in enumerate(values)]
    if kind == "kvlistValue" and isinstance(inner, dict):
        return _attributes({"attributes": inner.get("values") or []}, f"{at}.kvlistValue", where)
    raise where.error(at, f"{kind} {inner!r} is not an OTLP attribute value")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number"
    )
