"""`agentundo drill` end to end: verdicts and exit codes, chained evidence, hostile input
(every mistake is exit 2 with a clear message, nothing crashes), real HTTP failures against
a server on 127.0.0.1, and ``--sweep --jobs N``.

The command runs in this process (tests/cli_runner.py); signals and ``--jobs`` worker
processes run a real ``python -m agentundo``.
"""

from __future__ import annotations

import gzip
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from agentundo.evidence.chain import genesis_of, record_hash
from agentundo.saga.sweep import PARALLEL_MIN_RUNS
from tests.cli_runner import Result, invoke
from tests.saga_helpers import CATALOG, DENY_EMAIL, POLICY, WORKFLOW, write


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return {
        "workflow": write(tmp_path, "wf.yaml", WORKFLOW),
        "catalog": write(tmp_path, "catalog.yaml", CATALOG),
        "policy": write(tmp_path, "policy.yaml", POLICY),
        "evidence": tmp_path / "evidence",
    }


def drill(files: dict[str, Path], *args: str) -> Result:
    return invoke(
        "drill",
        files["workflow"],
        "--catalog",
        files["catalog"],
        "--policy",
        files["policy"],
        "--evidence",
        files["evidence"],
        *args,
    )


def evidence(path: Path) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    prev = genesis_of(records[0])  # the run's own genesis
    for record in records:
        assert record["prev_hash"] == prev and record["hash"] == record_hash(record)
        prev = record["hash"]
    return records


