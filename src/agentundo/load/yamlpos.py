"""Parse YAML into plain data plus a map of positions, refusing what would surprise.

Only PyYAML's safe loader is used: it composes a node graph, and this module turns
nodes into JSON-compatible values itself so that it can

* keep the line and column of every key and value,
* reject duplicate keys instead of silently keeping the last one,
* reject YAML 1.1 booleans such as ``no`` or ``on`` that a reader takes for strings,
* bound the work an alias bomb can cause (aliases are counted as they expand),
* bound nesting depth, so a hostile file cannot exhaust the stack.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from agentundo.errors import InputError, Position
from agentundo.load.paths import MAX_BYTES as MAX_BYTES

JsonPath = tuple[str | int, ...]

MAX_NODES = 1_000_000
MAX_ALIASED_NODES = 100_000
MAX_DEPTH = 64

_TAG = "tag:yaml.org,2002:"
_SEXAGESIMAL = re.compile(r"^[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?$")

try:  # libyaml is much faster; the pure-Python loader behaves the same.
    _Base: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _Base = yaml.SafeLoader

_STR = _TAG + "str"
_MAP = _TAG + "map"
_NULL = _TAG + "null"
_BOOL = _TAG + "bool"
_MERGE = _TAG + "merge"
_NUMBERS = (_TAG + "int", _TAG + "float")
_AS_TEXT = (_TAG + "timestamp", _TAG + "binary")
_COLLECTIONS = (_TAG + "seq", _MAP)
_ScalarNode = yaml.ScalarNode
_MappingNode = yaml.MappingNode
_NO_PATHS: dict[Any, Any] = {}
_RESOLVED: dict[str, str] = {}
_IMPLICIT_FIRST = frozenset(k for k in _Base.yaml_implicit_resolvers if k is not None)
"""First characters of the plain scalars that an implicit resolver may read as something
other than a string (``1``, ``t`` for ``true``, ``~``, ...)."""
_ONLY_BY_FIRST = None not in _Base.yaml_implicit_resolvers and not _Base.yaml_path_resolvers
"""Whether a plain scalar's tag depends on nothing but its text (no resolver for every
first character, no path resolver): true of PyYAML's safe loader."""


class _Loader(_Base):  # type: ignore[valid-type,misc]
    """The safe loader, resolving scalars cheaply.

    libyaml calls :meth:`resolve` from C for every scalar (278,000 times for a large
    project). A quoted or block scalar is always a string; so is a plain one whose first
    character no implicit resolver looks at (most names); the others are remembered by
    their text (keys and values repeat a lot). Each answer is the one PyYAML would give.
    """

    if _ONLY_BY_FIRST:
        # libyaml also calls these two around every node, for path resolvers; with none
        # they do nothing, and a C builtin does nothing cheaper than a Python method:
        # descend_resolver(parent, index) -> {}.get(parent, index); ascend_resolver() -> 0
        descend_resolver = _NO_PATHS.get
        ascend_resolver = int

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: Any) -> str:
        if kind is not _ScalarNode or not _ONLY_BY_FIRST:
            if kind is _MappingNode and _ONLY_BY_FIRST:
                return _MAP
            return str(super().resolve(kind, value, implicit))
        if not implicit[0]:  # quoted, block, or the non-specific tag '!': never resolved
            return _STR
        if value and value[0] not in _IMPLICIT_FIRST:
            return _STR
        tag = _RESOLVED.get(value)
        if tag is None:
            tag = str(super().resolve(kind, value, implicit))
            if len(value) <= 64 and len(_RESOLVED) < 65536:
                _RESOLVED[value] = tag
        return tag


@dataclass(slots=True)
class Document:
    """A parsed YAML file: its data and where each key and value came from."""

    path: str
    data: Any
    values: dict[JsonPath, tuple[int, int]] = field(default_factory=dict)
    keys: dict[JsonPath, tuple[int, int]] = field(default_factory=dict)
    comments: dict[int, tuple[int, str]] = field(default_factory=dict)
    """Line → (column of its ``#``, text after it) of comments that mention agentundo."""
    nulls: bool | None = None
    """Whether any value is null, as the parser saw (None: not known, look at ``data``)."""

    def position(self, path: JsonPath, *, key: bool = False) -> Position:
        """Best position for ``path``: the exact node, else its nearest ancestor."""
        table = self.keys if key else self.values
        probe = path
        while True:
            found = table.get(probe) or self.values.get(probe)
            if found is not None:
                return Position(self.path, found[0], found[1])
            if not probe:
                return Position(self.path, 1, 1)
            probe = probe[:-1]


