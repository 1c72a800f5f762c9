"""MCP tool descriptions and the catalog contract guessed from their annotations.

MCP servers describe each tool's behaviour with hints (``readOnlyHint``,
``destructiveHint``, ``idempotentHint``, ``openWorldHint``). They are hints from the
server, not guarantees, so every guess for a side-effecting tool is marked
``needs_review`` and ``agentundo lint`` fails (AU109) until a person confirms it.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Sequence
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
_SHOWN_VALUE = 40
"""Characters of a wrong-type hint's JSON shown in comments and warnings."""


@dataclass(frozen=True, slots=True)
class Tool:
    """One tool of a ``tools/list`` result: its name, description and hints."""

    name: str
    description: str | None
    hints: dict[str, bool]  # only the hints the server gave, as booleans
    bad_hints: tuple[tuple[str, str], ...] = ()
    """Hints given with a value that is not a boolean: (name, the value as JSON). They
    count as absent, so the MCP default (the worst case) applies."""
    input_schema: Any = None
    output_schema: Any = None

    def hint(self, name: str) -> bool:
        return self.hints.get(name, MCP_DEFAULTS[name])


@dataclass(frozen=True, slots=True)
class Inverse:
    """Another tool of the server that looks like the undo of a tool."""

    tool: Tool
    topic: str
    verb: str
    opposite: str


