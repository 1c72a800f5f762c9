"""evidence/writer.py: what is synced to disk and when, and evidence loss reported, never raised.

Real files throughout: disk full on a real (tiny) tmpfs and file too large under a real
``RLIMIT_FSIZE``, each in a subprocess; a file really deleted while it is open; a
descriptor really closed under the writer. Only the failing ``fsync`` (EIO) is simulated:
a disk that fails on demand needs a device-mapper target, which a test should not set up.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agentundo.errors import UsageError
from agentundo.evidence.chain import hash_body
from agentundo.evidence.events import Event
from agentundo.evidence.reader import read_path
from agentundo.evidence.verify import verify_items
from agentundo.evidence.writer import SYNC_EVENTS, EvidenceWriter, Sync, syncs_after
from agentundo.saga.clock import VirtualClock
from agentundo.saga.engine import drill
from agentundo.saga.faults import FaultPlan
from agentundo.saga.setup import DrillSetup
from tests.saga_helpers import ALWAYS_COMPENSATE_FAILED, catalog, policy, workflow

MODES: tuple[Sync, ...] = ("never", "points", "every")


def record(index: int, event: str = "policy_decision") -> dict[str, Any]:
    return {
        "ts": "2024-05-01T10:00:00.000Z",
        "event": event,
        "run_id": "run-1",
        "workflow_id": "order",
        "actor": "engine",
        "job_id": f"job_{index}",
        "topic": "payments.charge",
    }


def line_of(body: dict[str, Any]) -> bytes:
    """The line the writer writes for a sealed record (what a caller owes the file)."""
    return hash_body(body)[:-1] + b',"hash":"' + body["hash"].encode() + b'"}\n'


def chain_problems(path: Path) -> list[str]:
    """Format and chain problems (EV0xx, EV1xx) only: a cut-short run is incomplete anyway."""
    found = verify_items(str(path), list(read_path(str(path))))
    return [p.describe() for p in found if p.code.startswith(("EV0", "EV1"))]


class Syncs:
    """``os.fsync`` wrapped: the real call, with what each call synced (a directory or not)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[bool, int]] = []  # (is a directory, inode)
        real = os.fsync

        @functools.wraps(real)
        def fsync(fd: int) -> None:
            info = os.fstat(fd)
            self.calls.append((stat.S_ISDIR(info.st_mode), info.st_ino))
            real(fd)

        monkeypatch.setattr(os, "fsync", fsync)

    @property
    def files(self) -> int:
        return sum(1 for is_dir, _ in self.calls if not is_dir)

    @property
    def directories(self) -> list[int]:
        return [inode for is_dir, inode in self.calls if is_dir]


# -- what is synced, and when ---------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_the_directory_is_synced_when_the_file_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: Sync
) -> None:
    syncs = Syncs(monkeypatch)
    path = tmp_path / "new" / "deeper" / "run.jsonl"  # two directories made for it
    writer = EvidenceWriter(path, key=None, sync=mode)
    made = [path.parent, path.parent.parent, tmp_path]  # each new entry lives in its parent
    expected = [] if mode == "never" else [d.stat().st_ino for d in made]
    assert syncs.directories == expected
    assert syncs.files == 0
    writer.close()
    assert syncs.files == (0 if mode == "never" else 1)  # close syncs the file
    assert writer.failure is None and not writer.lost


def drill_records(sink: Callable[[dict[str, Any]], object]) -> None:
    """A real drill: the ship step fails fatally and the four steps before it roll back."""
    setup = DrillSetup(
        workflow=workflow(),
        catalog=catalog(),
        policy=policy(),
        plan=FaultPlan.of([]).with_fault(_fault({"type": "fatal", "step": "ship"})),
        settings=ALWAYS_COMPENSATE_FAILED,
    )
    drill(setup, run_id="run_s", sink=sink, clock=VirtualClock())


def _fault(data: dict[str, Any]) -> Any:
    from agentundo.model.scenario import Fault

    return Fault.model_validate(data)


@pytest.mark.parametrize("mode", MODES)
def test_which_records_are_synced_in_each_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: Sync
) -> None:
    syncs = Syncs(monkeypatch)
    synced: list[tuple[str, bool]] = []
    with EvidenceWriter(tmp_path / "run.jsonl", key=None, sync=mode) as writer:

        def sink(data: dict[str, Any]) -> None:
            before = syncs.files
            writer.write(data)
            synced.append((data["event"], syncs.files > before))

        drill_records(sink)
        for extra in ("step_outcome_unknown", "recovery_started", "lock_acquired"):
            sink(record(0, extra))  # names to come sync by their shape
    events = {event for event, _ in synced}
    assert {"step_dispatched", "compensation_dispatched", "compensation_succeeded"} <= events
    assert {"policy_decision", "rollback_triggered", "lock_acquired"} <= events  # not synced
    for event, did in synced:
        wanted = {"never": False, "every": True, "points": syncs_after(event)}[mode]
        assert did is wanted, (mode, event)
    assert writer.failure is None
    assert chain_problems(tmp_path / "run.jsonl") == []


