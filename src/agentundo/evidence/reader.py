"""Read evidence files as a stream: records with their line numbers, and the lines that are not.

:func:`read_stream` turns a binary stream of JSON Lines into :class:`Record` and
:class:`BadLine` items, one per non-blank line, in file order, holding only the current
line in memory. A last line with no newline that does not parse is :attr:`LineKind.TRUNCATED`
(a run killed mid-write); every complete line before it is still yielded.

A stream that is not evidence at all (binary data, another JSON file, an empty file)
raises :class:`~agentundo.errors.InputError` from the first item, so a caller either gets
records or a clear message, never a traceback.

``keep`` is the fast path of filtered JSON output: a line for which ``keep(line)`` is false
is skipped without being parsed, after a structural check (it must look like one JSON
object) so that corruption is still reported. :func:`follow_path` tails a file that a
running drill is still writing.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from agentundo.errors import InputError, Position

STDIN = "-"
"""The path that means standard input."""

EVIDENCE_SUFFIXES = (".jsonl", ".ndjson")
"""Files a directory is searched for (recursively)."""

_SNIFF_BYTES = 4096
_MAX_LEADING_BAD = 5
"""A stream whose first this-many non-blank lines are all bad is not evidence."""
MAX_DEPTH = 500
"""Deepest nesting of arrays and objects a record may have (evidence needs a handful).

