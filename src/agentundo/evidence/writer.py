"""Append-only, flushed, hash-chained JSON Lines evidence files (keyed when a key is set),
synced to disk at the records that matter, whose loss is reported, never raised."""

from __future__ import annotations

import errno
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, get_args

from agentundo.errors import UsageError
from agentundo.evidence.chain import CANONICAL as _CANONICAL
from agentundo.evidence.chain import HMAC_SHA256, MAC_FIELD, genesis_of, mac_of
from agentundo.evidence.events import Event
from agentundo.evidence.keys import evidence_key
from agentundo.evidence.redact import redact_into

STRUCTURE = frozenset(
    {
        "ts", "event", "run_id", "workflow_id", "actor", "job_id", "step_id", "topic",
        "for_topic", "status", "verdict", "decision", "rule_id", "matched_policy_id",
        "category", "outcome", "lock_key", "owner", "previous_owner", "compensated", "manual",
    }
)  # fmt: skip
"""Fields the engine fills from the run and the project's files, never from a secret: a
secret that happens to spell part of one (a token ``step``) must not rewrite the record's
structure (``[REDACTED]_dispatched``), so they are written as they are."""

_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_NO_DIRECTORY_SYNC = frozenset({errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP})
"""What ``fsync`` of a directory answers where the file system cannot do it (nothing to do)."""

Sync = Literal["never", "points", "every"]
"""When the file is synced to disk: ``points`` (the default) after each record in
:data:`SYNC_EVENTS` (and at creation and on close), ``every`` after every record,
``never`` not at all (benchmarks and tests that want speed; nothing is promised)."""

SYNC_MODES: Final[tuple[Sync, ...]] = get_args(Sync)

SYNC_EVENTS: Final = frozenset(
    str(event)
    for event in (
        # intents: the call is about to be sent
        Event.STEP_DISPATCHED,
        Event.COMPENSATION_DISPATCHED,
        # outcomes of a call that may have had an effect, and how the run ended
        Event.STEP_SUCCEEDED,
        Event.STEP_FAILED_FATAL,
        Event.COMPENSATION_SUCCEEDED,
        Event.COMPENSATION_FAILED,
        Event.COMPENSATION_TIMED_OUT,
        Event.COMPENSATION_REJECTED,
        Event.COMPENSATION_NOT_NEEDED,
        Event.MANUAL_FOLLOWUP,
        Event.RUN_INTERRUPTED,
        Event.RUN_SUMMARY,
    )
)
"""Records after which the file is synced (``sync="points"``): an intent, or the outcome
of a call that may have had an effect. Events named ``*_unknown`` (an outcome nobody
knows) or ``recovery_*`` sync too (:data:`SYNC_SUFFIXES`, :data:`SYNC_PREFIXES`)."""

SYNC_SUFFIXES: Final = ("_unknown",)
SYNC_PREFIXES: Final = ("recovery_",)


def syncs_after(event: object) -> bool:
    """Whether ``sync="points"`` syncs the file after a record of this ``event``."""
    if event in SYNC_EVENTS:
        return True
    return isinstance(event, str) and (
        event.endswith(SYNC_SUFFIXES) or event.startswith(SYNC_PREFIXES)
    )


def seal_line(
    record: dict[str, Any],
    seq: int,
    prev: str | None,
    secrets: frozenset[str],
    key: bytes | None,
) -> tuple[dict[str, Any], bytes]:
    """``record`` redacted and sealed as record ``seq`` of its chain, and its line.

    ``prev`` is the previous record's ``hash`` (None for the first record of a new chain:
    its run's own genesis). The body gains ``seq``, ``prev_hash``, ``mac`` (the first record
    of a keyed chain) and ``hash``; the line is its canonical JSON with ``hash`` appended
    last and a newline: what every writer writes, and what the verifier hashes back.
    """
    return seal_body(redact_into({"seq": seq}, record, secrets, STRUCTURE), prev, key)


