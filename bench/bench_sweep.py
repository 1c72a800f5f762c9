"""Benchmark: `agentundo drill --sweep` against one `chaos run` of the same workflow.

    python bench/bench_sweep.py [--steps 200] [--repeat 3] [--no-chaos] [--in-process]

A sweep of an N-step workflow is N drills, drill k failing at step k and rolling back the
steps before it, so the records written grow with N squared. The peer is Chaos Toolkit
1.19: ONE `chaos run` of an experiment of N actions (Python functions) whose last one
fails, with N-1 rollback actions, its journal written. Chaos Toolkit is installed into a
throwaway virtual environment (``~/.cache/agentundo-bench/chaostoolkit-1.19``, made on the
first run with pip), never into the project's; ``--no-chaos`` leaves that peer out.

Every command is a real process, timed wall-clock with its peak memory (the largest
resident set of it and its workers); the commands take turns ``--repeat`` times and the
median is shown, so the ratios compare figures of one run. The sweep's evidence is then
checked: its size on disk, its files, and that ``agentundo timeline --verify`` and
``--summary`` read it. ``--in-process`` adds the older table: the engine called in this
process, one and two processes, with and without evidence.
Run from the repository root:  python bench/bench_sweep.py
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

KINDS = ("compensatable", "reversible", "readonly", "irreversible")
CHAOS_VERSION = "1.19.0"
CHAOS_VENV = Path.home() / ".cache" / "agentundo-bench" / "chaostoolkit-1.19"
_MEASURE = (
    "import resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
    "took = time.perf_counter() - t\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "print(took, peak, done.returncode)\n"
    "sys.stderr.write(done.stderr.decode(errors='replace')[-2000:])\n"
)
_ACTIONS = """def ok(step):
    return {"step": step, "ok": True}


def fail(step):
    raise RuntimeError(f"step {step} failed")
"""


def documents(steps: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The catalog, policy and workflow of the benchmark: topics of four kinds in turn."""
    topics: dict[str, Any] = {"undo": {"side_effect": True, "rollback": "irreversible"}}
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
    return (
        {"version": "v1", "topics": topics},
        {"version": "v1", "rules": rules},
        {"version": "v1", "workflow": "bench", "env": "production", "steps": wf_steps},
    )


def setup(steps: int) -> Any:
    """The benchmark's :class:`~agentundo.saga.setup.DrillSetup` (for in-process runs)."""
    from agentundo.model.catalog import Catalog
    from agentundo.model.policy import Policy
    from agentundo.model.workflow import Workflow
    from agentundo.saga.setup import DrillSetup

    catalog, policy, workflow = documents(steps)
    return DrillSetup(
        workflow=Workflow.model_validate(workflow),
        catalog=Catalog.model_validate(catalog),
        policy=Policy.model_validate(policy),
    )


