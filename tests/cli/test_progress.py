"""Live drill progress: each record on stderr as it is written, before the run ends.

The first test is the real thing: the ledger example service on 127.0.0.1, a real-clock
``agentundo drill --executor http`` in a subprocess whose stderr is a pipe, read line by
line while the process runs; the service answers the first refund 2.5 s late, so the
lines before it must arrive while the drill is still waiting. The others run the command
in this process (tests/cli_runner.py) for the option's defaults.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli_runner import CLEAN_ENV, invoke
from tests.saga_helpers import CATALOG, POLICY, WORKFLOW, write

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "ledger"
TOKEN = "ledger-t0ken-never-shown"
SECRET_ORDER = "ord-SECRET-7731"
"""An order id marked secret: the service echoes it back in every answer."""


@pytest.fixture
def ledger() -> Iterator[Any]:
    from tests.cli.test_http_drill import ledger_service

    running = ledger_service.start()
    yield running
    running.stop()


def _workflow(tmp_path: Path) -> Path:
    """The example's checkout, with one order id marked secret."""
    return write(
        tmp_path,
        "workflow.yaml",
        f"""
        version: v1
        kind: workflow
        workflow: checkout
        env: staging
        steps:
          - id: charge_a
            topic: payments.charge
            params: {{order_id: {SECRET_ORDER}, amount: 1200}}
            secret_params: [order_id]
          - id: charge_b
            topic: payments.charge
            params: {{order_id: B-2002, amount: 3400}}
          - id: charge_c
            topic: payments.charge
            params: {{order_id: C-3003, amount: 560}}
        """,
    )


def _read_lines(stream: Any, into: list[tuple[float, bool, str]], proc: Any) -> None:
    # each line is stamped when it is read (a generator: one at a time, as they come)
    into.extend((time.monotonic(), proc.poll() is None, line.rstrip("\n")) for line in stream)


