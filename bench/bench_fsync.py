"""Benchmark: what syncing the evidence file costs, for each ``EvidenceWriter(sync=...)``.

One realistic drill: a workflow of ``--steps`` steps (compensatable, reversible, read-only
and irreversible in turn) whose last step fails fatally, so every step before it is
rolled back or, for the irreversible ones, sent to a human (about 600 records for the
default 125 steps). It is timed two ways for each mode:

* ``drill``: the engine writing its evidence through the writer, as ``agentundo drill``;
* ``replay``: the same records written again with nothing else (the writer's own cost).

Each figure is the median of ``--repeat`` runs (default 7), the modes taking turns so that
load on the machine falls on all of them alike; the ratios to ``never`` are the figures to
trust. Files go to ``--dir`` (default: the system temp directory), which must be the disk
you care about: on tmpfs an fsync costs nothing. Run from the repository root:
python bench/bench_fsync.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentundo.evidence.writer import SYNC_MODES, EvidenceWriter, Sync, syncs_after
from agentundo.model.catalog import Catalog
from agentundo.model.policy import Policy
from agentundo.model.scenario import Fault, FaultType
from agentundo.model.workflow import Workflow
from agentundo.saga.clock import VirtualClock
from agentundo.saga.engine import drill
from agentundo.saga.faults import FaultPlan
from agentundo.saga.setup import DrillSetup

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
        {"id": "writes", "when": {"env": "production", "side_effect": True}, "decision": "allow"},
        {"id": "reads", "when": {"side_effect": False}, "decision": "allow"},
    ]
    wf_steps = [{"id": f"s{i}", "topic": f"t{i % len(KINDS)}"} for i in range(steps)]
    last = wf_steps[-1]["id"]
    return DrillSetup(
        workflow=Workflow.model_validate(
            {"version": "v1", "workflow": "bench", "env": "production", "steps": wf_steps}
        ),
        catalog=Catalog.model_validate({"version": "v1", "topics": topics}),
        policy=Policy.model_validate({"version": "v1", "rules": rules}),
        plan=FaultPlan.of([Fault(type=FaultType.FATAL, step=last)]),
    )


def run_drill(the_setup: DrillSetup, sink: Callable[[dict[str, Any]], object]) -> None:
    drill(the_setup, run_id="bench", sink=sink, clock=VirtualClock())


def timed(directory: Path, name: str, mode: Sync, body: Callable[[EvidenceWriter], None]) -> float:
    path = directory / name
    start = time.perf_counter()
    with EvidenceWriter(path, key=None, sync=mode) as writer:
        body(writer)
    elapsed = time.perf_counter() - start
    assert writer.failure is None, writer.failure
    path.unlink()
    return elapsed


def file_system(directory: Path) -> str:
    try:
        out = subprocess.run(
            ["df", "-T", str(directory)], capture_output=True, text=True, check=True
        ).stdout
        device, kind = out.splitlines()[1].split()[:2]
        return f"{kind} on {device}"
    except (OSError, subprocess.SubprocessError, IndexError, ValueError):
        return "unknown file system"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=125, help="workflow steps [125]")
    parser.add_argument("--repeat", type=int, default=7, help="median of N runs [7]")
    parser.add_argument("--dir", type=Path, default=None, help="where the files go [temp dir]")
    args = parser.parse_args(argv)
    the_setup = setup(args.steps)
    records: list[dict[str, Any]] = []
    run_drill(the_setup, records.append)
    points = sum(1 for r in records if syncs_after(r["event"]))

    def drilled(writer: EvidenceWriter) -> None:
        run_drill(the_setup, writer.write)

    def replayed(writer: EvidenceWriter) -> None:
        for record in records:
            writer.write(record)

    ways = {"drill": drilled, "replay": replayed}
    times: dict[tuple[str, Sync], list[float]] = {(w, m): [] for w in ways for m in SYNC_MODES}
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-fsync-") as tmp:
        directory = Path(tmp)
        for _ in range(args.repeat):
            for way, body in ways.items():
                for mode in SYNC_MODES:
                    times[way, mode].append(timed(directory, f"{way}-{mode}.jsonl", mode, body))
        where = file_system(directory)
    print(
        f"{len(records)} records ({points} sync points) from a {args.steps}-step drill "
        f"rolled back; median of {args.repeat}; {where}; {os.cpu_count()} CPUs"
    )
    head = (
        f"{'':>7} | {'never':>9} {'points':>9} {'every':>9} | "
        f"{'points/never':>12} {'every/never':>11} | {'per sync':>8}"
    )
    print(head)
    print("-" * len(head))
    for way in ways:
        never, point, every = (statistics.median(times[way, m]) for m in SYNC_MODES)
        per_sync = (every - never) / (len(records) + 2) * 1e3  # + directory, close
        print(
            f"{way:>7} | {never * 1e3:>7.1f}ms {point * 1e3:>7.1f}ms {every * 1e3:>7.1f}ms | "
            f"{point / never:>12.1f} {every / never:>11.1f} | {per_sync:>6.2f}ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
