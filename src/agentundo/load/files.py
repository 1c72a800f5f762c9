"""One loader for every format: find files, read them safely, recognise and validate them."""

from __future__ import annotations

import difflib
import gc
import os
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from agentundo.errors import InputError, InputErrors, Position
from agentundo.load.paths import YAML_SUFFIXES as YAML_SUFFIXES
from agentundo.load.paths import PassedOver as PassedOver
from agentundo.load.paths import discover as discover
from agentundo.load.paths import read_bytes as read_bytes
from agentundo.load.paths import shown_path as shown_path
from agentundo.load.schema import validate
from agentundo.load.yamlpos import Document, decode, parse


@dataclass(frozen=True, slots=True)
class Kind:
    """A file format: its name, its JSON Schema, and how to build its model."""

    name: str
    schema: str
    build: Callable[[Any], Any]
    keys: frozenset[str]
    strict_model: bool = False
    """True when ``build`` validates as strictly as the schema (no type coercion), so the
    schema only runs to explain a failure; a property test holds the two to agreement."""


def _json(data: Any) -> str:
    import json

    return json.dumps(data)


def _catalog(data: Any) -> Any:
    from agentundo.model.catalog import Catalog

    return Catalog.model_validate_json(_json(data), strict=True)


def _policy(data: Any) -> Any:
    from agentundo.model.policy import Policy

    return Policy.model_validate_json(_json(data), strict=True)


def _workflow(data: Any) -> Any:
    from agentundo.model.workflow import Workflow

    return Workflow.model_validate_json(_json(data), strict=True)


def _scenario(data: Any) -> Any:
    from agentundo.model.scenario import Scenario

    return Scenario.model_validate_json(_json(data), strict=True)


KINDS: dict[str, Kind] = {
    "catalog": Kind("catalog", "catalog", _catalog, frozenset({"topics"}), strict_model=True),
    "policy": Kind("policy", "policy", _policy, frozenset({"rules"}), strict_model=True),
    "workflow": Kind(
        "workflow", "workflow", _workflow, frozenset({"steps", "workflow"}), strict_model=True
    ),
    "scenario": Kind("scenario", "scenario", _scenario, frozenset({"scenario"}), strict_model=True),
}
"""Registered formats; later features add theirs with :func:`register_kind`."""

_DETECTORS: list[Callable[[dict[str, Any]], str | None]] = []


def register_kind(
    kind: Kind, detector: Callable[[dict[str, Any]], str | None] | None = None
) -> None:
    """Add a format; ``detector`` may claim a document before key-based recognition."""
    KINDS[kind.name] = kind
    if detector is not None:
        _DETECTORS.append(detector)


@dataclass(frozen=True, slots=True)
class LoadedFile:
    """A file that parsed and validated: its document (positions) and its model."""

    path: str
    kind: str
    doc: Document
    model: Any

    def position(self, *path: str | int, key: bool = False) -> Position:
        return self.doc.position(tuple(path), key=key)

    def kind_position(self) -> Position:
        """Where to report that this file is of the wrong kind (:func:`kind_position`)."""
        return kind_position(self.doc)


