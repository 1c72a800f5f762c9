"""Read evidence files as a stream: records with their line numbers, and the lines that are not.

:func:`read_stream` turns a binary stream of JSON Lines into :class:`Record` and
:class:`BadLine` items, one per non-blank line, in file order, holding only the current
line in memory. A last line with no newline that does not parse is :attr:`LineKind.TRUNCATED`
(a run killed mid-write); every complete line before it is still yielded.

A stream that is not evidence at all (binary data, another JSON file, an empty file)
raises :class:`~agentundo.errors.InputError` from the first item, so a caller either gets
records or a clear message, never a traceback. No line is held longer than
:data:`MAX_LINE_BYTES`: a longer one is malformed, skipped without being kept in memory.
What the writer never writes but a reader can forgive (a UTF-8 byte order mark, a carriage
return before the newline) is stripped and named in :attr:`Record.altered`; blank lines are
skipped, or yielded as :attr:`LineKind.BLANK` when ``blanks`` is true (for verification).

``keep`` is the fast path of filtered JSON output: a line for which ``keep(line)`` is false
is skipped without being parsed, after a structural check (it must look like one JSON
object) so that corruption is still reported. :func:`follow_path` tails a file that a
running drill is still writing.

Gzip-compressed evidence (a sweep's ``<run_id>.jsonl.gz``, or any stream starting with the
gzip magic bytes, standard input included) is inflated transparently, a chunk at a time
(:mod:`agentundo.evidence.gzip_lines`): every function here reads it as it reads the
plain file. A compressed stream cut off before its end is a :attr:`LineKind.TRUNCATED`
line after the last complete one; corrupt compressed data, a failed CRC or trailing
bytes that are not gzip are a :attr:`LineKind.MALFORMED` one there.
"""

from __future__ import annotations

import json
import json.scanner
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, cast

from agentundo.errors import InputError, Position
from agentundo.evidence.events import Event
from agentundo.evidence.gzip_lines import Gunzip, GzipProblem, is_gzip

STDIN = "-"
"""The path that means standard input."""

EVIDENCE_SUFFIXES = (".jsonl", ".ndjson")
"""Files a directory is searched for (recursively), also gzip-compressed
(:data:`COMPRESSED_SUFFIX`, as a sweep stores its runs)."""
COMPRESSED_SUFFIX = ".gz"
_COMPRESSED = "compressed evidence: "

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
MAX_LINE_BYTES = 16 << 20
"""Longest line read, 16 MiB (evidence lines are a few hundred bytes, a large run_summary a
few hundred kB). A longer line is malformed and is skipped without being held in memory;
``--follow`` refuses it as an input error, since it cannot wait for its end for ever."""
_BLOCK = 1 << 18
"""Bytes read at a time by the line splitter."""
_HINT = "give the .jsonl file a drill wrote, or a directory of them"
_BOM = b"\xef\xbb\xbf"
_SURROGATE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
"""What can decode to a surrogate: a ``\\uD800``-``\\uDFFF`` escape (any case), or its UTF-8
form (which :func:`json.loads` decodes with ``surrogatepass``). Only lines with a backslash
or a non-ASCII byte are searched for one, and only lines holding one are walked: a valid
escaped pair decodes to one character and passes."""
_SURROGATE = re.compile("[\ud800-\udfff]")


class LineKind(StrEnum):
    """Why a line is not a record."""

    MALFORMED = "malformed"  # not JSON, or not valid UTF-8
    NOT_OBJECT = "not-object"  # JSON, but not an object
    NOT_RECORD = "not-record"  # an object without a string "event"
    TRUNCATED = "truncated"  # the last line, cut off mid-write
    BLANK = "blank"  # an empty or white-space line; yielded only when asked (verification)


@dataclass(frozen=True, slots=True)
class Record:
    """One evidence record: where it is and what it says (every field, known or not)."""

    path: str
    line: int
    data: dict[str, Any]
    raw: bytes
    """The line as written, without its newline (and without what :attr:`altered` names)."""
    event: str
    altered: str = ""
    """What the reader stripped that the writer never writes (a byte order mark, a carriage
    return before the newline), as words; empty for a line read as written."""

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


def _too_long_line(path: str, number: int, size: int) -> BadLine:
    return BadLine(
        path,
        number,
        LineKind.MALFORMED,
        f"malformed line: {size} bytes, longer than the {MAX_LINE_BYTES >> 20} MiB a line may "
        "have (it was skipped, not read)",
    )


