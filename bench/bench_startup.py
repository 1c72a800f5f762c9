"""Start-up of each command against ``python -c pass`` and yamllint, from one run.

    python bench/bench_startup.py [--repeat 11] [PATHS ...]

Installs yamllint into a throwaway virtual environment (bench/out/yamllint-venv; never a
dependency of agentundo), then times fresh processes, taking turns so that load on the
machine falls on all alike: ``python -c pass``, ``import agentundo.cli.main``,
``agentundo --version``, ``agentundo rules``, ``agentundo lint`` (``-f json`` and text,
output into a pipe) with the lint cache cold (``--no-cache``) and warm (nothing changed
since the last run), and ``yamllint`` on the same paths (default: ``sample-policies/``).
Prints medians and ratios to bare Python and to yamllint, then which heavy modules each
command imports (``-X importtime``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).parent / "out"
HEAVY = ("typer", "yaml", "pydantic", "jsonschema", "rich", "httpx")


def yamllint() -> list[str]:
    """The yamllint command of a throwaway environment, made on first use."""
    venv = OUT / "yamllint-venv"
    exe = venv / "bin" / "yamllint"
    if not exe.exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "yamllint"]
        subprocess.run(pip, check=True)
    return [str(exe)]


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, capture_output=True, check=False, cwd=ROOT, env=env)
    return time.perf_counter() - started


def heavy(command: list[str], env: dict[str, str]) -> str:
    if not command[0].endswith(("python", "python3")) and "python" not in Path(command[0]).name:
        return ""
    done = subprocess.run(
        [command[0], "-X", "importtime", *command[1:]],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env=env,
    )
    names = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    return ", ".join(name for name in HEAVY if name in names) or "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=11)
    parser.add_argument("paths", nargs="*")
    args = parser.parse_args()
    py = sys.executable
    target = args.paths or ["sample-policies"]
    lint = [py, "-m", "agentundo", "lint"]
    commands = {
        "python -c pass": [py, "-c", "pass"],
        "import agentundo.cli.main": [py, "-c", "import agentundo.cli.main"],
        "agentundo --version": [py, "-m", "agentundo", "--version"],
        "agentundo rules": [py, "-m", "agentundo", "rules"],
        "lint -f json, cold": [*lint, "-f", "json", "--no-cache", *target],
        "lint -f json, warm": [*lint, "-f", "json", *target],
        "lint (text), cold": [*lint, "--no-cache", *target],
        "lint (text), warm": [*lint, *target],
        "yamllint": [*yamllint(), *target],
    }
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "AGENTUNDO_CACHE_DIR": cache}
        env.pop("FORCE_COLOR", None)
        for command in commands.values():  # warm the OS's file cache and the lint cache
            timed(command, env)
        samples: dict[str, list[float]] = {label: [] for label in commands}
        for _ in range(args.repeat):
            for label, command in commands.items():
                samples[label].append(timed(command, env))
        medians = {label: statistics.median(runs) for label, runs in samples.items()}
        bare, peer = medians["python -c pass"], medians["yamllint"]
        print(f"paths: {' '.join(target)}; median of {args.repeat} runs each, one run")
        print(f"{'command':<28} {'median':>9} {'x python':>9} {'x yamllint':>11}  heavy imports")
        for label, command in commands.items():
            median = medians[label]
            print(
                f"{label:<28} {median * 1000:>7.1f}ms {median / bare:>9.2f} "
                f"{median / peer:>11.2f}  {heavy(command, env)}"
            )


if __name__ == "__main__":
    main()
