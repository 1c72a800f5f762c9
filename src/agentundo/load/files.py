"""One loader for every format: find files, read them safely, recognise and validate them."""

from __future__ import annotations

import difflib
import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentundo.errors import InputError, InputErrors, Position
from agentundo.load.schema import validate
from agentundo.load.yamlpos import MAX_BYTES, Document, decode, parse

YAML_SUFFIXES = (".yaml", ".yml")


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


def discover(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[Path], list[InputError]]:
    """Expand directories into their YAML files (sorted); report paths that cannot be read.

    A file reached twice (named twice, by two spellings, or through a symbolic link) is
    read once, under the first name it was reached by. A name that is not valid UTF-8 and
    anything that is not a regular file (a FIFO would block the read for ever) is an error.
    """
    candidates: list[Path] = []
    errors: list[InputError] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                candidates.extend(
                    Path(root) / name for name in sorted(files) if name.endswith(YAML_SUFFIXES)
                )
        elif path.exists():
            candidates.append(path)
        else:
            errors.append(InputError(Position(shown_path(path)), "no such file or directory"))
    found: list[Path] = []
    seen: set[str] = set()
    for path in candidates:
        shown = shown_path(path)
        if shown != str(path):
            errors.append(InputError(Position(shown), "the file name is not valid UTF-8"))
            continue
        if path.exists() and not path.is_file():
            errors.append(InputError(Position(shown), "not a regular file or directory"))
            continue
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            found.append(path)
    return found, errors


def shown_path(path: str | os.PathLike[str]) -> str:
    """``path`` as text that can always be printed: bytes that are not UTF-8 as ``\\xff``."""
    text = os.fspath(path)
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def read_bytes(path: str | os.PathLike[str], *, limit: int = MAX_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; InputError otherwise.

    A FIFO, a device (``/dev/zero``) or a file that grows while it is read would block the
    read or fill memory, so only regular files are read, and never more than ``limit``.
    """
    name = shown_path(path)
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise InputError(Position(name), "is a directory, not a file")
        if not stat.S_ISREG(mode):
            raise InputError(Position(name), "not a regular file")  # opening a FIFO blocks
        with open(path, "rb") as handle:
            raw = handle.read(limit + 1)
    except FileNotFoundError:
        raise InputError(Position(name), "no such file or directory") from None
    except OSError as exc:
        raise InputError(Position(name), f"cannot read file: {exc.strerror}") from None
    if len(raw) > limit:
        raise InputError(Position(name), f"file is larger than {limit // (1024 * 1024)} MiB")
    return raw


def read_document(path: str | os.PathLike[str]) -> Document:
    """Read and parse one YAML file."""
    name = str(path)
    return parse(decode(read_bytes(path), name), name)


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
    if not spec.strict_model or _has_null(doc.data):
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


def _looks_like_ours(data: Any) -> bool:
    if not isinstance(data, dict):
        return False
    if "version" in data or "kind" in data:
        return True
    return any(detector(data) is not None for detector in _DETECTORS)


def load_paths(
    paths: Iterable[str | os.PathLike[str]],
) -> tuple[list[LoadedFile], list[InputError]]:
    """Load every file under ``paths``; carry on past bad files and return their errors.

    A file named on the command line must be an agentundo file. A YAML file found inside
    a directory that is plainly something else (no top-level ``version`` or ``kind`` and
    no registered detector claims it: a CI workflow, a compose file) is passed over, so a
    repository can be linted whole. A directory with no agentundo file in it at all is an
    error: it is most often a path that is wrong, and "clean" would hide it.
    """
    paths = list(paths)
    named = {Path(p) for p in paths if Path(p).is_file()}
    files, errors = discover(paths)
    loaded: list[LoadedFile] = []
    passed_over: set[Path] = set()
    for path in files:
        try:
            doc = read_document(path)
            if path not in named and not _looks_like_ours(doc.data):
                passed_over.add(path)
                continue
            kind = detect_kind(doc)
            loaded.append(build(doc, kind))
        except InputErrors as exc:
            errors.extend(exc.errors)
        except InputError as exc:
            errors.append(exc)
    # a file that could not be read counts too: it is reported already
    ours = [f for f in files if f not in passed_over] + [Path(e.position.path) for e in errors]
    ours += [Path(os.path.realpath(f)) for f in ours]  # a directory named twice: read once
    errors.extend(
        InputError(
            Position(str(raw)),
            f"no agentundo files found under {raw}",
            hint="agentundo reads *.yaml and *.yml files with a top-level 'version' or "
            "'kind'; check the path",
        )
        for raw in paths
        if Path(raw).is_dir()
        and not any(f.is_relative_to(raw) or f.is_relative_to(os.path.realpath(raw)) for f in ours)
    )
    return loaded, errors
