"""A :class:`~agentundo.saga.lock.LockStore` of lock files: one machine, many processes.

Each key has two files in the store's directory, named after the key (sanitised, with a
hash of the key so that keys which sanitise alike stay apart):

- ``<name>.lock``: held with ``flock(LOCK_EX | LOCK_NB)`` on an open file descriptor for
  as long as the lock is held. The operating system drops the lock when the holder closes
  it or dies, so there is no TTL: the lock lives exactly as long as its holder.
- ``<name>.json``: ``{"epoch": N, "owner": "..."}``, written by the holder on each grant
  (the epoch read back, plus one) and replaced atomically (write, fsync, rename), so the
  epoch increases across processes and restarts. A release writes ``"owner": null`` and
  keeps the epoch.

Every operation runs under a short exclusive ``flock`` on the directory's ``.guard`` file,
so that a reader never sees a lock whose holder has not written its epoch yet. A state
file naming an owner while nobody holds ``<name>.lock`` is the record of a holder that
died: :meth:`FileLockStore.state` answers it with ``expires_at`` ``-inf`` (expired) and the
next grant reports that owner as ``previous_owner``.

The lock belongs to the open file description: a child forked while the lock is held
shares it (``os.open`` descriptors are not inherited across ``exec``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from agentundo.errors import UsageError
from agentundo.saga.lock import Acquisition, LockState, LockStoreError

GUARD = ".guard"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def file_name(key: str) -> str:
    """The file name (without suffix) of ``key``: readable, unique, safe in a directory."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    readable = _UNSAFE.sub("_", key).strip("._-")[:80]
    return f"{readable}-{digest}" if readable else digest


@dataclass(frozen=True, slots=True)
class _Record:
    epoch: int
    owner: str | None


@dataclass(frozen=True, slots=True)
class _Held:
    fd: int
    owner: str
    epoch: int


class FileLockStore:
    """Rollback locks held as ``flock``\\ s on files under ``directory``.

    ``ttl_s`` and ``now`` are ignored: a lock is held until it is released or its holding
    process ends, and :meth:`renew` answers True while this store holds it for ``owner``.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UsageError(
                f"cannot create the lock directory {self.directory}: {error.strerror or error}"
            ) from error
        self._held: dict[str, _Held] = {}
        self._mutex = threading.Lock()

    # -- the protocol ------------------------------------------------------------------

    def acquire(self, key: str, owner: str, ttl_s: float, now: float) -> Acquisition:
        with self._guard():
            held = self._held.get(key)
            if held is not None:  # this store holds it (for this owner or another one)
                return Acquisition(acquired=False, epoch=held.epoch, holder=held.owner)
            lock_path, state_path = self._paths(key)
            fd = self._os(lambda: os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644), lock_path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                busy = self._read(state_path)
                return Acquisition(acquired=False, epoch=busy.epoch, holder=busy.owner)
            except BaseException:
                os.close(fd)
                raise
            try:
                last = self._read(state_path)
                epoch = last.epoch + 1
                self._write(state_path, _Record(epoch, owner))
            except BaseException:
                os.close(fd)  # drops the flock: nothing was granted
                raise
            self._held[key] = _Held(fd, owner, epoch)
            # an owner still on record was never released: its holder died holding the lock
            return Acquisition(acquired=True, epoch=epoch, previous_owner=last.owner)

    def release(self, key: str, owner: str) -> bool:
        with self._guard():
            held = self._held.get(key)
            if held is None or held.owner != owner:
                return False
            try:
                self._write(self._paths(key)[1], _Record(held.epoch, None))
            finally:
                del self._held[key]
                os.close(held.fd)  # closing the only descriptor drops the flock
            return True

    def state(self, key: str) -> LockState | None:
        with self._guard():
            held = self._held.get(key)
            if held is not None:
                return LockState(held.owner, held.epoch, math.inf)
            lock_path, state_path = self._paths(key)
            record = self._read(state_path)
            if record.owner is None:
                return None
            alive = self._locked_elsewhere(lock_path)
            return LockState(record.owner, record.epoch, math.inf if alive else -math.inf)

    def renew(self, key: str, owner: str, ttl_s: float, now: float) -> bool:
        with self._mutex:
            held = self._held.get(key)
            return held is not None and held.owner == owner

    def close(self) -> None:
        """Let go of every lock this store holds, without releasing them (like a crash)."""
        with self._mutex:
            for held in self._held.values():
                os.close(held.fd)
            self._held.clear()

    # -- files -------------------------------------------------------------------------

    def _paths(self, key: str) -> tuple[Path, Path]:
        name = file_name(key)
        return self.directory / f"{name}.lock", self.directory / f"{name}.json"

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """This store's threads one at a time, and one store (of any process) at a time."""
        path = self.directory / GUARD
        with self._mutex:
            fd = self._os(lambda: os.open(path, os.O_RDWR | os.O_CREAT, 0o644), path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # held for a few file operations, no more
                yield
            finally:
                os.close(fd)

    @staticmethod
    def _locked_elsewhere(lock_path: Path) -> bool:
        """Whether another descriptor (of any process) holds ``lock_path``'s flock."""
        try:
            fd = os.open(lock_path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def _read(self, path: Path) -> _Record:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return _Record(0, None)
        except OSError as error:
            raise LockStoreError(f"cannot read the lock file {path}: {error}") from error
        try:
            data = json.loads(text)
            epoch, owner = data["epoch"], data["owner"]
        except (ValueError, TypeError, KeyError) as error:
            raise LockStoreError(
                f"the lock file {path} is damaged ({text[:60]!r}); "
                "remove it only if no rollback of that run is in progress"
            ) from error
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
            raise LockStoreError(f"the lock file {path} has no valid epoch: {epoch!r}")
        if owner is not None and not isinstance(owner, str):
            raise LockStoreError(f"the lock file {path} has no valid owner: {owner!r}")
        return _Record(epoch, owner)

    def _write(self, path: Path, record: _Record) -> None:
        """Replace ``path`` atomically and durably: a crash leaves the old or the new one."""
        text = json.dumps({"epoch": record.epoch, "owner": record.owner}) + "\n"
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
            directory = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as error:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise LockStoreError(f"cannot write the lock file {path}: {error}") from error

    @staticmethod
    def _os(call: Callable[[], int], path: Path) -> int:
        try:
            return call()
        except OSError as error:
            raise LockStoreError(f"cannot open the lock file {path}: {error}") from error