def redacted(record: dict[str, Any], seq: int, secrets: frozenset[str]) -> dict[str, Any]:
    """The first half of :func:`seal_line`: a redacted copy of ``record`` with its ``seq``
    (a copy: later changes to the record's lists or mappings do not reach it)."""
    return redact_into({"seq": seq}, record, secrets, STRUCTURE)


def seal_body(
    body: dict[str, Any], prev: str | None, key: bytes | None
) -> tuple[dict[str, Any], bytes]:
    """The second half of :func:`seal_line`: chain a :func:`redacted` body; its line."""
    if prev is None:  # the first record of a new chain: its run's own genesis
        prev = genesis_of(body)
    body["prev_hash"] = prev
    if key is not None and body["seq"] == 0:
        body[MAC_FIELD] = HMAC_SHA256
    data = _CANONICAL(body).encode()
    digest = hashlib.sha256(data).hexdigest() if key is None else mac_of(data, key)
    # the line is the canonical body with the hash appended: one encoding per record
    body["hash"] = digest
    return body, data[:-1] + b',"hash":"' + digest.encode() + b'"}\n'


class _FromEnvironment(Enum):
    TOKEN = "from the environment"


FROM_ENVIRONMENT: Final = _FromEnvironment.TOKEN
"""The writer's default key: ``AGENTUNDO_EVIDENCE_KEY`` if set, else unkeyed."""


def _os_error(exc: OSError) -> str:
    """``No space left on device (errno 28)``."""
    text = exc.strerror or str(exc) or type(exc).__name__
    return text if exc.errno is None else f"{text} (errno {exc.errno})"


_NONE: Final[list[dict[str, Any]]] = []  # never appended to


def told(on_failure: Callable[[str], object] | None, message: str) -> str:
    """Tell ``on_failure`` (when given) that evidence could not be written; returns the
    failure to record. A callback that raises must not stop the rollback (or the sweep):
    what it raised is added to the message instead."""
    if on_failure is not None:
        try:
            on_failure(message)
        except Exception as exc:
            return f"{message}; on_failure raised {type(exc).__name__}: {exc}"
    return message


def _span(bodies: list[dict[str, Any]]) -> str:
    first, last = bodies[0].get("seq"), bodies[-1].get("seq")
    return f"record {first}" if first == last else f"records {first}-{last}"


def _were(bodies: list[dict[str, Any]]) -> str:
    return "was" if bodies[0].get("seq") == bodies[-1].get("seq") else "were"


def sync_directory(path: Path) -> None:
    """``fsync`` a directory, so that the files created in it are on disk by name (a
    no-op where the file system cannot do it)."""
    _sync_directory(path)


def _sync_directory(path: Path) -> None:
    fd = os.open(path, _DIR_FLAGS)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _NO_DIRECTORY_SYNC:
            raise
    finally:
        os.close(fd)


def _missing_directories(directory: Path) -> list[Path]:
    """``directory`` and its ancestors that do not exist yet, deepest first."""
    missing: list[Path] = []
    while not os.path.lexists(directory) and directory.parent != directory:
        missing.append(directory)
        directory = directory.parent
    return missing


@dataclass(frozen=True, slots=True)
class Resume:
    """Where a continued chain picks up: its next ``seq``, the hash it chains to, and how
    many bytes of an unfinished last line to cut first."""

    seq: int
    prev_hash: str
    cut: int = 0


COMPRESSED_SUFFIX = ".gz"
"""The suffix of evidence stored as gzip-compressed JSON Lines (a sweep's runs)."""

_RESUME_FLAGS = os.O_WRONLY | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)