def test_the_sync_points_are_intents_and_outcomes() -> None:
    assert {
        Event.STEP_DISPATCHED,
        Event.COMPENSATION_DISPATCHED,
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
    } == SYNC_EVENTS
    assert all(type(name) is str for name in SYNC_EVENTS)  # plain strings, as records carry
    assert syncs_after("compensation_outcome_unknown") and syncs_after("recovery_finished")
    assert not syncs_after("policy_decision") and not syncs_after("step_failed")
    assert not syncs_after(None)


def test_an_unknown_sync_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sync must be one of never, points, every"):
        EvidenceWriter(tmp_path / "run.jsonl", sync="sometimes")  # type: ignore[arg-type]
    assert not (tmp_path / "run.jsonl").exists()


# -- disk full, file too large: real limits, in a subprocess --------------------------

CHILD = textwrap.dedent(
    """
    import json, resource, signal, sys
    from agentundo.evidence.writer import EvidenceWriter

    path, limit, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG, not a killed process
    if limit:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    calls = []
    writer = EvidenceWriter(path, key=None, on_failure=calls.append)
    events = ["policy_decision", "step_dispatched", "step_succeeded"]
    sealed = []
    for i in range(count):
        sealed.append(writer.write({
            "ts": "2024-05-01T10:00:00.000Z", "event": events[i % 3], "run_id": "run-1",
            "workflow_id": "order", "actor": "engine", "job_id": f"job_{i // 3}",
            "topic": "payments.charge", "note": "x" * (i % 41),
        }))
    writer.close()
    with open(path, "rb") as handle:
        data = handle.read().decode()
    print(json.dumps({
        "failure": writer.failure, "lost": writer.lost, "calls": calls,
        "unwritten": writer.unwritten, "sealed": sealed, "data": data,
    }))
    """
)