def decode(raw: bytes, path: str) -> str:
    """Decode file bytes as UTF-8, with a clear error for binary or mis-encoded files."""
    if len(raw) > MAX_BYTES:
        raise InputError(Position(path), f"file is larger than {MAX_BYTES // (1024 * 1024)} MiB")
    if b"\x00" in raw[:8192]:
        raise InputError(Position(path, 1, 1), "file looks binary (it contains NUL bytes)")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        raise InputError(
            Position(path, line, column),
            f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
            hint="save the file as UTF-8",
        ) from None


_LONGEST_KEY = 1024
"""YAML reads a key without ``?`` only when it is at most this long (YAML 1.2, 7.4.2)."""


def parse(text: str, path: str) -> Document:
    """Parse one YAML document; raise :class:`InputError` with a position on any problem."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if "another document" in problem:
            problem = "expected a single document, but found another one (---)"
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        hint = None
        if column > _LONGEST_KEY and "mapping values are not allowed" in problem:
            hint = f"a YAML mapping key may be at most {_LONGEST_KEY} characters long"
        raise InputError(
            Position(path, line, column), f"YAML syntax error: {problem}", hint
        ) from None
    except yaml.YAMLError as exc:
        raise InputError(Position(path, 1, 1), f"YAML error: {exc}") from None
    except RecursionError:
        raise InputError(Position(path, 1, 1), "YAML nesting is too deep") from None
    finally:
        loader.dispose()
    if node is None:
        raise InputError(Position(path, 1, 1), "file is empty")
    doc = Document(path=path, data=None)
    builder = _Builder(doc, loader)
    doc.data = builder.build(node, (), 0)
    doc.nulls = builder.nulls
    doc.comments = _comments(text, node)
    return doc


_MENTION = re.compile("agentundo", re.IGNORECASE)


def _comments(text: str, root: yaml.Node) -> dict[int, tuple[int, str]]:
    """Line number → (column of the ``#``, comment text) of the comments that mention
    agentundo (any case), for the inline-suppression machinery (which also reports
    misspelt suppressions).

    A ``#`` starts a comment only at the start of a line or after a space or tab, and
    never inside a quoted or block scalar: ``description: "# agentundo: ignore[AU101]"``
    is text, and suppresses nothing.
    """
    found: dict[int, tuple[int, str]] = {}
    if "#" not in text or _MENTION.search(text) is None:
        return found
    candidates = [
        (number, line)
        for number, line in enumerate(text.splitlines(), start=1)
        if "#" in line and _MENTION.search(line) is not None
    ]
    if not candidates:
        return found
    spans = _scalar_spans(root)
    for number, line in candidates:
        index = line.find("#")
        while index >= 0:
            starts_comment = index == 0 or line[index - 1] in " \t"
            if starts_comment and not _inside(spans, number - 1, index):
                if _MENTION.search(line, index) is not None:
                    found[number] = (index + 1, line[index + 1 :].strip())
                break
            index = line.find("#", index + 1)
    return found


_Span = tuple[tuple[int, int], tuple[int, int]]


def _scalar_spans(root: yaml.Node) -> list[_Span]:
    """Where each quoted or block scalar lies ((line, column) from and to, 0-based): a
    plain scalar cannot hold a ``#`` after a space, the others can."""
    spans: list[_Span] = []
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:  # an alias: the same node again
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            if node.style:
                start, end = node.start_mark, node.end_mark
                spans.append(((start.line, start.column), (end.line, end.column)))
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.extend((key, value))
        else:
            stack.extend(node.value)
    return spans


def _inside(spans: list[_Span], line: int, column: int) -> bool:
    return any(start <= (line, column) < end for start, end in spans)


_CONSTRUCTORS = {
    _TAG + name: yaml.SafeLoader.yaml_constructors[_TAG + name]
    for name in ("bool", "int", "float", "null")
}
"""The safe loader's constructors of the scalars that are not strings."""


class _Builder:
    def __init__(self, doc: Document, loader: yaml.SafeLoader) -> None:
        self.doc = doc
        self.loader = loader
        self.count = 0
        self.aliased = 0
        self.nulls = False
        self.seen: set[int] = set()
        self.open: set[int] = set()  # the collections being built: an alias to one is a loop

    def error(self, node: yaml.Node, message: str, hint: str | None = None) -> InputError:
        mark = node.start_mark
        return InputError(Position(self.doc.path, mark.line + 1, mark.column + 1), message, hint)

    def build(self, node: yaml.Node, path: JsonPath, depth: int, alias: bool = False) -> Any:
        self.count += 1
        if not isinstance(node, yaml.ScalarNode):
            if id(node) in self.seen:
                alias = True
                if id(node) in self.open:
                    raise self.error(
                        node,
                        "recursive alias: an anchor is used inside its own value",
                        hint="a YAML value cannot contain itself; copy what you need instead",
                    )
            self.seen.add(id(node))
        if alias:
            self.aliased += 1
        if self.aliased > MAX_ALIASED_NODES:
            raise self.error(
                node,
                "document expands to too many nodes through aliases",
                hint="aliases (*name) that repeat anchors many times look like an alias bomb",
            )
        if self.count > MAX_NODES:
            raise self.error(node, f"document has more than {MAX_NODES:,} nodes")
        if depth > MAX_DEPTH:
            raise self.error(node, f"nesting deeper than {MAX_DEPTH} levels")
        self.doc.values.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        if not isinstance(node, yaml.ScalarNode) and node.tag not in _COLLECTIONS:
            raise self.error(
                node, f"unsupported YAML tag {node.tag}", hint="remove the explicit tag"
            )
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [
                    self.build(item, (*path, i), depth + 1, alias)
                    for i, item in enumerate(node.value)
                ]
            if isinstance(node, yaml.MappingNode):
                return self.mapping(node, path, depth, alias)
        finally:
            self.open.discard(id(node))
        raise self.error(node, "unsupported YAML node")  # pragma: no cover

    def mapping(
        self, node: yaml.MappingNode, path: JsonPath, depth: int, alias: bool = False
    ) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        keys, values = self.doc.keys, self.doc.values
        inline = not alias and depth < MAX_DEPTH
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merged.update(self.merge(value_node, path, depth, alias))
                continue
            if not isinstance(key_node, _ScalarNode):
                raise self.error(key_node, "mapping keys must be plain strings")
            key = str(key_node.value)
            if key in result:
                first = keys[(*path, key)]
                raise self.error(
                    key_node,
                    f"duplicate key '{key}' (first defined at line {first[0]})",
                    hint="YAML keeps only the last value of a repeated key; remove one",
                )
            child = (*path, key)
            mark = key_node.start_mark
            keys[child] = (mark.line + 1, mark.column + 1)
            if inline and value_node.__class__ is _ScalarNode:
                # most values: what build() does for a scalar, without the call
                self.count += 1
                if self.count > MAX_NODES:
                    raise self.error(value_node, f"document has more than {MAX_NODES:,} nodes")
                mark = value_node.start_mark
                values.setdefault(child, (mark.line + 1, mark.column + 1))
                if value_node.tag == _STR:  # most of those: scalar()'s first answer
                    result[key] = str(value_node.value)
                else:
                    result[key] = self.scalar(value_node)
            else:
                result[key] = self.build(value_node, child, depth + 1, alias)
        for key, value in merged.items():
            result.setdefault(key, value)
        return result

    def merge(self, node: yaml.Node, path: JsonPath, depth: int, alias: bool) -> dict[str, Any]:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        combined: dict[str, Any] = {}
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                raise self.error(source, "a merge key (<<) takes a mapping or a list of mappings")
            if id(source) in self.open:
                raise self.error(
                    source,
                    "recursive alias: a mapping merges itself (<<)",
                    hint="a YAML value cannot contain itself; copy what you need instead",
                )
            self.open.add(id(source))
            try:
                merged = self.mapping(source, path, depth + 1, True)
            finally:
                self.open.discard(id(source))
            for key, value in merged.items():
                combined.setdefault(key, value)
        return combined

    def scalar(self, node: yaml.ScalarNode) -> Any:
        tag = node.tag
        if tag == _STR or node.style in ("'", '"', "|", ">"):
            return str(node.value)
        if tag == _BOOL and node.value.lower() not in ("true", "false"):
            raise self.error(
                node,
                f"ambiguous value '{node.value}': YAML 1.1 reads it as a boolean, YAML 1.2 as a string",
                hint=f'write true or false for a boolean, or quote it ("{node.value}") for a string',
            )
        if tag in _NUMBERS and _SEXAGESIMAL.match(node.value):
            raise self.error(
                node,
                f"ambiguous value '{node.value}': YAML 1.1 reads it as a base-60 number",
                hint=f'quote it ("{node.value}") if you mean a string',
            )
        if tag in _AS_TEXT:
            return str(node.value)
        construct = _CONSTRUCTORS.get(tag)
        if construct is not None:
            if tag == _NULL:
                self.nulls = True
            try:  # the safe constructor's own function, without construct_object's books
                return construct(self.loader, node)
            except (yaml.YAMLError, ValueError) as exc:  # pragma: no cover - defensive
                raise self.error(node, f"invalid scalar '{node.value}': {exc}") from None
        raise self.error(node, f"unsupported YAML tag {tag}", hint="remove the explicit tag")
