"""A sweep run's evidence: sealed like any run's, kept in memory, written once, compressed.

A sweep rehearses a rollback against the simulated world: nothing real is touched, so
nothing is owed if its process dies mid-run, and a lost run is run again. Its records are
therefore not flushed one by one as a live drill's are (:class:`~agentundo.evidence.writer.
EvidenceWriter`): :class:`BufferedEvidence` redacts each record as it comes (a copy) and
keeps it; on :meth:`~BufferedEvidence.close`, if the run's evidence is kept, it seals
them into the run's hash chain exactly as the live writer does (the same canonical lines,
the same hashes or MACs: :func:`~agentundo.evidence.writer.seal_body`) and writes them
as one gzip member (``<run_id>.jsonl.gz``) with one ``write`` and one ``fsync``
(a sweep syncs all its runs' files at its end, many at once: :func:`sync_files`).
The reader (:mod:`agentundo.evidence.reader`) decompresses such a file transparently, so
``timeline``, ``--verify`` and ``--summary`` read it as they read a plain file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, Literal

from agentundo.errors import UsageError
from agentundo.evidence.keys import evidence_key
from agentundo.evidence.writer import (
    FROM_ENVIRONMENT,
    _FromEnvironment,
    _os_error,
    redacted,
    seal_body,
    told,
)

GZIP_LEVEL: Final = 1
"""zlib level of a sweep run's file. Measured on a 200-step sweep: level 1 writes 7.3 MB in
0.47 s, level 6 6.1 MB in 1.0 s (the hex hashes do not compress; the rest does)."""

_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)

Keep = Callable[[], bool]
"""Asked on close: whether the run's evidence is to be written at all."""