def run_child(tmp_path: Path, argv: list[str]) -> dict[str, Any]:
    script = tmp_path / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    done = subprocess.run(
        [part.replace("{child}", str(script)) for part in argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no traceback, no warning
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def assert_nothing_lost(report: dict[str, Any], path: str, count: int) -> list[dict[str, Any]]:
    """Every record is a complete line of the file or in ``unwritten``, in order, once."""
    data: str = report["data"]
    assert data == "" or data.endswith("\n")  # no partial line left behind
    disk = [json.loads(line) for line in data.splitlines()]
    unwritten: list[dict[str, Any]] = report["unwritten"]
    assert disk and unwritten
    assert disk + unwritten == report["sealed"]
    assert len(report["sealed"]) == count
    assert [r["seq"] for r in disk + unwritten] == list(range(count))
    failure: str = report["failure"]
    assert failure.startswith(f"evidence file {path}: ")
    assert f"at record {len(disk)}" in failure
    assert f"record {len(disk)} and every later record are kept in memory" in failure
    assert report["lost"] is True and report["calls"] == [failure]  # told once
    return disk


def assert_chain_verifies(tmp_path: Path, report: dict[str, Any]) -> None:
    """What was written verifies; with the unwritten records appended, the whole run does."""
    written = tmp_path / "written.jsonl"
    written.write_text(report["data"], encoding="utf-8")
    assert chain_problems(written) == []
    whole = tmp_path / "whole.jsonl"
    owed = b"".join(line_of(body) for body in report["unwritten"])
    whole.write_bytes(report["data"].encode() + owed)
    assert chain_problems(whole) == []
    assert [json.loads(line) for line in whole.read_text().splitlines()] == report["sealed"]


def test_file_too_large_keeps_the_rest_in_memory(tmp_path: Path) -> None:
    path = str(tmp_path / "run.jsonl")
    limit = 20_000  # falls inside a line: the write is cut short, then EFBIG
    report = run_child(tmp_path, [sys.executable, "{child}", path, str(limit), "400"])
    disk = assert_nothing_lost(report, path, 400)
    assert "File too large (errno 27)" in report["failure"]
    # the part of the line that fit was cut off again: the file ends at a record
    assert "bytes of it that were written were cut off" in report["failure"]
    size = os.path.getsize(path)
    assert size < limit and size == len(report["data"].encode())
    assert len(disk) < 400
    assert_chain_verifies(tmp_path, report)


@functools.cache
def can_mount_tmpfs() -> bool:
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return False
    probe = ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"]
    try:
        return subprocess.run(probe, capture_output=True, timeout=30, check=False).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


needs_tmpfs = pytest.mark.skipif(
    not can_mount_tmpfs(), reason="needs unshare -rm and mount (a private tmpfs)"
)


@needs_tmpfs
def test_disk_full_keeps_the_rest_in_memory(tmp_path: Path) -> None:
    mount = tmp_path / "tiny"
    mount.mkdir()
    path = str(mount / "run.jsonl")
    shell = 'mount -t tmpfs -o size=64k tmpfs "$1" && exec "$2" "$3" "$4" 0 1000'
    argv = ["unshare", "-rm", "sh", "-c", shell, "sh", str(mount), sys.executable, "{child}"]
    report = run_child(tmp_path, [*argv, path])
    disk = assert_nothing_lost(report, path, 1000)
    assert "No space left on device (errno 28)" in report["failure"]
    assert len(report["data"]) <= 64 * 1024 and len(disk) > 100
    assert_chain_verifies(tmp_path, report)


@needs_tmpfs
def test_a_read_only_file_system_is_refused_before_the_run(tmp_path: Path) -> None:
    """A file cannot be created there, so no run starts without its evidence.

    A file system that turns read-only while the file is open (ext4's errors=remount-ro)
    cannot be made honestly without a block device: ``mount -o remount,ro`` refuses while
    a file is open for writing, and a read-only bind mount does not affect a descriptor
    already open. That case takes the path of any failed write (tested above).
    """
    mount = tmp_path / "ro"
    mount.mkdir()
    code = textwrap.dedent(
        """
        import sys
        from agentundo.errors import UsageError
        from agentundo.evidence.writer import EvidenceWriter
        try:
            EvidenceWriter(sys.argv[1] + "/run.jsonl")
        except UsageError as exc:
            print(exc)
        """
    )
    shell = 'mount -t tmpfs -o ro tmpfs "$1" && exec "$2" -c "$3" "$1"'
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", shell, "sh", str(mount), sys.executable, code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert (
        done.stdout.strip() == f"cannot write evidence to {mount}/run.jsonl: Read-only file system"
    )


# -- a deleted file, a closed descriptor, a failing fsync ------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_file_deleted_while_written_is_reported(tmp_path: Path, mode: Sync) -> None:
    path = tmp_path / "run.jsonl"
    calls: list[str] = []
    writer = EvidenceWriter(path, key=None, sync=mode, on_failure=calls.append)
    sealed = [writer.write(record(0)), writer.write(record(1, "step_dispatched"))]
    path.unlink()
    sealed.append(writer.write(record(2)))  # not a sync point
    sealed.append(writer.write(record(3, "step_succeeded")))  # a sync point
    if mode == "never":  # found only on close
        assert writer.failure is None
    sealed.append(writer.write(record(4, "run_summary")))
    writer.close()
    assert writer.lost and calls == [writer.failure]
    assert writer.failure is not None
    assert "the evidence file was deleted while it was written" in writer.failure
    where = {"never": "on close after record 4", "points": "at record 3", "every": "at record 2"}
    assert f"({where[mode]})" in writer.failure
    # read back from the deleted file (Linux): every record is still owed, none lost
    assert writer.unwritten == sealed
    assert not path.exists()


def test_a_descriptor_closed_under_the_writer_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    writer = EvidenceWriter(path, key=None)
    first = writer.write(record(0, "step_dispatched"))
    assert writer._fd is not None
    os.close(writer._fd)  # other code closed it
    rest = [writer.write(record(i, "step_succeeded")) for i in (1, 2)]
    writer.close()  # does not raise, and does not close the number again
    assert writer.failure == (
        f"evidence file {path}: Bad file descriptor (errno {errno.EBADF}) at record 1; "
        "record 1 and every later record are kept in memory (unwritten)"
    )
    assert writer.unwritten == rest
    assert [json.loads(line) for line in path.read_text().splitlines()] == [first]
    assert chain_problems(path) == []


def test_a_failing_fsync_keeps_what_it_could_not_confirm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Simulated EIO (see the module docstring): the records since the last good sync are
    in the file but not known to be on disk, so they are owed too."""
    path = tmp_path / "run.jsonl"
    writer = EvidenceWriter(path, key=None)
    first = [writer.write(record(0, "step_dispatched"))]  # synced
    second = [writer.write(record(1)), writer.write(record(2))]  # written, not yet synced

    def failing(fd: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "fsync", failing)
    second.append(writer.write(record(3, "step_succeeded")))  # the sync point fails
    later = [writer.write(record(4, "run_summary"))]
    writer.close()
    assert writer.failure == (
        f"evidence file {path}: Input/output error (errno 5) at record 3; "
        "records 1-3 were written but may not be on disk; "
        "records 1-3 and every later record are kept in memory (unwritten)"
    )
    assert writer.unwritten == second + later
    on_disk = [json.loads(line) for line in path.read_text().splitlines()]
    assert on_disk == first + second  # the file may hold them too: same seq, same hash


def test_a_failing_callback_does_not_stop_the_run(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"

    def broken(message: str) -> None:
        raise RuntimeError("the terminal went away")

    writer = EvidenceWriter(path, key=None, on_failure=broken)
    writer.write(record(0))
    path.unlink()
    writer.write(record(1, "step_dispatched"))
    writer.write(record(2))
    writer.close()
    assert writer.failure is not None
    assert writer.failure.endswith("; on_failure raised RuntimeError: the terminal went away")
    assert [r["seq"] for r in writer.unwritten] == [0, 1, 2]


def test_a_clean_run_reports_nothing_and_writing_after_close_is_misuse(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with EvidenceWriter(path, key=None) as writer:
        drill_records(writer.write)
    assert writer.failure is None and writer.unwritten == [] and not writer.lost
    assert chain_problems(path) == []
    with pytest.raises(ValueError, match="is closed"):
        writer.write(record(0))
    with pytest.raises(UsageError, match="never overwritten"):
        EvidenceWriter(path)
