"""Start-up figures of the CLI, from one run: medians and ratios to bare Python.

    python bench/bench_startup.py [--repeat 9] [PATHS ...]

Measures ``python -c pass``, ``import agentundo.cli.main``, ``agentundo --version``,
``agentundo rules`` and ``agentundo lint`` (``--format json`` and text) on
``sample-policies/``, each run as a fresh
process. Then lists which heavy modules each command imports (``-X importtime``).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("rich", "jsonschema", "pydantic", "httpx", "yaml", "typer")


def _samples() -> Path:
    return ROOT / "sample-policies"


def _time(command: list[str], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=False, cwd=ROOT)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def _heavy(command: list[str]) -> list[str]:
    done = subprocess.run(
        [command[0], "-X", "importtime", *command[1:]],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    names = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    return [name for name in HEAVY if name in names]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("paths", nargs="*")
    args = parser.parse_args()
    py = sys.executable
    target = args.paths or [str(_samples())]
    commands = {
        "python -c pass": [py, "-c", "pass"],
        "import agentundo.cli.main": [py, "-c", "import agentundo.cli.main"],
        "agentundo --version": [py, "-m", "agentundo", "--version"],
        "agentundo rules": [py, "-m", "agentundo", "rules"],
        "agentundo lint -f json": [py, "-m", "agentundo", "lint", "-f", "json", *target],
        "agentundo lint (text)": [py, "-m", "agentundo", "lint", *target],
    }
    base = None
    print(f"linting: {' '.join(target)}; median of {args.repeat} runs each")
    print(f"{'command':<28} {'median':>9} {'x python':>9}  heavy imports")
    for label, command in commands.items():
        median = _time(command, args.repeat)
        base = base or median
        heavy = ", ".join(_heavy(command)) or "-"
        print(f"{label:<28} {median * 1000:>7.1f}ms {median / base:>8.1f}x  {heavy}")


if __name__ == "__main__":
    main()
