"""Review fixes of `agentundo timeline`, as a user meets them: real drills, the command run\nin this process (tests/cli_runner.py).

A lone surrogate in a line, --follow on input that is not evidence (or never ends a line),
forged run summaries, lock trouble under --only-problems, and bytes the writer never writes
(a BOM, CRLF, blank lines) under --verify.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli_runner import CLEAN_ENV, Result, invoke
from tests.evidence_factory import reseal
from tests.saga_helpers import CATALOG, POLICY, WORKFLOW, write

ROOT = Path(__file__).resolve().parents[2]


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
    example = ROOT / "examples" / "ledger"
    spec = importlib.util.spec_from_file_location(
        "ledger_for_review", example / "ledger_service.py"
    )
    assert spec is not None and spec.loader is not None
    ledger_module = importlib.util.module_from_spec(spec)
    sys.modules["ledger_for_review"] = ledger_module
    spec.loader.exec_module(ledger_module)
    ledger = ledger_module.start()
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