def _blank_lines(path: str, number: int, count: int) -> BadLine:
    what = "a blank line" if count == 1 else f"{count} blank lines (from this line on)"
    return BadLine(
        path, number, LineKind.BLANK, f"{what}: the writer never writes one (a line was inserted)"
    )


def _lone_surrogate(data: object) -> str | None:
    """A lone surrogate in a parsed record's strings (keys included), or None."""
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            found = _SURROGATE.search(value)
            if found:
                return found.group()
        elif isinstance(value, dict):
            stack.extend(value)
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return None


def _reason(error: ValueError) -> str:
    if isinstance(error, UnicodeDecodeError):
        return "not valid UTF-8"
    # Python refuses integers of more than 4300 digits rather than spend quadratic time.
    return "a number too long to read"


_SCAN: Callable[[str, int], tuple[Any, int]] = json.scanner.make_scanner(
    json.JSONDecoder()  # type: ignore[arg-type]  # the stub names the class, not the decoder
)
"""The decoder's own scanner (``json.loads`` without its checks of encoding and spacing)."""


def _loads(raw: bytes) -> Any:
    """``json.loads(raw)``, faster for a line that starts with ``{`` (UTF-8 then, as
    ``json.loads`` detects it): the scanner is called at once, and anything but a value
    that ends the line exactly goes to ``json.loads`` itself for its answer or error."""
    if raw[:1] == b"{" and raw[1:2] != b"\0":
        try:
            text = raw.decode("utf-8", "surrogatepass")
            data, end = _SCAN(text, 0)
            if end == len(text):
                return data
        except (ValueError, StopIteration, RecursionError):
            pass
    return json.loads(raw)


def _parse(raw: bytes, path: str, number: int, *, complete: bool, altered: str = "") -> Item:
    try:
        data = _loads(raw)
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
    if (b"\\" in raw or not raw.isascii()) and _SURROGATE_BYTES.search(raw):
        lone = _lone_surrogate(data)
        if lone is not None:  # not text: it cannot be shown, hashed or written as UTF-8
            return BadLine(
                path,
                number,
                LineKind.MALFORMED,
                f"malformed line: a string holds a lone surrogate (\\u{ord(lone):04x}), which "
                "is not a character",
            )
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
    return Record(path, number, data, raw, event, altered)


def _looks_like_object(raw: bytes) -> bool:
    return raw.startswith(b"{") and raw.endswith(b"}")


def _not_evidence(first: BadLine) -> InputError:
    """The error for input whose first non-blank line is ``first``, not a record."""
    if first.kind is LineKind.TRUNCATED or first.message.startswith(_COMPRESSED):
        return InputError(first.position(), first.message)  # cut off or corrupt: say just that
    return InputError(first.position(), f"not an evidence file: {first.message}", hint=_HINT)


def _sniff(head: bytes, path: str) -> None:
    """Fail fast on input that cannot be evidence: binary data or text not starting with '{'."""
    if b"\0" in head:
        raise InputError(Position(display_path(path), 1, 1), "not an evidence file: binary data")
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text and not text.startswith(b"{"):
        raise InputError(
            Position(display_path(path), 1, 1),
            "not an evidence file: expected JSON Lines of evidence records",
            hint=_HINT,
        )


_Line = tuple[int, bytes, bool, str]
"""(1-based number, the line without its newline, whether it had one, what was stripped)."""


def _strip(line: bytes, number: int) -> _Line:
    """Split what the writer writes from what it never does: a BOM, a CR before the newline."""
    complete = line.endswith(b"\n")
    raw = line.rstrip(b"\r\n") if complete else line
    crlf = complete and len(raw) < len(line) - 1
    bom = number == 1 and raw.startswith(_BOM)
    if bom:
        raw = raw[len(_BOM) :]
    altered = [
        what
        for what, found in (
            ("starts with a UTF-8 byte order mark", bom),
            ("ends in a carriage return before its newline (CRLF)", crlf),
        )
        if found
    ]
    return number, raw, complete, " and ".join(altered)


