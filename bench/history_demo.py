"""Weeks of real drills of the shipped samples, then `agentundo report` over them.

    python bench/history_demo.py [--weeks 8] [--out bench/out/history] [--screenshot PNG]

Each week drills the three sample workflows (sample-policies/) through the real engine
(`load_drill` and `run_with_evidence`, as `agentundo drill` does) with a virtual clock
started at that week's Monday 09:00 UTC, so the runs spread over weeks although the
script takes seconds. The faults rotate: the weekly refund scenario, compensations that
fail and are retried (the rollback takes longer), a compensation the policy denies (an
unplanned follow-up, and a scenario that expected none fails), a step that fails for good;
the very last run is cut short as a killed drill leaves it. Run ids are derived from the week and
the workflow, so two runs of the script write the same evidence.

Then it runs `agentundo report OUT/ev -o OUT/report.html` and, with --screenshot, takes a
screenshot of the page with headless Chromium (docs/img/report.png is made this way).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample-policies"
FIRST_MONDAY = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

REFUND_FAULTS = [
    None,  # the weekly scenario as shipped
    """
    - type: compensation_failure
      step: refund-duplicate
      count: 3
    """,
    """
    - type: compensation_denied
      step: close-ticket
    expect:
      manual: []
    """,
    """
    - type: partial
      step: notify-finance
    - type: compensation_failure
      step: close-ticket
      count: 2
    """,
]
"""The refund workflow's faults, one per week in turn (None: the shipped scenario)."""

HOTFIX_FAULTS = [
    """
    - type: fatal
      step: apply-plan
    """,
    """
    - type: fatal
      step: apply-plan
    - type: compensation_failure
      step: scale-up
      count: 4
    """,
    """
    - type: fatal
      step: apply-plan
    - type: compensation_timeout
      step: add-dns
    expect:
      manual: []
    """,
]

ACCESS_FAULTS = [
    """
    - type: fatal
      step: announce
    """,
    """
    - type: transient
      step: grant-role
      count: 2
    """,
]


def _scenario(folder: Path, name: str, workflow: str, faults: str) -> Path:
    """A scenario file: ``faults`` is its fault list, then optionally ``expect:``."""
    path = folder / f"{name}.yaml"
    body = textwrap.dedent(faults).strip()
    listed, _, expect = body.partition("expect:")
    faults_yaml = textwrap.indent(listed.strip(), "  ")
    tail = f"expect:{expect}\n" if expect else ""
    path.write_text(
        f"version: v1\nkind: scenario\nscenario: {name}\nworkflow: {workflow}\nseed: 7\n"
        f"faults:\n{faults_yaml}\n{tail}",
        encoding="utf-8",
    )
    return path


APPROVED = {"deploy-hotfix": ("apply-plan",), "grant-temporary-access": ("grant-role",)}
"""Steps the sample policy lets run only with a human's approval: approved in the drill."""


def _drill(workflow: str, scenario: Path, evidence: Path, start: datetime, run_id: str) -> str:
    from agentundo.saga.clock import VirtualClock
    from agentundo.saga.drills import Options, load_drill, run_with_evidence

    loaded = load_drill(
        str(SAMPLES / "workflows" / f"{workflow}.yaml"),
        str(SAMPLES / "catalog.yaml"),
        str(SAMPLES / "policy.yaml"),
        str(scenario),
        Options(evidence=str(evidence), lock="memory", approve=APPROVED.get(workflow, ())),
    )
    result, _, lost = run_with_evidence(
        loaded.setup,
        evidence_dir=evidence,
        clock=VirtualClock(start.timestamp()),
        run_id=run_id,
    )
    if lost:
        raise SystemExit(f"evidence of {run_id} incomplete: {lost}")
    return str(result.verdict)


def make_history(out: Path, weeks: int) -> Path:
    """Drill every sample workflow once a week for ``weeks`` weeks; the evidence directory."""
    evidence = out / "ev"
    if evidence.exists():
        shutil.rmtree(evidence)
    scenarios = out / "scenarios"
    scenarios.mkdir(parents=True, exist_ok=True)
    plan = [
        ("refund-dispute", REFUND_FAULTS, timedelta(hours=0)),
        ("deploy-hotfix", HOTFIX_FAULTS, timedelta(hours=1)),
        ("grant-temporary-access", ACCESS_FAULTS, timedelta(hours=2)),
    ]
    for week in range(weeks):
        monday = FIRST_MONDAY + timedelta(weeks=week)
        for workflow, rotation, later in plan:
            faults = rotation[week % len(rotation)]
            if faults is None:
                scenario = SAMPLES / "scenarios" / "weekly-refund-dispute.yaml"
            else:
                name = f"{workflow}-{week % len(rotation)}"
                scenario = _scenario(scenarios, name, workflow, faults)
            digest = hashlib.sha256(f"{workflow}/{week}".encode()).hexdigest()[:8]
            verdict = _drill(workflow, scenario, evidence, monday + later, f"run_{digest}")
            print(f"week {week + 1}  {workflow:<24} run_{digest}  {verdict}")
    _cut_short(evidence / f"run_{digest}.jsonl")
    return evidence


def _cut_short(path: Path) -> None:
    """Drop the last run's final records, as a drill killed mid-rollback leaves its file:
    the page shows such a run as incomplete, with its verification problem."""
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-3]))
    print(f"cut short: {path.name} (its last 3 records removed, as a killed drill leaves it)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weeks", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "history")
    parser.add_argument("--screenshot", type=Path, help="write a PNG of the page here")
    args = parser.parse_args()
    evidence = make_history(args.out, args.weeks)
    page = args.out / "report.html"
    shown = os.path.relpath(evidence)  # the page names its source as given
    report = [sys.executable, "-m", "agentundo", "report", shown, "-o", str(page)]
    done = subprocess.run(report, check=False)
    if done.returncode != 0:
        return done.returncode
    if args.screenshot is not None:
        chromium = shutil.which("chromium")
        if chromium is None:
            print("no chromium on PATH (Debian: apt-get install -y chromium)", file=sys.stderr)
            return 2
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--window-size=1100,1500",
                f"--screenshot={args.screenshot.resolve()}",
                page.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
        )
        print(f"screenshot: {args.screenshot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
