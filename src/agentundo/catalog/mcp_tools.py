"""MCP tool descriptions and the catalog contract guessed from their annotations.

MCP servers describe each tool's behaviour with hints (``readOnlyHint``,
``destructiveHint``, ``idempotentHint``, ``openWorldHint``). They are hints from the
server, not guarantees, so every guess for a side-effecting tool is marked
``needs_review`` and ``agentundo lint`` fails (AU109) until a person confirms it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentundo.errors import InputError, Position
from agentundo.model.common import Risk, Rollback

HINTS = ("readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint")
MCP_DEFAULTS = {
    "readOnlyHint": False,
    "destructiveHint": True,
    "idempotentHint": False,
    "openWorldHint": True,
}
"""What the MCP specification says an absent hint means (assume the worst)."""

_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_.:/-]")


@dataclass(frozen=True, slots=True)
class Tool:
    """One tool of a ``tools/list`` result: its name, description and hints."""

    name: str
    description: str | None
    hints: dict[str, bool]  # only the hints the server gave

    def hint(self, name: str) -> bool:
        return self.hints.get(name, MCP_DEFAULTS[name])


@dataclass(frozen=True, slots=True)
class Guess:
    """The contract guessed for one tool, and why (the why becomes YAML comments)."""

    topic: str
    tool: Tool
    side_effect: bool
    rollback: Rollback | None
    risk: Risk
    reasons: tuple[str, ...]

    @property
    def needs_review(self) -> bool:
        return self.side_effect


def parse_tools(data: Any, source: str) -> list[Tool]:
    """Tools from a JSON-RPC response, a ``tools/list`` result, or a bare list of tools."""
    where = Position(source)
    if isinstance(data, dict) and "jsonrpc" in data:
        if "error" in data:
            raise InputError(where, f"the answer is a JSON-RPC error: {json.dumps(data['error'])}")
        data = data.get("result")
    if isinstance(data, dict):
        if "tools" not in data:
            raise InputError(
                where,
                "no 'tools' in this JSON",
                hint='give the result of a tools/list request: {"tools": [...]}',
            )
        data = data["tools"]
    if not isinstance(data, list):
        raise InputError(where, "expected a list of tools")
    tools: list[Tool] = []
    for index, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            raise InputError(where, f"tools[{index}]: a tool must be an object with a 'name'")
        annotations = item.get("annotations")
        annotations = {} if annotations is None else annotations
        if not isinstance(annotations, dict):
            raise InputError(
                where, f"tools[{index}] ({item['name']}): 'annotations' must be an object"
            )
        hints = {k: v for k, v in annotations.items() if k in HINTS and isinstance(v, bool)}
        description = item.get("description") or annotations.get("title") or item.get("title")
        tools.append(
            Tool(
                name=item["name"],
                description=description if isinstance(description, str) else None,
                hints=hints,
            )
        )
    return tools


def read_tools_file(path: str | Path) -> list[Tool]:
    """Read a ``tools/list`` result saved as JSON."""
    name = str(path)
    try:
        raw = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(Position(name), "no such file or directory") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(Position(name), f"cannot read file: {exc}") from None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise InputError(
            Position(name, getattr(exc, "lineno", 0), getattr(exc, "colno", 0)),
            f"not JSON: {getattr(exc, 'msg', exc)}",
        ) from None
    return parse_tools(data, name)


def topic_name(tool: str, prefix: str = "") -> str:
    """The catalog topic for a tool: ``prefix`` + the name, odd characters made ``_``."""
    name = _NOT_IN_NAME.sub("_", prefix + tool)
    return name if name[0].isalnum() or name[0] == "_" else "_" + name


def guess(tool: Tool, prefix: str = "") -> Guess:
    """The best contract the hints allow; absent hints take the MCP defaults."""
    topic = topic_name(tool.name, prefix)
    given = ", ".join(f"{k}={str(v).lower()}" for k, v in tool.hints.items())
    reasons = [f"MCP tool '{tool.name}': " + (given or "no annotations (MCP defaults apply)")]
    if tool.hint("readOnlyHint"):
        return Guess(topic, tool, False, None, Risk.LOW, tuple(reasons))
    destructive = tool.hint("destructiveHint")
    open_world = tool.hint("openWorldHint")
    if destructive:
        rollback = Rollback.IRREVERSIBLE
        reasons.append(
            "guess: destructive updates cannot be assumed undoable; give "
            "no_rollback_reason, or tag it compensatable and name the compensation"
        )
    else:
        rollback = Rollback.COMPENSATABLE
        reasons.append("guess: additive changes can usually be undone; name the compensation")
    risk = {
        (True, True): Risk.CRITICAL,
        (True, False): Risk.HIGH,
        (False, True): Risk.HIGH,
        (False, False): Risk.MEDIUM,
    }[(destructive, open_world)]
    if open_world:
        reasons.append("open world: it reaches systems outside your control")
    if tool.hint("idempotentHint"):
        reasons.append("idempotent: repeating a call has no extra effect")
    else:
        reasons.append("not idempotent: declare an idempotency_key")
    return Guess(topic, tool, True, rollback, risk, tuple(reasons))
