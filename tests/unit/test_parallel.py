"""run_parallel (saga/parallel.py): tasks in worker processes, results in index order, stoppable.

The task functions are module-level so that worker processes can run them. The sweep's
own parallel behaviour (rows, evidence, SIGTERM) is tested through the CLI in
tests/cli/test_drill.py.
"""

from __future__ import annotations

import os
import time

import pytest

from agentundo.saga.parallel import run_parallel
from agentundo.saga.setup import Stop


def _square(index: int, stop: Stop | None) -> int:
    del stop
    return index * index


def _slower_first(index: int, stop: Stop | None) -> tuple[int, float]:
    """Earlier indexes take longer: with two workers, index 1 finishes before index 0."""
    del stop
    time.sleep(0.1 + 0.2 * (3 - index))
    return index, time.monotonic()


def _where(index: int, stop: Stop | None) -> tuple[int, int, bool]:
    return index, os.getpid(), isinstance(stop, Stop) and not stop.requested


def _fails_at_two(index: int, stop: Stop | None) -> int:
    del stop
    if index == 2:
        raise ValueError(f"run {index} broke")
    return index


def _never(index: int, stop: Stop | None) -> int:
    raise AssertionError(f"run {index} was started")


def _first_quick_then_wait(index: int, stop: Stop | None) -> tuple[int, bool, bool]:
    """Run 0 ends at once; every other run waits (up to 2 s) for a stop request.

    Returns whether a stop had been requested when the run started, and when it ended.
    """
    assert stop is not None
    at_start = stop.requested
    if index > 0:
        stop.event.wait(2.0)
    return index, at_start, stop.requested


def _none_for_odd(index: int, stop: Stop | None) -> int | None:
    del stop
    return None if index % 2 else index


def test_results_come_back_in_index_order() -> None:
    assert run_parallel(_square, 7, jobs=2) == [0, 1, 4, 9, 16, 25, 36]


def test_results_are_in_index_order_whatever_order_runs_finish_in() -> None:
    rows = run_parallel(_slower_first, 4, jobs=2)
    assert [index for index, _ in rows] == [0, 1, 2, 3]
    finished = dict(rows)
    assert finished[1] < finished[0], "run 1 should have finished first"


def test_runs_happen_in_worker_processes_each_with_its_own_stop() -> None:
    rows = run_parallel(_where, 4, jobs=2)
    assert [index for index, _, _ in rows] == [0, 1, 2, 3]
    pids = {pid for _, pid, _ in rows}
    assert os.getpid() not in pids
    assert 1 <= len(pids) <= 2  # never more workers than jobs
    assert all(fresh for _, _, fresh in rows)


def test_more_jobs_than_runs_fewer_than_one_job_and_no_runs() -> None:
    assert run_parallel(_square, 2, jobs=8) == [0, 1]
    assert run_parallel(_square, 2, jobs=0) == [0, 1]
    assert run_parallel(_square, 0, jobs=2) == []


def test_on_run_is_called_once_per_finished_run() -> None:
    calls: list[tuple[int, int]] = []
    rows = run_parallel(_square, 5, jobs=2, on_run=lambda done, total: calls.append((done, total)))
    assert len(rows) == 5
    assert calls == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]


def test_an_exception_in_a_run_propagates() -> None:
    with pytest.raises(ValueError, match="run 2 broke"):
        run_parallel(_fails_at_two, 4, jobs=2)


def test_a_stop_requested_beforehand_starts_nothing() -> None:
    stop = Stop()
    stop.request("SIGINT")
    calls: list[tuple[int, int]] = []
    rows = run_parallel(_never, 5, jobs=2, stop=stop, on_run=lambda *a: calls.append(a))
    assert rows == []
    assert calls == []


def test_a_stop_starts_no_new_run_and_returns_the_rows_of_those_that_ran() -> None:
    stop = Stop()
    total = 8
    calls: list[int] = []

    def on_run(done: int, _total: int) -> None:
        calls.append(done)
        stop.request("SIGTERM")  # the first finished run asks everything to stop

    started = time.monotonic()
    rows = run_parallel(_first_quick_then_wait, total, jobs=1, stop=stop, on_run=on_run)
    elapsed = time.monotonic() - started
    assert rows[0] == (0, False, False)
    assert 1 <= len(rows) < total, "runs not started by the stop are not started"
    indexes = [index for index, _, _ in rows]
    assert indexes == list(range(len(rows)))  # one worker: the runs that ran are a prefix
    assert not any(at_start for _, at_start, _ in rows), "a run started after the stop"
    assert all(at_end for _, _, at_end in rows[1:]), "runs under way are told to stop"
    assert calls == list(range(1, len(rows) + 1))
    assert elapsed < 6.0, "the waiting runs should not have waited out their 2 s each"


def test_a_run_that_returns_none_counts_as_not_run() -> None:
    calls: list[int] = []
    rows = run_parallel(_none_for_odd, 5, jobs=2, on_run=lambda done, _t: calls.append(done))
    assert rows == [0, 2, 4]
    assert calls == [1, 2, 3]
