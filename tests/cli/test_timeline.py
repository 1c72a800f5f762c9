"""`agentundo timeline` as a user runs it: exact golden text, exit codes, ``--follow``,
``--verify`` on real drills, keyed evidence, and hostile input (deep JSON, lone
surrogates, forged summaries, bytes the writer never writes).

The command runs in this process (tests/cli_runner.py).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentundo.evidence.chain import GENESIS, genesis_of, seal
from agentundo.evidence.writer import EvidenceWriter
from tests.cli_runner import CLEAN_ENV, Result, invoke
from tests.evidence_factory import START, RunBuilder, clean_run, reseal, standard_run
from tests.saga_helpers import CATALOG, POLICY, WORKFLOW, write

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
        "[no-void-after-pickup]",  # the rule id whole (its decision may wrap before it)
        "allow [default]",
        "run-1:charge:undo",
        "+4.75s",
    ):
        assert text in out, text
    assert out.count("│ 10:00:") == 33


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
    assert done.stdout.count("│ 10:00:") == 32
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
    rows = json.loads(verified.stdout)["runs"]
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


def agentundo(
    *args: str,
    cwd: Path,
    timeout: float = 120,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
) -> Result:
    done = invoke(
        *args,
        cwd=cwd,
        timeout=timeout,
        stdin=stdin,
        clean_env=True,
        env={**CLEAN_ENV, **(env or {})},
    )
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return done


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write(tmp_path, "wf.yaml", WORKFLOW)
    write(tmp_path, "catalog.yaml", CATALOG)
    write(tmp_path, "policy.yaml", POLICY)
    return tmp_path


def drill(project: Path, *options: str) -> Path:
    """Run a real drill into a fresh evidence directory; its one evidence file."""
    out = project / f"ev{len(list(project.glob('ev*')))}"
    done = agentundo(
        "drill",
        "wf.yaml",
        "--catalog",
        "catalog.yaml",
        "--policy",
        "policy.yaml",
        "--evidence",
        out.name,
        *options,
        cwd=project,
    )
    assert done.returncode in (0, 1), done.stderr
    (path,) = out.glob("*.jsonl")
    return path


def scenario(project: Path, name: str, faults: str) -> str:
    write(
        project,
        f"{name}.yaml",
        f"version: v1\nkind: scenario\nscenario: {name}\nfaults: {faults}\n",
    )
    return f"{name}.yaml"


# --- 1. a lone surrogate ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "code"),
    [
        ((), 0),
        (("-f", "markdown"), 0),
        (("-f", "mermaid"), 0),
        (("--verify",), 1),
        (("--summary", "--verify"), 1),
        (("--follow", "--timeout", "1"), 0),
    ],
    ids=["table", "markdown", "mermaid", "verify", "summary-verify", "follow"],
)
def test_a_lone_surrogate_is_a_malformed_line(
    project: Path, mode: tuple[str, ...], code: int
) -> None:
    path = drill(project, "--fail-at", "ship")
    text = path.read_text(encoding="utf-8")
    assert text.count('"attempt":1,') > 1
    path.write_text(text.replace('"attempt":1,', '"attempt":"\\ud800",'), encoding="utf-8")
    name = str(path.relative_to(project))
    done = agentundo("timeline", *mode, name, cwd=project)
    assert done.returncode == code, done.stderr
    assert (
        "malformed line: a string holds a lone surrogate (\\ud800), which is not a character"
        in done.stdout + done.stderr
    )
    if "--verify" in mode:
        assert "EV001" in done.stdout + done.stderr


# --- 2. --follow ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [bytes(range(256)) * 100, b"x" * 3_000_000, WORKFLOW.encode(), b"\n# yaml\nkey: value\n"],
    ids=["binary", "3MB-no-newline", "yaml", "yaml-after-a-blank-line"],
)
def test_follow_of_non_evidence_fails_as_reading_does(tmp_path: Path, data: bytes) -> None:
    (tmp_path / "x.jsonl").write_bytes(data)
    whole = agentundo("timeline", "x.jsonl", cwd=tmp_path)
    assert whole.returncode == 2
    assert ": error: not an evidence file: " in whole.stderr
    started = time.monotonic()
    followed = agentundo("timeline", "--follow", "--timeout", "20", "x.jsonl", cwd=tmp_path)
    assert time.monotonic() - started < 15  # refused when the first bytes show, not at --timeout
    assert (followed.returncode, followed.stderr, followed.stdout) == (2, whole.stderr, "")


def test_follow_of_an_endless_or_huge_line_stops(tmp_path: Path) -> None:
    for source, message in (
        ("/dev/zero", "/dev/zero:1:1: error: not an evidence file: binary data\n"),
        ("/dev/urandom", None),
    ):
        done = agentundo("timeline", "--follow", "--timeout", "1", source, cwd=tmp_path, timeout=60)
        assert done.returncode == 2
        if message is not None:
            assert done.stderr == message
    (tmp_path / "long.jsonl").write_bytes(b'{"event":"run_started","x":"' + b"a" * (17 << 20))
    done = agentundo("timeline", "--follow", "--timeout", "60", "long.jsonl", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == (
        "long.jsonl:1:1: error: a line longer than 16 MiB, which no evidence record is: "
        "not followed further\n"
    )
    whole = agentundo("timeline", "long.jsonl", cwd=tmp_path)
    assert whole.returncode == 2
    assert "longer than the 16 MiB a line may have" in whole.stderr


def test_follow_waits_for_an_empty_file_and_then_says_it_is_empty(tmp_path: Path) -> None:
    (tmp_path / "new.jsonl").write_bytes(b"")
    whole = agentundo("timeline", "new.jsonl", cwd=tmp_path)
    assert (whole.returncode, whole.stderr) == (
        2,
        "new.jsonl: error: empty evidence file: no records\n",
    )
    started = time.monotonic()
    done = agentundo("timeline", "--follow", "--timeout", "1", "new.jsonl", cwd=tmp_path)
    assert time.monotonic() - started >= 1  # it waited for a first line
    assert (done.returncode, done.stderr) == (
        2,
        "new.jsonl: error: empty evidence file: no records within 1s\n",
    )


def test_follow_of_stdin_says_what_is_wrong(tmp_path: Path) -> None:
    done = agentundo("timeline", "--follow", "-", cwd=tmp_path, stdin="")
    assert done.returncode == 2
    assert done.stderr == (
        "agentundo: error: --follow tails a file and cannot follow standard input; "
        "pipe into `agentundo timeline -` to read it whole\n"
    )
    two = agentundo("timeline", "--follow", "a.jsonl", "b.jsonl", cwd=tmp_path)
    assert two.stderr == "agentundo: error: --follow takes exactly one file, not 2\n"


# --- 3. forged run summaries -------------------------------------------------------------------


def test_a_forged_summary_fails_verification(project: Path) -> None:
    path = drill(project, "--fail-at", "ship")
    name = str(path.relative_to(project))
    assert agentundo("timeline", "--verify", "-q", name, cwd=project).returncode == 0
    lines = path.read_text().splitlines()
    fatal = 1 + next(i for i, line in enumerate(lines) if '"step_failed_fatal"' in line)
    rollback = 1 + next(i for i, line in enumerate(lines) if '"rollback_triggered"' in line)
    summary = json.loads(lines[-1])
    assert (summary["status"], summary["verdict"], summary["manual"]) == (
        "FAILED_FATAL",
        "recovered",
        ["notify"],
    )
    reseal(path, {"status": "SUCCEEDED", "verdict": "completed", "manual": []})
    done = agentundo("timeline", "--verify", "-q", name, cwd=project)
    assert done.returncode == 1
    at = f"{name}:{len(lines)}: EV204"
    assert [line for line in done.stdout.splitlines() if "EV204" in line] == [
        f"  {at} run_summary says status='SUCCEEDED', the events give FAILED_FATAL: "
        f"step_failed_fatal (line {fatal}) [summary-mismatch]",
        f"  {at} run_summary says verdict='completed', but a rollback was triggered "
        f"(line {rollback}) [summary-mismatch]",
        f"  {at} run_summary says manual=[], the manual_followup records name [notify] "
        "[summary-mismatch]",
    ]
    reseal(path, {"status": "FAILED_FATAL", "verdict": "recovered", "manual": ["notify"]})
    reseal(path, {"compensated": [*summary["compensated"], "notify"]})
    extra = agentundo("timeline", "--summary", "--verify", name, cwd=project)
    assert extra.returncode == 1
    assert (
        "EV204 run_summary says [notify] compensated, but no compensation_succeeded names "
        "that step [summary-mismatch]"
    ) in extra.stderr


def test_a_deadline_cut_cannot_be_called_recovered(tmp_path: Path) -> None:
    """A real HTTP drill on the real clock whose slow first charge uses up the deadline: the
    next step is not started (step_failed_fatal, attempts 0) and the engine fails the drill."""
    from tests.cli.test_http_drill import ledger_service

    example = ROOT / "examples" / "ledger"
    ledger = ledger_service.start()
    try:
        httpx.post(
            f"{ledger.url}/admin/faults",
            json={"delay_ms": 700, "slow_next": 1, "only": "/charges"},
            timeout=5,
        ).raise_for_status()
        done = agentundo(
            "drill", str(example / "workflow.yaml"),
            "--catalog", str(example / "catalog.yaml"),
            "--policy", str(example / "policy.yaml"),
            "--executor", "http", "--clock", "real", "--deadline", "300ms",
            "--no-compensate-failed-step", "--evidence", "ev",
            cwd=tmp_path,
            env={"LEDGER_URL": ledger.url, "LEDGER_TOKEN": "ledger-t0ken-review"},
        )  # fmt: skip
    finally:
        ledger.stop()
    assert done.returncode == 1, done.stdout + done.stderr
    (path,) = (tmp_path / "ev").glob("*.jsonl")
    name = str(path.relative_to(tmp_path))
    lines = path.read_text().splitlines()
    cut = 1 + next(i for i, line in enumerate(lines) if '"attempts":0' in line)
    assert json.loads(lines[-1])["verdict"] == "failed"
    assert agentundo("timeline", "--verify", "-q", name, cwd=tmp_path).returncode == 0
    reseal(path, {"verdict": "recovered", "problems": []})
    forged = agentundo("timeline", "--verify", "-q", name, cwd=tmp_path)
    assert forged.returncode == 1
    assert (
        f"{name}:{len(lines)}: EV204 run_summary says verdict='recovered', but a step was not "
        f"started because the drill deadline had passed (step_failed_fatal with attempts 0, "
        f"line {cut}): the drill failed [summary-mismatch]"
    ) in " ".join(forged.stdout.split())  # the console wraps long lines


# --- 4. lock trouble under --only-problems ----------------------------------------------------


@pytest.mark.parametrize(
    ("faults", "event"),
    [
        ("[{type: fatal, step: ship}, {type: lock_held, expired: true}]", "lock_taken_over"),
        (
            "[{type: fatal, step: ship}, {type: lock_expires, after: 1, taken_over: true}]",
            "lock_released",
        ),
    ],
)
def test_only_problems_shows_lock_trouble(project: Path, faults: str, event: str) -> None:
    path = drill(project, "--scenario", scenario(project, "locks", faults))
    name = str(path.relative_to(project))
    shown = agentundo("timeline", "--only-problems", "-f", "json", name, cwd=project)
    assert shown.returncode == 0, shown.stderr
    records = [json.loads(line) for line in shown.stdout.splitlines()]
    locks = [r for r in records if r["event"].startswith("lock_")]
    assert event in [r["event"] for r in locks]
    assert all(r.get("released") is not True for r in locks)  # a released lock is no trouble


def test_only_problems_leaves_out_a_lock_released_as_it_should_be(project: Path) -> None:
    path = drill(project, "--fail-at", "ship")
    shown = agentundo(
        "timeline", "--only-problems", "-f", "json", str(path.relative_to(project)), cwd=project
    )
    assert '"lock_' not in shown.stdout


# --- 5. bytes the writer never writes ---------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda data: b"\xef\xbb\xbf" + data, "EV109"),
        (lambda data: data.replace(b"\n", b"\r\n"), "EV109"),
        (lambda data: data.replace(b"\n", b"\n\n", 1), "EV001"),
        (lambda data: data + b"\n", "EV001"),
    ],
    ids=["bom", "crlf", "blank-line", "blank-last-line"],
)
def test_verify_reports_what_the_writer_never_writes(project: Path, change: Any, code: str) -> None:
    path = drill(project, "--fail-at", "ship")
    name = str(path.relative_to(project))
    records = len(path.read_bytes().splitlines())
    path.write_bytes(change(path.read_bytes()))
    done = agentundo("timeline", "--verify", "-q", name, cwd=project)
    assert done.returncode == 1
    assert f": {code} " in done.stdout
    assert "verified (hash chain intact" not in done.stdout
    shown = agentundo("timeline", "-f", "json", name, cwd=project)
    assert (shown.returncode, shown.stderr) == (0, "")  # read normally: every record, no warning
    assert len(shown.stdout.splitlines()) == records


def agentundo_drilled(*args: str, cwd: Path) -> Result:
    return invoke(*args, cwd=cwd, clean_env=True, env=CLEAN_ENV)


@pytest.fixture
def project_drilled(tmp_path: Path) -> Path:
    write(tmp_path, "wf.yaml", WORKFLOW)
    write(tmp_path, "catalog.yaml", CATALOG)
    write(tmp_path, "policy.yaml", POLICY)
    return tmp_path


DRILL = (
    "drill",
    "wf.yaml",
    "--catalog",
    "catalog.yaml",
    "--policy",
    "policy.yaml",
    "--evidence",
    "ev",
)


EVIDENCE = (".jsonl", ".jsonl.gz")


def test_real_drills_verify_and_render(project_drilled: Path) -> None:
    for faults in (
        (),
        ("--fail-at", "ship", "--transient", "charge=2"),
        ("--partial", "ship", "--no-compensate-failed-step"),
        ("--sweep",),
    ):
        done = agentundo_drilled(*DRILL, *faults, cwd=project_drilled)
        assert done.returncode in (0, 1), done.stderr
    # a sweep stores each run as <run_id>.jsonl.gz, read like the plain files
    files = sorted(p for p in (project_drilled / "ev").rglob("*") if p.name.endswith(EVIDENCE))
    assert len(files) >= 4 and any(f.name.endswith(".gz") for f in files)
    verified = agentundo_drilled("timeline", "--verify", "-q", "ev", cwd=project_drilled)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.count("verified (hash chain intact, run complete)") == len(files)
    for fmt in ("table", "markdown", "mermaid", "json"):
        shown = agentundo_drilled("timeline", "-f", fmt, "ev", cwd=project_drilled)
        assert shown.returncode == 0, shown.stderr
        assert "Traceback" not in shown.stderr
    history = agentundo_drilled("timeline", "--summary", "-f", "json", "ev", cwd=project_drilled)
    rows = json.loads(history.stdout)["runs"]
    assert {r["verdict"] for r in rows} <= {"completed", "recovered", "failed", "interrupted"}
    assert len(rows) == len(files)


def test_tampering_with_real_drill_evidence_is_found(project_drilled: Path) -> None:
    done = agentundo_drilled(*DRILL, "--fail-at", "ship", cwd=project_drilled)
    assert done.returncode == 0, done.stderr
    (path,) = (project_drilled / "ev").glob("*.jsonl")
    lines = path.read_text().splitlines(keepends=True)
    edited = json.loads(lines[2])
    edited["actor"] = "agent:someone-else"
    lines[2] = json.dumps(edited, separators=(",", ":")) + "\n"
    path.write_text("".join(lines))
    verified = agentundo_drilled(
        "timeline", "--verify", "-q", str(path.relative_to(project_drilled)), cwd=project_drilled
    )
    assert verified.returncode == 1
    assert ":3: EV101" in verified.stdout


KEY = "cli-test-evidence-key-9f8e7d6c5b4a"
OTHER_KEY = "a-different-key-of-enough-length"


def agentundo_keyed(*args: str, cwd: Path, key: str | None = None, timeout: float = 120) -> Result:
    env = {**CLEAN_ENV, "AGENTUNDO_EVIDENCE_KEY": key}
    return invoke(*args, cwd=cwd, timeout=timeout, clean_env=True, env=env)


def no_traceback(done: Result) -> None:
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "Error:" not in done.stderr.replace("error:", ""), done.stderr[-3000:]


# --- 1. deeply nested JSON --------------------------------------------------------------

DEEP_LINES = {
    "brackets": "[" * 100_000,
    "objects": '{"a":' * 100_000 + "1" + "}" * 100_000,
}
MODES = [(), ("--verify",), ("--summary",), ("--summary", "--verify"), ("-f", "json", "--verify")]


@pytest.mark.parametrize("mode", MODES, ids=" ".join)
@pytest.mark.parametrize("name", DEEP_LINES)
def test_a_file_of_one_deep_line_is_not_evidence(tmp_path: Path, name: str, mode: Any) -> None:
    (tmp_path / "deep.jsonl").write_text(DEEP_LINES[name] + "\n")
    done = agentundo_keyed("timeline", *mode, "deep.jsonl", cwd=tmp_path)
    no_traceback(done)
    assert done.returncode == 2
    assert "deep.jsonl:1:1: error: not an evidence file" in done.stderr


@pytest.mark.parametrize("name", DEEP_LINES)
def test_a_deep_line_inside_evidence_is_a_malformed_line(tmp_path: Path, name: str) -> None:
    path = standard_run(tmp_path / "run-1.jsonl")
    lines = path.read_text().splitlines(keepends=True)
    lines.insert(5, DEEP_LINES[name] + "\n")
    path.write_text("".join(lines))
    message = "malformed line: arrays or objects nested more than 500 levels deep"
    shown = agentundo_keyed("timeline", "run-1.jsonl", cwd=tmp_path)
    no_traceback(shown)
    assert shown.returncode == 0
    assert f"run-1.jsonl:6:1: warning: {message}" in shown.stderr
    for mode in (("--verify",), ("--summary", "--verify")):
        verified = agentundo_keyed("timeline", *mode, "run-1.jsonl", cwd=tmp_path)
        no_traceback(verified)
        assert verified.returncode == 1
        assert f"run-1.jsonl:6: EV001 {message} [malformed-line]" in (
            verified.stdout + verified.stderr
        )


def test_catalog_import_of_deeply_nested_json_is_an_input_error(tmp_path: Path) -> None:
    for name, text in {**DEEP_LINES, "tools": '{"tools":' + "[" * 100_000}.items():
        (tmp_path / f"{name}.json").write_text(text)
        done = agentundo_keyed("catalog", "import", "--from-json", f"{name}.json", cwd=tmp_path)
        no_traceback(done)
        assert (done.returncode, done.stdout) == (2, "")
        assert (
            f"{name}.json: error: not usable JSON: arrays or objects nested too deeply to read"
            in done.stderr
        )


# --- 2. huge --since / --until offsets --------------------------------------------------


def test_a_huge_offset_is_a_usage_error(tmp_path: Path) -> None:
    standard_run(tmp_path / "run-1.jsonl")
    for option in ("--since", "--until"):
        for value in ("+99999999999999999999h", "+99999999h", "+" + "9" * 400):
            done = agentundo_keyed("timeline", option, value, "run-1.jsonl", cwd=tmp_path)
            no_traceback(done)
            assert done.returncode == 2
            assert "offset too large; an offset from the run's start is at most +876000h" in (
                done.stderr
            )


def test_an_offset_from_a_run_at_the_end_of_time_does_not_overflow(tmp_path: Path) -> None:
    late = START.replace(year=9999, month=12, day=31)
    clean_run(tmp_path / "late.jsonl", start=late)
    done = agentundo_keyed(
        "timeline", "-f", "json", "--until", "+876000h", "late.jsonl", cwd=tmp_path
    )
    no_traceback(done)
    assert done.returncode == 0
    assert len(done.stdout.splitlines()) == 11
    since = agentundo_keyed(
        "timeline", "-f", "json", "--since", "+876000h", "late.jsonl", cwd=tmp_path
    )
    assert (since.returncode, since.stdout) == (0, "")


# --- 3. --verify on input that is not evidence ------------------------------------------


def test_verify_of_no_evidence_does_not_claim_verification(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "policy.yaml").write_text("version: v1\nrules: []\n")
    for files in (("empty.jsonl",), ("policy.yaml",), ("empty.jsonl", "policy.yaml")):
        done = agentundo_keyed("timeline", "--verify", *files, cwd=tmp_path)
        no_traceback(done)
        assert done.returncode == 2
        assert "verified" not in done.stdout
        last = done.stderr.splitlines()[-1]
        count = f"{len(files)} file{'s' if len(files) > 1 else ''}"
        assert last == (
            f"agentundo timeline: nothing verified: {count} could not be read as evidence "
            "(see above)"
        )
    assert "empty.jsonl: error: empty evidence file: no records" in done.stderr
    assert "policy.yaml:1:1: error: not an evidence file" in done.stderr


def test_verify_of_evidence_and_non_evidence_says_which_was_verified(tmp_path: Path) -> None:
    clean_run(tmp_path / "ok.jsonl")
    (tmp_path / "empty.jsonl").write_text("")
    done = agentundo_keyed("timeline", "--verify", "-q", "ok.jsonl", "empty.jsonl", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout.startswith("✓ ok.jsonl: verified")
    assert done.stderr.splitlines()[-1] == (
        "agentundo timeline: 1 file checked, all verified; 1 more could not be read as "
        "evidence and was not verified"
    )


# --- 4. keyed sealing, end to end with a real drill -------------------------------------


@pytest.fixture
def project_keyed(tmp_path: Path) -> Path:
    write(tmp_path, "wf.yaml", WORKFLOW)
    write(tmp_path, "catalog.yaml", CATALOG)
    write(tmp_path, "policy.yaml", POLICY)
    return tmp_path


DRILL_KEYED = ("drill", "wf.yaml", "--catalog", "catalog.yaml", "--policy", "policy.yaml")


def keyed_drill(project_keyed: Path) -> Path:
    done = agentundo_keyed(
        *DRILL_KEYED, "--fail-at", "ship", "--evidence", "ev", cwd=project_keyed, key=KEY
    )
    assert done.returncode == 0, done.stderr
    assert KEY not in done.stdout + done.stderr
    (path,) = (project_keyed / "ev").glob("*.jsonl")
    return path


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def forge(path: Path, index: int, change: dict[str, Any]) -> None:
    """Edit record ``index`` and recompute every later hash, as a forger without the key."""
    records = rows(path)
    prev = records[index - 1]["hash"] if index else genesis_of(records[0])
    for at in range(index, len(records)):
        body = {k: v for k, v in records[at].items() if k not in ("hash", "prev_hash")}
        if at == index:
            body.update(change)
            body = {k: v for k, v in body.items() if v is not None}
        records[at] = seal(body, prev)
        prev = records[at]["hash"]
    path.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records))


def verify(project_keyed: Path, path: Path, key: str | None) -> Result:
    done = agentundo_keyed(
        "timeline",
        "--verify",
        "-q",
        str(path.relative_to(project_keyed)),
        cwd=project_keyed,
        key=key,
    )
    no_traceback(done)
    if key is not None:
        assert key not in done.stdout + done.stderr
    return done


def test_a_keyed_drill_verifies_with_its_key_and_prints_its_head(project_keyed: Path) -> None:
    path = keyed_drill(project_keyed)
    assert KEY not in path.read_text()
    records = rows(path)
    assert records[0]["mac"] == "hmac-sha256"
    done = verify(project_keyed, path, KEY)
    assert done.returncode == 0, done.stdout + done.stderr
    name = path.relative_to(project_keyed)
    assert done.stdout == (
        f"✓ {name}: verified (hash chain intact, run complete)\n"
        f"  chain {records[0]['run_id']}: head {records[-1]['hash']} (seq {records[-1]['seq']}; "
        "hmac-sha256, keyed: MACs checked with AGENTUNDO_EVIDENCE_KEY)\n"
    )
    assert done.stderr == "agentundo timeline: 1 file checked, all verified\n"
    as_json = agentundo_keyed(
        "timeline", "--verify", "-f", "json", str(name), cwd=project_keyed, key=KEY
    )
    assert as_json.returncode == 0
    assert f"{name}: chain {records[0]['run_id']}: head {records[-1]['hash']}" in as_json.stderr


def test_a_resealed_forgery_fails_with_the_key(project_keyed: Path) -> None:
    path = keyed_drill(project_keyed)
    forge(path, 2, {"actor": "agent:someone-else"})
    name = path.relative_to(project_keyed)
    done = verify(project_keyed, path, KEY)
    assert done.returncode == 1
    assert (
        f"{name}:3: EV101 MAC (hmac-sha256) does not match: the first bad record of this run; "
        "it was edited, or sealed without this key [hash-mismatch]"
    ) in done.stdout
    assert f"{name}:4: EV101 " in done.stdout
    assert "1 of 1 failed verification" in done.stderr
    wrong = verify(project_keyed, path, OTHER_KEY)
    assert wrong.returncode == 1
    assert "every record of this run fails its MAC" in wrong.stdout


def test_a_keyed_file_without_the_key_is_not_verified(project_keyed: Path) -> None:
    path = keyed_drill(project_keyed)
    done = verify(project_keyed, path, None)
    assert done.returncode == 1
    assert (
        "EV107 the chain is keyed (hmac-sha256); AGENTUNDO_EVIDENCE_KEY is not set, so its "
        "records' MACs were not checked (only their order, links and completeness) "
        "[mac-unchecked]"
    ) in done.stdout
    assert "MACs NOT checked (AGENTUNDO_EVIDENCE_KEY not set)" in done.stdout
    assert "verified (hash chain intact" not in done.stdout


def test_an_unkeyed_file_says_what_its_chain_cannot_prove(project_keyed: Path) -> None:
    done = agentundo_keyed(*DRILL_KEYED, "--evidence", "ev", cwd=project_keyed)
    assert done.returncode == 0, done.stderr
    (path,) = (project_keyed / "ev").glob("*.jsonl")
    assert "mac" not in rows(path)[0]
    plain = verify(project_keyed, path, None)
    assert plain.returncode == 0
    assert (
        "sha256, unkeyed: detects corruption and truncation, not a deliberate reseal"
        in plain.stdout
    )
    forge(path, 2, {"actor": "agent:someone-else"})  # the limitation, stated and shown
    assert verify(project_keyed, path, None).returncode == 0
    keyed = verify(project_keyed, path, KEY)
    assert keyed.returncode == 1
    assert "EV108 AGENTUNDO_EVIDENCE_KEY is set but this chain is not keyed" in keyed.stdout


def test_a_downgraded_keyed_file_fails_with_the_key(project_keyed: Path) -> None:
    path = keyed_drill(project_keyed)
    forge(path, 0, {"mac": None})
    done = verify(project_keyed, path, KEY)
    assert done.returncode == 1
    assert ":1: EV108 " in done.stdout


@pytest.mark.parametrize("value", ["", "too-short"])
def test_an_unusable_key_is_a_usage_error_that_does_not_echo_it(
    project_keyed: Path, value: str
) -> None:
    clean_run(project_keyed / "ok.jsonl")
    for args in (
        (*DRILL_KEYED, "--evidence", "ev"),
        ("timeline", "--verify", "ok.jsonl"),
        ("timeline", "--summary", "--verify", "ok.jsonl"),
    ):
        done = agentundo_keyed(*args, cwd=project_keyed, key=value)
        no_traceback(done)
        assert done.returncode == 2, args
        assert done.stderr.startswith("agentundo: error: AGENTUNDO_EVIDENCE_KEY is ")
        assert not value or value not in done.stderr
    assert not (project_keyed / "ev").exists()


def test_a_repeated_key_cannot_change_a_keyed_record_unseen(project_keyed: Path) -> None:
    # readers that keep the first of two keys see the forged verdict; json.loads keeps
    # the last (the original), so the MAC alone would still match
    path = keyed_drill(project_keyed)
    lines = path.read_bytes().splitlines(keepends=True)
    assert b'"event":"run_summary"' in lines[-1]
    lines[-1] = b'{"verdict":"failed",' + lines[-1][1:]
    path.write_bytes(b"".join(lines))
    done = verify(project_keyed, path, KEY)
    assert done.returncode == 1
    name = path.relative_to(project_keyed)
    assert f"{name}:{len(lines)}: EV109 the line is not the compact JSON" in done.stdout
    assert "EV101" not in done.stdout


# --- 5. downgrade, replay and splicing ---------------------------------------------------


def downgrade(path: Path, summary: dict[str, Any]) -> None:
    """The auditor's forgery: strip "mac", edit the run_summary, reseal with plain SHA-256."""
    records = rows(path)
    prev = genesis_of(records[0])
    for at, record in enumerate(records):
        body = {k: v for k, v in record.items() if k not in ("hash", "prev_hash", "mac")}
        if body["event"] == "run_summary":
            body.update(summary)
        records[at] = seal(body, prev)
        prev = records[at]["hash"]
    path.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records))


