"""`agentundo timeline --summary`: every run of every file, grouped by workflow.

The layout tests run the real CLI in a subprocess with ``COLUMNS`` set, as a terminal
would, and compare with reviewed goldens under tests/golden/summary/ (``UPDATE_GOLDEN=1``
rewrites them; review the diff before committing).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from agentundo.history.collect import collect
from tests.evidence_factory import big_run
from tests.history_factory import LONG_ID, weekly_history

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "summary"


def golden(name: str, actual: str) -> None:
    """Compare with tests/golden/summary/NAME; UPDATE_GOLDEN=1 rewrites it (then review)."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert actual == path.read_text(encoding="utf-8")


def summary(
    *args: str, cwd: Path, columns: int = 200, encoding: str = "utf-8"
) -> subprocess.CompletedProcess[str]:
    """``agentundo timeline --summary ARGS`` in a subprocess, as a terminal COLUMNS wide."""
    env = {
        "PATH": "/usr/bin:/bin",
        "NO_COLOR": "1",
        "COLUMNS": str(columns),
        "PYTHONIOENCODING": encoding,
    }
    return subprocess.run(
        [sys.executable, "-m", "agentundo", "timeline", "--summary", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def weeks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("weeks")
    return root, weekly_history(root / "ev")


@pytest.mark.parametrize("columns", [80, 200])
def test_summary_golden_at_terminal_widths(weeks: tuple[Path, list[str]], columns: int) -> None:
    root, ids = weeks
    done = summary("--verify", "ev", cwd=root, columns=columns)
    assert done.returncode == 1, done.stderr  # the cut run fails verification
    golden(f"weeks-{columns}.txt", done.stdout)
    lines = done.stdout.splitlines()
    for run_id in ids:  # every id whole, on one line
        assert any(run_id in line for line in lines), run_id
    wider = [line for line in lines if len(line) > columns and line.strip() not in ids]
    assert not wider, wider


def test_at_80_columns_the_long_id_has_a_line_of_its_own(weeks: tuple[Path, list[str]]) -> None:
    root, _ = weeks
    done = summary("ev", cwd=root, columns=80)
    assert done.returncode == 0, done.stderr
    assert LONG_ID in done.stdout.splitlines()
    assert "…" not in done.stdout  # no ellipsis: nothing was cut
    wide = summary("ev", cwd=root, columns=200)
    row = next(line for line in wide.stdout.splitlines() if LONG_ID in line)
    assert row.startswith("│ 2024-05-15 14:00 │ refund-order  │ " + LONG_ID + " │")


def test_markdown_and_json_carry_the_same_history(weeks: tuple[Path, list[str]]) -> None:
    root, ids = weeks
    markdown = summary("-f", "markdown", "ev", cwd=root)
    assert markdown.returncode == 0, markdown.stderr
    golden("weeks.md", markdown.stdout)
    done = summary("-f", "json", "ev", cwd=root)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert [r["run_id"] for r in data["runs"]] == ids
    flows = {w["workflow"]: w for w in data["workflows"]}
    assert sorted(flows) == ["deploy-hotfix", "refund-order", "restock"]
    refund = flows["refund-order"]
    assert (refund["runs"], refund["passed"], refund["pass_rate"]) == (5, 4, 0.8)
    assert refund["last_verdict"] == "recovered"
    assert (refund["rollback_mean_s"], refund["rollback_max_s"]) == (3.55, 6.5)
    assert (refund["manual_followups"], refund["unplanned_followups"]) == (2, 1)
    assert refund["trend"] == ["pass", "pass", "fail", "pass", "pass"]
    restock = flows["restock"]
    assert restock["trend"] == ["pass", "pass", "incomplete"]
    assert restock["last_verdict"] == "?"
    unplanned = next(r for r in data["runs"] if r["run_id"] == LONG_ID)
    assert unplanned["followups"] == [
        {
            "step": "charge",
            "category": "compensation_denied",
            "reason": "<charge> needs a human",
            "planned": False,
        }
    ]


def test_a_file_of_several_runs_gives_a_row_per_run(weeks: tuple[Path, list[str]]) -> None:
    root, ids = weeks
    done = summary("--verify", "-f", "json", "ev/weeks-3-4.jsonl", cwd=root)
    assert done.returncode == 1
    runs = json.loads(done.stdout)["runs"]
    assert [(r["run_id"], r["verdict"], r["verified"], r["line"]) for r in runs] == [
        (ids[6], "recovered", True, 1),
        (ids[7], "?", False, 25),
        (ids[8], "recovered", True, 45),
    ]
    assert [p["code"] for p in runs[1]["problems"]] == ["EV205"]
    assert "ev/weeks-3-4.jsonl:44: EV205" in done.stderr


def test_the_trend_falls_back_to_ascii(weeks: tuple[Path, list[str]]) -> None:
    root, _ = weeks
    for columns, trend in ((200, "++x++"), (80, "trend ++x++")):
        done = summary("ev", cwd=root, columns=columns, encoding="ascii")
        assert done.returncode == 0, done.stderr
        assert trend in done.stdout
        assert "✓" not in done.stdout
        done.stdout.encode("ascii")  # nothing a plain terminal cannot show


def test_only_problems_keeps_the_groups_whole(weeks: tuple[Path, list[str]]) -> None:
    root, ids = weeks
    done = summary("--only-problems", "-f", "json", "ev", cwd=root)
    data = json.loads(done.stdout)
    assert [r["run_id"] for r in data["runs"]] == [ids[2], ids[4], ids[7]]
    assert [(w["workflow"], w["runs"]) for w in data["workflows"]] == [
        ("refund-order", 5),
        ("restock", 3),
    ]
    window = summary("--since", "2024-05-20T00:00:00Z", "-f", "json", "ev", cwd=root)
    flows = json.loads(window.stdout)["workflows"]
    assert [(w["workflow"], w["runs"]) for w in flows] == [("refund-order", 2), ("restock", 1)]


def test_no_runs_and_bad_input(tmp_path: Path) -> None:
    (tmp_path / "junk.jsonl").write_bytes(b"\x00\x01binary")
    done = summary("junk.jsonl", cwd=tmp_path)
    assert done.returncode == 2
    assert "junk.jsonl:1:1: error: not an evidence file: binary data" in done.stderr
    assert "Run history: no runs" in done.stdout
    assert "Traceback" not in done.stderr
    missing = summary("nowhere", cwd=tmp_path)
    assert missing.returncode == 2
    assert "nowhere: error: no such file or directory" in missing.stderr


def test_collect_streams_every_record_in_flat_memory(tmp_path: Path) -> None:
    """A 40,000-record run is read whole (its counts are right) without being held."""
    path = tmp_path / "big.jsonl"
    records = big_run(path, steps=8000, skip_every=10)
    tracemalloc.start()
    try:
        history = collect([str(path)], verification=None, stderr=sys.stderr)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    (run,) = history.runs
    assert run.followup_count == 800 and len(run.followups) == 20
    assert run.rollback_s is not None
    assert records > 40_000
    assert peak < 2 << 20, f"peak {peak} bytes for a {path.stat().st_size}-byte file"


def test_hostile_names_are_shown_as_text(tmp_path: Path) -> None:
    from tests.evidence_factory import START
    from tests.history_factory import drill_run

    evil = "[bold red]fake[/] \x1b]0;owned\x07\x1b[2J<script>"
    drill_run(
        tmp_path / "ev" / "run_evil.jsonl",
        run_id="run_evil",
        workflow=evil,
        start=START,
        outcome="clean",
    )
    for columns in (80, 200):
        done = summary("ev", cwd=tmp_path, columns=columns)
        assert done.returncode == 0, done.stderr
        assert "\x1b" not in done.stdout and "\x07" not in done.stdout
        assert "[bold red]fake[/] \\x1b]0;owned\\x07\\x1b[2J<script>" in done.stdout
    data = json.loads(summary("-f", "json", "ev", cwd=tmp_path).stdout)
    assert data["workflows"][0]["workflow"] == evil
    markdown = summary("-f", "markdown", "ev", cwd=tmp_path).stdout
    assert "\x1b" not in markdown and "&lt;script>" in markdown
