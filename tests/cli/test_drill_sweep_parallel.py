"""`agentundo drill --sweep --jobs N`: the same rows as in one process, evidence intact."""

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
from agentundo.saga.sweep import PARALLEL_MIN_RUNS
from tests.saga_helpers import CATALOG, POLICY, write

TOPICS = ("orders.lookup", "inventory.reserve", "payments.charge", "email.send")
STEPS = PARALLEL_MIN_RUNS + 8  # enough runs to go parallel


def _workflow(steps: int) -> str:
    lines = ["version: v1", "workflow: order", "env: production", "steps:"]
    for i in range(steps):
        params = f"{{sku: A{i}}}" if TOPICS[i % 4] == "inventory.reserve" else "{}"
        lines.append(f"  - {{id: s{i}, topic: {TOPICS[i % 4]}, params: {params}}}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return {
        "workflow": write(tmp_path, "wf.yaml", _workflow(STEPS)),
        "catalog": write(tmp_path, "catalog.yaml", CATALOG),
        "policy": write(tmp_path, "policy.yaml", POLICY),
    }


def _command(files: dict[str, Path], evidence: Path, *args: str) -> list[str]:
    return [
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
        str(evidence),
        "--sweep",
        *args,
    ]


def _sweep(files: dict[str, Path], evidence: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        _command(files, evidence, "--format", "json", *args),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def _verified(path: Path) -> list[dict[str, Any]]:
    """The records of one evidence file, each checked against the hash chain."""
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n"), f"{path} ends in a partial line"
    records = [json.loads(line) for line in text.splitlines()]
    prev = GENESIS
    for seq, record in enumerate(records):
        assert record["seq"] == seq
        assert record["prev_hash"] == prev
        assert record["hash"] == record_hash(record), f"{path}: record {seq} does not verify"
        prev = record["hash"]
    return records


def _without_run_ids(out: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows, with each run id reduced to its per-step suffix and paths to file names."""
    bases = {r["run_id"].rsplit("-", 1)[0] for r in out["runs"]}
    assert len(bases) == 1, "one sweep, one run-id base"
    rows = []
    for row in out["runs"]:
        suffix = row["run_id"].rsplit("-", 1)[1]
        assert suffix == f"{row['index'] + 1:03d}"
        assert Path(row["evidence"]).name == f"{row['run_id']}.jsonl"
        rows.append({**row, "run_id": suffix, "evidence": suffix})
    return rows


def test_a_parallel_sweep_gives_the_rows_of_a_sequential_one(
    files: dict[str, Path], tmp_path: Path
) -> None:
    one = _sweep(files, tmp_path / "one", "--jobs", "1", "--seed", "7")
    many = _sweep(files, tmp_path / "many", "--jobs", "2", "--seed", "7")
    assert [r["index"] for r in many["runs"]] == list(range(STEPS))
    assert _without_run_ids(many) == _without_run_ids(one)
    assert {k: v for k, v in many.items() if k not in ("runs", "evidence")} == {
        k: v for k, v in one.items() if k not in ("runs", "evidence")
    }


def test_every_evidence_file_of_a_parallel_sweep_verifies(
    files: dict[str, Path], tmp_path: Path
) -> None:
    out = _sweep(files, tmp_path / "ev", "--jobs", "2")
    paths = sorted((tmp_path / "ev").glob("*.jsonl"))
    assert len(paths) == STEPS
    assert sorted(r["evidence"] for r in out["runs"]) == [str(p) for p in paths]
    for row in out["runs"]:
        records = _verified(Path(row["evidence"]))
        assert records[0]["event"] == "run_started"
        assert records[-1]["event"] == "run_summary"
        assert {r["run_id"] for r in records} == {row["run_id"]}
        assert records[-1]["status"] == row["status"] == "FAILED_FATAL"
        assert records[-1]["verdict"] == row["verdict"]


def test_sigterm_stops_a_parallel_sweep_cleanly(files: dict[str, Path], tmp_path: Path) -> None:
    evidence = tmp_path / "stop"
    # every run retries s0 with real backoff first: SIGTERM lands while runs are under way
    cmd = _command(
        files, evidence, "--jobs", "2", "--clock", "real", "--transient", "s0=10", "-f", "json"
    )
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = list(evidence.glob("*.jsonl")) if evidence.exists() else []
        if found and any("retry_scheduled" in p.read_text(encoding="utf-8") for p in found):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    rows = json.loads(out)["runs"]
    assert rows, "the runs under way are reported"
    assert len(rows) < STEPS, "runs not started are not started"
    assert [r["index"] for r in rows] == sorted(r["index"] for r in rows)
    assert all(r["status"] == "interrupted" for r in rows)
    paths = list(evidence.glob("*.jsonl"))
    assert sorted(str(p) for p in paths) == sorted(r["evidence"] for r in rows)
    for path in paths:
        records = _verified(path)
        names = [r["event"] for r in records]
        assert records[names.index("run_interrupted")]["signal"] == "SIGTERM"
        assert names[-1] == "run_summary" and records[-1]["status"] == "interrupted"


def test_jobs_must_be_positive(files: dict[str, Path], tmp_path: Path) -> None:
    done = subprocess.run(
        _command(files, tmp_path / "ev", "--jobs", "0"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--jobs must be at least 1" in done.stderr