@dataclass(frozen=True, slots=True)
class CompensationGuess:
    """The compensation proposed for a tool: its inverse's topic and parameters."""

    topic: str
    params: dict[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class Guess:
    """The contract guessed for one tool, and why (the why becomes YAML comments)."""

    topic: str
    tool: Tool
    side_effect: bool
    rollback: Rollback | None
    risk: Risk
    reasons: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    """What the person running the import must hear (also among ``reasons``)."""
    needs_review: bool = True
    compensation: CompensationGuess | None = None


MAX_TOOL_NAME = 256
"""Longest tool name imported: YAML allows keys of at most 1024 characters, and a topic
name this long is already a mistake (the MCP specification asks for 1 to 128)."""


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
    first: dict[str, tuple[int, Tool]] = {}
    for index, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            raise InputError(where, f"tools[{index}]: a tool must be an object with a 'name'")
        if not _unicode(item["name"]):
            raise InputError(
                where,
                f"tools[{index}]: the name {_shown(item['name'])} holds a lone surrogate "
                "(\\ud800-\\udfff), which is not a character and cannot be written",
            )
        if len(item["name"]) > MAX_TOOL_NAME:
            raise InputError(
                where,
                f"tools[{index}]: a name of {len(item['name'])} characters is too long for a "
                f"catalog topic (at most {MAX_TOOL_NAME}; MCP asks for at most 128)",
            )
        annotations = item.get("annotations")
        annotations = {} if annotations is None else annotations
        if not isinstance(annotations, dict):
            raise InputError(
                where, f"tools[{index}] ({item['name']}): 'annotations' must be an object"
            )
        hints = {k: v for k, v in annotations.items() if k in HINTS and isinstance(v, bool)}
        bad = tuple(
            (k, _shown(v))
            for k, v in annotations.items()
            if k in HINTS and v is not None and not isinstance(v, bool)
        )
        description = item.get("description") or annotations.get("title") or item.get("title")
        if isinstance(description, str) and not _unicode(description):
            description = description.encode("utf-8", "replace").decode("utf-8")
        tool = Tool(
            name=item["name"],
            description=description if isinstance(description, str) else None,
            hints=hints,
            bad_hints=bad,
            input_schema=item.get("inputSchema"),
            output_schema=item.get("outputSchema"),
        )
        earlier = first.setdefault(tool.name, (index, tool))
        if earlier[1] is not tool and (earlier[1].hints, earlier[1].bad_hints) != (hints, bad):
            raise InputError(
                where,
                f"tools[{earlier[0]}] and tools[{index}] are both named {tool.name!r} but give "
                "different annotations: cannot tell which one the server means",
            )
        tools.append(tool)
    return tools


def not_utf8(name: str, exc: UnicodeDecodeError) -> InputError:
    """The error for file ``name`` whose bytes failed to decode as UTF-8."""
    return InputError(
        Position(name),
        f"file is not valid UTF-8 (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})",
    )


def _unicode(text: str) -> bool:
    """False for a string holding a lone surrogate (JSON's ``"\\ud800"``): UTF-8 cannot hold it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= _SHOWN_VALUE else text[: _SHOWN_VALUE - 3] + "..."


def read_tools_file(path: str | Path) -> list[Tool]:
    """Read a ``tools/list`` result saved as JSON."""
    name = str(path)
    from agentundo.load.files import read_bytes

    data_bytes = read_bytes(path)  # a regular file of bounded size, or an InputError
    try:
        # utf-8-sig: a byte order mark, as some Windows tools write one, is skipped (RFC 8259 §8.1).
        raw = data_bytes.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise not_utf8(name, exc) from None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise InputError(
            Position(name, getattr(exc, "lineno", 0), getattr(exc, "colno", 0)),
            f"not JSON: {getattr(exc, 'msg', exc)}",
        ) from None
    _reject_duplicate_keys(raw, name)
    return parse_tools(data, name)


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as the parser read it: every key, repeated ones included."""


def _reject_duplicate_keys(raw: str, name: str) -> None:
    """An object that gives a key twice is an input error: JSON would keep only the last.

    ``raw`` already parsed as JSON; it is read again keeping every key, so that a
    ``"readOnlyHint": false`` hidden by a later ``"readOnlyHint": true`` is not lost.
    """
    try:
        tree = json.loads(raw, object_pairs_hook=_Pairs)
    except (ValueError, RecursionError):
        return  # the first parse reports what is wrong with the text
    stack: list[tuple[str, Any]] = [("", tree)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, _Pairs):
            seen: set[str] = set()
            for key, _value in node:
                if key in seen:
                    where = f" in {path}" if path else ""
                    raise InputError(
                        Position(name),
                        f"duplicate key {key!r}{where}: a JSON object must give each key once",
                    )
                seen.add(key)
            stack.extend((f"{path}.{key}" if path else key, value) for key, value in reversed(node))
        elif isinstance(node, list):
            stack.extend((f"{path}[{i}]", value) for i, value in reversed(list(enumerate(node))))


def topic_name(tool: str, prefix: str = "") -> str:
    """The catalog topic for a tool: ``prefix`` + the name, odd characters made ``_``."""
    name = _NOT_IN_NAME.sub("_", prefix + tool)
    return name if name[0].isalnum() or name[0] == "_" else "_" + name


def assign_topics(names: Iterable[str], prefix: str = "") -> dict[str, str]:
    """A distinct topic for each distinct tool name, whatever order the server lists them in.

    Names that only differ in characters a topic cannot hold (``delete user`` and
    ``delete_user``) would share one catalog entry, and one tool would be lost. In each
    such group the name that needs no change keeps the topic; the others, in sorted
    order, get ``_2``, ``_3``... (skipping topics that other tools have).
    """
    groups: dict[str, list[str]] = {}
    for name in dict.fromkeys(names):
        groups.setdefault(topic_name(name, prefix), []).append(name)
    taken = set(groups)
    assigned: dict[str, str] = {}
    for topic, members in sorted(groups.items()):
        members.sort(key=lambda name: (prefix + name != topic, name))
        assigned[members[0]] = topic
        number = 1
        for name in members[1:]:
            number += 1
            while f"{topic}_{number}" in taken:
                number += 1
            assigned[name] = f"{topic}_{number}"
            taken.add(assigned[name])
    return assigned


def guess_all(tools: Sequence[Tool], prefix: str = "") -> list[Guess]:
    """A guess for every tool, with distinct topics (:func:`assign_topics`), in order.

    A tool listed twice under the same name keeps the same topic (the merge counts it
    once); a tool whose topic had to change says so in a warning and a comment. A tool
    whose inverse the server also lists (``star_x`` and ``unstar_x``) gets it proposed
    as its compensation.
    """
    from agentundo.catalog.mcp_names import find_inverse, word_index

    topics = assign_topics((t.name for t in tools), prefix)
    natural: dict[str, list[str]] = {}
    for name in dict.fromkeys(t.name for t in tools):
        natural.setdefault(topic_name(name, prefix), []).append(name)
    by_name = {t.name: t for t in reversed(tools)}  # the first one listed counts
    index = word_index(t.name for t in tools)
    guesses: list[Guess] = []
    for tool in tools:
        topic = topics[tool.name]
        plain = topic_name(tool.name, prefix)
        note = None
        if topic != plain:
            holder = next(name for name in natural[plain] if topics[name] == plain)
            note = (
                f"MCP tools '{tool.name}' and '{holder}' both make topic '{plain}': "
                f"'{tool.name}' is imported as '{topic}'"
            )
        found = find_inverse(tool.name, index)
        inverse = None
        if found is not None and by_name[found[0]].hints.get("readOnlyHint") is not True:
            other = by_name[found[0]]
            inverse = Inverse(other, topics[other.name], found[1], found[2])
        guesses.append(guess(tool, prefix, topic=topic, note=note, inverse=inverse))
    return guesses


def guess(
    tool: Tool,
    prefix: str = "",
    *,
    topic: str | None = None,
    note: str | None = None,
    inverse: Inverse | None = None,
) -> Guess:
    """The best contract the hints allow; absent hints are guessed from the tool's name
    and description (:mod:`agentundo.catalog.mcp_names`), else take the MCP defaults.

    ``topic`` overrides the topic made from the name; ``note`` is a warning to carry;
    ``inverse`` is the tool proposed as the compensation.
    """
    from agentundo.catalog.mcp_names import additive_guess, read_only_guess

    topic = topic or topic_name(tool.name, prefix)
    given = [f"{k}={str(v).lower()}" for k, v in tool.hints.items()]
    given.extend(f"{k}={v} (not true or false)" for k, v in tool.bad_hints)
    reasons = [
        f"MCP tool '{tool.name}': " + (", ".join(given) or "no annotations (MCP defaults apply)")
    ]
    warnings = [note] if note else []
    warnings.extend(
        f"MCP tool '{tool.name}': {k} is {v}, not true or false: treated as unknown, so the "
        f"MCP default {k}={str(MCP_DEFAULTS[k]).lower()} applies"
        for k, v in tool.bad_hints
    )
    reasons.extend(f"warning: {w}" for w in warnings)
    made = functools.partial(Guess, topic=topic, tool=tool, warnings=tuple(warnings))
    if tool.hint("readOnlyHint"):
        return made(
            side_effect=False, rollback=None, risk=Risk.LOW, reasons=tuple(reasons),
            needs_review=False,
        )  # fmt: skip
    if "readOnlyHint" not in tool.hints:
        why = read_only_guess(tool.name, tool.description)
        if why is not None:
            reasons.append(
                f"guess: read-only, as {why}; the server gave no readOnlyHint, so confirm "
                "it changes nothing"
            )
            return made(side_effect=False, rollback=None, risk=Risk.LOW, reasons=tuple(reasons))
    destructive = tool.hint("destructiveHint")
    if "destructiveHint" not in tool.hints:
        additive = additive_guess(tool.name)
        if additive is not None:
            destructive = False
            reasons.append(
                f"guess: destructiveHint=false, as its verb '{additive}' adds rather than "
                "destroys (the server gave no destructiveHint)"
            )
    open_world = tool.hint("openWorldHint")
    compensation = None
    if inverse is not None:
        rollback = Rollback.COMPENSATABLE
        compensation = _compensation(tool, inverse, reasons)
    elif destructive:
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
    return made(
        side_effect=True, rollback=rollback, risk=risk, reasons=tuple(reasons),
        compensation=compensation,
    )  # fmt: skip


def _compensation(tool: Tool, inverse: Inverse, reasons: list[str]) -> CompensationGuess:
    """The inverse as the compensation; what was mapped and what is missing, as reasons."""
    from agentundo.catalog.mcp_names import map_params

    mapped = map_params(tool.input_schema, inverse.tool.input_schema, tool.output_schema)
    reasons.append(
        f"guess: compensated by MCP tool '{inverse.tool.name}' (the pair "
        f"{inverse.verb}/{inverse.opposite} by name); confirm it undoes this call"
    )
    by_name = [k for k, v in mapped.params.items() if v.startswith("{params.")]
    if by_name:
        reasons.append(f"params of '{inverse.tool.name}' taken by name: {', '.join(by_name)}")
    if mapped.from_response:
        reasons.append(
            f"{', '.join(mapped.from_response)}: assumed to come back in this call's answer "
            "({response.NAME}); check the answer has it"
        )
    if mapped.missing:
        reasons.append(
            f"'{inverse.tool.name}' also requires {', '.join(mapped.missing)}, which this "
            "call does not give: add them to compensation.params"
        )
    return CompensationGuess(inverse.topic, mapped.params)