def _lines(handle: IO[bytes], path: str) -> Iterator[_Line | BadLine]:
    """Every line, blank ones included; a line over :data:`MAX_LINE_BYTES` as a bad line.

    Reads blocks of :data:`_BLOCK` bytes and splits them (a line at a time costs more
    than the checks that follow); the start of a line not yet ended is kept as pieces,
    and one that grows past :data:`MAX_LINE_BYTES` is dropped and skipped to its end.
    """
    number = 0
    pieces: list[bytes] = []  # the start of a line whose newline has not been read yet
    held = 0  # bytes in pieces
    skipped = 0  # > 0: the bytes of an over-long line being skipped to its end
    while block := handle.read(_BLOCK):
        if skipped:
            cut = block.find(b"\n")
            if cut < 0:
                skipped += len(block)
                continue
            number += 1
            yield _too_long_line(path, number, skipped + cut + 1)
            skipped = 0
            block = block[cut + 1 :]
        lines = block.split(b"\n")
        if len(lines) > 1 and pieces:
            lines[0] = b"".join([*pieces, lines[0]])
            pieces, held = [], 0
        last = lines.pop()
        for line in lines:
            number += 1
            if len(line) > MAX_LINE_BYTES:
                yield _too_long_line(path, number, len(line) + 1)
            elif number == 1 or line.endswith(b"\r"):  # a BOM to look for, or a CR
                yield _strip(line + b"\n", number)
            else:
                yield number, line, True, ""
        if last:
            pieces.append(last)
            held += len(last)
            if held > MAX_LINE_BYTES:
                skipped, pieces, held = held, [], 0
    if skipped:
        number += 1
        yield _too_long_line(path, number, skipped)
    elif pieces:  # the last line, without a newline
        number += 1
        yield _strip(b"".join(pieces), number)
    problem = getattr(handle, "problem", None)
    if isinstance(problem, GzipProblem):
        kind = LineKind.TRUNCATED if problem.truncated else LineKind.MALFORMED
        yield BadLine(path, number + 1, kind, f"{_COMPRESSED}{problem.message}")


def _inflated(handle: IO[bytes]) -> IO[bytes]:
    """``handle``, or its inflated lines when it starts as gzip does (read transparently)."""
    peek = getattr(handle, "peek", None)
    if callable(peek) and is_gzip(peek(2)[:2]):
        return cast("IO[bytes]", Gunzip(handle))
    return handle


def read_stream(
    handle: IO[bytes], path: str, *, keep: Keep | None = None, blanks: bool = False
) -> Iterator[Item]:
    """Records and bad lines of one stream, in order; InputError when it is not evidence.

    ``blanks``: also yield each run of blank lines as one :attr:`LineKind.BLANK` bad line
    (at its first line), for verification; otherwise blank lines are skipped.
    """
    name = display_path(path)
    handle = _inflated(handle)
    peek = getattr(handle, "peek", None)
    if callable(peek):
        _sniff(peek(_SNIFF_BYTES)[:_SNIFF_BYTES], path)
    leading: list[BadLine] = []
    bad = 0
    seen_record = False
    blank_at = blank_count = 0
    for line in _lines(handle, name):
        if isinstance(line, BadLine):
            item: Item = line
        else:
            number, raw, complete, altered = line
            if not raw.strip():
                if blanks:
                    blank_at = blank_at or number
                    blank_count += 1
                continue
            skip = seen_record and keep is not None and complete and not keep(raw)
            if skip and _looks_like_object(raw):
                continue
            item = _parse(raw, name, number, complete=complete, altered=altered)
        if seen_record and not blank_count:
            yield item
            continue
        batch = [_blank_lines(name, blank_at, blank_count), item] if blank_count else [item]
        blank_at = blank_count = 0
        for one in batch:
            if seen_record:
                yield one
            elif isinstance(one, Record):
                seen_record = True
                yield from leading
                yield one
            else:
                leading.append(one)
                bad += one.kind is not LineKind.BLANK
        if bad >= _MAX_LEADING_BAD:
            break
    if blank_count and seen_record:
        yield _blank_lines(name, blank_at, blank_count)
    if not seen_record:
        leading = [item for item in leading if item.kind is not LineKind.BLANK]
        if not leading:
            raise InputError(Position(name), "empty evidence file: no records")
        raise _not_evidence(leading[0])


def read_path(path: str, *, keep: Keep | None = None, blanks: bool = False) -> Iterator[Item]:
    """:func:`read_stream` over a file, or standard input for ``-``."""
    if path == STDIN:
        import sys

        yield from read_stream(sys.stdin.buffer, path, keep=keep, blanks=blanks)
        return
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below, generator owns it
    except OSError as error:
        raise InputError(Position(path), f"cannot read: {error.strerror or error}") from None
    with handle:
        yield from read_stream(handle, path, keep=keep, blanks=blanks)


