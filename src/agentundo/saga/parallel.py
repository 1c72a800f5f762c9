"""Run a sweep's runs in worker processes: rows in step order, stoppable, as in one process.

Each worker gets the sweep's task once (at start-up) and then only run indexes. Signals:
a worker stops its run at the next safe point (recorded as interrupted, as in one
process) when it receives SIGINT/SIGTERM itself (Ctrl-C reaches the whole process group)
or when the parent, told to stop, sets the shared cancel event. Runs not started by then
are not started.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing.context import BaseContext
from typing import Any, Protocol, TypeVar

from agentundo.saga.setup import Stop

T = TypeVar("T")

_POLL_S = 0.05
"""How often the parent looks at its stop request while runs are under way."""

Task = Callable[[int, Stop | None], Any]


class _Flag(Protocol):
    def set(self) -> None: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class _Text(Protocol):
    value: bytes


_task: Task | None = None
_stop: Stop | None = None


def _context() -> BaseContext:
    """``fork`` where it is the safe, cheap default (Linux: ~20 ms for two workers,
    against ~0.5 s to start interpreters); elsewhere the platform's default."""
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def _init(task: Task, cancel: _Flag, reason: _Text) -> None:
    """Set up a worker: its task, its stop request and how it learns of one."""
    global _task, _stop
    stop = Stop()
    _task, _stop = task, stop

    def on_signal(signum: int, _frame: object) -> None:
        stop.request(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)

    def watch() -> None:
        cancel.wait()
        stop.request(reason.value.decode() or "stop")

    threading.Thread(target=watch, name="agentundo-sweep-stop", daemon=True).start()


def _run(index: int) -> Any:
    """One run in a worker; None when a stop came before it started (it is not run)."""
    assert _task is not None and _stop is not None, "worker not initialised"
    if _stop.requested:
        return None
    return _task(index, _stop)


def run_parallel(
    task: Task,
    total: int,
    *,
    jobs: int,
    stop: Stop | None = None,
    on_run: Callable[[int, int], None] | None = None,
) -> list[Any]:
    """``task(i, stop)`` for i in ``range(total)`` in ``jobs`` processes; results in order.

    ``on_run(done, total)`` is called in this process as runs finish. Results of runs
    that were not started (because of a stop) are missing from the list.
    """
    if stop is not None and stop.requested:
        return []
    ctx = _context()
    cancel: Any = ctx.Event()
    reason: Any = ctx.Array("c", 64)
    results: dict[int, Any] = {}
    stopping = False

    def cancel_all(why: str, futures: dict[Future[Any], int]) -> None:
        nonlocal stopping
        stopping = True
        reason.value = why.encode()[:63]
        cancel.set()
        for future in futures:
            future.cancel()

    with ProcessPoolExecutor(
        max_workers=max(1, min(jobs, total)),
        mp_context=ctx,
        initializer=_init,
        initargs=(task, cancel, reason),
    ) as pool:
        futures = {pool.submit(_run, index): index for index in range(total)}
        try:
            waiting = set(futures)
            while waiting:
                done, waiting = wait(waiting, timeout=_POLL_S, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=futures.__getitem__):
                    if future.cancelled():
                        continue
                    result = future.result()
                    if result is not None:
                        results[futures[future]] = result
                        if on_run is not None:
                            on_run(len(results), total)
                if stop is not None and stop.requested and not stopping:
                    cancel_all(stop.reason or "stop", futures)
        except BaseException:  # an error here or in a run: stop the other runs, re-raise
            if not stopping:
                cancel_all(stop.reason if stop is not None and stop.reason else "stop", futures)
            raise
    return [results[index] for index in sorted(results)]
