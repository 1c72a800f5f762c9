"""A :class:`~agentundo.saga.lock.LockStore` on one Redis server (``agentundo[redis]``).

Keys, for a lock key ``K`` (``saga:<workflow_id>:<run_id>:lock``):

- ``K``: ``"<epoch>:<owner>"`` while the lock is held, set ``NX PX <ttl_ms>``; Redis
  deletes it when the TTL runs out, so :meth:`RedisLockStore.state` answers ``expires_at``
  inf while it exists.
- ``K:epoch``: the last epoch granted (``INCR`` once per grant, never per failed attempt);
  it has no TTL, so epochs keep increasing for as long as the server keeps its data.
- ``K:last``: ``"<epoch>:<owner>"`` of the latest grant, deleted by a release. When a
  grant finds it, the previous holder's lock expired without a release: that owner is
  the grant's ``previous_owner`` (as :class:`~agentundo.saga.lock.MemoryLockStore` says).

Acquire, release and renew are each one Lua script, so each is atomic on the server.
Release and renew compare the owner and, when this store granted the lock, its epoch:
two runners of one run share an owner name, and a runner whose lock expired must not
delete or extend the lock its successor took. TTLs run on the server's clock: the
engine's ``now`` (which may be virtual) is never mixed with it.
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from agentundo.errors import UsageError
from agentundo.saga.lock import Acquisition, LockState, LockStoreError

if TYPE_CHECKING:
    from redis import Redis
    from redis.commands.core import Script

INSTALL_HINT = "pip install 'agentundo[redis]'"
TIMEOUT_S = 5.0
"""Connect and read time-out of every Redis call: a stuck server is an error, not a hang."""

ACQUIRE = """
-- KEYS: lock, epoch, last; ARGV: owner, ttl_ms
local current = redis.call('GET', KEYS[1])
if current then
  return {0, current, false}
end
local epoch = redis.call('INCR', KEYS[2])
local value = epoch .. ':' .. ARGV[1]
redis.call('SET', KEYS[1], value, 'NX', 'PX', ARGV[2])
local last = redis.call('GET', KEYS[3])
redis.call('SET', KEYS[3], value)
return {1, value, last}
"""
"""Grant (INCR the epoch, SET NX PX) or answer the holder; a busy attempt writes nothing."""

_MATCH = """
local current = redis.call('GET', KEYS[1])
if not current then
  return 0
end
local sep = string.find(current, ':', 1, true)
if string.sub(current, sep + 1) ~= ARGV[1] then
  return 0
end
if ARGV[2] ~= '' and string.sub(current, 1, sep - 1) ~= ARGV[2] then
  return 0
end
"""

RELEASE = f"""
-- KEYS: lock, last; ARGV: owner, epoch ('' = any)
{_MATCH}
redis.call('DEL', KEYS[1], KEYS[2])
return 1
"""
"""Compare-and-delete: only the owner (under its epoch) deletes the lock."""

RENEW = f"""
-- KEYS: lock; ARGV: owner, epoch ('' = any), ttl_ms
{_MATCH}
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""
"""Compare-and-extend: only the owner (under its epoch) sets a new TTL."""


