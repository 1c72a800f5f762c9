"""Secrets are redacted from evidence, never the record's structure."""

from __future__ import annotations

import json
from pathlib import Path

from agentundo.evidence.redact import REDACTED
from agentundo.evidence.writer import EvidenceWriter


def test_a_secret_spelling_part_of_a_field_leaves_the_structure_alone(tmp_path: Path) -> None:
    secrets = frozenset({"step", "compensation", "run_"})
    path = tmp_path / "run.jsonl"
    with EvidenceWriter(path, secrets=secrets, key=None) as writer:
        writer.write(
            {
                "event": "compensation_dispatched",
                "run_id": "run_1",
                "step_id": "step_a",
                "topic": "payments.refund",
                "detail": {"body": "refund for step_a of run_1 (compensation)"},
                "error": "the compensation failed",
            }
        )
    (record,) = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    assert (record["event"], record["run_id"], record["step_id"]) == (
        "compensation_dispatched",
        "run_1",
        "step_a",
    )
    assert record["detail"]["body"] == (f"refund for {REDACTED}_a of {REDACTED}1 ({REDACTED})")
    assert record["error"] == f"the {REDACTED} failed"
