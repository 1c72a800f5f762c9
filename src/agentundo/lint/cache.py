"""The lint cache: a run whose inputs have not changed replays its result from disk.

A lint's findings are a function of the bytes of every file it reads (checks are
cross-file: a workflow's steps are checked against the catalogs and policies), of the
options that shape them, and of agentundo's own code. An entry is therefore keyed on all
of it (:func:`key`):

* the cache format, agentundo's version, and the size and modification time of every
  module and schema agentundo runs, and of the parsing and validation libraries it calls
  (an edited check or an upgraded PyYAML is another key);
* the working directory, each path as given (files named on the command line are checked
  strictly) with what it is and where it really points;
* the SHA-256 of every file found (read through any link), under the name it was found
  by, and every path that could not be found;
* the envs, ``--select``/``--ignore`` (as resolved with the configuration), the
  per-file ignores and the directory their globs are relative to.

Change any of it and the run is a miss: everything is loaded and checked again, and the
new result stored. A file that cannot be read (or is not a regular file) makes the run
uncacheable. The inputs are hashed again after the lint, and the result is stored only if
nothing changed meanwhile, so an entry never holds findings of other bytes than its key's.

A hit reads one JSON file and never imports the YAML parser, pydantic or the checks.
A miss still saves the parsing of every file whose bytes were parsed before
(:class:`Documents`); each file is validated and every check runs over all of them.

Entries live in ``$AGENTUNDO_CACHE_DIR``, else ``$XDG_CACHE_HOME/agentundo``, else
``~/.cache/agentundo``: outside the project, so a cache committed to a repository can
never stand in for a lint. ``--no-cache`` bypasses it. The :data:`KEEP` results and
:data:`KEEP_DOCUMENTS` documents used last are kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import marshal
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentundo import __version__
from agentundo.errors import InputError, Position
from agentundo.lint.engine import LintResult, PerFileIgnores, Suppressed, lint_paths
from agentundo.lint.finding import Finding, Severity
from agentundo.load.paths import PassedOver, discover, read_bytes

if TYPE_CHECKING:
    from agentundo.load.yamlpos import Document

FORMAT = 2
"""The layout of an entry; bump it when :func:`_encode` or :class:`Documents` change."""

ENV_DIR = "AGENTUNDO_CACHE_DIR"
KEEP = 256
"""Results kept; the least recently used beyond it are removed when one is stored."""
KEEP_DOCUMENTS = 20_000
"""Parsed documents kept (:class:`Documents`), likewise."""

_LIBRARIES = ("yaml", "_yaml", "pydantic", "pydantic_core", "jsonschema")
"""Libraries whose behaviour shows in findings (parse errors, validation messages)."""


@dataclass(frozen=True, slots=True)
class CachedFile:
    """A file a cached result names: its path and kind (all a report needs)."""

    path: str
    kind: str


@dataclass(frozen=True, slots=True)
class Options:
    """What shapes the findings besides the files (the report format and ``--fail-on`` do
    not: they are applied to the result)."""

    envs: tuple[str, ...]
    select: tuple[str, ...]
    ignore: tuple[str, ...]
    per_file_ignores: PerFileIgnores


def directory() -> Path | None:
    """Where entries are kept: ``$AGENTUNDO_CACHE_DIR``, else the user's cache directory
    (None when there is no home directory to put it in: no cache)."""
    explicit = os.environ.get(ENV_DIR)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME")
    if base and os.path.isabs(base):
        return Path(base) / "agentundo"
    try:
        return Path.home() / ".cache" / "agentundo"
    except (RuntimeError, KeyError):  # no HOME and no password entry
        return None


def lint(
    targets: Sequence[str], options: Options, *, fail_on: Severity, cache: Path | None
) -> LintResult:
    """:func:`~agentundo.lint.engine.lint_paths`, answered from ``cache`` when the same
    inputs were linted before (``cache=None``: always lint, store nothing). When something
    changed, the files that did not are not parsed again (:class:`Documents`)."""

    def run() -> LintResult:
        documents = None if cache is None else Documents(cache)
        result = lint_paths(
            targets,
            envs=options.envs,
            select=options.select,
            ignore=options.ignore,
            per_file_ignores=options.per_file_ignores,
            fail_on=fail_on,
            store=documents,
        )
        if documents is not None:
            documents.prune()
        return result

    if cache is None:
        return run()
    before = key(targets, options)
    if before is None:
        return run()
    entry = cache / f"{before}.json"
    hit = _load(entry)
    if hit is not None:
        hit.fail_on = fail_on
        with contextlib.suppress(OSError):
            os.utime(entry)  # a used entry is the last to be pruned
        return hit
    result = run()
    if key(targets, options) == before:  # nothing changed while it ran
        _store(cache, entry, result)
    return result


def key(targets: Sequence[str], options: Options) -> str | None:
    """The entry's name for these inputs; None when an input cannot be read."""
    try:
        return _key(targets, options)
    except (OSError, ValueError):  # a working directory gone, a path the OS refuses
        return None


