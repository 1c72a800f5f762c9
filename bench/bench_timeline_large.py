"""Check and time `agentundo timeline` streaming a file of more than 100 000 records.

    python bench/bench_timeline_large.py [--steps 20000]

Was tests/cli/test_timeline_cli.py::test_large_file_streams_with_a_limit: too slow for the
test suite, so it lives here. It writes one long run (every 1000th compensation skipped),
then runs ``agentundo timeline`` in a subprocess three ways and checks what each prints:
``--verify --only-problems`` names every record and the skips, ``--limit 50`` says how
many records it did not show, and a JSON ``--event`` filter finds each skip. A failed
check raises ``SystemExit`` with a message; the timings are printed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timeline(cwd: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "agentundo", "timeline", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1", "COLUMNS": "200"},
        check=False,
    )
    return done, time.perf_counter() - started


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SystemExit(f"FAILED: {message}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    options = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.evidence_factory import big_run

    skipped = options.steps // 1000
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        written = big_run(cwd / "big.jsonl", steps=options.steps, skip_every=1000)
        if options.steps >= 20_000:
            check(written > 100_000, f"only {written} records written")
        print(f"big.jsonl: {written} records")

        done, took = timeline(cwd, "--verify", "--only-problems", "big.jsonl")
        check(done.returncode == 0, f"--verify exit {done.returncode}: {done.stderr[-2000:]}")
        check(f"big.jsonl ({written} records)" in done.stdout, "--verify: record count")
        check(f"{skipped} skipped" in done.stdout, "--verify: skipped count")
        print(f"--verify --only-problems   {took:6.2f} s")

        table, took = timeline(cwd, "--limit", "50", "big.jsonl")
        check(
            f"{written - 50} more matching records not shown" in table.stdout,
            "--limit 50: the count of records not shown",
        )
        print(f"--limit 50                 {took:6.2f} s")

        fast, took = timeline(cwd, "-f", "json", "--event", "compensation_skipped", "big.jsonl")
        check(len(fast.stdout.splitlines()) == skipped, "--event: one line per skip")
        print(f"-f json --event ...        {took:6.2f} s")
    print("ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
