"""`agentundo drill` on hostile input: every mistake is exit 2 with a clear message, every
run that did not rehearse what it was written for is exit 1, and nothing crashes.

Each test runs the CLI in a real subprocess on real files; the HTTP tests use a port on
127.0.0.1 that nothing listens on.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

from tests.cli_runner import Result, invoke
from tests.saga_helpers import CATALOG, DENY_EMAIL, POLICY, WORKFLOW, write

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


def drill(
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
    done = drill(tmp_path, scenario=scenario)
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
    done = drill(tmp_path, catalog=catalog)
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
    done = drill(tmp_path, "-f", "json", scenario=scenario)
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
    assert_usage(drill(tmp_path, "--deadline", "soon"), "--deadline expects a duration")
    assert_usage(drill(tmp_path, "--deadline", "200h"), "--deadline 200h is longer than 168h")
    assert_usage(drill(tmp_path, "--deadline", "0s"), "--deadline must be longer than 0s")


# -- 4. contradictory faults ---------------------------------------------------------


def test_partial_and_fail_at_on_one_step_is_a_usage_error(tmp_path: Path) -> None:
    done = drill(tmp_path, "--partial", "ship", "--fail-at", "ship")
    assert_usage(
        done,
        "agentundo: error: --partial ship contradicts --fail-at ship: a fatal fault fails "
        "the step before its effect lands, a partial one after",
    )
    assert not (tmp_path / "evidence").exists()


def test_sweep_with_single_run_faults_is_a_usage_error(tmp_path: Path) -> None:
    assert_usage(
        drill(tmp_path, "--sweep", "--fail-at", "ship"),
        "--sweep fails each step in turn, so it cannot be combined with --fail-at",
    )
    assert_usage(
        drill(tmp_path, "--sweep", "--partial", "ship"),
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
    done = drill(tmp_path, scenario=scenario)
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
    done = drill(tmp_path, scenario=scenario)
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
    done = drill(tmp_path, "--fail-at", "ship", scenario=scenario)
    assert_usage(
        done,
        f"agentundo: error: --fail-at ship contradicts the scenario's partial fault "
        f"({tmp_path / 's.yaml'}:4:5)",
    )


def test_identical_repeated_faults_are_harmless(tmp_path: Path) -> None:
    done = drill(tmp_path, "--fail-at", "ship", "--fail-at", "ship", "-f", "json")
    assert done.returncode == 0, done.stderr
    assert summary(done)["summary"]["step_id"] == "ship"


# -- 5. --evidence naming a file -----------------------------------------------------


def test_an_empty_evidence_directory_is_a_usage_error(tmp_path: Path) -> None:
    done = drill(tmp_path, "--evidence", "")
    assert_usage(done, "agentundo: error: --evidence needs a directory, not an empty string")
    assert not (tmp_path / "agentundo-evidence").exists()


def test_evidence_naming_an_existing_file_is_not_a_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "evidence"
    blocker.write_text("a file", encoding="utf-8")
    done = drill(tmp_path)
    assert_usage(
        done,
        f"agentundo: error: cannot write evidence to {blocker}: it is a file, not a directory",
    )
    assert "exists" not in done.stderr
    assert blocker.read_text(encoding="utf-8") == "a file"


# -- 6. sweep runs that never reach their step ---------------------------------------


def test_sweep_rows_never_reached_are_flagged_and_fail_the_sweep(tmp_path: Path) -> None:
    done = drill(tmp_path, "--sweep", "-f", "json", policy=DENY_EMAIL)
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
    recorded = [json.loads(Path(r["evidence"]).read_text("utf-8").splitlines()[-1]) for r in runs]
    assert [r["verdict"] for r in recorded] == ["recovered"] * 3 + ["failed"] * 2
    assert recorded[4]["problems"] == [
        "fatal fault at 'ship' was never reached (the run stopped at 'notify'): the drill "
        "did not rehearse it"
    ]
    text = drill(tmp_path, "--sweep", policy=DENY_EMAIL, env={"COLUMNS": "160"})
    assert text.returncode == 1
    assert "5 runs, 0 failed, 2 not reached: incomplete" in text.stdout
    assert "not reached" in text.stdout and "stopped at 'notify' first" in text.stdout


# -- 7. input validation -------------------------------------------------------------


def test_expectations_naming_unknown_steps_are_positioned(tmp_path: Path) -> None:
    scenario = "version: v1\nscenario: s\nexpect:\n  compensated: [reserve, chrage]\n"
    done = drill(tmp_path, scenario=scenario)
    assert done.returncode == 2, done.stdout + done.stderr
    assert (
        f"{tmp_path / 's.yaml'}:4:26: error: expect.compensated names step 'chrage', which is "
        "not in workflow 'order' (hint: did you mean 'charge'?)"
    ) in done.stderr


def test_a_lock_fault_naming_a_step_is_positioned(tmp_path: Path) -> None:
    scenario = "version: v1\nscenario: s\nfaults:\n  - {type: lock_held, step: charge}\n"
    done = drill(tmp_path, scenario=scenario)
    assert done.returncode == 2, done.stdout + done.stderr
    assert (
        f"{tmp_path / 's.yaml'}:4:29: error: a lock_held fault is about the workflow's "
        "rollback lock, not a step; remove 'step: charge'"
    ) in done.stderr


def test_negative_seeds_and_empty_step_ids_are_usage_errors(tmp_path: Path) -> None:
    assert_usage(drill(tmp_path, "--seed", "-5"), "--seed must be 0 or more, not -5")
    assert_usage(drill(tmp_path, "--fail-at", ""), "--fail-at expects a step id, got ''")
    assert_usage(drill(tmp_path, "--partial", " "), "--partial expects a step id, got ' '")
    assert_usage(
        drill(tmp_path, "--approve", ""), "--approve names step '', which is not in the workflow"
    )
    done = drill(tmp_path, scenario="version: v1\nscenario: s\nseed: -1\n")
    assert done.returncode == 2
    assert f"{tmp_path / 's.yaml'}:3:7: error:" in done.stderr
