"""Benchmark: `agentundo drill --sweep` over 50-, 100- and 200-step workflows.

A sweep of an N-step workflow is N runs, run k dispatching k steps and rolling back up
to k compensations, so the work (and the evidence written) grows with N squared.
Run from the repository root:  python bench/bench_sweep.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from agentundo.model.catalog import Catalog
from agentundo.model.policy import Policy
from agentundo.model.workflow import Workflow
from agentundo.saga.clock import VirtualClock
from agentundo.saga.drills import sweep
from agentundo.saga.engine import DrillSetup

KINDS = ("compensatable", "reversible", "readonly", "irreversible")


def setup(steps: int) -> DrillSetup:
    topics: dict[str, object] = {"undo": {"side_effect": True, "rollback": "irreversible"}}
    for i, kind in enumerate(KINDS):
        if kind == "readonly":
            topics[f"t{i}"] = {"side_effect": False}
        elif kind == "irreversible":
            topics[f"t{i}"] = {"side_effect": True, "rollback": kind, "mitigation": "call someone"}
        else:
            topics[f"t{i}"] = {
                "side_effect": True,
                "rollback": kind,
                "idempotency_key": "{run_id}:{step_id}",
                "compensation": {"topic": "undo", "idempotency_key": "{run_id}:{step_id}:undo"},
            }
    rules = [
        {
            "id": "prod-writes",
            "when": {"env": "production", "side_effect": True},
            "decision": "allow",
        },
        {"id": "reads", "when": {"side_effect": False}, "decision": "allow"},
    ]
    wf_steps = [{"id": f"s{i}", "topic": f"t{i % len(KINDS)}"} for i in range(steps)]
    return DrillSetup(
        workflow=Workflow.model_validate(
            {"version": "v1", "workflow": "bench", "env": "production", "steps": wf_steps}
        ),
        catalog=Catalog.model_validate({"version": "v1", "topics": topics}),
        policy=Policy.model_validate({"version": "v1", "rules": rules}),
    )


def measure(steps: int, evidence: bool) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        rows = sweep(
            setup(steps),
            clock_factory=VirtualClock,
            evidence_dir=Path(tmp) if evidence else None,
        )
        elapsed = time.perf_counter() - start
        assert len(rows) == steps and all(r.verdict == "recovered" for r in rows)
        lines = sum(1 for p in Path(tmp).glob("*.jsonl") for _ in p.open()) if evidence else 0
    return elapsed, lines


def main() -> int:
    print(f"{'steps':>5} {'runs':>5} {'with evidence':>14} {'records':>8} {'engine only':>12}")
    for steps in (50, 100, 200):
        with_ev, records = measure(steps, evidence=True)
        bare, _ = measure(steps, evidence=False)
        print(f"{steps:>5} {steps:>5} {with_ev:>13.2f}s {records:>8} {bare:>11.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
