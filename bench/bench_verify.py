"""Benchmark: `agentundo timeline --verify -q` against `jq` on the same real drill evidence.

    python bench/bench_verify.py [--steps 230] [--repeat 3]

Real evidence: a sweep of the ``bench_sweep.py`` workflow (``--steps`` steps: 230 give
about 58 MB of JSON Lines in 230 runs), written by the engine as a sweep writes it
(``<run_id>.jsonl.gz``), then inflated and concatenated into one plain file (whole runs
concatenated verify as one source). The peer is ``jq -c 'select(.event=="...")'`` over
the plain file: it parses every record, as verifying must. Without ``jq`` on the PATH
(``apt-get install -y jq``) that peer is left out, with a note.

Every command is a real process; the commands take turns ``--repeat`` times, and each
figure is the median wall time with the CPU time (user + system) and peak memory of the
same turns, so ratios compare figures of one run. Then the verifier's work per record is
split in this process (best of 3 each): reading and parsing, the canonical length check
(EV109), the hash of the line's own bytes, and the whole verifier.
Run from the repository root:  python bench/bench_verify.py
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sweep import setup

_MEASURE = (
    "import resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
    "took = time.perf_counter() - t\n"
    "use = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(took, use.ru_utime + use.ru_stime, use.ru_maxrss, done.returncode)\n"
    "sys.stderr.write(done.stderr.decode(errors='replace')[-2000:])\n"
)


def write_evidence(root: Path, steps: int) -> tuple[Path, Path, int]:
    """A sweep's evidence directory, its runs as one plain file, and the record count."""
    from agentundo.saga.clock import VirtualClock
    from agentundo.saga.sweep import sweep

    runs = root / "runs"
    rows = sweep(setup(steps), clock_factory=VirtualClock, evidence_dir=runs, jobs=2)
    assert all(r.evidence_failure is None for r in rows)
    plain = root / "all.jsonl"
    records = 0
    with plain.open("wb") as out:
        for path in sorted(runs.glob("*.jsonl.gz")):
            data = gzip.decompress(path.read_bytes())
            records += data.count(b"\n")
            out.write(data)
    return runs, plain, records


def measure(command: list[str], cwd: Path) -> tuple[float, float, int, int]:
    """Wall seconds, CPU seconds, peak resident kB and exit code of ``command``."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command], cwd=cwd, capture_output=True, text=True
    )
    took, cpu, peak, code = done.stdout.split()
    return float(took), float(cpu), int(peak), int(code)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=230)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    agentundo = [sys.executable, "-m", "agentundo", "timeline"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        runs, plain, records = write_evidence(root, args.steps)
        size = plain.stat().st_size
        packed = sum(p.stat().st_size for p in runs.glob("*.jsonl.gz"))
        print(
            f"evidence: {records} records of {args.steps} runs; {size / 1e6:.1f} MB as one "
            f"plain file, {packed / 1e6:.1f} MB as the sweep wrote it (.jsonl.gz)"
        )
        commands: dict[str, list[str]] = {}
        jq = shutil.which("jq")
        if jq is None:
            print("note: jq is not on the PATH (apt-get install -y jq): that peer is left out")
        else:
            version = subprocess.run([jq, "--version"], capture_output=True, text=True).stdout
            commands[f"{version.strip()} -c 'select(.event==...)' all.jsonl"] = [
                jq, "-c", 'select(.event=="compensation_skipped")', str(plain),
            ]  # fmt: skip
        commands["timeline --verify -q all.jsonl"] = [*agentundo, "--verify", "-q", str(plain)]
        commands["timeline --verify -q runs/ (.jsonl.gz)"] = [
            *agentundo, "--verify", "-q", str(runs),
        ]  # fmt: skip
        commands["timeline --summary --verify runs/"] = [
            *agentundo, "--summary", "--verify", "-f", "json", str(runs),
        ]  # fmt: skip
        figures: dict[str, list[tuple[float, float, int]]] = {name: [] for name in commands}
        for _ in range(args.repeat):
            for name, command in commands.items():
                took, cpu, peak, code = measure(command, root)
                if code != 0:
                    raise SystemExit(f"FAILED: {name} exited {code}")
                figures[name].append((took, cpu, peak))
        _report(figures, args.repeat)
        _split(plain, records)
    return 0


def _report(figures: dict[str, list[tuple[float, float, int]]], repeat: int) -> None:
    wall = {name: statistics.median(f[0] for f in turns) for name, turns in figures.items()}
    cpu = {name: statistics.median(f[1] for f in turns) for name, turns in figures.items()}
    base = next(iter(wall))
    print(f"\nmedian of {repeat} turns; ratios against {base!r}")
    print(f"{'command':<58} {'wall':>7} {'ratio':>6} {'cpu':>7} {'ratio':>6} {'peak':>7}")
    for name, turns in figures.items():
        peak = max(f[2] for f in turns) / 1024
        print(
            f"{name:<58} {wall[name]:>6.2f}s {wall[name] / wall[base]:>5.2f}x "
            f"{cpu[name]:>6.2f}s {cpu[name] / cpu[base]:>5.2f}x {peak:>5.0f} MB"
        )


def _best(work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best


def _split(plain: Path, records: int) -> None:
    """The verifier's work per record, in this process."""
    from agentundo.evidence.chain import CANONICAL
    from agentundo.evidence.reader import Record, read_path
    from agentundo.evidence.verify import Verifier

    path = str(plain)
    items = [i for i in read_path(path) if isinstance(i, Record)]

    def verify() -> None:
        verifier = Verifier(path)
        for item in read_path(path, blanks=True):
            verifier.feed(item)
        assert not verifier.finish()

    parts = {
        "read and parse (evidence/reader.py)": lambda: sum(1 for _ in read_path(path)),
        "canonical length of each record (EV109)": lambda: [CANONICAL(i.data) for i in items],
        "SHA-256 of each line's own bytes": lambda: [hashlib.sha256(i.raw).digest() for i in items],
        "read, parse and verify (all checks)": verify,
    }
    print(f"\nper record, CPU, best of 3 ({records} records):")
    for name, work in parts.items():
        print(f"  {name:<44} {_best(work) / records * 1e6:6.2f} µs")


if __name__ == "__main__":
    sys.exit(main())