def timeline_env(*args: str, cwd: Path, **env: str) -> Result:
    done = invoke("timeline", *args, cwd=cwd, clean_env=True, env={**CLEAN_ENV, **env})
    no_traceback(done)
    return done


def test_a_downgraded_file_needs_require_key_to_fail(project_keyed: Path) -> None:
    path = keyed_drill(project_keyed)
    name = str(path.relative_to(project_keyed))
    assert rows(path)[-1]["verdict"] == "recovered"
    downgrade(path, {"verdict": "failed"})  # a verdict the events cannot refute
    assert "mac" not in rows(path)[0]
    # without the key the file cannot be told from unkeyed evidence: "verified", with the
    # note that an unkeyed chain cannot catch a reseal (docs/evidence.md says why)
    plain = timeline_env("--verify", "-q", name, cwd=project_keyed)
    assert plain.returncode == 0
    assert f"✓ {name}: verified" in plain.stdout
    assert "not a deliberate reseal" in plain.stdout
    # with the key it fails (EV108), and --require-key fails it with its own code
    assert timeline_env("--verify", "-q", name, cwd=project_keyed, **KEYED).returncode == 1
    for args, env in (
        (("--verify", "--require-key"), KEYED),
        (("--verify",), {**KEYED, "AGENTUNDO_REQUIRE_KEY": "1"}),
        (("--verify",), {**KEYED, "AGENTUNDO_REQUIRE_KEY": "true"}),
        (("--summary", "--verify", "--require-key"), KEYED),
    ):
        done = timeline_env(*args, "-q", name, cwd=project_keyed, **env)
        assert done.returncode == 1, (args, env)
        out = done.stdout + done.stderr
        assert (
            f'{name}:1: EV110 --require-key: the chain is not keyed (plain SHA-256, no "mac"): '
            'anyone could have resealed it, or stripped its "mac" [key-required]'
        ) in out
        assert "EV108" not in out
        assert KEY not in out