@contextmanager
def paused_collector() -> Iterator[None]:
    """Python's cyclic garbage collector off for the block, back as it was after it.

    Loading builds millions of small containers (nodes, dicts, tuples of positions) and
    no cycles; with the collector on, every 700 new containers start a pass over the
    young ones and every few passes one over all of them, which doubled the time to load
    a large project (docs/performance.md, "Lint at scale"). Reference counting still frees
    everything that is not a cycle, so memory stays as it was.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            if gc.get_count()[0] > _FREEZE_AFTER:
                gc.freeze()
            gc.enable()


_FREEZE_AFTER = 100_000
"""Containers made with the collector off past which :func:`paused_collector` freezes
them (``gc.freeze``) before turning it back on: the first pass after it would otherwise
walk every one of them (0.25 s for a large project), and again when they age. Frozen
objects are still freed when nothing refers to them; only a cycle among them would stay."""


class DocumentStore(Protocol):
    """Parsed documents kept between runs, by file name and exact bytes (the lint cache's
    :class:`~agentundo.lint.cache.Documents`): a file that has not changed is not parsed
    again. Only documents that parsed are kept; a file that does not parse is read anew."""

    def get(self, name: str, raw: bytes) -> Document | None: ...

    def put(self, name: str, raw: bytes, doc: Document) -> None: ...


def _parse(raw: bytes, text: str, name: str, store: DocumentStore | None) -> Document:
    if store is None:
        return parse(text, name)
    doc = store.get(name, raw)
    if doc is None:
        doc = parse(text, name)
        store.put(name, raw, doc)
    return doc


def read_document(path: str | os.PathLike[str], *, store: DocumentStore | None = None) -> Document:
    """Read and parse one YAML file."""
    name = str(path)
    raw = read_bytes(path)
    return _parse(raw, decode(raw, name), name, store)


_TYPE_NAMES = {
    dict: "a mapping",
    list: "a list",
    bool: "a boolean",
    int: "a number",
    float: "a number",
}


def detect_kind(doc: Document) -> str:
    """The format of a document: its ``kind:`` key, else recognised by its keys."""
    data = doc.data
    if not isinstance(data, dict):
        raise InputError(
            doc.position(()),
            "expected a mapping at the top level",
            hint="an agentundo file starts with 'version: v1' and a kind's keys",
        )
    kind = data.get("kind")
    if kind is not None:
        if not isinstance(kind, str):
            raise InputError(
                doc.position(("kind",)),
                f"'kind' must be a string, not {_TYPE_NAMES.get(type(kind), type(kind).__name__)}",
                hint="one of: " + ", ".join(sorted(KINDS)),
            )
        if kind in KINDS:
            return kind
        known = ", ".join(sorted(KINDS))
        raise InputError(
            doc.position(("kind",)), f"unknown kind {kind!r}; expected one of: {known}"
        )
    for detector in _DETECTORS:
        claimed = detector(data)
        if claimed is not None:
            return claimed
    matches = [k.name for k in KINDS.values() if k.keys <= data.keys()]
    if len(matches) == 1:
        return matches[0]
    identifying = sorted({key for k in KINDS.values() for key in k.keys})
    for key in data:
        close = difflib.get_close_matches(str(key), identifying, n=1)
        if close and key not in identifying:
            raise InputError(
                doc.position((key,), key=True),
                f"unknown key '{key}': cannot tell what this file is",
                hint=f"did you mean '{close[0]}'?",
            )
    raise InputError(
        doc.position(()),
        "cannot tell what this file is",
        hint="add 'kind: catalog', 'kind: policy' or 'kind: workflow' (or the keys of one)",
    )


def kind_position(doc: Document) -> Position:
    """Where a document says what it is: its ``kind:`` key, else line 1, column 1.

    Every "expected a workflow file, found a catalog file" points here, whichever
    command reports it.
    """
    if isinstance(doc.data, dict) and "kind" in doc.data:
        return doc.position(("kind",), key=True)
    return Position(doc.path, 1, 1)


def build(doc: Document, kind: str) -> LoadedFile:
    """Validate ``doc`` as ``kind`` and build its model.

    Kinds with a strict model validate in pydantic-core first (fast); the JSON Schema
    then runs only on failure, to give positioned messages with hints. Other kinds are
    checked against their schema first.
    """
    from pydantic import ValidationError

    spec = KINDS[kind]
    nulls = doc.nulls if doc.nulls is not None else _has_null(doc.data)
    if not spec.strict_model or nulls:
        errors = validate(doc, spec.schema)
        if errors:
            raise InputErrors(errors)
    try:
        model = build_model(spec, doc.data)
    except ValidationError as exc:
        errors = validate(doc, spec.schema) if spec.strict_model else []
        raise InputErrors(
            errors
            or [
                InputError(doc.position(tuple(e["loc"])), f"{_dotted(e['loc'])}: {e['msg']}")
                for e in exc.errors()
            ]
        ) from None
    return LoadedFile(path=doc.path, kind=kind, doc=doc, model=model)


def build_model(spec: Kind, data: Any) -> Any:
    """Build ``spec``'s model from ``data``; raise pydantic's ``ValidationError``.

    JSON Schema counts ``3.0`` as an integer and a strict model does not; a document whose
    only quarrel with the model is such a float is rebuilt with those floats made ints.
    """
    from pydantic import ValidationError

    try:
        return spec.build(data)
    except ValidationError:
        if not spec.strict_model or not _has_integral_float(data):
            raise
    return spec.build(_integral_floats_as_ints(data))


def _has_integral_float(data: Any) -> bool:
    if isinstance(data, float):
        return data.is_integer()
    if isinstance(data, dict):
        return any(_has_integral_float(v) for v in data.values())
    if isinstance(data, list):
        return any(_has_integral_float(v) for v in data)
    return False


def _integral_floats_as_ints(data: Any) -> Any:
    if isinstance(data, float) and data.is_integer():
        return int(data)
    if isinstance(data, dict):
        return {k: _integral_floats_as_ints(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_integral_floats_as_ints(v) for v in data]
    return data


def _has_null(data: Any) -> bool:
    """Whether any value is null: pydantic reads null as "absent", the schema rejects it."""
    if isinstance(data, dict):
        return any(v is None or _has_null(v) for v in data.values())
    if isinstance(data, list):
        return any(v is None or _has_null(v) for v in data)
    return False


def _dotted(loc: Iterable[Any]) -> str:
    return ".".join(str(p) for p in loc) or "document"


def load_file(path: str | os.PathLike[str], expect: str | None = None) -> LoadedFile:
    """Load one file; raise :class:`InputError` or :class:`InputErrors` on any problem."""
    doc = read_document(path)
    kind = detect_kind(doc)
    if expect is not None and kind != expect:
        raise InputError(kind_position(doc), f"expected a {expect} file, found a {kind} file")
    return build(doc, kind)


VERSION = "v1"
"""The ``version:`` of every agentundo format."""


@dataclass(slots=True)
class Scan:
    """What :func:`scan_paths` found: files that loaded, input errors, files passed over."""

    files: list[LoadedFile]
    errors: list[InputError]
    passed_over: list[PassedOver]


_UNSEEN: Any = object()
"""The value of a key read from a file that is not valid YAML: present, shape unknown."""

_TYPO_CUTOFF = 0.8
"""How close a key must be to one of a kind's keys to count as a misspelling of it when
deciding whether a file found in a directory is agentundo's (``topic`` for ``topics``)."""


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if value is None or value is _UNSEEN:
        return "empty"
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _kinds_text() -> str:
    return ", ".join(sorted(KINDS))


