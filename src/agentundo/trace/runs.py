"""Agent runs from spans: one :class:`AgentRun` per trace id, its tool calls and context.

A span is a **tool call** when the GenAI semantic conventions say so
(``gen_ai.operation.name = execute_tool``) or it names a tool (``gen_ai.tool.name``).
Its arguments and result come from ``gen_ai.tool.call.arguments`` /
``gen_ai.tool.call.result`` or, from older pydantic-ai versions, ``tool_arguments`` /
``tool_response``; a JSON string is parsed. When content capture is off neither is
present: the call's :attr:`ToolCall.arguments` is :data:`NOT_CAPTURED`.

Every other span (the agent's own span, model calls) is a :class:`ContextRow`: shown for
context, never an effect.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final

from agentundo.trace.otlp import Span, SpanStatus

EXECUTE_TOOL = "execute_tool"
ARGUMENT_KEYS = ("gen_ai.tool.call.arguments", "tool_arguments")
RESULT_KEYS = ("gen_ai.tool.call.result", "tool_response")
_AGENT_KEYS = ("gen_ai.agent.name", "agent_name")
_ENV_KEYS = ("deployment.environment.name", "deployment.environment")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def clean_id(text: str) -> str:
    """An id or name fit for keys, headers and one-line output: control characters become
    ``?`` (a line break in a call id would split a header or a report line)."""
    return _CONTROL.sub("?", text) or "?"


class _NotCaptured:
    """The value of arguments or a result the trace does not hold (content capture off)."""

    def __repr__(self) -> str:
        return "NOT_CAPTURED"


NOT_CAPTURED: Final = _NotCaptured()


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCall:
    """One traced tool call."""

    span: Span
    tool: str
    call_id: str
    arguments: Any
    """The call's arguments (parsed when JSON), or :data:`NOT_CAPTURED`."""
    result: Any
    """What the call returned (parsed when JSON), or :data:`NOT_CAPTURED`."""

    @property
    def failed(self) -> bool:
        return self.span.status is SpanStatus.ERROR

    @property
    def params(self) -> dict[str, Any]:
        """The arguments as a step's params (empty unless they are an object)."""
        return self.arguments if isinstance(self.arguments, dict) else {}

    @property
    def response(self) -> dict[str, Any] | None:
        """The result as a step's response (None unless it is an object)."""
        return self.result if isinstance(self.result, dict) else None


@dataclass(frozen=True, slots=True, kw_only=True)
class ContextRow:
    """A span that is not a tool call: the agent's span, a model call, anything else."""

    span: Span
    kind: str
    """``gen_ai.operation.name`` (``chat``, ``invoke_agent``…), else ``span``."""
    label: str


Row = ToolCall | ContextRow


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentRun:
    """The spans of one trace id, in start order."""

    trace_id: str
    agent: str
    env: str | None
    rows: tuple[Row, ...]
    start_ns: int
    end_ns: int
    path: str

    @property
    def calls(self) -> list[ToolCall]:
        return [row for row in self.rows if isinstance(row, ToolCall)]

    @property
    def failed(self) -> bool:
        """Whether the run failed: one of its spans (a tool call, the agent) is an ERROR."""
        return any(row.span.status is SpanStatus.ERROR for row in self.rows)

    @property
    def error(self) -> str | None:
        """Why it failed: the outermost failed span's error."""
        failed = [r.span for r in self.rows if r.span.status is SpanStatus.ERROR]
        if not failed:
            return None
        outermost = min(failed, key=lambda s: (s.parent_id is not None, s.start_ns))
        return outermost.error_text


def group_runs(spans: list[Span]) -> list[AgentRun]:
    """One run per trace id, in the order their first span starts."""
    by_trace: dict[str, list[Span]] = {}
    for span in spans:
        by_trace.setdefault(span.trace_id, []).append(span)
    runs = [_run(trace_id, members) for trace_id, members in by_trace.items()]
    return sorted(runs, key=lambda r: (r.start_ns, r.trace_id))


