"""`agentundo drill` end to end, through a real subprocess."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agentundo.evidence.chain import GENESIS, record_hash
from tests.cli_runner import Result, invoke
from tests.saga_helpers import CATALOG, POLICY, WORKFLOW, write


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return {
        "workflow": write(tmp_path, "wf.yaml", WORKFLOW),
        "catalog": write(tmp_path, "catalog.yaml", CATALOG),
        "policy": write(tmp_path, "policy.yaml", POLICY),
        "evidence": tmp_path / "evidence",
    }


def drill(files: dict[str, Path], *args: str) -> Result:
    return invoke(
        "drill",
        files["workflow"],
        "--catalog",
        files["catalog"],
        "--policy",
        files["policy"],
        "--evidence",
        files["evidence"],
        *args,
    )


def evidence(path: Path) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    prev = GENESIS
    for record in records:
        assert record["prev_hash"] == prev and record["hash"] == record_hash(record)
        prev = record["hash"]
    return records


def test_a_recovering_drill_exits_0_and_writes_chained_evidence(files: dict[str, Path]) -> None:
    done = drill(files, "--fail-at", "ship", "--transient", "charge=2", "--format", "json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["verdict"] == "recovered"
    assert [r["state"] for r in out["ledger"]] == ["none", "undone", "undone", "escalated", "none"]
    records = evidence(Path(out["evidence"]))
    assert records[-1]["event"] == "run_summary"
    assert records[-1]["run_id"] == out["summary"]["run_id"]
    assert [r["event"] for r in records].count("retry_scheduled") == 2


def test_the_text_summary_names_the_verdict_and_the_evidence(files: dict[str, Path]) -> None:
    done = drill(files, "--fail-at", "ship")
    assert done.returncode == 0, done.stderr
    assert "verdict: recovered" in done.stdout
    assert "irreversible  notify email.send: an email cannot be unsent" in done.stdout
    assert f"evidence: {files['evidence']}" in done.stdout


def test_an_effect_left_behind_fails_the_drill(files: dict[str, Path]) -> None:
    done = drill(files, "--partial", "ship", "--no-compensate-failed-step", "-f", "json")
    assert done.returncode == 1
    out = json.loads(done.stdout)
    assert out["summary"]["left_behind"] == ["ship"]
    assert out["verdict"] == "failed"


def test_bad_input_exits_2_with_a_position(files: dict[str, Path], tmp_path: Path) -> None:
    done = drill(files, "--fail-at", "nope")
    assert done.returncode == 2
    assert "names step 'nope'" in done.stderr
    assert drill(files, "--transient", "charge").returncode == 2
    scenario = write(
        tmp_path, "s.yaml", "version: v1\nscenario: s\nfaults:\n  - {type: fatal, step: zz}\n"
    )
    done = drill(files, "--scenario", str(scenario))
    assert done.returncode == 2
    assert f"{scenario}:4:" in done.stderr and "'zz'" in done.stderr
    assert not files["evidence"].exists()


def test_a_scenario_file_with_expectations(files: dict[str, Path], tmp_path: Path) -> None:
    good = write(
        tmp_path,
        "good.yaml",
        """
        version: v1
        scenario: weekly
        workflow: order
        faults:
          - {type: partial, step: ship}
          - {type: duplicate_delivery, step: charge}
        expect: {status: FAILED_FATAL, compensated: [reserve, charge, ship], manual: [notify]}
        """,
    )
    done = drill(files, "--scenario", str(good), "-f", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["summary"]["scenario"] == "weekly"
    bad = write(
        tmp_path,
        "bad.yaml",
        "version: v1\nscenario: w\nexpect: {manual: []}\nfaults: [{type: fatal, step: ship}]\n",
    )
    done = drill(files, "--scenario", str(bad), "-f", "json")
    assert done.returncode == 1
    assert json.loads(done.stdout)["problems"] == [
        "sent to manual follow-up but not expected: notify"
    ]


def test_sweep_runs_once_per_step(files: dict[str, Path]) -> None:
    done = drill(files, "--sweep", "-f", "json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert [r["step_id"] for r in out["runs"]] == ["lookup", "reserve", "charge", "notify", "ship"]
    assert [r["compensated"] for r in out["runs"]] == [0, 0, 1, 2, 2]
    assert len(list(files["evidence"].glob("*.jsonl"))) == 5
    text = drill(files, "--sweep")
    assert "5 runs, 0 failed" in text.stdout


@pytest.mark.parametrize(
    ("faults", "waits_for"),
    [
        (["--transient", "charge=10"], "retry_scheduled"),
        (["--fail-at", "ship", "--scenario", "comp-fails"], "compensation_retry_scheduled"),
    ],
)
def test_sigterm_stops_the_drill_cleanly(
    files: dict[str, Path], tmp_path: Path, faults: list[str], waits_for: str
) -> None:
    if "comp-fails" in faults:
        path = write(
            tmp_path,
            "comp.yaml",
            "version: v1\nscenario: c\nfaults: [{type: compensation_failure, step: charge, count: 5}]\n",
        )
        faults = [str(path) if f == "comp-fails" else f for f in faults]
    cmd = [
        sys.executable,
        "-m",
        "agentundo",
        "drill",
        str(files["workflow"]),
        "--catalog",
        str(files["catalog"]),
        "--policy",
        str(files["policy"]),
        "--evidence",
        str(files["evidence"]),
        "--clock",
        "real",
        *faults,
        "--format",
        "json",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # wait until the first retry is scheduled
        found = list(files["evidence"].glob("*.jsonl")) if files["evidence"].exists() else []
        if found and waits_for in found[0].read_text(encoding="utf-8"):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    records = evidence(found[0])
    names = [r["event"] for r in records]
    assert "run_interrupted" in names
    assert records[names.index("run_interrupted")]["signal"] == "SIGTERM"
    assert names[-1] == "run_summary" and records[-1]["status"] == "interrupted"
    assert json.loads(out)["verdict"] == "interrupted"
    if waits_for.startswith("compensation"):
        released = [r for r in records if r["event"] == "lock_released"]
        assert [r["released"] for r in released] == [True]
        assert names[-3:] == ["lock_released", "rollback_finished", "run_summary"]