def _top_level_keys() -> frozenset[str]:
    """Every top-level key some registered kind allows (from the kinds' schemas)."""
    from agentundo.load.schema import load_schema

    keys: set[str] = set()
    for spec in KINDS.values():
        keys.update(load_schema(spec.schema).get("properties", {}))
        keys.update(spec.keys)
    return frozenset(keys)


def _shaped(value: Any, kind: type) -> bool:
    return value is _UNSEEN or value is None or isinstance(value, kind)


def _has_shape(data: dict[str, Any]) -> bool:
    """Whether ``data`` has the keys of one of agentundo's kinds, with their shape."""
    if "topics" in data and _shaped(data["topics"], dict):
        return True
    if "rules" in data and _shaped(data["rules"], list):
        return True
    if "workflow" in data and "steps" in data and _shaped(data["steps"], list):
        return True
    return "scenario" in data and _shaped(data["scenario"], str)


def _only_our_keys(data: dict[str, Any]) -> bool:
    """Whether every top-level key is one of agentundo's (or a near miss of a kind's key,
    ``topic:`` for ``topics:``) and one is, or nearly is, a kind's key: agentundo's file,
    even when a value has the wrong shape (``topics: [a, b]``) or a key is misspelt."""
    known = _top_level_keys()
    identifying = sorted({key for k in KINDS.values() for key in k.keys})
    kind_key = False
    for key in data:
        if key in identifying:
            kind_key = True
        elif key not in known:
            if not difflib.get_close_matches(str(key), identifying, n=1, cutoff=_TYPO_CUTOFF):
                return False
            kind_key = True
    return kind_key