def test_a_recovering_drill_exits_0_and_writes_chained_evidence(files: dict[str, Path]) -> None:
    done = drill(files, "--fail-at", "ship", "--transient", "charge=2", "--format", "json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["verdict"] == "recovered"
    assert [r["state"] for r in out["ledger"]] == ["read", "undone", "undone", "escalated", "none"]
    records = evidence(Path(out["evidence"]))
    assert records[-1]["event"] == "run_summary"
    assert records[-1]["run_id"] == out["summary"]["run_id"]
    assert [r["event"] for r in records].count("retry_scheduled") == 2


def test_the_text_summary_names_the_verdict_and_the_evidence(files: dict[str, Path]) -> None:
    done = drill(files, "--fail-at", "ship")
    assert done.returncode == 0, done.stderr
    assert "verdict: recovered" in done.stdout
    assert "irreversible  notify email.send: an email cannot be unsent" in done.stdout
    assert f"evidence: {files['evidence']}" in done.stdout


def test_an_effect_left_behind_fails_the_drill(files: dict[str, Path]) -> None:
    done = drill(files, "--partial", "ship", "--no-compensate-failed-step", "-f", "json")
    assert done.returncode == 1
    out = json.loads(done.stdout)
    assert out["summary"]["left_behind"] == ["ship"]
    assert out["verdict"] == "failed"


def test_bad_input_exits_2_with_a_position(files: dict[str, Path], tmp_path: Path) -> None:
    done = drill(files, "--fail-at", "nope")
    assert done.returncode == 2
    assert "names step 'nope'" in done.stderr
    assert drill(files, "--transient", "charge").returncode == 2
    scenario = write(
        tmp_path, "s.yaml", "version: v1\nscenario: s\nfaults:\n  - {type: fatal, step: zz}\n"
    )
    done = drill(files, "--scenario", str(scenario))
    assert done.returncode == 2
    assert f"{scenario}:4:" in done.stderr and "'zz'" in done.stderr
    assert not files["evidence"].exists()


def test_a_scenario_file_with_expectations(files: dict[str, Path], tmp_path: Path) -> None:
    good = write(
        tmp_path,
        "good.yaml",
        """
        version: v1
        scenario: weekly
        workflow: order
        faults:
          - {type: partial, step: ship}
          - {type: duplicate_delivery, step: charge}
        expect: {status: FAILED_FATAL, compensated: [reserve, charge, ship], manual: [notify]}
        """,
    )
    done = drill(files, "--scenario", str(good), "-f", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["summary"]["scenario"] == "weekly"
    bad = write(
        tmp_path,
        "bad.yaml",
        "version: v1\nscenario: w\nexpect: {manual: []}\nfaults: [{type: fatal, step: ship}]\n",
    )
    done = drill(files, "--scenario", str(bad), "-f", "json")
    assert done.returncode == 1
    assert json.loads(done.stdout)["problems"] == [
        "sent to manual follow-up but not expected: notify"
    ]


def sweep_text(path: Path) -> str:
    """A sweep run's evidence file (gzip-compressed JSON Lines), inflated."""
    assert path.name.endswith(".jsonl.gz"), path
    return gzip.decompress(path.read_bytes()).decode("utf-8")


def test_sweep_runs_once_per_step(files: dict[str, Path]) -> None:
    done = drill(files, "--sweep", "-f", "json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert [r["step_id"] for r in out["runs"]] == ["lookup", "reserve", "charge", "notify", "ship"]
    assert [r["compensated"] for r in out["runs"]] == [0, 0, 1, 2, 2]
    assert len(list(files["evidence"].glob("*.jsonl.gz"))) == 5
    text = drill(files, "--sweep")
    assert "5 runs, 0 failed" in text.stdout


@pytest.mark.parametrize(
    ("faults", "waits_for", "signals", "code"),
    [
        (["--transient", "charge=10"], "retry_scheduled", [signal.SIGTERM], 130),
        (["--transient", "charge=10"], "retry_scheduled", [signal.SIGHUP], 130),
        (["--fail-at", "ship", "--scenario", "comp-fails"], "compensation_retry_scheduled",
         [signal.SIGTERM], 0),
        (["--fail-at", "ship", "--scenario", "comp-fails"], "compensation_retry_scheduled",
         [signal.SIGTERM, signal.SIGTERM], 130),
    ],
    ids=["term-forward", "hup-forward", "term-rollback", "term-twice-rollback"],
)  # fmt: skip
def test_a_stop_ends_forward_work_the_rollback_still_runs_a_second_stop_halts(
    files: dict[str, Path],
    tmp_path: Path,
    faults: list[str],
    waits_for: str,
    signals: list[int],
    code: int,
) -> None:
    if "comp-fails" in faults:
        path = write(
            tmp_path,
            "comp.yaml",
            "version: v1\nscenario: c\nsettings: {backoff_initial: 100ms}\n"
            "faults: [{type: compensation_failure, step: charge, count: 5}]\n",
        )
        faults = [str(path) if f == "comp-fails" else f for f in faults]
    cmd = [
        sys.executable,
        "-m",
        "agentundo",
        "drill",
        str(files["workflow"]),
        "--catalog",
        str(files["catalog"]),
        "--policy",
        str(files["policy"]),
        "--evidence",
        str(files["evidence"]),
        "--clock",
        "real",
        *faults,
        "--format",
        "json",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # wait until the first retry is scheduled
        found = list(files["evidence"].glob("*.jsonl")) if files["evidence"].exists() else []
        if found and waits_for in found[0].read_text(encoding="utf-8"):
            break
        time.sleep(0.05)
    for number in signals:
        proc.send_signal(number)
        time.sleep(0.1)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert f"agentundo: drill {found[0].stem} started; evidence: {found[0]}" in err  # real clock
    records = evidence(found[0])
    names = [r["event"] for r in records]
    summary = json.loads(out)["summary"]
    assert names[-1] == "run_summary"
    released = [r for r in records if r["event"] == "lock_released"]
    assert [r["released"] for r in released] == [True]  # the rollback ran, and let go
    if code == 0:  # a stop during the rollback: it finished all the same
        assert "run_interrupted" not in names
        assert summary["verdict"] == "recovered"
        return
    assert records[names.index("run_interrupted")]["signal"] == signal.Signals(signals[0]).name
    assert (summary["status"], summary["verdict"]) == ("interrupted", "interrupted")
    if len(signals) == 1:  # forward work stopped, what landed was undone
        assert summary["owed"] == []
        assert summary["compensated"] == ["reserve"]
        assert "agentundo recover" not in err
    else:  # halted mid-rollback: what is owed is listed, with the command that finishes it
        assert summary["owed"] == ["charge", "reserve"]
        assert names[-3:] == ["lock_released", "rollback_finished", "run_summary"]
        assert "still owed: charge, reserve" in err
        assert f"agentundo recover {found[0]}" in err


EXAMPLE = Path(__file__).parents[2] / "examples" / "ledger"


def _run(
    workflow: Path, catalog: Path, policy: Path, *extra: str, env: dict[str, str] | None = None
) -> Result:
    return invoke(
        "drill",
        workflow,
        "--catalog",
        catalog,
        "--policy",
        policy,
        *extra,
        cwd=workflow.parent,
        env=env,
    )


def drill_input(
    tmp_path: Path,
    *extra: str,
    catalog: str = CATALOG,
    policy: str = POLICY,
    scenario: str | None = None,
    env: dict[str, str] | None = None,
) -> Result:
    """The order workflow of ``tests.saga_helpers``, evidence in ``tmp_path/evidence``."""
    args = ["--evidence", str(tmp_path / "evidence"), *extra]
    if scenario is not None:
        args += ["--scenario", str(write(tmp_path, "s.yaml", scenario))]
    return _run(
        write(tmp_path, "wf.yaml", WORKFLOW),
        write(tmp_path, "catalog.yaml", catalog),
        write(tmp_path, "policy.yaml", policy),
        *args,
        env=env,
    )


def ledger_drill(tmp_path: Path, url: str, *extra: str, scenario: str | None = None) -> Result:
    """The ledger example with ``--executor http`` against ``url``."""
    args = ["--executor", "http", "--evidence", str(tmp_path / "evidence"), *extra]
    if scenario is not None:
        args += ["--scenario", str(write(tmp_path, "s.yaml", scenario))]
    return _run(
        EXAMPLE / "workflow.yaml",
        EXAMPLE / "catalog.yaml",
        EXAMPLE / "policy.yaml",
        *args,
        env={"LEDGER_URL": url, "LEDGER_TOKEN": "t0ken"},
    )


def assert_usage(done: Result, message: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def summary(done: Result) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(done.stdout)
    return out


# -- 1. durations --------------------------------------------------------------------


def test_a_huge_scenario_duration_is_refused_at_its_position(tmp_path: Path) -> None:
    scenario = """
    version: v1
    scenario: huge
    settings:
      backoff_max: 99999999999999999999h
      approval_timeout: 169h
      deadline: 0s
    faults:
      - {type: transient, step: charge, count: 3}
    """
    done = drill_input(tmp_path, scenario=scenario)
    path = tmp_path / "s.yaml"
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.splitlines() == [
        f"{path}:4:16: error: settings.backoff_max 99999999999999999999h is too long: "
        "at most 168h (7 days)",
        f"{path}:5:21: error: settings.approval_timeout 169h is too long: at most 168h (7 days)",
        f"{path}:6:13: error: settings.deadline must be longer than 0s",
    ]
    assert not (tmp_path / "evidence").exists()


def test_a_huge_catalog_timeout_is_refused_at_its_position(tmp_path: Path) -> None:
    catalog = CATALOG.replace(
        "      topic: payments.refund\n",
        "      topic: payments.refund\n      timeout: 100000000h\n",
    )
    done = drill_input(tmp_path, catalog=catalog)
    assert done.returncode == 2, done.stdout + done.stderr
    assert (
        f"{tmp_path / 'catalog.yaml'}:16:16: error: compensation.timeout 100000000h of topic "
        "'payments.charge' is too long: at most 168h (7 days)"
    ) in done.stderr


def test_a_week_long_backoff_still_finishes_with_a_summary(tmp_path: Path) -> None:
    scenario = """
    version: v1
    scenario: slow
    settings: {backoff_initial: 168h, backoff_max: 168h, approval_timeout: 168h}
    faults: [{type: transient, step: charge, count: 40}]
    """
    done = drill_input(tmp_path, "-f", "json", scenario=scenario)
    assert done.returncode == 0, done.stderr
    out = summary(done)
    assert out["summary"]["status"] == "SUCCEEDED"
    records = Path(out["evidence"]).read_text(encoding="utf-8").splitlines()
    assert json.loads(records[-1])["event"] == "run_summary"


# -- 2. malformed URLs from the environment ------------------------------------------


def test_a_malformed_url_from_the_environment_is_a_usage_error(tmp_path: Path) -> None:
    done = ledger_drill(tmp_path, "http://ops:hunter2@[::1")
    assert_usage(
        done,
        "agentundo: error: topic 'payments.charge': url "
        "'${LEDGER_URL:-http://127.0.0.1:8787}/charges' (it resolved to "
        "'http://***@[::1/charges') is malformed: Invalid IPv6 URL",
    )
    assert "hunter2" not in done.stderr + done.stdout
    assert not (tmp_path / "evidence").exists()


def test_a_port_out_of_range_is_a_usage_error(tmp_path: Path) -> None:
    done = ledger_drill(tmp_path, "http://127.0.0.1:99999")
    assert_usage(done, "(it resolved to 'http://127.0.0.1:99999/charges') is malformed: Port")


# -- 3. an unreachable endpoint ------------------------------------------------------


def test_an_unreachable_endpoint_fails_the_drill_within_its_deadline(tmp_path: Path) -> None:
    scenario = """
    version: v1
    scenario: dead-endpoint
    settings: {backoff_initial: 50ms, backoff_max: 200ms, rollback_window: 1s}
    """
    url = f"http://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    done = ledger_drill(tmp_path, url, "--deadline", "1s", "-f", "json", scenario=scenario)
    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stdout + done.stderr
    assert elapsed < 30
    out = summary(done)
    assert out["verdict"] == "failed"
    assert out["summary"]["steps_succeeded"] == 0
    problem = out["problems"][0]
    assert problem.startswith("step 'charge_a': its endpoint was unreachable or kept failing")
    assert "cannot connect: " in problem and f"(POST {url}/charges)" in problem
    assert "would start after the drill deadline of 1s" in problem
    assert "did not rehearse its scenario" in problem
    records = [json.loads(line) for line in Path(out["evidence"]).read_text().splitlines()]
    assert records[-1]["event"] == "run_summary"
    assert records[-1]["verdict"] == "failed"
    assert records[0]["settings"]["deadline_s"] == "1.0"


def test_an_unreachable_endpoint_is_named_in_the_text_report(tmp_path: Path) -> None:
    scenario = """
    version: v1
    scenario: dead-endpoint
    settings: {max_retries: 2, backoff_initial: 10ms, backoff_max: 20ms, rollback_window: 1s}
    """
    done = ledger_drill(tmp_path, f"http://127.0.0.1:{closed_port()}", scenario=scenario)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "problem step 'charge_a': its endpoint was unreachable" in done.stdout
    assert "gave up after 2 retries" in done.stdout
    assert "verdict: failed" in done.stdout


def test_a_bad_deadline_flag_is_a_usage_error(tmp_path: Path) -> None:
    assert_usage(drill_input(tmp_path, "--deadline", "soon"), "--deadline expects a duration")
    assert_usage(drill_input(tmp_path, "--deadline", "200h"), "--deadline 200h is longer than 168h")
    assert_usage(drill_input(tmp_path, "--deadline", "0s"), "--deadline must be longer than 0s")


# -- 4. contradictory faults ---------------------------------------------------------


def test_partial_and_fail_at_on_one_step_is_a_usage_error(tmp_path: Path) -> None:
    done = drill_input(tmp_path, "--partial", "ship", "--fail-at", "ship")
    assert_usage(
        done,
        "agentundo: error: --partial ship contradicts --fail-at ship: a fatal fault fails "
        "the step before its effect lands, a partial one after",
    )
    assert not (tmp_path / "evidence").exists()


def test_sweep_with_single_run_faults_is_a_usage_error(tmp_path: Path) -> None:
    assert_usage(
        drill_input(tmp_path, "--sweep", "--fail-at", "ship"),
        "--sweep fails each step in turn, so it cannot be combined with --fail-at",
    )
    assert_usage(
        drill_input(tmp_path, "--sweep", "--partial", "ship"),
        "--sweep fails each step in turn, so it cannot be combined with --partial",
    )


def test_contradictory_faults_in_a_scenario_are_positioned(tmp_path: Path) -> None:
    scenario = """
    version: v1
    scenario: contradictory
    faults:
      - {type: fatal, step: ship}
      - {type: partial, step: ship}
      - {type: transient, step: charge, count: 2}
      - {type: transient, step: charge, count: 5}
      - {type: compensation_denied, step: charge}
      - {type: compensation_failure, step: charge}
      - {type: lock_held}
      - {type: lock_expires, after: 1}
    """
    done = drill_input(tmp_path, scenario=scenario)
    path = tmp_path / "s.yaml"
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.splitlines() == [
        f"{path}:5:5: error: this partial fault contradicts the fatal fault at line 4: "
        "a fatal fault fails the step before its effect lands, a partial one after",
        f"{path}:7:5: error: this transient fault contradicts the transient fault at line 6: "
        "the same fault is given twice with different settings; only one can apply",
        f"{path}:9:5: error: this compensation_failure fault contradicts the "
        "compensation_denied fault at line 8: the policy gate denies the compensation, so it "
        "is never dispatched and cannot fail",
        f"{path}:11:5: error: this lock_expires fault contradicts the lock_held fault at "
        "line 10: another runner holds the lock, so this rollback never takes it and it "
        "cannot expire under it",
    ]


def test_faults_that_cannot_take_effect_are_positioned(tmp_path: Path) -> None:
    scenario = """
    version: v1
    scenario: unrehearsable
    settings: {max_retries: 3, derive_compensation_keys: false}
    faults:
      - {type: fatal, step: ship}
      - {type: duplicate_delivery, step: notify}
      - {type: compensation_denied, step: lookup}
      - {type: key_reuse, step: reserve}
      - {type: partial, step: charge}
      - {type: transient, step: charge, count: 4}
      - {type: compensation_failure, step: ship}
      - {type: duplicate_delivery, step: ship}
    """
    done = drill_input(tmp_path, scenario=scenario)
    path = tmp_path / "s.yaml"
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.splitlines() == [
        f"{path}:12:5: error: this duplicate_delivery fault contradicts the "
        "compensation_failure fault at line 11: the compensation fails for good "
        "(compensation_failure without count) before it is delivered, so duplicate_delivery "
        "never takes effect",
        f"{path}:6:5: error: a duplicate_delivery fault needs a compensation to act on, and "
        "step 'notify' has none (its topic is read-only, irreversible or declares no "
        "compensation)",
        f"{path}:7:5: error: a compensation_denied fault needs a compensation to act on, and "
        "step 'lookup' has none (its topic is read-only, irreversible or declares no "
        "compensation)",
        f"{path}:8:5: error: a key_reuse fault needs an idempotency key on the compensation "
        "of step 'reserve', and it has none (no template, and keys are not derived)",
        f"{path}:10:5: error: 4 transient failures outlast the 3 retries, so the step fails "
        "before the fatal or partial fault at 'charge' is reached",
    ]


def test_key_reuse_cannot_be_injected_into_real_endpoints(tmp_path: Path) -> None:
    scenario = "version: v1\nscenario: s\nfaults:\n  - {type: key_reuse, step: charge_b}\n"
    done = _run(
        EXAMPLE / "workflow.yaml",
        EXAMPLE / "catalog.yaml",
        EXAMPLE / "policy.yaml",
        "--scenario",
        str(write(tmp_path, "s.yaml", scenario)),
        "--executor",
        "http",
        "--evidence",
        str(tmp_path / "evidence"),
        env={"LEDGER_URL": "http://127.0.0.1:9", "LEDGER_TOKEN": "t"},
    )
    assert done.returncode == 2
    assert done.stderr == (
        f"{tmp_path / 's.yaml'}:4:5: error: a key_reuse fault plants a conflicting payload "
        "in the simulated ledger; with --executor http it cannot be injected\n"
    )


def test_a_flag_that_contradicts_the_scenario_is_a_usage_error(tmp_path: Path) -> None:
    scenario = "version: v1\nscenario: s\nfaults:\n  - {type: partial, step: ship}\n"
    done = drill_input(tmp_path, "--fail-at", "ship", scenario=scenario)
    assert_usage(
        done,
        f"agentundo: error: --fail-at ship contradicts the scenario's partial fault "
        f"({tmp_path / 's.yaml'}:4:5)",
    )


def test_identical_repeated_faults_are_harmless(tmp_path: Path) -> None:
    done = drill_input(tmp_path, "--fail-at", "ship", "--fail-at", "ship", "-f", "json")
    assert done.returncode == 0, done.stderr
    assert summary(done)["summary"]["step_id"] == "ship"


# -- 5. --evidence naming a file -----------------------------------------------------


def test_an_empty_evidence_directory_is_a_usage_error(tmp_path: Path) -> None:
    done = drill_input(tmp_path, "--evidence", "")
    assert_usage(done, "agentundo: error: --evidence needs a directory, not an empty string")
    assert not (tmp_path / "agentundo-evidence").exists()


def test_evidence_naming_an_existing_file_is_not_a_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "evidence"
    blocker.write_text("a file", encoding="utf-8")
    done = drill_input(tmp_path)
    assert_usage(
        done,
        f"agentundo: error: cannot write evidence to {blocker}: it is a file, not a directory",
    )
    assert "exists" not in done.stderr
    assert blocker.read_text(encoding="utf-8") == "a file"


# -- 6. sweep runs that never reach their step ---------------------------------------


def test_sweep_rows_never_reached_are_flagged_and_fail_the_sweep(tmp_path: Path) -> None:
    done = drill_input(tmp_path, "--sweep", "-f", "json", policy=DENY_EMAIL)
    assert done.returncode == 1, done.stderr
    out = summary(done)
    runs = out["runs"]
    assert [r["verdict"] for r in runs] == [
        "recovered",
        "recovered",
        "recovered",
        "not_reached",
        "not_reached",
    ]
    assert [r["reached"] for r in runs] == [True, True, True, False, False]
    assert [r["stopped_at"] for r in runs] == ["lookup", "reserve", "charge", "notify", "notify"]
    assert (out["failed"], out["not_reached"]) == (0, 2)
    recorded = [json.loads(sweep_text(Path(r["evidence"])).splitlines()[-1]) for r in runs]
    assert [r["verdict"] for r in recorded] == ["recovered"] * 3 + ["failed"] * 2
    assert recorded[4]["problems"] == [
        "fatal fault at 'ship' was never reached (the run stopped at 'notify'): the drill "
        "did not rehearse it"
    ]
    text = drill_input(tmp_path, "--sweep", policy=DENY_EMAIL, env={"COLUMNS": "160"})
    assert text.returncode == 1
    assert "5 runs, 0 failed, 2 not reached: incomplete" in text.stdout
    assert "not reached" in text.stdout and "stopped at 'notify' first" in text.stdout


# -- 7. input validation -------------------------------------------------------------


def test_expectations_naming_unknown_steps_are_positioned(tmp_path: Path) -> None:
    scenario = "version: v1\nscenario: s\nexpect:\n  compensated: [reserve, chrage]\n"
    done = drill_input(tmp_path, scenario=scenario)
    assert done.returncode == 2, done.stdout + done.stderr
    assert (
        f"{tmp_path / 's.yaml'}:4:26: error: expect.compensated names step 'chrage', which is "
        "not in workflow 'order' (hint: did you mean 'charge'?)"
    ) in done.stderr


def test_a_lock_fault_naming_a_step_is_positioned(tmp_path: Path) -> None:
    scenario = "version: v1\nscenario: s\nfaults:\n  - {type: lock_held, step: charge}\n"
    done = drill_input(tmp_path, scenario=scenario)
    assert done.returncode == 2, done.stdout + done.stderr
    assert (
        f"{tmp_path / 's.yaml'}:4:29: error: a lock_held fault is about the workflow's "
        "rollback lock, not a step; remove 'step: charge'"
    ) in done.stderr


def test_negative_seeds_and_empty_step_ids_are_usage_errors(tmp_path: Path) -> None:
    assert_usage(drill_input(tmp_path, "--seed", "-5"), "--seed must be 0 or more, not -5")
    assert_usage(drill_input(tmp_path, "--fail-at", ""), "--fail-at expects a step id, got ''")
    assert_usage(drill_input(tmp_path, "--partial", " "), "--partial expects a step id, got ' '")
    assert_usage(
        drill_input(tmp_path, "--approve", ""),
        "--approve names step '', which is not in the workflow",
    )
    done = drill_input(tmp_path, scenario="version: v1\nscenario: s\nseed: -1\n")
    assert done.returncode == 2
    assert f"{tmp_path / 's.yaml'}:3:7: error:" in done.stderr


def drill_refused(tmp_path: Path, workflow: str, policy: str, *extra: str) -> Result:
    return invoke(
        "drill",
        write(tmp_path, "wf.yaml", workflow),
        "--catalog",
        write(tmp_path, "catalog.yaml", CATALOG),
        "--policy",
        write(tmp_path, "policy.yaml", policy),
        *extra,
        cwd=tmp_path,
    )


def test_a_step_with_an_unknown_topic_is_an_input_error(tmp_path: Path) -> None:
    workflow = WORKFLOW.replace("topic: payments.charge", "topic: payments.charg")
    done = drill_refused(tmp_path, workflow, POLICY)
    assert done.returncode == 2
    assert (
        f"{tmp_path / 'wf.yaml'}:7:25: error: step 'charge' uses topic 'payments.charg', "
        "which is not in the catalog (hint: did you mean 'payments.charge'?)"
    ) in done.stderr
    assert not (tmp_path / "agentundo-evidence").exists()


def test_an_unwritable_evidence_directory_is_a_usage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    done = drill_refused(tmp_path, WORKFLOW, POLICY, "--evidence", str(blocker / "evidence"))
    assert done.returncode == 2
    assert "agentundo: error: cannot write evidence to" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_control_plane_policy_gates_the_drill(tmp_path: Path) -> None:
    foreign = """
default_decision: permit
rules:
  - id: no-charges
    match: {topics: ["payments.charge"]}
    decision: block
"""
    done = drill_refused(tmp_path, WORKFLOW, foreign, "--format", "json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)["summary"]
    assert summary["status"] == "DENIED"
    assert summary["matched_policy_id"] == "no-charges"


# -- a small HTTP service: /charge/<step> answers what the test says, /refund/<step> 200


@dataclass
class Service:
    url: str = ""
    answers: dict[str, int] = field(default_factory=dict)  # step -> status of its charge
    calls: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    charged: set[str] = field(default_factory=set)  # steps charged and not refunded


def _handler(service: Service) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            service.calls.append(("POST", self.path))
            kind, _, step = self.path.strip("/").partition("/")
            status = service.answers.get(step, 200) if kind == "charge" else 200
            if status >= 300:
                body = json.dumps({"error": "no"})
            elif kind == "charge":
                service.charged.add(step)
                body = json.dumps({"applied": True})
            else:  # a refund undoes a charge that landed, and only that
                body = json.dumps({"applied": step in service.charged})
                service.charged.discard(step)
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", f"{service.url}/elsewhere/{step}")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, format: str, *args: Any) -> None:
            del format, args

    return Handler


@pytest.fixture
def service() -> Iterator[Service]:
    state = Service()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


HTTP_WORKFLOW = """
version: v1
workflow: pay
env: staging
steps:
  - {id: s1, topic: pay.charge}
  - {id: s2, topic: pay.charge}
  - {id: s3, topic: pay.charge}
"""

HTTP_CATALOG = """
version: v1
environment: [{name: SERVICE_URL, secret: false}]
topics:
  pay.charge:
    side_effect: true
    rollback: compensatable
    idempotency_key: "{run_id}:{step_id}:charge"
    http:
      method: POST
      url: "${SERVICE_URL}/charge/{step_id}"
      body: {step: "{step_id}"}
      timeout: 5s
    compensation:
      topic: pay.refund
      idempotency_key: "{run_id}:{step_id}:refund"
      http:
        method: POST
        url: "${SERVICE_URL}/refund/{step_id}"
        body: {step: "{step_id}"}
        timeout: 5s
  pay.refund:
    side_effect: true
    rollback: irreversible
"""

HTTP_POLICY = """
version: v1
default_decision: allow
rules: []
"""


def _run_verdict(
    tmp_path: Path, *extra: str, env: dict[str, str] | None = None, **files: str
) -> Any:
    """``agentundo drill`` on the files given (workflow, catalog, policy, scenario)."""
    args = [
        "drill",
        str(write(tmp_path, "wf.yaml", files.get("workflow", WORKFLOW))),
        "--catalog",
        str(write(tmp_path, "catalog.yaml", files.get("catalog", CATALOG))),
        "--policy",
        str(write(tmp_path, "policy.yaml", files.get("policy", POLICY))),
        "--evidence",
        str(tmp_path / "evidence"),
        *extra,
    ]
    if "scenario" in files:
        args += ["--scenario", str(write(tmp_path, "s.yaml", files["scenario"]))]
    return invoke(*args, cwd=tmp_path, env=env)


def _json(done: Any) -> dict[str, Any]:
    out = json.loads(done.stdout)
    assert isinstance(out, dict)
    return out


def _evidence_summary(tmp_path: Path) -> dict[str, Any]:
    (path,) = (tmp_path / "evidence").glob("*.jsonl")
    records = [json.loads(line) for line in path.read_text().splitlines()]
    (summary,) = [r for r in records if r["event"] == "run_summary"]
    assert isinstance(summary, dict)
    return summary


def _http_drill(tmp_path: Path, service: Service, *extra: str) -> Any:
    return _run_verdict(
        tmp_path,
        "--executor",
        "http",
        "--clock",
        "virtual",
        "--format",
        "json",
        *extra,
        env={"SERVICE_URL": service.url},
        workflow=HTTP_WORKFLOW,
        catalog=HTTP_CATALOG,
        policy=HTTP_POLICY,
    )


# -- 1. real forward failures with --executor http ------------------------------------


@pytest.mark.parametrize("status", [401, 403, 404, 302, 307])
def test_a_real_non_transient_failure_fails_the_drill(
    tmp_path: Path, service: Service, status: int
) -> None:
    service.answers["s2"] = status
    done = _http_drill(tmp_path, service)
    assert done.returncode == 1, done.stdout + done.stderr
    out = _json(done)
    assert out["summary"]["status"] == "FAILED_FATAL"
    assert out["verdict"] == "failed"
    assert out["exit_code"] == 1
    (problem,) = out["problems"]
    assert problem.startswith("step 's2': it failed for real (")
    assert f"HTTP {status} from POST {service.url}/charge/s2" in problem
    assert "did not rehearse" in problem
    # the rollback still ran, and the evidence says the same as the report
    assert ("POST", "/refund/s1") in service.calls
    summary = _evidence_summary(tmp_path)
    assert summary["verdict"] == "failed"
    assert summary["problems"] == out["problems"]
    # a redirect is not followed: it is an answer, not the charge
    assert not any(path.startswith("/elsewhere") for _method, path in service.calls)


def test_a_real_failure_is_shown_in_the_text_report(tmp_path: Path, service: Service) -> None:
    service.answers["s1"] = 401
    done = _run_verdict(
        tmp_path,
        "--executor",
        "http",
        "--clock",
        "virtual",
        env={"SERVICE_URL": service.url, "COLUMNS": "200"},
        workflow=HTTP_WORKFLOW,
        catalog=HTTP_CATALOG,
        policy=HTTP_POLICY,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "step 's1': it failed for real (HTTP 401" in done.stdout
    assert "recovered" not in done.stdout.split("problem")[-1]


def test_a_real_failure_after_injected_transient_ones_fails_the_drill(
    tmp_path: Path, service: Service
) -> None:
    service.answers["s2"] = 403
    done = _http_drill(tmp_path, service, "--transient", "s2=2")
    assert done.returncode == 1, done.stdout + done.stderr
    out = _json(done)
    assert out["verdict"] == "failed"
    assert any("step 's2': it failed for real (HTTP 403" in p for p in out["problems"])


def test_an_injected_failure_against_real_endpoints_still_recovers(
    tmp_path: Path, service: Service
) -> None:
    done = _http_drill(tmp_path, service, "--fail-at", "s3", "--no-compensate-failed-step")
    assert done.returncode == 0, done.stdout + done.stderr
    out = _json(done)
    assert (out["summary"]["status"], out["verdict"], out["problems"]) == (
        "FAILED_FATAL",
        "recovered",
        [],
    )
    assert ("POST", "/refund/s2") in service.calls
    assert ("POST", "/refund/s1") in service.calls


def test_a_real_failure_at_the_step_a_fault_targets_is_still_real(
    tmp_path: Path, service: Service
) -> None:
    """``--fail-at s3`` is never injected when s2 fails for real first: both are named."""
    service.answers["s2"] = 401
    done = _http_drill(tmp_path, service, "--fail-at", "s3")
    assert done.returncode == 1, done.stdout + done.stderr
    problems = _json(done)["problems"]
    assert problems[0].startswith("step 's2': it failed for real (HTTP 401")
    assert problems[1] == (
        "fatal fault at 's3' was never reached (the run stopped at 's2'): "
        "the drill did not rehearse it"
    )


# -- 2. injected faults that are never reached ----------------------------------------

"""Denies ``notify`` (step 4 of 5), so ``ship`` (step 5) is never dispatched."""


def _denied_drill(tmp_path: Path, *extra: str, scenario: str | None = None) -> Any:
    files = {"policy": DENY_EMAIL}
    if scenario is not None:
        files["scenario"] = scenario
    return _run_verdict(tmp_path, "--format", "json", *extra, **files)


@pytest.mark.parametrize(
    ("flags", "fault"),
    [
        (("--fail-at", "ship"), "fatal"),
        (("--partial", "ship"), "partial"),
        (("--transient", "ship=2"), "transient"),
    ],
)
def test_a_flag_fault_never_reached_fails_the_drill(
    tmp_path: Path, flags: tuple[str, str], fault: str
) -> None:
    done = _denied_drill(tmp_path, *flags)
    assert done.returncode == 1, done.stdout + done.stderr
    out = _json(done)
    assert (out["summary"]["status"], out["verdict"]) == ("DENIED", "failed")
    assert out["problems"] == [
        f"{fault} fault at 'ship' was never reached (the run stopped at 'notify'): "
        "the drill did not rehearse it"
    ]
    assert _evidence_summary(tmp_path)["problems"] == out["problems"]


def test_without_the_unreached_fault_the_same_run_recovers(tmp_path: Path) -> None:
    done = _denied_drill(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (_json(done)["verdict"], _json(done)["problems"]) == ("recovered", [])


@pytest.mark.parametrize(
    "fault",
    [
        "{type: fatal, step: ship}",
        "{type: compensation_failure, step: ship, count: 1}",
        "{type: compensation_denied, step: ship}",
        "{type: duplicate_delivery, step: ship}",
        "{type: policy_unavailable, step: ship, phase: forward}",
    ],
)
def test_a_scenario_fault_never_reached_fails_the_drill(tmp_path: Path, fault: str) -> None:
    scenario = f"version: v1\nkind: scenario\nscenario: late\nfaults:\n  - {fault}\n"
    done = _denied_drill(tmp_path, scenario=scenario)
    assert done.returncode == 1, done.stdout + done.stderr
    (problem,) = _json(done)["problems"]
    kind = fault.split(",")[0].split(": ")[1]
    assert problem == (
        f"{kind} fault at 'ship' was never reached (the run stopped at 'notify'): "
        "the drill did not rehearse it"
    )


def test_a_fault_at_the_denied_step_itself_was_never_injected(tmp_path: Path) -> None:
    done = _denied_drill(tmp_path, "--fail-at", "notify")
    assert done.returncode == 1, done.stdout + done.stderr
    assert _json(done)["problems"] == [
        "fatal fault at 'notify' was never reached (the step was denied before it was "
        "dispatched): the drill did not rehearse it"
    ]


def test_the_text_report_names_the_unreached_fault(tmp_path: Path) -> None:
    done = _run_verdict(tmp_path, "--fail-at", "ship", policy=DENY_EMAIL, env={"COLUMNS": "200"})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "fatal fault at 'ship' was never reached (the run stopped at 'notify')" in done.stdout


def test_faults_on_steps_that_ran_are_reached(tmp_path: Path) -> None:
    """Compensation faults on dispatched steps count as reached; the rollback reached them."""
    scenario = """
    version: v1
    kind: scenario
    scenario: early
    faults:
      - {type: compensation_failure, step: charge, count: 1}
      - {type: transient, step: reserve, count: 2}
      - {type: policy_unavailable, step: notify, phase: forward}
    """
    done = _run_verdict(tmp_path, "--format", "json", policy=DENY_EMAIL, scenario=scenario)
    assert done.returncode == 0, done.stdout + done.stderr
    out = _json(done)
    assert (out["verdict"], out["problems"]) == ("recovered", [])


def test_a_compensation_fault_on_a_step_that_ran_without_a_rollback_is_not_a_failure(
    tmp_path: Path,
) -> None:
    """The step ran; the run succeeded, so no compensation was due: documented as legitimate."""
    scenario = """
    version: v1
    kind: scenario
    scenario: no-rollback
    faults:
      - {type: compensation_failure, step: charge}
    """
    done = _run_verdict(tmp_path, "--format", "json", scenario=scenario)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _json(done)["verdict"] == "completed"


def test_the_sweep_still_marks_unreached_runs_not_reached(tmp_path: Path) -> None:
    scenario = """
    version: v1
    kind: scenario
    scenario: sweep
    faults:
      - {type: transient, step: ship, count: 1}
    """
    done = _run_verdict(
        tmp_path, "--sweep", "--format", "json", policy=DENY_EMAIL, scenario=scenario
    )
    assert done.returncode == 1, done.stdout + done.stderr
    runs = _json(done)["runs"]
    assert [r["verdict"] for r in runs] == [
        "recovered",
        "recovered",
        "recovered",
        "not_reached",
        "not_reached",
    ]


TOPICS = ("orders.lookup", "inventory.reserve", "payments.charge", "email.send")
STEPS = PARALLEL_MIN_RUNS + 8  # enough runs to go parallel


def _workflow(steps: int) -> str:
    lines = ["version: v1", "workflow: order", "env: production", "steps:"]
    for i in range(steps):
        params = f"{{sku: A{i}}}" if TOPICS[i % 4] == "inventory.reserve" else "{}"
        lines.append(f"  - {{id: s{i}, topic: {TOPICS[i % 4]}, params: {params}}}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def files_jobs(tmp_path: Path) -> dict[str, Path]:
    return {
        "workflow": write(tmp_path, "wf.yaml", _workflow(STEPS)),
        "catalog": write(tmp_path, "catalog.yaml", CATALOG),
        "policy": write(tmp_path, "policy.yaml", POLICY),
    }


def _command(files_jobs: dict[str, Path], evidence: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "agentundo",
        "drill",
        str(files_jobs["workflow"]),
        "--catalog",
        str(files_jobs["catalog"]),
        "--policy",
        str(files_jobs["policy"]),
        "--evidence",
        str(evidence),
        "--sweep",
        *args,
    ]


def _sweep(files_jobs: dict[str, Path], evidence: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        _command(files_jobs, evidence, "--format", "json", *args),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def _verified(path: Path) -> list[dict[str, Any]]:
    """The records of one evidence file, each checked against the hash chain."""
    text = sweep_text(path)
    assert text.endswith("\n"), f"{path} ends in a partial line"
    records = [json.loads(line) for line in text.splitlines()]
    prev = genesis_of(records[0])  # the run's own genesis
    for seq, record in enumerate(records):
        assert record["seq"] == seq
        assert record["prev_hash"] == prev
        assert record["hash"] == record_hash(record), f"{path}: record {seq} does not verify"
        prev = record["hash"]
    return records


def _without_run_ids(out: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows, with each run id reduced to its per-step suffix and paths to file names."""
    bases = {r["run_id"].rsplit("-", 1)[0] for r in out["runs"]}
    assert len(bases) == 1, "one sweep, one run-id base"
    rows = []
    for row in out["runs"]:
        suffix = row["run_id"].rsplit("-", 1)[1]
        assert suffix == f"{row['index'] + 1:03d}"
        assert Path(row["evidence"]).name == f"{row['run_id']}.jsonl.gz"
        rows.append({**row, "run_id": suffix, "evidence": suffix})
    return rows


def test_a_parallel_sweep_gives_the_rows_of_a_sequential_one(
    files_jobs: dict[str, Path], tmp_path: Path
) -> None:
    one = _sweep(files_jobs, tmp_path / "one", "--jobs", "1", "--seed", "7")
    many = _sweep(files_jobs, tmp_path / "many", "--jobs", "2", "--seed", "7")
    assert [r["index"] for r in many["runs"]] == list(range(STEPS))
    assert _without_run_ids(many) == _without_run_ids(one)
    assert {k: v for k, v in many.items() if k not in ("runs", "evidence")} == {
        k: v for k, v in one.items() if k not in ("runs", "evidence")
    }


def test_every_evidence_file_of_a_parallel_sweep_verifies(
    files_jobs: dict[str, Path], tmp_path: Path
) -> None:
    out = _sweep(files_jobs, tmp_path / "ev", "--jobs", "2")
    paths = sorted((tmp_path / "ev").glob("*.jsonl.gz"))
    assert len(paths) == STEPS
    assert sorted(r["evidence"] for r in out["runs"]) == [str(p) for p in paths]
    for row in out["runs"]:
        records = _verified(Path(row["evidence"]))
        assert records[0]["event"] == "run_started"
        assert records[-1]["event"] == "run_summary"
        assert {r["run_id"] for r in records} == {row["run_id"]}
        assert records[-1]["status"] == row["status"] == "FAILED_FATAL"
        assert records[-1]["verdict"] == row["verdict"]


def test_sigterm_stops_a_parallel_sweep_cleanly(
    files_jobs: dict[str, Path], tmp_path: Path
) -> None:
    evidence = tmp_path / "stop"
    # every run retries s0 with real backoff first: SIGTERM lands while runs are under way
    cmd = _command(
        files_jobs, evidence, "--jobs", "2", "--clock", "real", "--transient", "s0=10", "-f", "json"
    )
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # a sweep run's evidence is written when it ends: the directory shows the sweep began,
    # and each run's ten retries with real backoff take far longer than the wait after it
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not evidence.exists():
        time.sleep(0.05)
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    rows = json.loads(out)["runs"]
    assert rows, "the runs under way are reported"
    assert len(rows) < STEPS, "runs not started are not started"
    assert [r["index"] for r in rows] == sorted(r["index"] for r in rows)
    assert all(r["status"] == "interrupted" for r in rows)
    paths = list(evidence.glob("*.jsonl.gz"))
    assert sorted(str(p) for p in paths) == sorted(r["evidence"] for r in rows)
    for path in paths:
        records = _verified(path)
        names = [r["event"] for r in records]
        assert records[names.index("run_interrupted")]["signal"] == "SIGTERM"
        assert names[-1] == "run_summary" and records[-1]["status"] == "interrupted"


def test_jobs_must_be_positive(files_jobs: dict[str, Path], tmp_path: Path) -> None:
    done = subprocess.run(
        _command(files_jobs, tmp_path / "ev", "--jobs", "0"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--jobs must be at least 1" in done.stderr


def test_a_sweep_on_a_full_disk_stops_cleanly_with_exit_3(files: dict[str, Path]) -> None:
    import resource

    def full_disk() -> None:  # every file stops growing at 500 bytes: EFBIG, no SIGXFSZ kill
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (500, 500))

    done = subprocess.run(
        [
            sys.executable, "-m", "agentundo", "drill", str(files["workflow"]),
            "--catalog", str(files["catalog"]), "--policy", str(files["policy"]),
            "--evidence", str(files["evidence"]), "--sweep", "--jobs", "1",
        ],
        capture_output=True, text=True, timeout=60, preexec_fn=full_disk,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    assert "evidence incomplete" in done.stderr and "the sweep stopped after 1 of 5 runs" in (
        done.stderr
    )
    assert len(list(files["evidence"].glob("*.jsonl.gz"))) == 1


# -- weekly drills as CI jobs: [drill] configuration, scenario directories, JUnit ----------

JUNIT_SCHEMA = Path(__file__).parents[1] / "fixtures" / "junit" / "junit-10.xsd"

GOOD_SCENARIO = """
version: v1
scenario: weekly
workflow: order
faults:
  - {type: partial, step: ship}
expect: {status: FAILED_FATAL}
"""

LEFT_BEHIND_SCENARIO = """
version: v1
kind: scenario
scenario: left-behind
workflow: order
settings: {compensate_failed_step: false}
faults:
  - {type: partial, step: ship}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A repository with a [tool.agentundo.drill] table, its contract and two scenarios."""
    root = tmp_path / "repo"
    (root / "policies").mkdir(parents=True)
    (root / "workflows").mkdir()
    (root / "drills").mkdir()
    write(root / "policies", "catalog.yaml", CATALOG)
    write(root / "policies", "policy.yaml", POLICY)
    write(root / "workflows", "order.yaml", WORKFLOW)
    write(root / "drills", "a-weekly.yaml", GOOD_SCENARIO)
    write(root / "drills", "b-left-behind.yaml", LEFT_BEHIND_SCENARIO)
    write(root / "drills", "compose.yaml", "services:\n  web: {image: nginx}\n")
    write(
        root,
        "pyproject.toml",
        """
        [project]
        name = "shop"

        [tool.agentundo.drill]
        catalog = "policies/catalog.yaml"
        policy = "policies/policy.yaml"
        scenarios = ["drills/"]
        workflows = ["workflows/"]
        evidence = "evidence"
        """,
    )
    return root


def test_drill_without_a_workflow_runs_every_configured_scenario(project: Path) -> None:
    done = invoke("drill", cwd=project)
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("recovered order weekly: evidence: ")
    assert lines[1].startswith("failed order left-behind: ")
    assert len(list((project / "evidence").glob("run_*.jsonl"))) == 2


def test_drill_of_a_directory_with_json_lists_every_drill(project: Path) -> None:
    (project / "drills" / "b-left-behind.yaml").unlink()
    done = invoke("drill", "drills", "-f", "json", cwd=project)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert [d["summary"]["scenario"] for d in out] == ["weekly"]
    assert out[0]["verdict"] == "recovered"
    assert out[0]["workflow_file"].endswith("order.yaml")
    records = evidence(Path(out[0]["evidence"]))
    assert records[-1]["event"] == "run_summary"


def test_the_command_line_wins_over_the_configuration(project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    done = invoke("drill", "--evidence", elsewhere, "-f", "json", cwd=project)
    assert done.returncode == 1
    assert all(d["evidence"].startswith(str(elsewhere)) for d in json.loads(done.stdout))
    assert not (project / "evidence").exists()


def test_a_workflow_next_to_its_scenario_is_found_without_workflows(tmp_path: Path) -> None:
    write(tmp_path, "order.yaml", WORKFLOW)
    write(tmp_path, "weekly.yaml", GOOD_SCENARIO)
    write(tmp_path, "catalog.yaml", CATALOG)
    write(tmp_path, "policy.yaml", POLICY)
    done = invoke(
        "drill",
        tmp_path,
        "--catalog",
        tmp_path / "catalog.yaml",
        "--policy",
        tmp_path / "policy.yaml",
        "--evidence",
        tmp_path / "ev",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("recovered order weekly")


def test_junit_has_one_case_per_drill_and_is_valid(project: Path) -> None:
    xmlschema = pytest.importorskip("xmlschema")
    import xml.etree.ElementTree as ET

    done = invoke("drill", "--format", "junit", "-o", "report.xml", cwd=project)
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    report = project / "report.xml"
    xmlschema.XMLSchema(str(JUNIT_SCHEMA)).validate(str(report))
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "1", "0")
    good, bad = suite.findall("testcase")
    assert (good.get("classname"), good.get("name")) == ("order", "weekly")
    assert good.find("failure") is None
    assert (good.findtext("system-out") or "").startswith("evidence: ")
    failure = bad.find("failure")
    assert failure is not None and bad.get("name") == "left-behind"
    assert "ship" in (failure.get("message") or "")


def test_junit_of_a_sweep_has_one_case_per_step(files: dict[str, Path], tmp_path: Path) -> None:
    xmlschema = pytest.importorskip("xmlschema")
    import xml.etree.ElementTree as ET

    out = tmp_path / "sweep.xml"
    done = drill(files, "--sweep", "-j", "1", "--format", "junit", "-o", str(out))
    assert done.returncode == 0, done.stderr
    xmlschema.XMLSchema(str(JUNIT_SCHEMA)).validate(str(out))
    cases = ET.parse(out).getroot().iter("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("order", step) for step in ("lookup", "reserve", "charge", "notify", "ship")
    ]


def test_junit_of_one_drill_fails_with_its_problems(files: dict[str, Path]) -> None:
    done = drill(files, "--partial", "ship", "--no-compensate-failed-step", "-f", "junit")
    assert done.returncode == 1
    assert '<failure type="failed"' in done.stdout
    assert "<system-out>evidence: " in done.stdout


def test_output_never_overwrites_an_input(files: dict[str, Path]) -> None:
    before = files["policy"].read_text(encoding="utf-8")
    done = drill(files, "-f", "junit", "-o", str(files["policy"]))
    assert done.returncode == 2
    assert "would overwrite the input file" in done.stderr
    assert files["policy"].read_text(encoding="utf-8") == before


def test_a_bad_scenario_is_exit_2_and_the_others_still_run(project: Path) -> None:
    (project / "drills" / "b-left-behind.yaml").unlink()
    write(
        project / "drills",
        "c-lost.yaml",
        "version: v1\nscenario: lost\nworkflow: nope\nfaults: []\n",
    )
    done = invoke("drill", "-f", "junit", cwd=project)
    assert done.returncode == 2
    assert "c-lost.yaml:3:" in done.stderr and "'workflow: nope'" in done.stderr
    assert done.stdout.count("<testcase") == 2
    assert '<error type="input-error"' in done.stdout


def test_a_failed_drill_outranks_bad_input(project: Path) -> None:
    write(project / "drills", "c-lost.yaml", "version: v1\nscenario: lost\nfaults: []\n")
    done = invoke("drill", cwd=project)
    assert done.returncode == 1
    assert "does not name its workflow" in done.stderr


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('catalogue = "c.yaml"', "unknown key 'catalogue' in [tool.agentundo.drill]"),
        ("scenarios = 3", "'scenarios' in [tool.agentundo.drill] must be a list"),
        ('executor = "ssh"', "'executor' in [tool.agentundo.drill] is 'ssh'"),
        ("evidence = 1", "'evidence' in [tool.agentundo.drill] must be a non-empty string"),
    ],
)
def test_a_bad_drill_configuration_is_exit_2_naming_file_and_key(
    tmp_path: Path, table: str, message: str
) -> None:
    config = write(tmp_path, "pyproject.toml", f"[tool.agentundo.drill]\n{table}\n")
    done = invoke("drill", cwd=tmp_path)
    assert done.returncode == 2
    assert str(config) in done.stderr and message in done.stderr


def test_no_workflow_and_nothing_configured_is_exit_2(tmp_path: Path) -> None:
    write(tmp_path, "agentundo.toml", '[drill]\ncatalog = "c.yaml"\npolicy = "p.yaml"\n')
    done = invoke("drill", cwd=tmp_path)
    assert done.returncode == 2
    assert "no scenarios configured" in done.stderr