Deeper lines are malformed: parsing, hashing and showing them recurses that deep, and
Python's recursion limit (1000) turns a line of 100,000 ``[`` into a crash. 500 leaves
the rest of the stack room. A line of at most ``2 * MAX_DEPTH`` bytes cannot nest deeper,
so evidence lines (a few hundred bytes) are never scanned."""
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')
"""A JSON string (skipped whole: brackets inside it do not nest) or one bracket."""
_OPENERS = frozenset(b"[{")


class LineKind(StrEnum):
    """Why a line is not a record."""

    MALFORMED = "malformed"  # not JSON, or not valid UTF-8
    NOT_OBJECT = "not-object"  # JSON, but not an object
    NOT_RECORD = "not-record"  # an object without a string "event"
    TRUNCATED = "truncated"  # the last line, cut off mid-write


@dataclass(frozen=True, slots=True)
class Record:
    """One evidence record: where it is and what it says (every field, known or not)."""

    path: str
    line: int
    data: dict[str, Any]
    raw: bytes
    """The line as written, without its newline."""
    event: str

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)


@dataclass(frozen=True, slots=True)
class BadLine:
    """A non-blank line that is not a record."""

    path: str
    line: int
    kind: LineKind
    message: str
    column: int = 1

    def position(self) -> Position:
        return Position(self.path, self.line, self.column)


Item = Record | BadLine
Keep = Callable[[bytes], bool]


def display_path(path: str) -> str:
    return "<stdin>" if path == STDIN else path


def _too_deep(raw: bytes) -> bool:
    """Whether a line of valid JSON nests arrays and objects deeper than :data:`MAX_DEPTH`."""
    if len(raw) <= 2 * MAX_DEPTH or raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return False
    depth = 0
    for token in _TOKEN.finditer(raw):
        first = token.group()[0]
        if first in _OPENERS:
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif first != 0x22:  # a closing bracket; strings (0x22 '"') do not nest
            depth -= 1
    return False


def _too_deep_line(path: str, number: int) -> BadLine:
    return BadLine(
        path,
        number,
        LineKind.MALFORMED,
        f"malformed line: arrays or objects nested more than {MAX_DEPTH} levels deep",
    )


def _reason(error: ValueError) -> str:
    if isinstance(error, UnicodeDecodeError):
        return "not valid UTF-8"
    # Python refuses integers of more than 4300 digits rather than spend quadratic time.
    return "a number too long to read"


def _parse(raw: bytes, path: str, number: int, *, complete: bool) -> Item:
    try:
        data = json.loads(raw)
    except RecursionError:  # deeper than the interpreter can parse: malformed, never a crash
        return _too_deep_line(path, number)
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError
        if not complete:
            return BadLine(
                path,
                number,
                LineKind.TRUNCATED,
                f"truncated last line ({len(raw)} bytes, no newline): the run was cut off mid-write",
            )
        column = getattr(error, "colno", 1)
        reason = getattr(error, "msg", None) or _reason(error)
        return BadLine(path, number, LineKind.MALFORMED, f"malformed line: {reason}", column)
    if _too_deep(raw):
        return _too_deep_line(path, number)
    if not isinstance(data, dict):
        return BadLine(
            path,
            number,
            LineKind.NOT_OBJECT,
            f"not an evidence record: a JSON {type(data).__name__}, not an object",
        )
    event = data.get("event")
    if not isinstance(event, str):
        return BadLine(
            path, number, LineKind.NOT_RECORD, 'not an evidence record: no "event" field'
        )
    return Record(path, number, data, raw, event)


def _looks_like_object(raw: bytes) -> bool:
    return raw.startswith(b"{") and raw.endswith(b"}")


def _sniff(head: bytes, path: str) -> None:
    """Fail fast on input that cannot be evidence: binary data or text not starting with '{'."""
    if b"\0" in head:
        raise InputError(Position(display_path(path), 1, 1), "not an evidence file: binary data")
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text and not text.startswith(b"{"):
        raise InputError(
            Position(display_path(path), 1, 1),
            "not an evidence file: expected JSON Lines of evidence records",
            hint="give the .jsonl file a drill wrote, or a directory of them",
        )


def _lines(handle: IO[bytes]) -> Iterator[tuple[int, bytes, bool]]:
    """(1-based number, line without newline, whether it had a newline) for non-blank lines."""
    for number, line in enumerate(handle, start=1):
        complete = line.endswith(b"\n")
        raw = line.rstrip(b"\r\n") if complete else line
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if raw.strip():
            yield number, raw, complete


def read_stream(handle: IO[bytes], path: str, *, keep: Keep | None = None) -> Iterator[Item]:
    """Records and bad lines of one stream, in order; InputError when it is not evidence."""
    name = display_path(path)
    peek = getattr(handle, "peek", None)
    if callable(peek):
        _sniff(peek(_SNIFF_BYTES)[:_SNIFF_BYTES], path)
    leading: list[BadLine] = []
    seen_record = False
    for number, raw, complete in _lines(handle):
        skip = seen_record and keep is not None and complete and not keep(raw)
        if skip and _looks_like_object(raw):
            continue
        item = _parse(raw, name, number, complete=complete)
        if seen_record:
            yield item
            continue
        if isinstance(item, Record):
            seen_record = True
            yield from leading
            yield item
            continue
        leading.append(item)
        if len(leading) >= _MAX_LEADING_BAD:
            break
    if not seen_record:
        if not leading:
            raise InputError(Position(name), "empty evidence file: no records")
        if len(leading) == 1 and leading[0].kind is LineKind.TRUNCATED:
            raise InputError(leading[0].position(), leading[0].message)
        first = leading[0]
        raise InputError(
            first.position(),
            f"not an evidence file: {first.message}",
            hint="give the .jsonl file a drill wrote, or a directory of them",
        )


def read_path(path: str, *, keep: Keep | None = None) -> Iterator[Item]:
    """:func:`read_stream` over a file, or standard input for ``-``."""
    if path == STDIN:
        import sys

        yield from read_stream(sys.stdin.buffer, path, keep=keep)
        return
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below, generator owns it
    except OSError as error:
        raise InputError(Position(path), f"cannot read: {error.strerror or error}") from None
    with handle:
        yield from read_stream(handle, path, keep=keep)


def expand_paths(paths: Iterable[str]) -> list[str]:
    """Files to read: files as given, directories searched for evidence files, ``-`` as is."""
    found: list[str] = []
    for path in paths:
        if path == STDIN:
            found.append(path)
            continue
        candidate = Path(path)
        if candidate.is_dir():
            files = sorted(
                str(p)
                for p in candidate.rglob("*")
                if p.suffix in EVIDENCE_SUFFIXES and p.is_file()
            )
            if not files:
                raise InputError(
                    Position(path), "no evidence files (*.jsonl, *.ndjson) in this directory"
                )
            found.extend(files)
        elif candidate.exists():
            found.append(path)
        else:
            raise InputError(Position(path), "no such file or directory")
    return found


def first_record(path: str) -> Record | None:
    """The first record of a file (cheap: reads one line), or None when it has none."""
    try:
        with open(path, "rb") as handle:
            for number, raw, complete in _lines(handle):
                item = _parse(raw, path, number, complete=complete)
                return item if isinstance(item, Record) else None
    except OSError:
        return None
    return None


def last_record(path: str, *, window: int = 1 << 16) -> Record | None:
    """The last complete record of a file, read from its end (no line number: 0).

    Used by the run summary to find ``run_summary`` without reading the whole file;
    None when the last line is not a complete record.
    """
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size == 0:
                return None
            start = max(0, size - window)
            handle.seek(start)
            tail = handle.read()
    except OSError:
        return None
    if not tail.endswith(b"\n"):
        return None
    lines = tail.rstrip(b"\r\n").rsplit(b"\n", 1)
    raw = lines[-1].rstrip(b"\r")
    if len(lines) == 1 and start > 0:
        return None  # the last line is longer than the window
    item = _parse(raw, path, 0, complete=True)
    return item if isinstance(item, Record) else None


def follow_path(
    path: str,
    *,
    timeout: float | None = None,
    poll: float = 0.05,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Item]:
    """Tail a file a drill is writing: yield each line once complete, until ``run_summary``.

    Waits for the file to appear. Stops after yielding the ``run_summary`` record, or when
    ``timeout`` seconds have passed (a partial last line is then yielded as truncated).
    """
    deadline = None if timeout is None else clock() + timeout
    handle: IO[bytes] | None = None
    try:
        while handle is None:
            try:
                handle = open(path, "rb")  # noqa: SIM115 - closed in finally
            except FileNotFoundError:
                if deadline is not None and clock() >= deadline:
                    raise InputError(Position(path), "no such file (waited for it)") from None
                sleep(poll)
            except OSError as error:
                raise InputError(
                    Position(path), f"cannot read: {error.strerror or error}"
                ) from None
        number = 0
        pending = b""
        seen_record = False
        while True:
            chunk = handle.readline()
            if chunk:
                pending += chunk
                if not pending.endswith(b"\n"):
                    continue
                number += 1
                raw = pending.rstrip(b"\r\n")
                pending = b""
                if not raw.strip():
                    continue
                if number == 1:
                    _sniff(raw, path)
                item = _parse(raw, path, number, complete=True)
                if not seen_record and not isinstance(item, Record) and number == 1:
                    raise InputError(item.position(), f"not an evidence file: {item.message}")
                seen_record = seen_record or isinstance(item, Record)
                yield item
                if isinstance(item, Record) and item.event == "run_summary":
                    return
                continue
            if deadline is not None and clock() >= deadline:
                if pending.strip():
                    yield _parse(pending, path, number + 1, complete=False)
                return
            sleep(poll)
    finally:
        if handle is not None:
            handle.close()