def foreign_reason(data: Any, *, parsed: bool = True) -> str | None:
    """Why a document found inside a directory is not agentundo's; None when it is.

    A document is agentundo's when its ``kind:`` is one of agentundo's kinds, when a
    registered format claims it (a control plane's policy), or when it says
    ``version: v1`` and has the keys of one kind (``topics:`` mapping, ``rules:`` list,
    ``workflow:`` and ``steps:``, ``scenario:``), or only agentundo's top-level keys with
    one of a kind's keys or a near miss of one (``topic:``). One that is
    agentundo's is then checked strictly: its errors are reported. ``parsed=False``:
    ``data`` was read from a file that is not valid YAML, so shapes are unknown.
    """
    if not isinstance(data, dict):
        return "not a mapping at the top level"
    version = data.get("version")
    ours_version = version == VERSION
    if "kind" in data:
        kind = data["kind"]
        if isinstance(kind, str) and kind in KINDS:
            return None
        if ours_version and (
            not isinstance(kind, str)
            or difflib.get_close_matches(kind.lower(), list(KINDS), n=1, cutoff=_TYPO_CUTOFF)
        ):
            return None  # 'version: v1' and a misspelt kind: agentundo's, with an error
        return f"kind {_shown(kind)} is not one of agentundo's ({_kinds_text()})"
    if parsed and any(detector(data) is not None for detector in _DETECTORS):
        return None
    if ours_version:
        if _has_shape(data) or _only_our_keys(data):
            return None
        return (
            "it says 'version: v1' but has none of the keys of an agentundo file "
            "(topics, rules, workflow and steps, scenario)"
        )
    if "version" in data:
        return f"version {_shown(version)} is not agentundo's {VERSION!r}, and it has no kind:"
    return "it has neither 'version: v1' nor a kind: of agentundo's"


_SKETCH_KEY = re.compile(
    r"""^(?P<quote>["']?)(?P<key>[A-Za-z_][A-Za-z0-9_.-]*)(?P=quote)[ \t]*:(?:[ \t]+(?P<value>.*))?$"""
)
_DOCUMENT_START = re.compile(r"^---(?:[ \t]|$)")


def _scalar_text(value: str | None) -> Any:
    """The scalar a top-level value stands for, as far as a line shows it."""
    if value is None:
        return _UNSEEN
    text = value.split(" #", 1)[0].strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if not text or text[0] in "[{|>&*!":
        return _UNSEEN
    return text


def sketch(text: str) -> list[dict[str, Any]]:
    """The top-level keys of each document of ``text``, read line by line.

    For a file that is not valid YAML, or holds several documents: enough to tell whether
    it means to be agentundo's (``version: v1``, ``kind: catalog``, ``topics:``). Values
    other than short scalars are :data:`_UNSEEN`.
    """
    documents: list[dict[str, Any]] = [{}]
    for line in text.splitlines():
        if _DOCUMENT_START.match(line):
            if documents[-1]:
                documents.append({})
            continue
        match = _SKETCH_KEY.match(line)
        if match is None:
            continue
        key = match.group("key")
        value = match.group("value")
        documents[-1].setdefault(
            key, _scalar_text(value) if key in ("version", "kind") else _UNSEEN
        )
    return [d for d in documents if d] or [{}]


def _unparsed_reason(text: str, error: InputError) -> str | None:
    """Why a file that did not parse is not agentundo's; None when it looks like it is."""
    documents = sketch(text)
    for data in documents:
        if foreign_reason(data, parsed=False) is None:
            return None
    if "single document" in error.message:
        return f"it holds {len(documents)} YAML documents (---); none is agentundo's"
    if error.message == "file is empty":
        return "it is empty"
    reason = foreign_reason(documents[0], parsed=False)
    return f"{reason}, and it is not YAML agentundo reads ({error.message})"


