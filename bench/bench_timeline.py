"""Benchmark `agentundo timeline` on a million-event evidence file, side by side with jq.

    python bench/bench_timeline.py [--events 1000000] [--repeat 3]

Writes bench/out/timeline-1m.jsonl once (a single realistic run: forward steps, a fatal
failure, LIFO compensations, every 1000th skipped with a manual follow-up), then times
each command and reads its peak RSS from ``getrusage(RUSAGE_CHILDREN)`` in a fresh
wrapper process, so each figure is that command's own peak. The jq and agentundo
filters must print the same lines: the script checks it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
AGENTUNDO = [sys.executable, "-m", "agentundo", "timeline"]

_MEASURE = """
import resource, subprocess, sys, time
start = time.perf_counter()
with open(sys.argv[1], "wb") as out:
    code = subprocess.run(sys.argv[2:], stdout=out, stderr=subprocess.DEVNULL).returncode
wall = time.perf_counter() - start
print(code, wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def generate(path: Path, events: int) -> int:
    sys.path.insert(0, str(ROOT))
    from tests.evidence_factory import big_run

    steps = max(1, (events - 6) // 5)
    return big_run(path, steps=steps, skip_every=1000)


def measure(command: list[str], output: Path, repeat: int) -> tuple[int, float, int]:
    """(exit code, best wall seconds, peak RSS in KiB) of ``command`` over ``repeat`` runs."""
    best, peak, code = float("inf"), 0, 0
    for _ in range(repeat):
        done = subprocess.run(
            [sys.executable, "-c", _MEASURE, str(output), *command],
            capture_output=True,
            text=True,
            check=True,
        )
        code_text, wall, rss = done.stdout.split()
        code = int(code_text)
        best = min(best, float(wall))
        peak = max(peak, int(rss))
    return code, best, peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    jq = shutil.which("jq")
    if jq is None:
        print("jq is not installed (apt-get install -y jq)", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    data = OUT / f"timeline-{args.events}.jsonl"
    if not data.exists():
        started = time.perf_counter()
        written = generate(data, args.events)
        print(
            f"generated {data.relative_to(ROOT)}: {written} records in {time.perf_counter() - started:.1f}s"
        )
    size = data.stat().st_size
    records = sum(1 for _ in data.open("rb"))
    print(f"file: {records} records, {size / 1e6:.0f} MB; best of {args.repeat}")
    jq_version = subprocess.run([jq, "--version"], capture_output=True, text=True).stdout.strip()

    cases = [
        ("jq filter", [jq, "-c", 'select(.event=="compensation_skipped")', str(data)], "jq.out"),
        (
            "agentundo --event (json)",
            [*AGENTUNDO, "-f", "json", "--event", "compensation_skipped", str(data)],
            "au.out",
        ),
        (
            "jq filter (glob-like: startswith)",
            [jq, "-c", 'select(.event|startswith("compensation_sk"))', str(data)],
            "jq-glob.out",
        ),
        (
            "agentundo --event glob (json, full parse)",
            [*AGENTUNDO, "-f", "json", "--event", "compensation_sk*", str(data)],
            "au-glob.out",
        ),
        (
            "agentundo --only-problems (table)",
            [*AGENTUNDO, "--only-problems", str(data)],
            "au-table.out",
        ),
        ("agentundo --verify -q", [*AGENTUNDO, "--verify", "-q", str(data)], "au-verify.out"),
    ]
    results: dict[str, tuple[int, float, int]] = {}
    for name, command, output in cases:
        results[name] = measure(command, OUT / output, args.repeat)
    same = (OUT / "jq.out").read_bytes() == (OUT / "au.out").read_bytes()
    same_glob = (OUT / "jq-glob.out").read_bytes() == (OUT / "au-glob.out").read_bytes()
    base = results["jq filter"][1]
    print(f"{'command':44} {'exit':>4} {'wall s':>8} {'vs jq':>7} {'peak RSS MiB':>13}")
    for name, (code, wall, rss) in results.items():
        print(f"{name:44} {code:>4} {wall:>8.2f} {wall / base:>6.2f}x {rss / 1024:>13.1f}")
    print(f"{jq_version}; identical output to jq: {same} (literal), {same_glob} (glob)")
    summary = {
        n: {"exit": c, "wall_s": round(w, 3), "peak_rss_kib": r} for n, (c, w, r) in results.items()
    }
    (OUT / "bench_timeline.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if same and same_glob else 1


if __name__ == "__main__":
    raise SystemExit(main())