def _key(targets: Sequence[str], options: Options) -> str | None:
    files, errors = discover(targets)
    hashed: list[list[str]] = []
    for path in files:
        try:
            raw = read_bytes(path)
        except InputError:
            return None
        hashed.append([str(path), hashlib.sha256(raw).hexdigest()])
    given = [[t, _what(t), os.path.realpath(t)] for t in targets]
    material = {
        "format": FORMAT,
        "version": __version__,
        "code": _code_fingerprint(),
        "cwd": os.getcwd(),
        "targets": given,
        "files": hashed,
        "missing": [str(e) for e in errors],
        "envs": list(options.envs),
        "select": list(options.select),
        "ignore": list(options.ignore),
        "per_file_ignores": [[g, list(c)] for g, c in options.per_file_ignores.entries],
        "root": str(options.per_file_ignores.root),
    }
    text = json.dumps(material, sort_keys=True, ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


class Documents:
    """Parsed documents (data, positions, comments), one file each under
    ``<cache>/documents``, named by the SHA-256 of agentundo's code fingerprint, the file's
    name and its bytes: the :class:`~agentundo.load.files.DocumentStore` of a lint.

    Documents hold only plain values (dicts, lists, tuples, strings, numbers), which
    :mod:`marshal` writes and reads back many times faster than YAML is parsed. Like
    ``__pycache__``, the directory must be the user's own.
    """

    def __init__(self, cache: Path) -> None:
        self.directory = cache / "documents"
        self.salt = _code_digest().encode("ascii")
        self.written = 0

    def _entry(self, name: str, raw: bytes) -> Path:
        digest = hashlib.sha256(self.salt)
        digest.update(name.encode("utf-8", "surrogatepass") + b"\0")
        digest.update(raw)
        return self.directory / f"{digest.hexdigest()}.marshal"

    def get(self, name: str, raw: bytes) -> Document | None:
        from agentundo.load.yamlpos import Document

        entry = self._entry(name, raw)
        try:
            with open(entry, "rb") as handle:
                blob = handle.read()
            stored = marshal.loads(blob)  # load(handle) reads value by value: 10x slower
            data, values, keys, comments, nulls = stored
            if not (isinstance(values, dict) and isinstance(keys, dict)):
                return None
            if not (isinstance(comments, dict) and isinstance(nulls, bool)):
                return None
        except (OSError, EOFError, ValueError, TypeError):
            return None
        with contextlib.suppress(OSError):
            os.utime(entry)
        return Document(name, data, values, keys, comments, nulls)

    def put(self, name: str, raw: bytes, doc: Document) -> None:
        entry = self._entry(name, raw)
        temporary = entry.with_name(f".{entry.name}.{os.getpid()}.tmp")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            _mark(self.directory.parent)
            with open(temporary, "wb") as handle:
                handle.write(
                    marshal.dumps((doc.data, doc.values, doc.keys, doc.comments, doc.nulls))
                )
            os.replace(temporary, entry)
            self.written += 1
        except (OSError, ValueError):  # ValueError: a value marshal cannot write
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)

    def prune(self) -> None:
        """Keep the :data:`KEEP_DOCUMENTS` most recently used documents."""
        if self.written:
            with contextlib.suppress(OSError):
                _prune(self.directory, ".marshal", KEEP_DOCUMENTS)


def _code_digest() -> str:
    material = json.dumps([FORMAT, __version__, _code_fingerprint()], ensure_ascii=True)
    return hashlib.sha256(material.encode("ascii")).hexdigest()


def _what(target: str) -> str:
    if os.path.isdir(target):
        return "dir"
    if os.path.isfile(target):
        return "file"
    return "other" if os.path.lexists(target) else "missing"


_FINGERPRINT: list[Any] = []