def redact(url: str) -> str:
    """``url`` without its password, fit for a message."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port is not None else "")
    return urlunsplit(parts._replace(netloc=netloc))


def check_url(url: str, shown: str) -> None:
    """Refuse what ``redis.Redis.from_url`` would misread (it takes ``/abc`` for DB 0)."""
    parts = urlsplit(url)
    problem = None
    if parts.scheme not in ("redis", "rediss"):
        problem = "the scheme must be redis or rediss"
    elif not parts.hostname:
        problem = "there is no host"
    elif parts.path not in ("", "/") and not parts.path[1:].isdigit():
        problem = f"the database {parts.path[1:]!r} is not a number"
    if problem is not None:
        raise UsageError(
            f"invalid Redis URL {shown}: {problem} (expected redis://HOST:PORT/DB, "
            "or rediss://HOST:PORT/DB for TLS)"
        )


def parse(value: Any) -> tuple[int, str]:
    """``"<epoch>:<owner>"`` (bytes or str) as ``(epoch, owner)``; the owner may hold ``:``."""
    text = value.decode("utf-8") if isinstance(value, bytes) else str(value)
    epoch, _, owner = text.partition(":")
    return int(epoch), owner


def ttl_ms(ttl_s: float) -> int:
    """``ttl_s`` in whole milliseconds, at least 1 (Redis refuses ``PX 0``)."""
    return max(1, math.ceil(ttl_s * 1000))


class RedisLockStore:
    """Rollback locks in the Redis server at ``url`` (``redis://HOST:PORT/DB``).

    Construction connects (and PINGs) once, so an unreachable server is reported before
    a run starts. Every failure to talk to the server is a
    :class:`~agentundo.errors.UsageError` naming the URL (its password hidden).
    """

    def __init__(self, url: str, *, timeout_s: float = TIMEOUT_S) -> None:
        try:
            import redis
        except ImportError as error:
            raise UsageError(
                f"the Redis lock store ({redact(url)}) needs the redis client: {INSTALL_HINT}"
            ) from error
        self.url = url
        self.shown = redact(url)
        check_url(url, self.shown)
        self._errors: tuple[type[Exception], ...] = (redis.RedisError,)
        try:
            self.client: Redis = redis.Redis.from_url(
                url,
                socket_timeout=timeout_s,
                socket_connect_timeout=timeout_s,
                decode_responses=False,
            )
        except (ValueError, TypeError) as error:
            raise UsageError(
                f"invalid Redis URL {self.shown}: {error} (expected redis://HOST:PORT/DB, "
                "or rediss://HOST:PORT/DB for TLS)"
            ) from error
        self._acquire: Script = self.client.register_script(ACQUIRE)
        self._release: Script = self.client.register_script(RELEASE)
        self._renew: Script = self.client.register_script(RENEW)
        self._granted: dict[tuple[str, str], int] = {}
        """The epoch of each lock this store granted, by (key, owner)."""
        self._mutex = threading.Lock()
        try:
            self.client.ping()
        except self._errors as error:
            self.client.close()
            raise UsageError(
                f"cannot reach the Redis lock store at {self.shown}: "
                f"{error or type(error).__name__}"
            ) from error

    def _call(self, command: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except self._errors as error:
            raise LockStoreError(
                f"the Redis lock store at {self.shown} failed: {error or type(error).__name__}"
            ) from error

    # -- the protocol ------------------------------------------------------------------

    def acquire(self, key: str, owner: str, ttl_s: float, now: float) -> Acquisition:
        granted, value, last = self._call(
            self._acquire, keys=[key, f"{key}:epoch", f"{key}:last"], args=[owner, ttl_ms(ttl_s)]
        )
        epoch, holder = parse(value)
        if not granted:
            return Acquisition(acquired=False, epoch=epoch, holder=holder)
        with self._mutex:
            self._granted[(key, owner)] = epoch
        previous = None if last is None else parse(last)[1]
        return Acquisition(acquired=True, epoch=epoch, previous_owner=previous)

    def release(self, key: str, owner: str) -> bool:
        epoch = self._epoch(key, owner)
        released = bool(self._call(self._release, keys=[key, f"{key}:last"], args=[owner, epoch]))
        if released:
            with self._mutex:
                self._granted.pop((key, owner), None)
        return released

    def state(self, key: str) -> LockState | None:
        value = self._call(self.client.get, key)
        if value is None:
            return None
        epoch, owner = parse(value)
        return LockState(owner, epoch, math.inf)

    def renew(self, key: str, owner: str, ttl_s: float, now: float) -> bool:
        epoch = self._epoch(key, owner)
        return bool(self._call(self._renew, keys=[key], args=[owner, epoch, ttl_ms(ttl_s)]))

    def close(self) -> None:
        """Close the connections (the locks stay until released or expired)."""
        self.client.close()

    def _epoch(self, key: str, owner: str) -> str:
        """The epoch this store granted ``owner`` (``""``: not granted here, owner only)."""
        with self._mutex:
            epoch = self._granted.get((key, owner))
        return "" if epoch is None else str(epoch)