def test_an_untouched_keyed_drill_passes_require_key(project_keyed: Path) -> None:
    path = keyed_drill(project_keyed)
    name = str(path.relative_to(project_keyed))
    done = timeline_env("--verify", "--require-key", "-q", name, cwd=project_keyed, **KEYED)
    assert done.returncode == 0, done.stdout
    assert done.stderr == "agentundo timeline: 1 file checked, all verified\n"
    off = timeline_env("--verify", "-q", name, cwd=project_keyed, AGENTUNDO_REQUIRE_KEY="0")
    assert off.returncode == 1  # the key is not required, and not set: EV107 as before
    assert "EV107" in off.stdout


def test_require_key_without_the_key_is_a_usage_error(tmp_path: Path) -> None:
    clean_run(tmp_path / "ok.jsonl")
    for args, env in (
        (("--verify", "--require-key"), {}),
        (("--summary", "--verify", "--require-key"), {}),
        (("-f", "json", "--verify", "--require-key"), {}),
        (("--verify",), {"AGENTUNDO_REQUIRE_KEY": "1"}),
        (("--verify", "--require-key"), {"AGENTUNDO_REQUIRE_KEY": "0"}),
    ):
        done = timeline_env(*args, "ok.jsonl", cwd=tmp_path, **env)
        assert done.returncode == 2, (args, env)
        assert done.stdout == ""
        why = "--require-key" if "--require-key" in args else "AGENTUNDO_REQUIRE_KEY"
        assert (
            done.stderr.startswith(f"agentundo: error: {why}")
            and "needs the evidence key: AGENTUNDO_EVIDENCE_KEY is not set" in done.stderr
        )
    # it applies to verification only
    alone = timeline_env("--require-key", "ok.jsonl", cwd=tmp_path)
    assert alone.returncode == 2
    assert alone.stderr == "agentundo: error: --require-key only applies with --verify\n"
    assert timeline_env("-q", "ok.jsonl", cwd=tmp_path, AGENTUNDO_REQUIRE_KEY="1").returncode == 0
    wrong = timeline_env("--verify", "ok.jsonl", cwd=tmp_path, AGENTUNDO_REQUIRE_KEY=KEY)
    assert wrong.returncode == 2
    assert "AGENTUNDO_REQUIRE_KEY must be 1, true, yes or on" in wrong.stderr
    assert KEY not in wrong.stderr