def test_a_real_clock_drill_shows_each_event_while_it_runs(ledger: Any, tmp_path: Path) -> None:
    slow = {"delay_ms": 2500, "slow_next": 1, "only": "refund"}
    assert httpx.post(f"{ledger.url}/admin/faults", params=slow, timeout=5).status_code == 200
    env = {
        **CLEAN_ENV,
        "PYTHONPATH": str(ROOT / "src"),
        "LEDGER_URL": ledger.url,
        "LEDGER_TOKEN": TOKEN,
    }
    command = [
        sys.executable,
        "-m",
        "agentundo",
        "drill",
        str(_workflow(tmp_path)),
        "--catalog",
        str(EXAMPLE / "catalog.yaml"),
        "--policy",
        str(EXAMPLE / "policy.yaml"),
        "--scenario",
        str(EXAMPLE / "scenario.yaml"),
        "--executor",
        "http",
        "--evidence",
        "ev",
        "--format",
        "json",
    ]
    lines: list[tuple[float, bool, str]] = []
    with subprocess.Popen(
        command,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stderr is not None and proc.stdout is not None
        reader = threading.Thread(target=_read_lines, args=(proc.stderr, lines, proc))
        reader.start()
        stdout = proc.stdout.read()
        code = proc.wait(timeout=60)
        ended = time.monotonic()
        reader.join(timeout=10)
    assert code == 0, "\n".join(line for _, _, line in lines)
    report = json.loads(stdout)  # stdout holds the JSON report and nothing else
    assert report["verdict"] == "recovered"

    start, *progress = [line for _, _, line in lines]
    evidence = Path(report["evidence"])
    assert start.startswith(f"agentundo: drill {evidence.stem} started; evidence: {evidence} ")
    records = [json.loads(line) for line in (tmp_path / evidence).read_text().splitlines()]
    # one line per record, in the order written, each naming its event (and its step)
    assert len(progress) == len(records)
    for line, record in zip(progress, records, strict=True):
        assert line.split("  ")[1] == record["event"], line
        if record.get("step_id"):
            assert line.split("  ")[2] == record["step_id"], line
    events = [(r["event"], r.get("step_id")) for r in records]
    assert events.index(("compensation_dispatched", "charge_b")) < events.index(
        ("compensation_succeeded", "charge_b")
    )

    # the lines came while the drill ran: everything up to the slow refund's dispatch was
    # read at least a second before the process ended, while it was still running
    dispatched = next(
        i for i, (_, _, line) in enumerate(lines) if "compensation_dispatched  charge_b" in line
    )
    for moment, running, line in lines[: dispatched + 1]:
        assert running and moment < ended - 1.0, line
    assert lines[-1][2].split("  ")[1] == "run_summary"

    shown = "\n".join(line for _, _, line in lines)
    assert SECRET_ORDER not in shown and TOKEN not in shown
    assert "[REDACTED]" in shown  # the echoed order id, as the evidence has it
    assert "B-2002" in shown  # what is not secret is shown as it is


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write(tmp_path, "wf.yaml", WORKFLOW)
    write(tmp_path, "catalog.yaml", CATALOG)
    write(tmp_path, "policy.yaml", POLICY)
    write(
        tmp_path,
        "real.yaml",
        """
        version: v1
        kind: scenario
        scenario: real-and-quick
        workflow: order
        clock: real
        faults:
          - {type: fatal, step: notify}
        """,
    )
    return tmp_path


def _drill(project: Path, *args: str) -> Any:
    return invoke(
        "drill",
        "wf.yaml",
        "--catalog",
        "catalog.yaml",
        "--policy",
        "policy.yaml",
        "--evidence",
        "ev",
        *args,
        cwd=project,
        clean_env=True,
        env=CLEAN_ENV,
    )


def test_a_virtual_clock_drill_is_quiet_unless_asked(project: Path) -> None:
    quiet = _drill(project, "--fail-at", "notify")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    asked = _drill(project, "--fail-at", "notify", "--progress", "-f", "json")
    assert asked.returncode == 0, asked.stderr
    assert json.loads(asked.stdout)["verdict"] == "recovered"
    start, *progress = asked.stderr.splitlines()
    assert start.startswith("agentundo: drill run_")
    assert [line.split("  ")[1] for line in progress[:2]] == ["run_started", "policy_decision"]
    assert "+0s  step_failed_fatal  notify  email.send  attempts=1" in asked.stderr
    assert "lock_acquired  lock_key=saga:order:" in asked.stderr
    assert "compensation_succeeded  charge  payments.refund" in asked.stderr
    assert progress[-1].split("  ")[1] == "run_summary"
    assert "params=" not in asked.stderr and "settings=" not in asked.stderr


def test_a_real_clock_drill_shows_progress_unless_told_not_to(project: Path) -> None:
    shown = _drill(project, "--scenario", "real.yaml")
    assert shown.returncode == 0, shown.stderr
    assert "  rollback_triggered  notify  email.send" in shown.stderr
    hidden = _drill(project, "--scenario", "real.yaml", "--no-progress")
    assert hidden.returncode == 0, hidden.stderr
    # the start line stays: a real-clock run still says where its evidence goes
    assert [line.split(";")[0].rsplit(" ", 2)[-1] for line in hidden.stderr.splitlines()] == [
        "started"
    ]


def test_progress_that_cannot_be_written_never_stops_the_run() -> None:
    from agentundo.report.progress import DrillProgress

    class Closed:
        def write(self, _text: str) -> int:
            raise OSError(32, "Broken pipe")

        def flush(self) -> None:
            pass

    progress = DrillProgress(Closed())  # type: ignore[arg-type]
    progress({"ts": "2026-01-01T00:00:00.000Z", "event": "run_started"})
    assert progress.broken
    progress({"ts": "2026-01-01T00:00:01.000Z", "event": "run_summary"})  # no error