def _code_fingerprint() -> list[Any]:
    """Size and modification time of agentundo's modules and schemas and of the libraries
    in :data:`_LIBRARIES` (computed once per process)."""
    if not _FINGERPRINT:
        import importlib.util

        package = Path(__file__).resolve().parents[1]
        roots = [package, package.parents[1] / "schemas"]  # schemas: wheel or source tree
        found: list[Any] = [sys.version]
        for root in roots:
            found.extend(_stats(root))
        for name in _LIBRARIES:
            try:
                spec = importlib.util.find_spec(name)
            except (ImportError, ValueError):
                spec = None
            origin = spec.origin if spec is not None else None
            if origin is not None and os.path.exists(origin):
                found.append([name, *_stat(origin)])
                found.extend(_stats(Path(origin).parent, depth=0))
            else:
                found.append([name, None])
        _FINGERPRINT.extend(found)
    return _FINGERPRINT


def _stat(path: str | os.PathLike[str]) -> list[int]:
    info = os.stat(path)
    return [info.st_size, info.st_mtime_ns]


def _stats(root: Path, depth: int = 8) -> list[list[Any]]:
    """``[path, size, mtime]`` of the code and schema files under ``root``."""
    found: list[list[Any]] = []
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return found
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            if depth > 0 and entry.name != "__pycache__":
                found.extend(_stats(Path(entry.path), depth - 1))
        elif entry.name.endswith((".py", ".json", ".so", ".pyd")):
            info = entry.stat()
            found.append([entry.path, info.st_size, info.st_mtime_ns])
    return found


def _encode(result: LintResult) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "files": [[f.path, f.kind] for f in result.files],
        "findings": [list(f) for f in result.findings],
        "input_errors": [
            [e.position.path, e.position.line, e.position.column, e.message, e.hint]
            for e in result.input_errors
        ],
        "checks": list(result.checks),
        "suppressed": result.suppressed,
        "suppressions": [[*s.finding, s.reason] for s in result.suppressions],
        "passed_over": [[p.path, p.reason] for p in result.passed_over],
    }


def _finding(item: list[Any]) -> Finding:
    path, line, column, code, severity, message, hint = item
    return Finding(path, line, column, code, Severity(severity), message, hint)


def _decode(data: dict[str, Any]) -> LintResult:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError("another cache format")
    return LintResult(
        files=[CachedFile(str(path), str(kind)) for path, kind in data["files"]],
        findings=[_finding(item) for item in data["findings"]],
        input_errors=[
            InputError(Position(path, line, column), message, hint)
            for path, line, column, message, hint in data["input_errors"]
        ],
        checks=tuple(str(code) for code in data["checks"]),
        suppressed=int(data["suppressed"]),
        suppressions=[Suppressed(_finding(item[:7]), item[7]) for item in data["suppressions"]],
        passed_over=[PassedOver(str(path), str(reason)) for path, reason in data["passed_over"]],
    )


def _load(entry: Path) -> LintResult | None:
    """The result stored in ``entry``; None when there is none or it cannot be read."""
    try:
        with open(entry, encoding="utf-8") as handle:
            return _decode(json.load(handle))
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None  # not an entry of this format: lint, and write it again


def _store(cache: Path, entry: Path, result: LintResult) -> None:
    """Write ``entry`` atomically (a cache that cannot be written is no error)."""
    temporary = entry.with_name(f".{entry.name}.{os.getpid()}.tmp")
    try:
        cache.mkdir(parents=True, exist_ok=True)
        _mark(cache)
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(_encode(result), handle, separators=(",", ":"))
        os.replace(temporary, entry)
        _prune(cache, ".json", KEEP)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


def _mark(cache: Path) -> None:
    """Tell backup tools and git that the directory is a cache (``CACHEDIR.TAG``)."""
    tag = cache / "CACHEDIR.TAG"
    if not tag.exists():
        tag.write_text(
            "Signature: 8a477f597d28d172789f06886806bc55\n"
            "# This file is a cache directory tag created by agentundo.\n",
            encoding="ascii",
        )
        (cache / ".gitignore").write_text("# created by agentundo\n*\n", encoding="ascii")


def _prune(directory: Path, suffix: str, keep: int) -> None:
    entries = [e for e in os.scandir(directory) if e.name.endswith(suffix) and e.is_file()]
    if len(entries) <= keep:
        return
    entries.sort(key=lambda e: e.stat().st_mtime_ns)
    for old in entries[: len(entries) - keep]:
        with contextlib.suppress(OSError):
            os.unlink(old.path)