def test_a_chain_keyed_only_in_part_fails_require_key(project_keyed: Path) -> None:
    """A recovery run without the key appends plain SHA-256 records to a keyed run: the
    real writer's resume, keyed and not."""
    keyed = keyed_drill(project_keyed)
    records = rows(keyed)
    last = records[-1]
    copy = project_keyed / "ev" / "copy.jsonl"
    copy.write_bytes(keyed.read_bytes())
    for path, key in ((keyed, KEY.encode()), (copy, None)):
        with EvidenceWriter.resume(
            path, seq=last["seq"] + 1, prev_hash=last["hash"], key=key
        ) as writer:
            run = RunBuilder(writer, run_id=last["run_id"], workflow_id=last["workflow_id"])
            run.now = START + timedelta(days=1)
            run.event("recovery_started", owed=[], unknown=[], manual=[])
            run.event("recovery_finished", outcome="complete", owed=[])
            summary = {k: v for k, v in last.items() if k not in ("seq", "prev_hash", "hash")}
            writer.write(summary)
    ok = timeline_env(
        "--verify", "--require-key", "-q", str(keyed.relative_to(project_keyed)),
        cwd=project_keyed, **KEYED,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stdout  # resume with the chain's key: keyed throughout
    name = str(copy.relative_to(project_keyed))
    done = timeline_env("--verify", "--require-key", "-q", name, cwd=project_keyed, **KEYED)
    assert done.returncode == 1
    first = len(records) + 1
    assert (
        f"{name}:{first}: EV110 --require-key: sealed with plain SHA-256, not the key: the "
        "chain is keyed only in part (resealed or appended without the key) [key-required]"
    ) in done.stdout
    assert (
        f"{name}:{first + 1}: EV110 2 more records after line {first} are sealed with plain "
        f"SHA-256 too: lines {first + 1}, {first + 2} [key-required]"
    ) in done.stdout
    assert "EV101" not in done.stdout
    # without --require-key the key still finds them: as MAC failures
    keyed_only = timeline_env("--verify", "-q", name, cwd=project_keyed, **KEYED)
    assert keyed_only.returncode == 1
    assert f"{name}:{first}: EV101 " in keyed_only.stdout


KEYED = {"AGENTUNDO_EVIDENCE_KEY": KEY}


def test_a_run_copied_under_another_name_is_reported(tmp_path: Path) -> None:
    ev = tmp_path / "ev"
    original = clean_run(ev / "run_1a2b3c4d.jsonl", run_id="run_1a2b3c4d")
    assert timeline_env("--verify", "-q", "ev", cwd=tmp_path).returncode == 0
    copy = ev / "run_deadbeef.jsonl"
    copy.write_bytes(original.read_bytes())
    alone = timeline_env("--verify", "-q", "ev/run_deadbeef.jsonl", cwd=tmp_path)
    assert alone.returncode == 1
    assert (
        "ev/run_deadbeef.jsonl:1: EV301 the file is named for run 'run_deadbeef' but holds run "
        "'run_1a2b3c4d': a copy or a rename of another run's evidence [name-mismatch]"
    ) in alone.stdout
    both = timeline_env("--verify", "-q", "ev", cwd=tmp_path)
    assert both.returncode == 1
    lines = both.stdout.splitlines()
    assert [line for line in lines if "EV3" in line] == [
        "  ev/run_deadbeef.jsonl:1: EV301 the file is named for run 'run_deadbeef' but holds "
        "run 'run_1a2b3c4d': a copy or a rename of another run's evidence [name-mismatch]",
        "  ev/run_deadbeef.jsonl:1: EV302 run 'run_1a2b3c4d' is also in ev/run_1a2b3c4d.jsonl "
        "(line 1): a copy of its evidence, or two runs with one id [duplicate-run]",
        "  ev/run_1a2b3c4d.jsonl:1: EV302 run 'run_1a2b3c4d' is also in 1 more file: "
        "ev/run_deadbeef.jsonl [duplicate-run]",
    ]
    assert "✗ ev/run_1a2b3c4d.jsonl: 1 verification problem found across files" in both.stdout
    assert both.stderr == "agentundo timeline: 2 files checked, 2 of 2 failed verification\n"
    # a file named otherwise is not judged by its name
    copy.rename(ev / "backup.jsonl")
    alone = timeline_env("--verify", "-q", "ev/backup.jsonl", cwd=tmp_path)
    assert alone.returncode == 0


def test_one_run_id_in_two_files_fails_both(tmp_path: Path) -> None:
    clean_run(tmp_path / "ev" / "monday.jsonl", run_id="run-x")
    standard_run(tmp_path / "ev" / "tuesday.jsonl", run_id="run-x")
    for args in (("--verify", "-q"), ("-f", "json", "--verify"), ("--summary", "--verify")):
        done = timeline_env(*args, "ev", cwd=tmp_path)
        assert done.returncode == 1, args
        out = done.stdout + done.stderr
        assert "ev/tuesday.jsonl:1: EV302 run 'run-x' is also in ev/monday.jsonl (line 1)" in out
        assert (
            "ev/monday.jsonl:1: EV302 run 'run-x' is also in 1 more file: ev/tuesday.jsonl" in out
        )
        if "--summary" not in args:
            assert done.stderr.endswith("2 files checked, 2 of 2 failed verification\n")
    history = timeline_env("--summary", "--verify", "-f", "json", "ev", cwd=tmp_path)
    assert [r["verified"] for r in json.loads(history.stdout)["runs"]] == [False] * 2
    # the same file named twice is not a copy of itself
    twice = timeline_env("--verify", "-q", "ev/monday.jsonl", "ev/monday.jsonl", cwd=tmp_path)
    assert twice.returncode == 0


def test_ten_thousand_copies_of_a_run_are_each_reported(tmp_path: Path) -> None:
    ev = tmp_path / "ev"
    original = clean_run(ev / "run_00000000.jsonl", run_id="run_00000000")
    for index in range(1, 10_001):
        os.link(original, ev / f"run_{index:08x}.jsonl")  # copies by name; same bytes
    started = time.perf_counter()
    done = timeline_env("--verify", "-f", "json", "--event", "run_summary", "ev", cwd=tmp_path)
    elapsed = time.perf_counter() - started
    assert done.returncode == 1
    problems = done.stderr.splitlines()
    assert sum(" EV301 " in line for line in problems) == 10_000
    assert sum(" EV302 " in line for line in problems) == 10_001
    assert (
        "ev/run_00000000.jsonl:1: EV302 run 'run_00000000' is also in 10000 more files: "
        "ev/run_00000001.jsonl, ev/run_00000002.jsonl, ev/run_00000003.jsonl, "
        "ev/run_00000004.jsonl, ev/run_00000005.jsonl, ... (10000 in all) [duplicate-run]"
    ) in problems
    assert problems[-1] == (
        "agentundo timeline: 10001 files checked, 10001 of 10001 failed verification"
    )
    print(f"10,001 files verified in {elapsed:.1f}s")
    assert elapsed < 120  # about 6 s on one core; the check is per run, not per record


def test_a_keyed_chain_spliced_onto_another_runs_genesis_fails(tmp_path: Path) -> None:
    """A key holder (or a recovery misused) roots a run's chain at another run's genesis:
    the real writer, through resume; and a keyed chain from the legacy GENESIS."""
    key = KEY.encode()
    other = tmp_path / "ev" / "run_a.jsonl"
    with EvidenceWriter(other, key=key) as writer:
        RunBuilder(writer, run_id="run_a").event("run_started", env="staging")
    for root, name in ((rows(other)[0]["prev_hash"], "run_b.jsonl"), (GENESIS, "run_c.jsonl")):
        path = tmp_path / "ev" / name
        path.touch()
        with EvidenceWriter.resume(path, seq=0, prev_hash=root, key=key) as writer:
            run = RunBuilder(writer, run_id=name.removesuffix(".jsonl"), workflow_id="restock")
            run.event("run_started", env="staging", scenario="happy-path", seed=1)
            run.forward_ok("reserve", "inventory.reserve")
            run.summary(env="staging")
    spliced = timeline_env("--verify", "-q", "ev/run_b.jsonl", cwd=tmp_path, **KEYED)
    assert spliced.returncode == 1
    assert (
        "ev/run_b.jsonl:1: EV111 seq 0 does not chain to its run's genesis (of its run_id and "
        "ts): spliced from another run's chain, or its run_id or ts changed [wrong-genesis]"
    ) in spliced.stdout
    assert "EV101" not in spliced.stdout  # every MAC is right: only the root is wrong
    legacy = timeline_env("--verify", "-q", "ev/run_c.jsonl", cwd=tmp_path, **KEYED)
    assert legacy.returncode == 1
    assert "ev/run_c.jsonl:1: EV111 a keyed chain from the legacy GENESIS (64 zeros)" in (
        legacy.stdout
    )


def test_an_unkeyed_file_from_the_legacy_genesis_still_verifies(tmp_path: Path) -> None:
    path = tmp_path / "old.jsonl"
    path.touch()
    with EvidenceWriter.resume(path, seq=0, prev_hash=GENESIS, key=None) as writer:
        run = RunBuilder(writer, run_id="run-old", workflow_id="restock")
        run.event("run_started", env="staging")
        run.forward_ok("reserve", "inventory.reserve")
        run.summary(env="staging")
    assert rows(path)[0]["prev_hash"] == GENESIS
    done = timeline_env("--verify", "-q", "old.jsonl", cwd=tmp_path)
    assert done.returncode == 0, done.stdout
    assert done.stdout.startswith("✓ old.jsonl: verified (hash chain intact, run complete)")
    required = timeline_env("--verify", "--require-key", "-q", "old.jsonl", cwd=tmp_path, **KEYED)
    assert required.returncode == 1
    assert "old.jsonl:1: EV110 " in required.stdout


def test_follow_a_directory_tails_the_run_being_written(tmp_path: Path) -> None:
    import subprocess

    from tests.saga_helpers import CATALOG, POLICY, WORKFLOW, write

    evidence = tmp_path / "ev"
    evidence.mkdir()
    old = evidence / "run_done.jsonl"
    drill = [
        sys.executable, "-m", "agentundo", "drill", str(write(tmp_path, "wf.yaml", WORKFLOW)),
        "--catalog", str(write(tmp_path, "catalog.yaml", CATALOG)),
        "--policy", str(write(tmp_path, "policy.yaml", POLICY)), "--evidence", str(evidence),
        "--lock", "memory",
    ]  # fmt: skip
    subprocess.run([*drill, "--fail-at", "ship"], check=False, capture_output=True, timeout=60)
    finished = max(evidence.glob("run_*.jsonl"), key=lambda p: p.stat().st_mtime)
    finished.rename(old)  # a run that has ended is not followed
    proc = subprocess.Popen(
        [*drill, "--transient", "charge=2", "--clock", "real"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        done = invoke("timeline", str(evidence), "--follow", "--timeout", "30", "--format", "json")
    finally:
        proc.communicate(timeout=60)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert records[-1]["event"] == "run_summary"
    assert records[-1]["run_id"] != json.loads(old.read_text().splitlines()[-1])["run_id"]
    assert any(r["event"] == "retry_scheduled" for r in records)  # it was followed live
