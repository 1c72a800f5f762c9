"""`agentundo lint -f json` on large projects against a bare parse of the same files.

    python bench/bench_lint_large.py [--sizes 1000,5000,10000] [--rules 1000]
                                     [--workflows 1000] [--repeat 3]

For each catalog size it generates a project with bench/gen_large.py (under bench/out/),
then, taking turns within each repeat so that load on the machine falls on all alike:

* **bare**: a Python process that walks the project and loads every YAML file with
  PyYAML's C loader (``yaml.load(f, Loader=yaml.CSafeLoader)``), nothing else;
* **cold**: ``agentundo lint -f json --no-cache``: parse, validate, check;
* **edited**: one workflow file changed since the last run (a new last comment), the
  lint cache otherwise warm: the result is linted again, the other files' parsed
  documents come from the cache;
* **warm**: nothing changed since the last run: the result is replayed.

It prints the median wall time and CPU time (user + system; steadier than wall time on
a shared machine) of each, their ratios to bare, and the largest peak resident memory
(``ru_maxrss``) of its processes. The cache lives in bench/out/cache-<size>/.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from gen_large import generate

OUT = Path(__file__).parent / "out"

BARE = """\
import os, sys, yaml
for root, dirs, files in os.walk(sys.argv[1]):
    dirs.sort()
    for name in sorted(files):
        if name.endswith((".yaml", ".yml")):
            with open(os.path.join(root, name), "rb") as handle:
                yaml.load(handle, Loader=yaml.CSafeLoader)
"""


Sample = tuple[float, float, float]
"""Wall seconds, CPU seconds (user + system) and peak resident MiB of one run."""


def measure(args: list[str], env: dict[str, str]) -> Sample:
    """One run of ``args``: what :data:`Sample` holds."""
    started = time.perf_counter()
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(args)} exited {child.returncode}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


MARK = "# bench edit "


def edit(path: Path, stamp: int | None) -> None:
    """Change one file's bytes and nothing it means: a last comment line that differs every
    time (so each edited run is a miss), or none (``stamp=None``: the file as generated)."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    if lines and lines[-1].startswith(MARK):
        lines.pop()
    if stamp is not None:
        lines.append(f"{MARK}{stamp}\n")
    path.write_text("".join(lines), encoding="utf-8")


def bench(target: Path, repeat: int) -> dict[str, list[Sample]]:
    cache = OUT / f"cache-{target.name}"
    shutil.rmtree(cache, ignore_errors=True)
    env = {**os.environ, "AGENTUNDO_CACHE_DIR": str(cache)}
    lint = [sys.executable, "-m", "agentundo", "lint", "-f", "json", str(target)]
    edited = next(iter(sorted((target / "workflows").glob("*.yaml"))))
    runs: dict[str, list[Sample]] = {"bare": [], "cold": [], "edited": [], "warm": []}
    measure(lint, env)  # fill the cache
    try:
        for _ in range(repeat):
            runs["bare"].append(measure([sys.executable, "-c", BARE, str(target)], env))
            runs["cold"].append(measure([*lint, "--no-cache"], env))
            edit(edited, time.time_ns())
            runs["edited"].append(measure(lint, env))
            runs["warm"].append(measure(lint, env))
    finally:
        edit(edited, None)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000,10000")
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--workflows", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"rules={args.rules} workflows={args.workflows}; median of {args.repeat}, one run")
    print(
        f"{'topics':>7} {'run':<7} {'wall s':>7} {'x bare':>7} {'cpu s':>6} {'x bare':>7} {'peak MiB':>9}"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        target = OUT / f"lint-{size}-{args.rules}-{args.workflows}"
        if not target.exists():
            generate(target, topics=size, rules=args.rules, workflows=args.workflows)
        runs = bench(target, args.repeat)
        wall = statistics.median(t for t, _, _ in runs["bare"])
        cpu = statistics.median(c for _, c, _ in runs["bare"])
        for name, samples in runs.items():
            seconds = statistics.median(t for t, _, _ in samples)
            used = statistics.median(c for _, c, _ in samples)
            peak = max(m for _, _, m in samples)
            print(
                f"{size:>7} {name:<7} {seconds:>7.2f} {seconds / wall:>7.2f} "
                f"{used:>6.2f} {used / cpu:>7.2f} {peak:>9.0f}"
            )


if __name__ == "__main__":
    main()
