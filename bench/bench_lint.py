"""How long `agentundo lint` takes on large inputs, and how it grows with the catalog.

    python bench/bench_lint.py [--sizes 1000,2500,5000,10000] [--rules 1000] [--workflows 1000]

For each catalog size it generates a project (bench/gen_large.py) under bench/out/,
runs the real command (`python -m agentundo lint --format json`) three times and
reports the median wall time, the time per 1,000 topics, and the ratio to the smallest
size, so linear growth shows as a ratio close to the size ratio. A final row times
`python -c pass` in the same run for scale.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from gen_large import generate

OUT = Path(__file__).parent / "out"


def timed(args: list[str], runs: int = 3) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,2500,5000,10000")
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--workflows", type=int, default=1000)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    for size in sizes:
        target = OUT / f"lint-{size}-{args.rules}-{args.workflows}"
        if not target.exists():
            generate(target, topics=size, rules=args.rules, workflows=args.workflows)
        seconds = timed(
            [sys.executable, "-m", "agentundo", "lint", "--format", "json", str(target)]
        )
        rows.append((size, seconds))
    bare = timed([sys.executable, "-c", "pass"], runs=5)
    base_size, base_time = rows[0]
    print(f"rules={args.rules} workflows={args.workflows}")
    print(f"{'topics':>8} {'seconds':>9} {'s/1k topics':>12} {'size ratio':>11} {'time ratio':>11}")
    for size, seconds in rows:
        print(
            f"{size:>8} {seconds:>9.2f} {seconds / size * 1000:>12.3f} "
            f"{size / base_size:>11.1f} {seconds / base_time:>11.2f}"
        )
    print(f"python -c pass: {bare:.3f}s")


if __name__ == "__main__":
    main()
