"""Read gzip-compressed JSON Lines as a stream of lines, in bounded memory.

:class:`Gunzip` wraps a binary stream that starts with the gzip magic bytes and offers
what the evidence reader uses of a file: ``readline(limit)`` and ``peek(n)``. It inflates
a chunk at a time (never more than it needs to find the next line, so a small file that
inflates to gigabytes is no threat), reads members one after another (``cat a.gz b.gz``
is one stream, as ``gzip -d`` reads it), and never raises for bad data: a stream cut off
before its end marker, corrupt data or a failed CRC ends the lines, and :attr:`problem`
then says what happened. The bytes of a line that was not complete when the stream ended
are dropped and counted in the message; every complete line before it was read.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass
from typing import IO, Final

MAGIC: Final = b"\x1f\x8b"
"""The first two bytes of a gzip member."""
_CHUNK = 1 << 16
_MAX_TAIL = (16 << 20) + 1
"""Longest unfinished line kept while waiting for its newline: the reader's line limit."""
_GZIP_WBITS = 31  # zlib: a gzip header and trailer


def is_gzip(head: bytes) -> bool:
    """Whether a stream starting with ``head`` is gzip-compressed."""
    return head.startswith(MAGIC)


@dataclass(frozen=True, slots=True)
class GzipProblem:
    """Why a compressed stream ended early: ``truncated`` (cut off) or corrupt."""

    truncated: bool
    message: str


class Gunzip:
    """The inflated lines of a gzip stream (see the module's documentation).

    Inflated bytes up to the last complete line go into a block read with the C
    ``BytesIO.readline``; the bytes after it wait for the next chunk, up to
    :data:`_MAX_TAIL` (a longer line is handed on unfinished, for the reader to skip).
    """

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._inflate = zlib.decompressobj(_GZIP_WBITS)
        self._pending = b""  # compressed bytes read but not yet given to zlib
        self._block = io.BytesIO()
        self._tail = b""  # inflated bytes after the block's last complete line
        self._end = False  # no more inflated bytes will come
        self._members = 1
        self._inflated = 0
        self.problem: GzipProblem | None = None

    def _fill(self) -> bool:
        """Make the next block of lines; False once nothing more will come."""
        while not self._end:
            out = self._inflate_some()
            if out is None:
                break
            data = self._tail + out if self._tail else out
            cut = data.rfind(b"\n") + 1
            if not cut and len(data) <= _MAX_TAIL:
                self._tail = data
                continue
            cut = cut or len(data)
            self._tail = data[cut:]
            self._block = io.BytesIO(data[:cut])
            return True
        if self._tail and self.problem is None:  # the stream's last line, without a newline
            self._block, self._tail = io.BytesIO(self._tail), b""
            return True
        return False

    def _inflate_some(self) -> bytes | None:
        """The next inflated bytes (maybe empty), or None at the end of the stream."""
        inflate = self._inflate
        if inflate.unconsumed_tail:
            data = inflate.unconsumed_tail
        else:
            data = self._pending or self._raw.read(_CHUNK)
            self._pending = b""
        if not data:
            self._stop(
                truncated=True,
                why=f"the compressed stream is cut off (member {self._members} has no end)",
            )
            return None
        try:
            out = inflate.decompress(data, _CHUNK)
        except zlib.error as exc:
            self._stop(truncated=False, why=f"the compressed data is corrupt ({exc})")
            return None
        self._inflated += len(out)
        if inflate.eof:
            self._next_member(inflate.unused_data)
        return out

    def _next_member(self, rest: bytes) -> None:
        """After a member's end: start the next one, or end the stream."""
        if not rest:
            rest = self._raw.read(_CHUNK)
        if not rest:
            self._end = True
            return
        if not is_gzip(rest[:2]):
            self._stop(
                truncated=False,
                why=f"the data after member {self._members} is not gzip data",
            )
            return
        self._members += 1
        self._inflate = zlib.decompressobj(_GZIP_WBITS)
        self._pending = rest

    def _stop(self, *, truncated: bool, why: str) -> None:
        """End the stream with a problem, dropping the unfinished line it cut."""
        self._end = True
        partial = len(self._tail)
        self._tail = b""
        dropped = ""
        if partial:
            dropped = f"; the {partial} bytes inflated after the last complete line are not read"
        self.problem = GzipProblem(
            truncated, f"{why} after {self._inflated - partial} bytes of lines{dropped}"
        )

    def readline(self, limit: int = -1) -> bytes:
        line = self._block.readline(limit)
        if line.endswith(b"\n") or (0 <= limit <= len(line)):
            return line
        while self._fill():  # the block is used up (a line is never split across blocks,
            more = self._block.readline(limit - len(line) if limit >= 0 else -1)
            line += more  # except one longer than _MAX_TAIL)
            if line.endswith(b"\n") or (0 <= limit <= len(line)) or more:
                return line
        return line

    def peek(self, size: int = 1) -> bytes:
        block = self._block
        at = block.tell()
        head = block.getbuffer()[at : at + size].tobytes()
        if len(head) >= size or self._end:
            return head
        # put what is left of this block and the next ones together until there is enough
        rest = block.read()
        while len(rest) < size and self._fill():
            rest += self._block.read()
        self._block = io.BytesIO(rest)
        return rest[:size]

    def read(self, size: int = -1) -> bytes:
        data = self._block.read(size)
        while (size < 0 or len(data) < size) and self._fill():
            data += self._block.read(size - len(data) if size >= 0 else -1)
        return data
