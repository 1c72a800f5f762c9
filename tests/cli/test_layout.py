"""The terminal layout at 80, 120 and 200 columns, as a user sees it in a real subprocess.

Each view (the drill report, the sweep table, the timeline table and ``--only-problems``)
is rendered by ``python -m agentundo`` with ``COLUMNS`` set and stdout piped (no colour),
from the project in tests/golden/layout/project: step ids, topics, rule ids and keys
longer than an 80-column table allows. At 80 and 200 columns the output is compared with
the reviewed golden files in tests/golden/layout/; at every width it must keep each
line within the width, never break or cut an id, a topic or a key, and never ellipsize.

Run ids are random: the drill's are replaced by ``run_00000000`` (same length, so the
layout is the one the real id had). The timeline reads evidence the real engine and
writer produce in this process with a virtual clock from 2026-01-01 and a fixed run id.

Regenerate the goldens after a deliberate change, then review every file by eye::

    AGENTUNDO_UPDATE_GOLDEN=1 python -m pytest -n 0 tests/cli/test_layout.py
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.cells import cell_len

from agentundo.saga.clock import VirtualClock
from agentundo.saga.drills import Options, load_drill, run_with_evidence
from tests.evidence_factory import standard_run

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "layout"
PROJECT = GOLDEN / "project"
WIDTHS = (80, 120, 200)
GOLDEN_WIDTHS = (80, 200)
RUN_ID = "run_5eed1e55"
"""The timeline's run: as long as a real run id (``run_`` and 8 hex digits)."""

_RUN_IDS = re.compile(r"\brun_[0-9a-f]{8}\b")