def write_project(root: Path, steps: int) -> None:
    catalog, policy, workflow = documents(steps)
    for name, doc in (("catalog", catalog), ("policy", policy), ("workflow", workflow)):
        (root / f"{name}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    actions = [_action(f"s{i}", "fail" if i == steps - 1 else "ok", i) for i in range(steps)]
    rollbacks = [_action(f"undo-s{i}", "ok", i) for i in reversed(range(steps - 1))]
    experiment = {
        "version": "1.0.0",
        "title": f"{steps} actions, the last one fails, {steps - 1} rollbacks",
        "description": "the peer of an agentundo sweep",
        "method": actions,
        "rollbacks": rollbacks,
    }
    (root / "experiment.json").write_text(json.dumps(experiment))
    (root / "bench_chaos_actions.py").write_text(_ACTIONS)


def _action(name: str, func: str, step: int) -> dict[str, Any]:
    provider = {
        "type": "python",
        "module": "bench_chaos_actions",
        "func": func,
        "arguments": {"step": step},
    }
    return {"type": "action", "name": name, "provider": provider}


def chaos_bin() -> Path:
    """``chaos`` of the throwaway environment, made on first use."""
    chaos = CHAOS_VENV / "bin" / "chaos"
    if not chaos.exists():
        print(f"installing chaostoolkit {CHAOS_VERSION} into {CHAOS_VENV} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(CHAOS_VENV)], check=True)
        pip = [str(CHAOS_VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, f"chaostoolkit=={CHAOS_VERSION}"], check=True)
    return chaos


def measure(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak resident kB of ``command`` (and its children)."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    took, peak, code = done.stdout.split()
    if code not in ("0", "1"):
        raise SystemExit(f"FAILED: {' '.join(command)} exited {code}: {done.stderr}")
    return float(took), int(peak)


def disk(directory: Path) -> tuple[int, int]:
    """Bytes and files under ``directory`` (its lock files left out)."""
    files = [p for p in directory.rglob("*") if p.is_file() and ".locks" not in p.parts]
    return sum(p.stat().st_size for p in files), len(files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3, help="turns of each command [3]")
    parser.add_argument("--no-chaos", action="store_true", help="leave Chaos Toolkit out")
    parser.add_argument("--in-process", action="store_true", help="add the in-process table")
    args = parser.parse_args(argv)
    steps = args.steps
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "NO_COLOR": "1",
    }
    agentundo = [sys.executable, "-m", "agentundo"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_project(root, steps)
        sweep = [*agentundo, "drill", "workflow.yaml", "--catalog", "catalog.yaml"]
        sweep += ["--policy", "policy.yaml", "--sweep", "-f", "json", "--lock", "memory"]
        commands: dict[str, list[str]] = {}
        if not args.no_chaos:
            chaos = str(chaos_bin())
            commands["chaos run (1 run, journal)"] = [
                chaos, "--no-version-check", "--log-file", "chaos.log", "run",
                "--rollback-strategy", "always", "--journal-path", "journal.json",
                "experiment.json",
            ]  # fmt: skip
        commands["drill --sweep (evidence all)"] = [*sweep, "--evidence", "ev-all"]
        commands["drill --sweep --evidence-level failures"] = [
            *sweep, "--evidence", "ev-failures", "--evidence-level", "failures",
        ]  # fmt: skip
        commands["drill --sweep --evidence-level none"] = [
            *sweep, "--evidence", "ev-none", "--evidence-level", "none",
        ]  # fmt: skip
        commands["drill --sweep --jobs 1 (evidence all)"] = [
            *sweep, "--evidence", "ev-one", "--jobs", "1",
        ]  # fmt: skip
        run_env = {**env, "PYTHONPATH": str(root)}
        times: dict[str, list[float]] = {name: [] for name in commands}
        peaks: dict[str, int] = dict.fromkeys(commands, 0)
        for turn in range(args.repeat):
            for name, command in commands.items():
                for leftover in root.glob("ev-*"):
                    shutil.rmtree(leftover)
                took, peak = measure(command, root, run_env)
                times[name].append(took)
                peaks[name] = max(peaks[name], peak)
            print(f"turn {turn + 1} of {args.repeat} done", file=sys.stderr)
        _report(times, peaks, steps, args.repeat)
        _evidence(root, sweep, env, agentundo)
    if args.in_process:
        _in_process(steps)
    return 0


def _report(times: dict[str, list[float]], peaks: dict[str, int], steps: int, repeat: int) -> None:
    medians = {name: statistics.median(t) for name, t in times.items()}
    base_name = next(iter(medians))
    base = medians[base_name]
    print(f"\n{steps} steps; median of {repeat} turns; ratios against {base_name!r}")
    print(f"{'command':<42} {'median':>8} {'ratio':>6} {'peak RSS':>9}   all turns")
    for name, median in medians.items():
        turns = " ".join(f"{t:.2f}" for t in times[name])
        print(
            f"{name:<42} {median:>7.2f}s {median / base:>5.2f}x {peaks[name] / 1024:>6.0f} MB"
            f"   {turns}"
        )


def _evidence(root: Path, sweep: list[str], env: dict[str, str], agentundo: list[str]) -> None:
    """Write the sweep's evidence once more and check that the timeline reads it."""
    evidence = root / "ev-check"
    subprocess.run(
        [*sweep, "--evidence", str(evidence)], cwd=root, env=env, capture_output=True, check=False
    )
    size, files = disk(evidence)
    raw = 0
    records = 0
    import gzip

    for path in evidence.glob("*.jsonl.gz"):
        with gzip.open(path, "rb") as handle:
            for line in handle:
                raw += len(line)
                records += 1
    print(
        f"\nevidence of one sweep: {files} files, {size / 1e6:.1f} MB on disk "
        f"({raw / 1e6:.1f} MB of JSON Lines inflated, {raw / max(size, 1):.1f}x), "
        f"{records} records"
    )
    for check in (("--verify", "-q"), ("--summary", "--verify")):
        started = time.perf_counter()
        done = subprocess.run(
            [*agentundo, "timeline", *check, str(evidence)],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        took = time.perf_counter() - started
        last = (done.stdout.strip().splitlines() or [""])[-1]
        if done.returncode != 0:
            raise SystemExit(f"FAILED: timeline {' '.join(check)}: {done.stderr[-2000:]}")
        print(f"timeline {' '.join(check):<20} {took:6.2f}s  exit 0  {last[:90]}")


def _in_process(steps: int) -> None:
    """The engine called in this process: evidence and engine alone, one and two processes."""
    from agentundo.saga.clock import VirtualClock
    from agentundo.saga.sweep import sweep

    print("\nin process (best of 2):")
    for evidence in (True, False):
        for jobs in (1, 2):
            best = float("inf")
            for _ in range(2):
                with tempfile.TemporaryDirectory() as tmp:
                    started = time.perf_counter()
                    rows = sweep(
                        setup(steps),
                        clock_factory=VirtualClock,
                        evidence_dir=Path(tmp) if evidence else None,
                        jobs=jobs,
                    )
                    best = min(best, time.perf_counter() - started)
                    assert len(rows) == steps and all(r.verdict == "recovered" for r in rows)
            what = "evidence" if evidence else "engine only"
            print(f"  {what:<12} {jobs} process{'es' if jobs > 1 else '  '} {best:6.2f}s")


if __name__ == "__main__":
    sys.exit(main())