class EvidenceWriter:
    """Writes one run's evidence file.

    The file is created exclusively (an existing file is never overwritten) and opened
    for appending only; each record is written as one line with a single unbuffered
    ``write`` (nothing waits in a buffer), so a process killed mid-run leaves a file
    whose complete lines are all valid. Records are redacted before they are hashed, so
    no secret is ever written.

    With a ``key`` (by default ``AGENTUNDO_EVIDENCE_KEY``, read when the writer is made;
    ``None`` for unkeyed) each ``hash`` is an HMAC-SHA256 under it and the first record
    carries ``"mac": "hmac-sha256"``; the key itself is redacted like a secret. The first
    record of a new file chains to its run's genesis (:func:`~agentundo.evidence.chain.genesis`
    of its ``run_id`` and ``ts``); :meth:`resume` continues an existing chain instead.

    Durability (``sync``, see :data:`Sync`): with ``"points"`` the directory is synced
    when the file is created (with any directory made for it), the file after each
    record in :data:`SYNC_EVENTS` (:func:`syncs_after`) and on :meth:`close`; a record
    that says a call is about to be sent, or what came of it, is on disk before the
    engine acts on it. ``"every"`` syncs after every record, ``"never"`` not at all.

    Evidence loss is never silent and never stops the run. If a write, an ``fsync`` or
    the final ``close`` fails (``OSError``: disk full, file too large, read-only or
    failing disk, a closed descriptor), or the file turns out to have been deleted while
    it was written (checked at each sync and on close), :meth:`write` and :meth:`close`
    do not raise. Instead the writer stops writing to the file, keeps sealing records
    (the chain goes on) and keeps them in memory, and calls ``on_failure(message)``
    once. A line cut short by the failure is cut off the file (``ftruncate`` back to the
    last complete line); if even that fails, the message says a partial line is left.
    What a caller (the CLI: exit code 3, "evidence incomplete") reads afterwards:

    ``failure``
        ``None``, or one message naming the file, the OS error and the record (its
        ``seq``), e.g. ``evidence file run.jsonl: No space left on device (errno 28) at
        record 17``, and what became of the records.
    ``unwritten``
        The sealed records (``seq``, ``prev_hash``, ``hash`` included) not known to be
        on disk, in order: the file's complete lines followed by these are the whole
        chain. After a failed ``fsync`` it begins with the records written since the
        last good sync, which the file may also hold (same ``seq`` and ``hash``); after
        the file was deleted, every record (read back from the deleted file on Linux).
    ``lost``
        Whether anything is incomplete (``failure`` is set).

    Only misuse raises: writing after :meth:`close` (``ValueError``), or a record that
    cannot be encoded. Creating the file raises :class:`UsageError` as before.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        secrets: frozenset[str] = frozenset(),
        key: bytes | Literal[_FromEnvironment.TOKEN] | None = FROM_ENVIRONMENT,
        sync: Sync = "points",
        on_failure: Callable[[str], object] | None = None,
        resume: Resume | None = None,
    ) -> None:
        if sync not in SYNC_MODES:
            raise ValueError(f"sync must be one of {', '.join(SYNC_MODES)}, not {sync!r}")
        if key is FROM_ENVIRONMENT:
            key = evidence_key(os.environ)
        self._key: bytes | None = key
        if key is not None:
            secrets = secrets | {key.decode("utf-8", "surrogateescape")}
        self.path = Path(path)
        self.sync: Sync = sync
        self.failure: str | None = None
        self.unwritten: list[dict[str, Any]] = []
        self._on_failure = on_failure
        self._syncing = sync != "never"
        self._every = sync == "every"
        self._unsynced: list[dict[str, Any]] = []  # written since the last good fsync
        self._size = 0  # bytes of complete lines in the file
        self._fd_gone = False  # the descriptor itself is bad (EBADF): never close it
        self._prev: str | None = None  # a new chain: its first record starts from its genesis
        self._seq = 0
        self._secrets = secrets
        parent = self.path.parent
        missing = _missing_directories(parent)
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:  # a file, or a symbolic link to nowhere
            raise UsageError(
                f"cannot write evidence to {parent}: it exists and is not a directory"
            ) from None
        except OSError as exc:
            raise UsageError(f"cannot write evidence to {self.path}: {exc.strerror}") from None
        if resume is not None:
            self._fd: int | None = self._reopen(resume)
            missing = []
        else:
            try:
                self._fd = os.open(self.path, _OPEN_FLAGS, 0o666)
            except FileExistsError:
                raise UsageError(
                    f"evidence file {self.path} exists; it is never overwritten"
                ) from None
            except OSError as exc:
                raise UsageError(f"cannot write evidence to {self.path}: {exc.strerror}") from None
        opened = os.fstat(self._fd)
        self._identity = (opened.st_dev, opened.st_ino)
        if self._syncing:
            # the new entry (and any new directory's entry) is on disk before any record
            for directory in dict.fromkeys([parent, *(d.parent for d in missing)]):
                try:
                    _sync_directory(directory)
                except OSError as exc:
                    self._fail(f"{_os_error(exc)} on fsync of its directory {directory}")
                    break

    def _reopen(self, resume: Resume) -> int:
        """Open an existing run's file to continue its chain after its last record,
        cutting off a last line the crashed writer never finished."""
        if self.path.name.endswith(COMPRESSED_SUFFIX):
            raise UsageError(
                f"cannot continue evidence {self.path}: a compressed sweep run is a finished "
                "rehearsal, never continued"
            )
        try:
            fd = os.open(self.path, _RESUME_FLAGS)
        except OSError as exc:
            raise UsageError(f"cannot continue evidence {self.path}: {exc.strerror}") from None
        try:
            size = os.fstat(fd).st_size
            if resume.cut:
                os.ftruncate(fd, size - resume.cut)
                os.fsync(fd)
                size -= resume.cut
        except OSError as exc:
            os.close(fd)
            raise UsageError(f"cannot continue evidence {self.path}: {exc.strerror}") from None
        self._seq, self._prev, self._size = resume.seq, resume.prev_hash, size
        return fd

    @classmethod
    def resume(
        cls,
        path: str | os.PathLike[str],
        *,
        seq: int,
        prev_hash: str,
        cut: int = 0,
        secrets: frozenset[str] = frozenset(),
        key: bytes | None = None,
    ) -> EvidenceWriter:
        """A writer that continues an existing run's chain: the next record is ``seq``,
        chained to ``prev_hash``; ``cut`` bytes of an unfinished last line are cut off
        first. ``key`` must be the chain's own (None for an unkeyed chain)."""
        return cls(path, secrets=secrets, key=key, resume=Resume(seq, prev_hash, cut))

    @property
    def lost(self) -> bool:
        """Whether any evidence is incomplete: see :attr:`failure` and :attr:`unwritten`."""
        return self.failure is not None

    def write(self, record: dict[str, Any]) -> dict[str, Any]:
        """Seal ``record`` (adding ``seq``, ``prev_hash``, ``hash``), append it, flush.

        Syncs the file afterwards if ``sync`` says so. Never raises for an ``OSError``:
        a record that could not be written is kept in :attr:`unwritten`.
        """
        fd = self._fd
        if fd is None:
            raise ValueError(f"evidence file {self.path} is closed")
        body, line = seal_line(record, self._seq, self._prev, self._secrets, self._key)
        self._prev = body["hash"]
        self._seq += 1
        if self.failure is not None:
            self.unwritten.append(body)
            return body
        done = 0
        try:
            done = os.write(fd, line)
            while done < len(line):  # a short write (disk full, signal): finish the line
                more = os.write(fd, memoryview(line)[done:])
                if more == 0:
                    raise OSError(errno.EIO, "write wrote nothing")
                done += more
        except OSError as exc:
            self._write_failed(fd, exc, body, done)
            return body
        self._size += done
        if self._syncing:
            self._unsynced.append(body)
            if self._every or syncs_after(body.get("event")):
                self._sync(fd, f"at record {body['seq']}")
        return body

    def close(self) -> None:
        """Sync (unless ``sync="never"``) and close the file; never raises an ``OSError``.

        A file deleted while it was written, or a failed sync or close, is reported
        through :attr:`failure` like a failed write.
        """
        fd = self._fd
        if fd is None:
            return
        self._fd = None
        if self.failure is None:
            self._sync(fd, f"on close after record {self._seq - 1}", later=False)
        if self._fd_gone:
            return
        try:
            os.close(fd)
        except OSError as exc:
            if self.failure is None:
                self._fail(
                    f"{_os_error(exc)} on close after record {self._seq - 1}",
                    "the file may not hold every record",
                    later=False,
                )

    # -- failures ---------------------------------------------------------------------

    def _sync(self, fd: int, where: str, *, later: bool = True) -> None:
        """Check that the file still exists, then fsync it (unless ``sync="never"``)."""
        try:
            now = os.fstat(fd)
            if (now.st_dev, now.st_ino) != self._identity:  # closed, and reused by others
                raise OSError(errno.EBADF, "the file's descriptor was closed by other code")
            if now.st_nlink == 0:
                self._deleted(fd, where, later=later)
                return
            if self._syncing:
                os.fsync(fd)
        except OSError as exc:
            self._fd_gone = exc.errno == errno.EBADF
            doubted = self._take_unsynced()
            note = f"{_span(doubted)} {_were(doubted)} written but may not be on disk"
            self._fail(
                f"{_os_error(exc)} {where}", note if doubted else "", kept=doubted, later=later
            )
            return
        self._unsynced.clear()

    def _write_failed(self, fd: int, exc: OSError, body: dict[str, Any], done: int) -> None:
        self._fd_gone = exc.errno == errno.EBADF
        notes: list[str] = []
        if done:  # part of the line is in the file: cut it off
            try:
                os.ftruncate(fd, self._size)
                notes.append(f"the {done} bytes of it that were written were cut off")
            except OSError as cut:
                notes.append(
                    f"a partial line of {done} bytes is left at the end of the file "
                    f"(it could not be cut off: {_os_error(cut)})"
                )
        doubted: list[dict[str, Any]] = []
        if self._unsynced and not self._fd_gone:  # make what was written durable
            try:
                os.fsync(fd)
                self._unsynced.clear()
            except OSError as again:
                doubted = self._take_unsynced()
                notes.append(
                    f"{_span(doubted)}, written before it, may not be on disk "
                    f"(fsync: {_os_error(again)})"
                )
        self._fail(f"{_os_error(exc)} at record {body['seq']}", *notes, kept=[*doubted, body])

    def _deleted(self, fd: int, where: str, *, later: bool) -> None:
        recovered = _read_back(fd)
        if recovered is not None:
            self._unsynced.clear()
            note = "read back from the deleted file" if recovered else ""
        else:  # only what was written since the last sync is still known
            recovered = self._take_unsynced()
            first = recovered[0]["seq"] if recovered else self._seq
            lost = [{"seq": 0}, {"seq": first - 1}]
            note = f"{_span(lost)} {_were(lost)} lost with it" if first else ""
        self._fail(
            f"the evidence file was deleted while it was written ({where})",
            note,
            kept=recovered,
            later=later,
        )

    def _take_unsynced(self) -> list[dict[str, Any]]:
        taken, self._unsynced = self._unsynced, []
        return taken

    def _fail(
        self, what: str, *notes: str, kept: list[dict[str, Any]] = _NONE, later: bool = True
    ) -> None:
        """Record the first failure, keep ``kept`` in memory, and tell ``on_failure``."""
        self.unwritten.extend(kept)
        if kept:
            held = f"{_span(kept)} and every later record" if later else _span(kept)
            verb = "is" if len(kept) == 1 and not later else "are"
            notes = (*notes, f"{held} {verb} kept in memory (unwritten)")
        elif later:
            notes = (*notes, "every later record is kept in memory (unwritten)")
        message = "; ".join([f"evidence file {self.path}: {what}", *(n for n in notes if n)])
        self.failure = told(self._on_failure, message)

    def __enter__(self) -> EvidenceWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _read_back(fd: int) -> list[dict[str, Any]] | None:
    """The records in the (deleted) file open as ``fd``, through ``/proc`` (Linux), or None."""
    try:
        reader = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        with os.fdopen(reader, "rb") as handle:
            return [json.loads(line) for line in handle if line.endswith(b"\n")]
    except (OSError, ValueError):
        return None