class BufferedEvidence:
    """One sweep run's evidence file, written whole on :meth:`close`.

    The file (``path``, which should end in ``.jsonl.gz``) is created exclusively when the
    writer is made, so an existing file is refused at once (:class:`UsageError`), as the
    live writer does. :meth:`write` seals a record and keeps its line. :meth:`close` asks
    ``keep`` (default: always) whether to keep the evidence; if not, the empty file is
    removed and :attr:`path` is None. Otherwise the lines are compressed into one gzip
    member and written with one ``write`` (finished if short) and one ``fsync``; the
    directory's entry is the caller's to sync (once per sweep, see
    :func:`~agentundo.evidence.writer.sync_directory`).

    As with the live writer, a failure (a full disk, a file too large) is never raised:
    :attr:`failure` names the file, the OS error and the records, :attr:`unwritten` holds
    every sealed record (the file may hold a cut-off gzip stream, whose complete lines the
    reader still reads and whose end it reports as cut off), and ``on_failure`` is told.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        secrets: frozenset[str] = frozenset(),
        key: bytes | Literal[_FromEnvironment.TOKEN] | None = FROM_ENVIRONMENT,
        keep: Keep | None = None,
        on_failure: Callable[[str], object] | None = None,
        level: int = GZIP_LEVEL,
        sync: bool = True,
    ) -> None:
        if key is FROM_ENVIRONMENT:
            key = evidence_key(os.environ)
        self._key: bytes | None = key
        if key is not None:
            secrets = secrets | {key.decode("utf-8", "surrogateescape")}
        self._secrets = secrets
        self.path: Path | None = Path(path)
        self.failure: str | None = None
        self.unwritten: list[dict[str, Any]] = []
        self._keep = keep
        self._on_failure = on_failure
        self._level = level
        self._sync = sync
        self._bodies: list[dict[str, Any]] = []
        self._closed = False
        parent = self.path.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self._fd: int | None = os.open(self.path, _OPEN_FLAGS, 0o666)
        except FileExistsError:
            if parent.is_dir():
                raise UsageError(
                    f"evidence file {self.path} exists; it is never overwritten"
                ) from None
            raise UsageError(
                f"cannot write evidence to {parent}: it exists and is not a directory"
            ) from None
        except OSError as exc:
            raise UsageError(f"cannot write evidence to {self.path}: {exc.strerror}") from None

    @property
    def lost(self) -> bool:
        return self.failure is not None

    @property
    def records(self) -> int:
        return len(self._bodies)

    def write(self, record: dict[str, Any]) -> dict[str, Any]:
        """Redact ``record`` (a copy, with its ``seq``) and keep it; :meth:`close` seals it
        into the run's chain, only if the run's evidence is kept."""
        if self._closed:
            raise ValueError(f"evidence file {self.path} is closed")
        body = redacted(record, len(self._bodies), self._secrets)
        self._bodies.append(body)
        return body

    def _seal(self) -> bytes:
        """Every kept record sealed in order: the file's inflated content."""
        prev: str | None = None
        lines = []
        key = self._key
        for body in self._bodies:
            body, line = seal_body(body, prev, key)
            prev = body["hash"]
            lines.append(line)
        return b"".join(lines)

    def close(self) -> None:
        """Write the run's evidence (or drop it, as ``keep`` says); never raises an OSError."""
        if self._closed:
            return
        self._closed = True
        fd, self._fd = self._fd, None
        assert fd is not None
        path = self.path
        assert path is not None
        if self._keep is not None and not self._keep():
            os.close(fd)
            _unlink(path)
            self.path = None
            self._bodies = []
            return
        where = "writing"
        data = b""
        try:
            squeeze = zlib.compressobj(self._level, zlib.DEFLATED, 31)  # 31: a gzip member
            data = squeeze.compress(self._seal()) + squeeze.flush()
            _write_all(fd, data)
            if self._sync:
                where = "on fsync of"
                os.fsync(fd)
            self._bodies = []
        except OSError as exc:
            self._failed(f"{_os_error(exc)} {where} its {len(data)} compressed bytes")
        finally:
            try:
                os.close(fd)
            except OSError as exc:
                if self.failure is None:
                    self._failed(f"{_os_error(exc)} on close")

    def _failed(self, what: str) -> None:
        bodies, self._bodies = self._bodies, []
        self.unwritten = bodies
        span = f"records 0-{len(bodies) - 1}" if len(bodies) > 1 else "record 0"
        message = (
            f"evidence file {self.path}: {what}; {span} are kept in memory (unwritten), and "
            "the file may hold a cut-off gzip stream"
        )
        self.failure = told(self._on_failure, message)

    def __enter__(self) -> BufferedEvidence:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _write_all(fd: int, data: bytes) -> None:
    done = os.write(fd, data)
    while done < len(data):  # a short write (disk full, signal): finish it or fail
        more = os.write(fd, memoryview(data)[done:])
        if more == 0:
            raise OSError(errno.EIO, "write wrote nothing")
        done += more


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


SYNC_THREADS = 16
"""Files synced at once by :func:`sync_files`: a journaling file system commits
concurrent ``fsync`` calls together (measured: 200 files in 0.68 s one by one, 0.04-0.06 s
sixteen at a time)."""


def sync_files(paths: list[Path]) -> dict[Path, str]:
    """``fsync`` each file (sixteen at a time, one ``fsync`` each), then each of their
    directories; the files (or directories) that failed, with why."""
    from concurrent.futures import ThreadPoolExecutor

    from agentundo.evidence.writer import sync_directory

    def one(path: Path) -> str | None:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            return f"{_os_error(exc)} on fsync"
        return None

    with ThreadPoolExecutor(min(SYNC_THREADS, max(1, len(paths)))) as pool:
        synced = zip(paths, pool.map(one, paths), strict=True)
        failed = {path: why for path, why in synced if why is not None}
    for directory in dict.fromkeys(p.parent for p in paths):
        try:
            sync_directory(directory)
        except OSError as exc:
            failed[directory] = f"{_os_error(exc)} on fsync of the directory"
    return failed
