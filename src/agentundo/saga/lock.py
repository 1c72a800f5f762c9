"""The per-workflow rollback lock: owner token, TTL, epoch (fencing), compare-and-delete."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from agentundo.errors import UsageError


class LockStoreError(UsageError):
    """The lock service failed to answer (unreachable, refused, a damaged entry).

    Before a run it is a usage error (exit 2). During a rollback it means the rollback
    cannot know that it holds its lock: nothing more is compensated without it, and what
    is left stays owed to ``agentundo recover`` (``lock_unavailable``).
    """


def lock_key(workflow_id: str, run_id: str) -> str:
    """The lock a rollback of one run must hold: ``saga:<workflow_id>:<run_id>:lock``.

    The runtime keys ``saga:<workflow_id>:lock`` by its workflow *instance*; a drill's
    instance is its run, so the lock protects one run's rollback from running twice (two
    ``recover``s, a ``recover`` while the drill still runs, two runners after a crash).
    """
    return f"saga:{workflow_id}:{run_id}:lock"


@dataclass(frozen=True, slots=True)
class LockState:
    """Who holds a lock, under which epoch, until when."""

    owner: str
    epoch: int
    expires_at: float


@dataclass(frozen=True, slots=True)
class Acquisition:
    """The answer to an acquire: granted (with its epoch) or busy (with the holder)."""

    acquired: bool
    epoch: int
    holder: str | None = None  # when busy: who holds it
    previous_owner: str | None = None  # when granted over an expired lock: whose it was


class LockStore(Protocol):
    """A lock service. Epochs increase on every grant of a key, so they fence stale owners."""

    def acquire(self, key: str, owner: str, ttl_s: float, now: float) -> Acquisition: ...

    def release(self, key: str, owner: str) -> bool:
        """Delete the lock only if ``owner`` holds it (compare-and-delete)."""
        ...

    def state(self, key: str) -> LockState | None:
        """The current entry, expired or not; None when there is none. A store whose
        entries vanish when they expire (Redis, a lock file) answers ``expires_at`` inf."""
        ...

    def renew(self, key: str, owner: str, ttl_s: float, now: float) -> bool:
        """Extend ``owner``'s lock to ``now + ttl_s``; False when it no longer holds it."""
        ...


class MemoryLockStore:
    """An in-process :class:`LockStore` with the semantics of a Redis SET NX PX lock."""

    def __init__(self) -> None:
        self._locks: dict[str, LockState] = {}
        self._epochs: dict[str, int] = {}

    def acquire(self, key: str, owner: str, ttl_s: float, now: float) -> Acquisition:
        current = self._locks.get(key)
        if current is not None and current.expires_at > now:
            return Acquisition(acquired=False, epoch=current.epoch, holder=current.owner)
        epoch = self._epochs.get(key, 0) + 1
        self._epochs[key] = epoch
        self._locks[key] = LockState(owner=owner, epoch=epoch, expires_at=now + ttl_s)
        previous = None if current is None else current.owner
        return Acquisition(acquired=True, epoch=epoch, previous_owner=previous)

    def release(self, key: str, owner: str) -> bool:
        current = self._locks.get(key)
        if current is None or current.owner != owner:
            return False
        del self._locks[key]
        return True

    def state(self, key: str) -> LockState | None:
        return self._locks.get(key)

    def renew(self, key: str, owner: str, ttl_s: float, now: float) -> bool:
        current = self._locks.get(key)
        if current is None or current.owner != owner or current.expires_at <= now:
            return False
        self._locks[key] = LockState(owner, current.epoch, now + ttl_s)
        return True


def holds(store: LockStore, key: str, owner: str, epoch: int, now: float) -> bool:
    """Whether ``owner`` still holds ``key`` under ``epoch`` at ``now`` (the fencing check)."""
    current = store.state(key)
    return (
        current is not None
        and current.owner == owner
        and current.epoch == epoch
        and current.expires_at > now
    )
