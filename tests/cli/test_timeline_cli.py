"""`agentundo timeline` as a user runs it: in this process (tests/cli_runner.py), exact golden text, exit codes."""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from agentundo.evidence.writer import EvidenceWriter
from tests.cli_runner import CLEAN_ENV, Result, invoke
from tests.evidence_factory import START, RunBuilder, clean_run, standard_run

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "timeline"
ROOT = Path(__file__).resolve().parents[2]


def run(
    *args: str, cwd: Path | None = None, stdin: bytes | None = None, timeout: float = 60
) -> Result:
    return invoke(
        "timeline", *args, cwd=cwd, stdin=stdin, timeout=timeout, clean_env=True, env=CLEAN_ENV
    )


def golden(name: str, actual: str) -> None:
    """Compare with tests/golden/timeline/NAME; UPDATE_GOLDEN=1 rewrites it (then review)."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(actual, encoding="utf-8")
    assert actual == path.read_text(encoding="utf-8")


@pytest.fixture
def evidence(tmp_path: Path) -> Path:
    standard_run(tmp_path / "run-1.jsonl")
    return tmp_path


def test_table_shows_header_and_every_record(evidence: Path) -> None:
    done = run("run-1.jsonl", cwd=evidence)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for text in (
        "refund-order · run-1",
        "needs_followup",
        "2 dispatched, 1 skipped, 0 failed",
        "manual follow-ups  1",
        "deny [no-void-after-pickup]",
        "allow [default]",
        "run-1:charge:undo",
        "+4.75s",
    ):
        assert text in out, text
    assert out.count("│10:00:") == 33


def test_markdown_golden(evidence: Path) -> None:
    done = run("--format", "markdown", "--verify", "run-1.jsonl", cwd=evidence)
    assert done.returncode == 0, done.stderr
    golden("run-1.md", done.stdout)


def test_markdown_only_problems_golden(evidence: Path) -> None:
    done = run("-f", "markdown", "--only-problems", "run-1.jsonl", cwd=evidence)
    assert done.returncode == 0, done.stderr
    golden("run-1.problems.md", done.stdout)


def test_mermaid_golden(evidence: Path) -> None:
    done = run("--format", "mermaid", "run-1.jsonl", cwd=evidence)
    assert done.returncode == 0, done.stderr
    golden("run-1.mmd", done.stdout)


def test_json_is_the_matching_lines_as_written(evidence: Path) -> None:
    done = run(
        "-f",
        "json",
        "--event",
        "compensation_*",
        "--topic",
        "payments.*",
        "run-1.jsonl",
        cwd=evidence,
    )
    assert done.returncode == 0
    source = (evidence / "run-1.jsonl").read_text().splitlines()
    out = done.stdout.splitlines()
    assert [json.loads(line)["event"] for line in out] == [
        "compensation_dispatched",
        "compensation_failed",
        "compensation_retry_scheduled",
        "compensation_dispatched",
        "compensation_succeeded",
    ]
    assert all(line in source for line in out)


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        (("--run", "run-1"), 33),
        (("--run", "nope"), 0),
        (("--job", "comp-label"), 2),
        (("--topic", "inventory.*"), 6),
        (("--event", "step_dispatched"), 5),
        (("--since", "2024-05-01T10:00:07.5Z"), 3),
        (("--until", "+0.75s"), 4),
        (("--only-problems",), 6),
    ],
)
def test_each_filter_through_the_command(
    evidence: Path, option: tuple[str, ...], expected: int
) -> None:
    done = run("-f", "json", *option, "run-1.jsonl", cwd=evidence)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == expected


def test_standard_input(evidence: Path) -> None:
    data = (evidence / "run-1.jsonl").read_bytes()
    done = run("-f", "json", "--event", "manual_followup", "--verify", "-", stdin=data)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["category"] == "compensation_denied"


def tamper(evidence: Path, kind: str) -> Path:
    path = evidence / "run-1.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    match kind:
        case "edit":
            lines[12] = lines[12].replace("smtp 421", "smtp 250")
        case "delete":
            del lines[14]
        case "insert":
            lines.insert(20, lines[19])
        case "reorder":
            lines[20], lines[21] = lines[21], lines[20]
        case "truncate":
            lines[-1] = lines[-1][:50]
    path.write_text("".join(lines))
    return path


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (
            "edit",
            "run-1.jsonl:13: EV101 content does not match its hash: the line was edited [hash-mismatch]",
        ),
        (
            "delete",
            "run-1.jsonl:15: EV103 seq 14 missing before this line: 1 record deleted [record-missing]",
        ),
        (
            "insert",
            "run-1.jsonl:21: EV105 seq 19 appears again (already at line 20): a line was inserted or repeated [duplicate-seq]",
        ),
        (
            "reorder",
            "run-1.jsonl:22: EV104 seq 20 comes after seq 21: lines were reordered (it belongs before line 21) [out-of-order]",
        ),
        (
            "truncate",
            "run-1.jsonl:33: EV002 truncated last line (50 bytes, no newline): the run was cut off mid-write [truncated-line]",
        ),
    ],
)
def test_verify_names_each_kind_of_tampering(evidence: Path, kind: str, expected: str) -> None:
    tamper(evidence, kind)
    done = run("--verify", "run-1.jsonl", cwd=evidence)
    assert done.returncode == 1, done.stdout + done.stderr
    assert expected in done.stdout
    assert "1 of 1 failed verification" in done.stderr


def test_truncated_file_still_shows_every_complete_line(evidence: Path) -> None:
    tamper(evidence, "truncate")
    done = run("run-1.jsonl", cwd=evidence)
    assert done.returncode == 0
    assert "run-1.jsonl:33:1: warning: truncated last line" in done.stderr
    assert done.stdout.count("│10:00:") == 32
    assert "incomplete (no run_summary)" in done.stdout


def test_verify_quiet_for_ci(evidence: Path) -> None:
    clean_run(evidence / "ok.jsonl")
    done = run("--verify", "-q", ".", cwd=evidence)
    unkeyed = "sha256, unkeyed: detects corruption and truncation, not a deliberate reseal"
    assert (done.returncode, done.stdout) == (
        0,
        "✓ ok.jsonl: verified (hash chain intact, run complete)\n"
        f"  chain run-ok: head {_last_hash(evidence / 'ok.jsonl')} (seq 10; {unkeyed})\n"
        "✓ run-1.jsonl: verified (hash chain intact, run complete)\n"
        f"  chain run-1: head {_last_hash(evidence / 'run-1.jsonl')} (seq 32; {unkeyed})\n",
    )
    assert done.stderr == "agentundo timeline: 2 files checked, all verified\n"


def _last_hash(path: Path) -> str:
    head: str = json.loads(path.read_text().splitlines()[-1])["hash"]
    return head


def test_malformed_line_warns_and_carries_on(evidence: Path) -> None:
    path = evidence / "run-1.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    lines.insert(3, "{this is not json}\n")
    path.write_text("".join(lines))
    done = run("-f", "json", "run-1.jsonl", cwd=evidence)
    assert done.returncode == 0
    assert done.stderr.startswith(
        "run-1.jsonl:4:2: warning: malformed line: Expecting property name"
    )
    assert len(done.stdout.splitlines()) == 33


def test_not_evidence_exits_2_with_a_message(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text('{"name": "x", "version": "1"}\n')
    (tmp_path / "bin.jsonl").write_bytes(b"\x00\x01\x02")
    clean_run(tmp_path / "ok.jsonl")
    done = run("package.json", "bin.jsonl", "ok.jsonl", cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert (
        'package.json:1:1: error: not an evidence file: not an evidence record: no "event" field'
        in done.stderr
    )
    assert "bin.jsonl:1:1: error: not an evidence file: binary data" in done.stderr
    assert "restock · run-ok" in done.stdout  # the good file is still shown
    missing = run("nope.jsonl", cwd=tmp_path)
    assert (missing.returncode, missing.stderr) == (
        2,
        "nope.jsonl: error: no such file or directory\n",
    )


def test_usage_errors_exit_2(evidence: Path) -> None:
    for args in (
        ("-f", "pdf", "run-1.jsonl"),
        ("--since", "yesterday", "run-1.jsonl"),
        ("--follow", "run-1.jsonl", "run-1.jsonl"),
        ("--timeout", "3", "run-1.jsonl"),
        ("--follow", "--timeout", "1", "."),
        ("--summary", "--event", "x", "."),
    ):
        done = run(*args, cwd=evidence)
        assert done.returncode == 2, args
        assert "Traceback" not in done.stderr


def test_unknown_event_and_fields_are_shown(tmp_path: Path) -> None:
    with EvidenceWriter(tmp_path / "new.jsonl") as writer:
        builder = RunBuilder(writer)
        builder.event("run_started", env="staging")
        builder.event("quantum_entangled", spin="up", qubits=[1, 2])
        builder.summary()
    done = run("--verify", "new.jsonl", cwd=tmp_path)
    assert done.returncode == 0, done.stdout
    assert "quantum_entangled" in done.stdout
    assert "(unknown event type) qubits=[1,2] spin=up" in done.stdout


def test_summary_of_the_drill_history(tmp_path: Path) -> None:
    history = tmp_path / "history"
    for week in range(3):
        start = START + timedelta(days=7 * week)
        if week == 1:
            clean_run(history / f"week{week}.jsonl", run_id=f"run-w{week}", start=start)
        else:
            standard_run(history / f"week{week}.jsonl", run_id=f"run-w{week}", start=start)
    incomplete = history / "week3.jsonl"
    standard_run(incomplete, run_id="run-w3", start=START + timedelta(days=21))
    incomplete.write_text("".join(incomplete.read_text().splitlines(keepends=True)[:20]))
    done = run("--summary", "-f", "markdown", "history", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    golden("history.md", done.stdout)
    verified = run(
        "--summary", "--verify", "-f", "json", "--only-problems", "history", cwd=tmp_path
    )
    assert verified.returncode == 1
    rows = [json.loads(line) for line in verified.stdout.splitlines()]
    assert [(r["run_id"], r["verified"]) for r in rows] == [
        ("run-w0", True),
        ("run-w2", True),
        ("run-w3", False),
    ]
    assert "week3.jsonl:20: EV205" in verified.stderr


def test_follow_a_drill_while_it_writes(tmp_path: Path) -> None:
    path = tmp_path / "live.jsonl"

    def writer() -> None:
        time.sleep(0.3)
        with EvidenceWriter(path) as out:
            builder = RunBuilder(out, step=timedelta(seconds=1))
            builder.event("run_started", env="staging")
            for index in range(4):
                time.sleep(0.1)
                builder.forward_ok(f"s{index}", "t.x")
            builder.summary()

    thread = threading.Thread(target=writer)
    thread.start()
    done = run("--follow", "--timeout", "20", "--verify", str(path))
    thread.join()
    out, err = done.stdout, done.stderr
    assert done.returncode == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("10:00:00.000  +0s  run_started")
    assert sum("step_succeeded" in line for line in lines) == 4
    assert "verified (hash chain intact, run complete)" in out


def test_follow_timeout_on_a_run_that_never_finishes(evidence: Path) -> None:
    path = evidence / "run-1.jsonl"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:10]))
    started = time.monotonic()
    done = run("--follow", "--timeout", "0.5", "-f", "json", "run-1.jsonl", cwd=evidence)
    assert time.monotonic() - started < 10
    assert done.returncode == 0
    assert len(done.stdout.splitlines()) == 10


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("",), "an empty path names nothing"),
        (("--run", "", "{dir}"), "--run needs a value, not an empty string"),
        (("--topic", " ", "{dir}"), "--topic needs a value, not an empty string"),
        (("--since", "", "{dir}"), "--since needs a time or an offset, not an empty string"),
        (("--summary", "--since", "+5s", "{dir}"), "--summary takes --since/--until as times"),
    ],
)
def test_empty_and_inapplicable_filters_are_usage_errors(
    evidence: Path, args: tuple[str, ...], message: str
) -> None:
    done = run(*(a.format(dir=evidence) for a in args), cwd=evidence)
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stdout == ""
