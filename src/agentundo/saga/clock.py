"""Clocks for the engine: virtual by default (backoffs take no wall time), or real."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from agentundo.model.common import MAX_WAIT_S as MAX_WAIT_S  # the longest single wait

DEFAULT_START = 1_767_225_600.0
"""2026-01-01T00:00:00Z: where a virtual clock starts unless told otherwise."""

_LAST_MOMENT = "9999-12-31T23:59:59.999Z"
_FIRST_MOMENT = "0001-01-01T00:00:00.000Z"


def bounded_wait(seconds: float) -> float:
    """``seconds`` as a wait a clock performs: 0 when negative or NaN, at most a week."""
    if not seconds > 0:  # also NaN
        return 0.0
    return min(seconds, MAX_WAIT_S)


class Clock(Protocol):
    """Tells the time (seconds since the epoch) and waits."""

    def now(self) -> float: ...

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        """Wait ``seconds``; False when ``stop`` was set before the wait was over."""
        ...


class VirtualClock:
    """Time that only moves when the engine waits: a 30 s backoff takes no wall time."""

    def __init__(self, start: float = DEFAULT_START) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        if stop is not None and stop.is_set():
            return False
        self._now += bounded_wait(seconds)
        return True


class RealClock:
    """Wall time; a wait ends early when ``stop`` is set (an interrupt)."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        if stop is None:
            time.sleep(bounded_wait(seconds))
            return True
        return not stop.wait(bounded_wait(seconds))


def virtual_from_now() -> VirtualClock:
    """A virtual clock that starts at the current wall time (what a drill uses)."""
    return VirtualClock(time.time())


def clock_factory(name: str) -> Callable[[], Clock]:
    """Make the clocks called ``name`` (virtual or real), one per run.

    The factory is a module-level callable, so a sweep can hand it to worker processes.
    """
    return RealClock if name == "real" else virtual_from_now


_last: tuple[int, str] = (-1, "")


def rfc3339(timestamp: float) -> str:
    """``2026-03-31T13:40:18.250Z``: RFC 3339, UTC, millisecond precision.

    A time beyond what a date can show (year 1 to 9999) is shown as the first or last
    moment, never an error: evidence must be written whatever the clock says.
    """
    global _last
    try:
        millis = int(timestamp * 1000)
        if millis == _last[0]:  # a virtual clock stands still between waits
            return _last[1]
        moment = datetime.fromtimestamp(millis / 1000, tz=UTC)
    except (OverflowError, ValueError, OSError):
        return _LAST_MOMENT if timestamp > 0 else _FIRST_MOMENT
    text = f"{moment.year:04d}" + moment.strftime("-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"
    _last = (millis, text)
    return text