def _read_found(path: Path, store: DocumentStore | None) -> Document | PassedOver:
    """Parse a file found inside a directory: its document, or why it is passed over.

    A file that cannot be parsed is agentundo's (and its error is raised) only when it
    shows agentundo's signs; other YAML (a Helm template, a multi-document Kubernetes
    manifest, a CloudFormation template with ``!Ref``) is passed over.
    """
    name = str(path)
    raw = read_bytes(path)
    try:
        text = decode(raw, name)
    except InputError as error:
        if b"\x00" in raw[:8192]:
            return PassedOver(name, "it is a binary file")
        why = _unparsed_reason(raw.decode("utf-8", "replace"), error)
        if why is None:
            raise
        return PassedOver(name, why)
    try:
        return _parse(raw, text, name, store)
    except InputError as error:
        why = _unparsed_reason(text, error)
        if why is None:
            raise
        return PassedOver(name, why)


def scan_paths(
    paths: Iterable[str | os.PathLike[str]], *, store: DocumentStore | None = None
) -> Scan:
    """Load every agentundo file under ``paths``; carry on past bad files.

    A file named on the command line must be an agentundo file and is checked strictly.
    A YAML file found inside a directory is loaded only when it is recognisably
    agentundo's (:func:`foreign_reason`); anything else (a compose file, a Helm chart, a
    Kubernetes manifest, a CI workflow) is passed over, with the reason. A directory with
    no agentundo file in it at all is an error: it is most often a path that is wrong, and
    "clean" would hide it.
    """
    with paused_collector():
        return _scan(list(paths), store)


def _scan(paths: list[str | os.PathLike[str]], store: DocumentStore | None) -> Scan:
    named = {Path(p) for p in paths if Path(p).is_file()}
    files, errors = discover(paths)
    loaded: list[LoadedFile] = []
    passed_over: list[PassedOver] = []
    skipped: set[Path] = set()
    for path in files:
        try:
            if path in named:
                doc = read_document(path, store=store)
            else:
                found = _read_found(path, store)
                if isinstance(found, PassedOver):
                    passed_over.append(found)
                    skipped.add(path)
                    continue
                doc = found
                reason = foreign_reason(doc.data)
                if reason is not None:
                    passed_over.append(PassedOver(str(path), reason))
                    skipped.add(path)
                    continue
            loaded.append(build(doc, detect_kind(doc)))
        except InputErrors as exc:
            errors.extend(exc.errors)
        except InputError as exc:
            errors.append(exc)
    # a file that could not be read counts too: it is reported already
    ours = [f for f in files if f not in skipped] + [Path(e.position.path) for e in errors]
    errors.extend(
        InputError(
            Position(str(raw)),
            f"no agentundo files found under {raw}",
            hint="agentundo reads *.yaml and *.yml files that have a kind: of agentundo's, "
            "or 'version: v1' and a kind's keys; check the path",
        )
        for raw in paths
        if Path(raw).is_dir() and not _holds_any(raw, ours)
    )
    return Scan(loaded, errors, passed_over)


def _holds_any(directory: str | os.PathLike[str], files: list[Path]) -> bool:
    """Whether one of ``files`` lies under ``directory``, by name or where either really
    is (a directory named twice was read once, under the first name)."""
    real = os.path.realpath(directory)
    if any(f.is_relative_to(directory) or f.is_relative_to(real) for f in files):
        return True
    return any(Path(os.path.realpath(f)).is_relative_to(real) for f in files)


def load_paths(
    paths: Iterable[str | os.PathLike[str]],
) -> tuple[list[LoadedFile], list[InputError]]:
    """Every agentundo file under ``paths`` and the input errors (:func:`scan_paths`)."""
    scan = scan_paths(paths)
    return scan.files, scan.errors
