"""`agentundo drill` refuses what it cannot rehearse honestly, and reads foreign policies."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli_runner import Result, invoke
from tests.saga_helpers import CATALOG, POLICY, WORKFLOW, write


def drill(tmp_path: Path, workflow: str, policy: str, *extra: str) -> Result:
    return invoke(
        "drill",
        write(tmp_path, "wf.yaml", workflow),
        "--catalog",
        write(tmp_path, "catalog.yaml", CATALOG),
        "--policy",
        write(tmp_path, "policy.yaml", policy),
        *extra,
        cwd=tmp_path,
    )


def test_a_step_with_an_unknown_topic_is_an_input_error(tmp_path: Path) -> None:
    workflow = WORKFLOW.replace("topic: payments.charge", "topic: payments.charg")
    done = drill(tmp_path, workflow, POLICY)
    assert done.returncode == 2
    assert (
        f"{tmp_path / 'wf.yaml'}:7:25: error: step 'charge' uses topic 'payments.charg', "
        "which is not in the catalog (hint: did you mean 'payments.charge'?)"
    ) in done.stderr
    assert not (tmp_path / "agentundo-evidence").exists()


def test_an_unwritable_evidence_directory_is_a_usage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    done = drill(tmp_path, WORKFLOW, POLICY, "--evidence", str(blocker / "evidence"))
    assert done.returncode == 2
    assert "agentundo: error: cannot write evidence to" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_control_plane_policy_gates_the_drill(tmp_path: Path) -> None:
    foreign = """
default_decision: permit
rules:
  - id: no-charges
    match: {topics: ["payments.charge"]}
    decision: block
"""
    done = drill(tmp_path, WORKFLOW, foreign, "--format", "json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)["summary"]
    assert summary["status"] == "DENIED"
    assert summary["matched_policy_id"] == "no-charges"