def agentundo(*args: str, cwd: Path, width: int) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "NO_COLOR": "1",
        "COLUMNS": str(width),
        "PYTHONPATH": str(ROOT / "src"),
    }
    return subprocess.run(
        [sys.executable, "-m", "agentundo", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        env=env,
        check=False,
    )


def _inputs() -> list[str]:
    return [
        "--catalog",
        str(PROJECT / "catalog.yaml"),
        "--policy",
        str(PROJECT / "policy.yaml"),
    ]


@dataclass(frozen=True)
class View:
    name: str
    width: int
    text: str


@pytest.fixture(scope="module")
def evidence(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run of the golden project by the engine and the evidence writer, with a
    virtual clock from 2026-01-01 and a fixed run id: the timeline's input."""
    where = tmp_path_factory.mktemp("layout-evidence")
    loaded = load_drill(
        str(PROJECT / "workflow.yaml"),
        str(PROJECT / "catalog.yaml"),
        str(PROJECT / "policy.yaml"),
        str(PROJECT / "scenario.yaml"),
        Options(),
    )
    run_with_evidence(loaded.setup, evidence_dir=where / "ev", clock=VirtualClock(), run_id=RUN_ID)
    standard_run(where / "short" / "run-1.jsonl")
    return where


@pytest.fixture(scope="module")
def views(evidence: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], str]:
    """Every view at every width, each from its own ``python -m agentundo``."""
    out: dict[tuple[str, int], str] = {}
    for width in WIDTHS:
        cwd = tmp_path_factory.mktemp(f"layout-{width}")
        drill = agentundo(
            "drill",
            str(PROJECT / "workflow.yaml"),
            *_inputs(),
            "--scenario",
            str(PROJECT / "scenario.yaml"),
            "--evidence",
            "ev",
            cwd=cwd,
            width=width,
        )
        assert drill.returncode == 1, drill.stderr  # the scenario's expectation fails
        out["drill", width] = _RUN_IDS.sub("run_00000000", drill.stdout)
        sweep = agentundo(
            "drill",
            str(PROJECT / "workflow.yaml"),
            *_inputs(),
            "--sweep",
            "-j",
            "1",
            "--evidence",
            "ev",
            cwd=cwd,
            width=width,
        )
        assert sweep.returncode == 0, sweep.stderr
        out["sweep", width] = sweep.stdout
        run = f"ev/{RUN_ID}.jsonl"
        for name, extra in (("timeline", ()), ("only-problems", ("--only-problems",))):
            done = agentundo("timeline", *extra, run, cwd=evidence, width=width)
            assert done.returncode == 0, done.stderr
            out[name, width] = done.stdout
        short = agentundo("timeline", "short/run-1.jsonl", cwd=evidence, width=width)
        assert short.returncode == 0, short.stderr
        out["timeline-short", width] = short.stdout
    return out


NAMES = ("drill", "sweep", "timeline", "only-problems", "timeline-short")
"""The views: ``timeline-short`` is the incident-shaped run of tests/evidence_factory.py,
whose short names let a table fit at 200 columns."""


def _golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("AGENTUNDO_UPDATE_GOLDEN"):
        path.write_text(actual, encoding="utf-8")
    assert actual == path.read_text(encoding="utf-8"), f"{name} differs from its golden"


@pytest.mark.parametrize("width", GOLDEN_WIDTHS)
@pytest.mark.parametrize("name", NAMES)
def test_golden(views: dict[tuple[str, int], str], name: str, width: int) -> None:
    _golden(f"{name}.{width}.txt", views[name, width])


def _words(evidence: Path) -> set[str]:
    """Every step id, topic, run id, rule id and idempotency key of the timeline's run."""
    found: set[str] = set()
    for line in (evidence / "ev" / f"{RUN_ID}.jsonl").read_text().splitlines():
        record = json.loads(line)
        for field in ("step_id", "topic", "for_topic", "run_id", "idempotency_key", "rule_id"):
            value = record.get(field)
            if isinstance(value, str) and value:
                found.add(value)
    return found


def _whole(word: str, text: str) -> bool:
    """``word`` appears in ``text`` on one line, not as a part of a longer name."""
    return re.search(rf"(?<![\w.:-]){re.escape(word)}(?![\w.:-])", text) is not None


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", NAMES)
def test_lines_fit_and_nothing_is_ellipsized(
    views: dict[tuple[str, int], str], name: str, width: int
) -> None:
    """A line may pass the width only to keep one word whole that no line could hold
    (a derived compensation key of 94 characters at 80 columns): alone on its line."""
    text = views[name, width]
    too_long = [line for line in text.splitlines() if cell_len(line) > width]
    for line in too_long:
        word = line.strip()
        assert " " not in word and len(word) > width - 4, f"{name} at {width}: {line!r}"
    assert "…" not in text


@pytest.mark.parametrize("width", WIDTHS)
def test_drill_and_sweep_show_every_id_and_topic_whole(
    views: dict[tuple[str, int], str], width: int
) -> None:
    steps = {
        "read-ticket-history": "tickets.read_history",
        "refund-duplicate-charge": "payments.refund_duplicate_charge",
        "close-support-ticket": "tickets.close_support_ticket",
        "email-refund-confirmation": "email.send_refund_confirmation",
        "announce-refund-to-finance": "slack.post_finance_announcement",
    }
    for name in ("drill", "sweep"):
        for step, topic in steps.items():
            assert _whole(step, views[name, width]), (name, width, step)
            assert _whole(topic, views[name, width]), (name, width, topic)
    drill = views["drill", width]
    for word in (
        "run_00000000",
        "allow-reads-of-customer-support-history",
        "allow-recoverable-writes-in-production",
        "payments.charge_again_after_refund",
        "tickets.reopen_support_ticket",
    ):
        assert _whole(word, drill), (width, word)


@pytest.mark.parametrize("width", WIDTHS)
def test_timeline_shows_every_id_topic_and_key_whole(
    views: dict[tuple[str, int], str], evidence: Path, width: int
) -> None:
    words = _words(evidence)
    assert f"{RUN_ID}:refund-duplicate-charge:refund:ord_7Q2KX9:compensate" in words
    text = views["timeline", width]
    missing = [w for w in sorted(words) if not _whole(w, text)]
    assert not missing, f"broken or missing at {width}: {missing}"


@pytest.mark.parametrize("width", WIDTHS)
def test_only_problems_keeps_its_few_rows_short(
    views: dict[tuple[str, int], str], width: int
) -> None:
    """The issue's case: a handful of problem records once took 212 lines at 80 columns."""
    text = views["only-problems", width]
    assert _whole("close-support-ticket", text)
    assert _whole("announce-refund-to-finance", text)
    assert len(text.splitlines()) < 60


def test_each_width_chooses_its_layout(views: dict[tuple[str, int], str]) -> None:
    """A table where one fits (columns that give way dropped first), stacked where not."""
    assert "┃" not in views["drill", 80].split("rollback")[0]  # the steps are stacked
    assert "1  read-ticket-history  tickets.read_history" in views["drill", 80]
    assert "┃ step " in views["drill", 200] and "┃ job " in views["drill", 200]
    assert "┃ fails at " in views["sweep", 200]
    # 120: the steps lose their number, job and tries, and keep every id whole
    steps = views["drill", 120].split("rollback")[0]
    assert "┃ rule " in steps and "┃ job " not in steps and "┃ tries " not in steps
    assert "read-ticket-history        │ tickets.read_history  " in steps
    assert "┃ status " in views["sweep", 120]
    assert "  Idempotency key: " in views["timeline", 80]
    # this run's keys (up to 94 characters) and rule ids leave no room for a table
    assert "  Idempotency key: " in views["timeline", 200]
    short = views["timeline-short", 200]
    assert "┃ Time " in short and "┃ Job " in short and "┃ Detail " in short
    assert "┃" not in views["timeline-short", 120].split("╯")[1]  # stacked at 120