def _run(trace_id: str, spans: list[Span]) -> AgentRun:
    ordered = sorted(spans, key=lambda s: (s.start_ns, s.end_ns))
    ids = {s.span_id for s in spans}
    roots = [s for s in ordered if s.parent_id is None or s.parent_id not in ids]
    env = _first(ordered, _ENV_KEYS, resource=True)
    return AgentRun(
        trace_id=trace_id,
        agent=clean_id(_agent(ordered, roots)),
        env=clean_id(env) if env else None,
        rows=_unique_calls([_row(span) for span in ordered]),
        start_ns=ordered[0].start_ns,
        end_ns=max(s.end_ns for s in ordered),
        path=ordered[0].path,
    )


def _unique_calls(rows: list[Row]) -> tuple[Row, ...]:
    """The rows with every call id unique in the run: a repeated id (a framework that
    counts calls per turn) becomes ``ID#2``, ``ID#3``… in start order, so that no call's
    effect hides another's."""
    seen: dict[str, int] = {}
    unique: list[Row] = []
    for row in rows:
        if isinstance(row, ToolCall):
            count = seen[row.call_id] = seen.get(row.call_id, 0) + 1
            if count > 1:
                row = replace(row, call_id=f"{row.call_id}#{count}")
        unique.append(row)
    return tuple(unique)


def _agent(spans: list[Span], roots: list[Span]) -> str:
    found = _first(roots, _AGENT_KEYS) or _first(spans, _AGENT_KEYS)
    if found:
        return found
    service = _first(spans, ("service.name",), resource=True)
    return service or (roots[0].name if roots else "agent")


def _first(spans: list[Span], keys: tuple[str, ...], *, resource: bool = False) -> str | None:
    for span in spans:
        source = span.resource if resource else span.attributes
        for key in keys:
            value = source.get(key)
            if isinstance(value, str) and value:
                return value
    return None


def _row(span: Span) -> Row:
    attributes = span.attributes
    operation = attributes.get("gen_ai.operation.name")
    tool = attributes.get("gen_ai.tool.name")
    if operation == EXECUTE_TOOL or isinstance(tool, str):
        name = clean_id(tool if isinstance(tool, str) and tool else _tool_from_name(span.name))
        call_id = attributes.get("gen_ai.tool.call.id")
        return ToolCall(
            span=span,
            tool=name,
            call_id=clean_id(str(call_id)) if call_id not in (None, "") else span.span_id,
            arguments=_content(attributes, ARGUMENT_KEYS),
            result=_content(attributes, RESULT_KEYS),
        )
    kind = operation if isinstance(operation, str) and operation else "span"
    return ContextRow(span=span, kind=kind, label=_label(span, kind))


def _tool_from_name(name: str) -> str:
    for prefix in ("execute_tool ", "running tool: ", "running tool "):
        if name.startswith(prefix):
            return name[len(prefix) :].strip() or name
    return name


def _content(attributes: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in attributes:
            value = attributes[key]
            if isinstance(value, str):
                try:
                    return json.loads(value)
                except json.JSONDecodeError:
                    return value
            return value
    return NOT_CAPTURED


def _label(span: Span, kind: str) -> str:
    attributes = span.attributes
    if kind == "chat":
        model = attributes.get("gen_ai.request.model") or attributes.get("gen_ai.response.model")
        tokens = [
            attributes.get("gen_ai.usage.input_tokens"),
            attributes.get("gen_ai.usage.output_tokens"),
        ]
        usage = f" ({tokens[0]} in, {tokens[1]} out)" if all(t is not None for t in tokens) else ""
        return f"model call {model or span.name}{usage}"
    return span.name


def iso(nanos: int) -> str:
    """A span time as RFC 3339 UTC with milliseconds (``2026-09-21T14:13:20.001Z``)."""
    moment = datetime.fromtimestamp(nanos / 1e9, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
