"""Benchmark: `agentundo drill --sweep` over 50-, 100- and 200-step workflows.

A sweep of an N-step workflow is N runs, run k dispatching k steps and rolling back up
to k compensations, so the work (and the evidence written) grows with N squared: the
growth ratio time(2N)/time(N) should be about 4.

Each size is timed four ways: in one process (``--jobs 1``) and in parallel (``--jobs``
default: one process per CPU), with evidence files and with the engine only. Each
figure is the best of ``--repeat`` runs (default 2), as other load on the machine only
ever adds time. Run from the repository root:  python bench/bench_sweep.py
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

from agentundo.model.catalog import Catalog
from agentundo.model.policy import Policy
from agentundo.model.workflow import Workflow
from agentundo.saga.clock import VirtualClock
from agentundo.saga.setup import DrillSetup
from agentundo.saga.sweep import default_jobs, sweep

KINDS = ("compensatable", "reversible", "readonly", "irreversible")
SIZES = (50, 100, 200)


def setup(steps: int) -> DrillSetup:
    topics: dict[str, object] = {"undo": {"side_effect": True, "rollback": "irreversible"}}
    for i, kind in enumerate(KINDS):
        if kind == "readonly":
            topics[f"t{i}"] = {"side_effect": False}
        elif kind == "irreversible":
            topics[f"t{i}"] = {
                "side_effect": True,
                "rollback": kind,
                "no_rollback_reason": "a notice cannot be unsent",
                "mitigation": "call someone",
            }
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


def measure(steps: int, *, evidence: bool, jobs: int = 1, repeat: int = 1) -> tuple[float, int]:
    """The best time of ``repeat`` sweeps, and the number of evidence records written."""
    best, lines = float("inf"), 0
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            rows = sweep(
                setup(steps),
                clock_factory=VirtualClock,
                evidence_dir=Path(tmp) if evidence else None,
                jobs=jobs,
            )
            best = min(best, time.perf_counter() - start)
            assert len(rows) == steps and all(r.verdict == "recovered" for r in rows)
            if evidence:
                lines = sum(1 for p in Path(tmp).glob("*.jsonl") for _ in p.open())
    return best, lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="best of N runs [2]")
    parser.add_argument("--jobs", type=int, default=default_jobs(), help="parallel processes")
    args = parser.parse_args(argv)
    jobs, repeat = args.jobs, args.repeat
    times: dict[tuple[int, bool, int], float] = {}
    records: dict[int, int] = {}
    for steps in SIZES:
        for evidence in (True, False):
            for n in (1, jobs):
                elapsed, lines = measure(steps, evidence=evidence, jobs=n, repeat=repeat)
                times[steps, evidence, n] = elapsed
                if evidence:
                    records[steps] = lines
    print(f"sweep of N steps = N runs; best of {repeat}; parallel = {jobs} processes")
    head = (
        f"{'steps':>5} {'records':>8} | {'evidence':>8} {'parallel':>8} {'speedup':>7} | "
        f"{'engine':>8} {'parallel':>8} {'speedup':>7} | {'evidence cost':>13}"
    )
    print(head)
    print("-" * len(head))
    for steps in SIZES:
        ev1, evn = times[steps, True, 1], times[steps, True, jobs]
        en1, enn = times[steps, False, 1], times[steps, False, jobs]
        print(
            f"{steps:>5} {records[steps]:>8} | {ev1:>7.2f}s {evn:>7.2f}s {ev1 / evn:>6.2f}x | "
            f"{en1:>7.2f}s {enn:>7.2f}s {en1 / enn:>6.2f}x | {ev1 / en1:>12.2f}x"
        )
    print("growth, time(2N)/time(N) (quadratic work: ~4):")
    for small, big in itertools.pairwise(SIZES):
        cells = [
            f"{label} {times[big, ev, n] / times[small, ev, n]:.2f}"
            for label, ev, n in (
                ("evidence", True, 1),
                ("evidence parallel", True, jobs),
                ("engine", False, 1),
                ("engine parallel", False, jobs),
            )
        ]
        print(f"  {big}/{small}: " + ", ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