def _evidence_name(path: Path) -> bool:
    suffix = path.suffix
    if suffix == COMPRESSED_SUFFIX:
        suffix = Path(path.stem).suffix
    return suffix in EVIDENCE_SUFFIXES


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
                str(p) for p in candidate.rglob("*") if _evidence_name(p) and p.is_file()
            )
            if not files:
                raise InputError(
                    Position(path),
                    "no evidence files (*.jsonl, *.ndjson, or either .gz) in this directory",
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
            for line in _lines(_inflated(handle), path):
                if isinstance(line, BadLine):
                    return None
                number, raw, complete, altered = line
                if raw.strip():
                    item = _parse(raw, path, number, complete=complete, altered=altered)
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
            if is_gzip(handle.peek(2)[:2]):
                return _last_inflated(Gunzip(handle), path)
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


def _last_inflated(handle: Gunzip, path: str) -> Record | None:
    """The last complete record of a compressed file: read through (a sweep run's file is
    small), holding one line at a time."""
    last = b""
    while line := handle.readline(MAX_LINE_BYTES + 1):
        if line.strip():
            last = line
    if handle.problem is not None or not last.endswith(b"\n"):
        return None
    item = _parse(last.rstrip(b"\r\n"), path, 0, complete=True)
    return item if isinstance(item, Record) else None


def follow_path(
    path: str,
    *,
    timeout: float | None = None,
    poll: float = 0.05,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    blanks: bool = False,
) -> Iterator[Item]:
    """Tail a file a drill is writing: yield each line once complete, until ``run_summary``.

    Waits for the file to appear and for its first line (a drill may not have written it
    yet). Stops after yielding the ``run_summary`` record, or when ``timeout`` seconds have
    passed: a partial last line is then yielded as truncated. Input that is not evidence is
    an InputError as it shows, as :func:`read_stream` would raise it: first bytes that are
    binary or do not start with ``{``, a first complete line that is not a record, or, at
    ``timeout``, a file still without a record (empty, or one partial line). A line longer
    than :data:`MAX_LINE_BYTES` is an InputError: its end cannot be waited for for ever.
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
        if _inflated(handle) is not handle:  # a finished sweep run: nothing more will come
            yield from read_stream(handle, path, blanks=blanks)
            return
        number = 0
        pending = b""
        seen_record = False
        blank_at = blank_count = 0
        while True:
            chunk = handle.readline(MAX_LINE_BYTES + 1 - len(pending))
            if chunk:
                pending += chunk
                if not pending.endswith(b"\n"):
                    if not seen_record:
                        _sniff(pending[:_SNIFF_BYTES], path)
                    if len(pending) > MAX_LINE_BYTES:
                        raise InputError(
                            Position(path, number + 1, 1),
                            f"a line longer than {MAX_LINE_BYTES >> 20} MiB, which no evidence "
                            "record is: not followed further",
                        )
                    continue
                number, raw, _, altered = _strip(pending, number + 1)
                pending = b""
                if not raw.strip():
                    if blanks:
                        blank_at = blank_at or number
                        blank_count += 1
                    continue
                if not seen_record:
                    _sniff(raw[:_SNIFF_BYTES], path)
                item = _parse(raw, path, number, complete=True, altered=altered)
                if not seen_record and not isinstance(item, Record):
                    raise _not_evidence(item)
                seen_record = True
                if blank_count:
                    yield _blank_lines(path, blank_at, blank_count)
                    blank_at = blank_count = 0
                yield item
                if isinstance(item, Record) and item.event == Event.RUN_SUMMARY:
                    return
                continue
            if deadline is not None and clock() >= deadline:
                if not pending.strip() and not seen_record:
                    raise InputError(
                        Position(path), f"empty evidence file: no records within {timeout:g}s"
                    )
                if blank_count:
                    yield _blank_lines(path, blank_at, blank_count)
                if pending.strip():
                    item = _parse(pending, path, number + 1, complete=False)
                    if not seen_record and not isinstance(item, Record):
                        raise _not_evidence(item)
                    yield item
                return
            sleep(poll)
    finally:
        if handle is not None:
            handle.close()
