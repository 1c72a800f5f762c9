"""End to end: a real `agentundo drill` writes evidence, `agentundo timeline --verify` accepts it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_runner import CLEAN_ENV, Result, invoke
from tests.saga_helpers import CATALOG, POLICY, WORKFLOW, write


def agentundo(*args: str, cwd: Path) -> Result:
    return invoke(*args, cwd=cwd, clean_env=True, env=CLEAN_ENV)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write(tmp_path, "wf.yaml", WORKFLOW)
    write(tmp_path, "catalog.yaml", CATALOG)
    write(tmp_path, "policy.yaml", POLICY)
    return tmp_path


DRILL = (
    "drill",
    "wf.yaml",
    "--catalog",
    "catalog.yaml",
    "--policy",
    "policy.yaml",
    "--evidence",
    "ev",
)


def test_real_drills_verify_and_render(project: Path) -> None:
    for faults in (
        (),
        ("--fail-at", "ship", "--transient", "charge=2"),
        ("--partial", "ship", "--no-compensate-failed-step"),
        ("--sweep",),
    ):
        done = agentundo(*DRILL, *faults, cwd=project)
        assert done.returncode in (0, 1), done.stderr
    files = sorted((project / "ev").rglob("*.jsonl"))
    assert len(files) >= 4
    verified = agentundo("timeline", "--verify", "-q", "ev", cwd=project)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.count("verified (hash chain intact, run complete)") == len(files)
    for fmt in ("table", "markdown", "mermaid", "json"):
        shown = agentundo("timeline", "-f", fmt, "ev", cwd=project)
        assert shown.returncode == 0, shown.stderr
        assert "Traceback" not in shown.stderr
    history = agentundo("timeline", "--summary", "-f", "json", "ev", cwd=project)
    rows = [json.loads(line) for line in history.stdout.splitlines()]
    assert {r["verdict"] for r in rows} <= {"completed", "recovered", "failed", "interrupted"}
    assert len(rows) == len(files)


def test_tampering_with_real_drill_evidence_is_found(project: Path) -> None:
    done = agentundo(*DRILL, "--fail-at", "ship", cwd=project)
    assert done.returncode == 0, done.stderr
    (path,) = (project / "ev").glob("*.jsonl")
    lines = path.read_text().splitlines(keepends=True)
    edited = json.loads(lines[2])
    edited["actor"] = "agent:someone-else"
    lines[2] = json.dumps(edited, separators=(",", ":")) + "\n"
    path.write_text("".join(lines))
    verified = agentundo("timeline", "--verify", "-q", str(path.relative_to(project)), cwd=project)
    assert verified.returncode == 1
    assert ":3: EV101" in verified.stdout
