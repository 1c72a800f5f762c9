"""Open a rollback lock store by name: ``memory``, ``file`` or a Redis URL."""

from __future__ import annotations

from pathlib import Path

from agentundo.errors import UsageError
from agentundo.saga.lock import LockStore, MemoryLockStore

FORMS = "memory, file, file:DIRECTORY, redis://HOST:PORT/DB or rediss://HOST:PORT/DB"
"""The accepted forms of a lock store spec, for messages."""


def open_lock_store(spec: str, *, directory: Path) -> LockStore:
    """The lock store ``spec`` names.

    - ``memory``: in this process only (a drill's own rollback; nothing else sees it);
    - ``file``: lock files under ``directory`` (e.g. the evidence directory's ``.locks/``),
      shared by the processes of one machine; ``file:DIRECTORY`` puts them elsewhere;
    - ``redis://HOST:PORT/DB`` (or ``rediss://`` for TLS): one Redis server, shared by
      every runner that reaches it (needs ``agentundo[redis]``).

    Anything else, an unreachable server or a missing client is a
    :class:`~agentundo.errors.UsageError`.
    """
    text = spec.strip()
    if text == "memory":
        return MemoryLockStore()
    if text == "file" or text.startswith("file:"):
        from agentundo.saga.lock_file import FileLockStore

        where = text.removeprefix("file").removeprefix(":")
        return FileLockStore(Path(where).expanduser() if where else directory)
    if text.startswith(("redis://", "rediss://")):
        from agentundo.saga.lock_redis import RedisLockStore

        return RedisLockStore(text)
    raise UsageError(f"unknown lock store {spec!r}; expected one of: {FORMS}")
