"""`agentundo recover` after real crashes: real `agentundo drill` processes against the
ledger service on 127.0.0.1 are killed (SIGKILL, SIGTERM, SIGHUP) at chosen points; the
assertions are on the ledger's own state (nothing left charged, nothing refunded twice,
the run's own keys reused) and on `agentundo timeline --verify`.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.test_http_drill import EXAMPLE, TOKEN, ledger_service
from tests.cli_runner import invoke

CATALOG = str(EXAMPLE / "catalog.yaml")
POLICY = str(EXAMPLE / "policy.yaml")
WORKFLOW = str(EXAMPLE / "workflow.yaml")


@pytest.fixture
def ledger() -> Iterator[Any]:
    running = ledger_service.start()
    yield running
    running.stop()


def _faults(url: str, **knobs: Any) -> None:
    httpx.post(f"{url}/admin/faults", json=knobs, timeout=5).raise_for_status()


def _balance(url: str) -> dict[str, Any]:
    data = httpx.get(f"{url}/balance", timeout=5).json()
    assert isinstance(data, dict)
    return data


def _start(url: str, evidence: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "LEDGER_URL": url, "LEDGER_TOKEN": TOKEN}
    env.pop("AGENTUNDO_EVIDENCE_KEY", None)
    cmd = [sys.executable, "-m", "agentundo", "drill", WORKFLOW, "--catalog", CATALOG]
    cmd += ["--policy", POLICY, "--executor", "http", "--evidence", str(evidence), *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _kill(proc: subprocess.Popen[str]) -> None:
    """SIGKILL: no handler runs, nothing is flushed or released by the process itself."""
    proc.kill()
    proc.communicate(timeout=10)


def _wait_for(evidence: Path, needle: str, timeout: float = 20) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(evidence.glob("*.jsonl"))
        if found and needle in found[0].read_text(encoding="utf-8"):
            return found[0]
        time.sleep(0.01)
    raise AssertionError(f"{needle} never appeared in the evidence")


def _recover(url: str, path: Path, *extra: str) -> Any:
    return invoke(
        "recover", str(path), "--catalog", CATALOG, "--policy", POLICY, "--executor", "http",
        *extra, env={"LEDGER_URL": url, "LEDGER_TOKEN": TOKEN},
    )  # fmt: skip


def _verified(path: Path) -> bool:
    done = invoke("timeline", str(path), "--verify", "-q")
    if done.returncode != 0:  # say why, with the records, before the assertion fails
        print(done.stdout, done.stderr, path.read_text(encoding="utf-8"), sep="\n")
    return done.returncode == 0


def _assert_undone_once(ledger: Any) -> None:
    """The ledger's own state: every charge refunded exactly once, nothing left."""
    balance = _balance(ledger.url)
    assert balance["balance"] == 0, balance
    assert set(balance["refunds_by_charge"].values()) <= {1}, balance
    refunds = [e for e in ledger.ledger.entries if e["type"] == "refund"]
    assert len(refunds) == balance["charges"]


def test_sigkill_mid_rollback_then_recover_refunds_each_charge_once(
    ledger: Any, tmp_path: Path
) -> None:
    _faults(ledger.url, delay_ms=800, only="refund")  # a refund in flight when killed
    proc = _start(ledger.url, tmp_path, "--fail-at", "charge_c")
    path = _wait_for(tmp_path, "compensation_dispatched")
    _kill(proc)
    time.sleep(0.9)  # the refund in flight lands after its caller died
    assert _balance(ledger.url)["balance"] > 0  # charges left behind by the crash
    keys_before = set(ledger.ledger.keys)
    dry = _recover(ledger.url, path, "--dry-run", "--format", "json")
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert [o["step_id"] for o in plan["owed"]] == ["charge_b", "charge_a"]
    assert plan["result"] is None and _balance(ledger.url)["balance"] > 0  # nothing called
    _faults(ledger.url)  # the service is healthy again
    done = _recover(ledger.url, path)
    assert done.returncode == 0, done.stdout + done.stderr
    _assert_undone_once(ledger)
    owed_keys = {o["idempotency_key"] for o in plan["owed"]}
    assert owed_keys <= set(ledger.ledger.keys)  # the run's own keys, no new ones
    assert len(ledger.ledger.keys) == len(keys_before | owed_keys)
    assert _verified(path)
    again = _recover(ledger.url, path)
    assert again.returncode == 0 and "nothing is owed" in again.stdout
    _assert_undone_once(ledger)


def test_sigkill_during_a_charge_that_lands_then_recover_asks_for_its_id(
    ledger: Any, tmp_path: Path
) -> None:
    _faults(ledger.url, delay_ms=700, only="charge")  # each charge answers late
    proc = _start(ledger.url, tmp_path, "--fail-at", "charge_c")
    path = _wait_for(tmp_path, '"step_id":"charge_b"')
    time.sleep(0.2)  # charge_b is applied; its answer is still on the way
    _kill(proc)
    time.sleep(0.6)
    assert _balance(ledger.url)["charges"] == 2
    _faults(ledger.url)
    done = _recover(ledger.url, path, "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert [o["state"] for o in result["owed"]] == ["unknown", "landed"]
    balance = _balance(ledger.url)
    assert balance["charges"] == 2  # asking again with its key applied nothing new
    _assert_undone_once(ledger)
    assert _verified(path)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["term", "hup"])
def test_a_stop_during_a_charge_that_lands_anyway_is_undone_by_the_drill(
    ledger: Any, tmp_path: Path, signum: int
) -> None:
    _faults(ledger.url, delay_ms=700, only="charge")
    proc = _start(ledger.url, tmp_path, "--fail-at", "charge_c", "--format", "json")
    path = _wait_for(tmp_path, '"step_id":"charge_b"')
    time.sleep(0.2)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    summary = json.loads(out)["summary"]
    assert (summary["status"], summary["owed"]) == ("interrupted", [])
    records = [json.loads(line) for line in path.read_text().splitlines()]
    unknown = [r for r in records if r["event"] == "step_outcome_unknown"]
    assert [r["step_id"] for r in unknown] == ["charge_b"]
    _assert_undone_once(ledger)  # charge_b landed all the same, and was refunded once
    assert _verified(path)


def test_a_second_stop_halts_and_recover_finishes(ledger: Any, tmp_path: Path) -> None:
    _faults(ledger.url, delay_ms=600, only="refund")
    proc = _start(ledger.url, tmp_path, "--fail-at", "charge_c")
    path = _wait_for(tmp_path, "compensation_dispatched")
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "agentundo: finish the rollback with: agentundo recover" in err
    _faults(ledger.url)
    done = _recover(ledger.url, path)
    assert done.returncode == 0, done.stdout + done.stderr
    _assert_undone_once(ledger)
    assert _verified(path)


def test_many_kill_points(ledger: Any, tmp_path: Path) -> None:
    """SIGKILL at seeded random moments of a drill whose calls are slowed down, then
    recover: whatever the point, the ledger ends balanced and nothing is refunded twice."""
    rng = random.Random(20261130)
    points = [rng.uniform(0.05, 1.6) for _ in range(8)]
    for number, delay in enumerate(points):
        ledger.ledger.reset()
        _faults(ledger.url, delay_ms=150)
        evidence = tmp_path / f"kill{number}"
        proc = _start(ledger.url, evidence, "--fail-at", "charge_c")
        time.sleep(delay)
        _kill(proc)
        time.sleep(0.2)  # a call in flight lands (or not) after its caller died
        _faults(ledger.url)
        files = sorted(evidence.glob("*.jsonl"))
        if not files:
            continue  # killed before the run began: nothing was called
        done = _recover(ledger.url, files[0])
        assert done.returncode == 0, (delay, done.stdout, done.stderr)
        _assert_undone_once(ledger)
        if "nothing to recover" in done.stdout:  # killed before its first record
            assert ledger.ledger.entries == []
            continue
        assert _verified(files[0]), delay
    print(f"kill points tried: {len(points)}")


REDIS = "redis://127.0.0.1:6379/15"


def _redis_or_skip() -> Any:
    from agentundo.errors import UsageError
    from agentundo.saga.lock_stores import open_lock_store

    try:
        return open_lock_store(REDIS, directory=Path("."))
    except UsageError as error:
        pytest.skip(f"no Redis on 127.0.0.1:6379: {error}")


def test_a_recover_waits_for_a_lock_held_elsewhere_then_compensates_nothing(
    ledger: Any, tmp_path: Path
) -> None:
    """Another runner (a second CI job, say) holds the run's lock in Redis: recover waits
    up to --lock-wait, reports lock_held, exits 1, and the ledger keeps its charges."""
    from agentundo.saga.lock import lock_key

    store = _redis_or_skip()
    _faults(ledger.url, delay_ms=800, only="refund")
    proc = _start(ledger.url, tmp_path, "--fail-at", "charge_c", "--lock", REDIS)
    path = _wait_for(tmp_path, "compensation_dispatched")
    _kill(proc)
    time.sleep(0.9)
    run_id = path.stem
    key = lock_key("checkout", run_id)
    dead = store.state(key)  # the killed drill's lock stays until its TTL (2 min) runs out
    assert dead is not None and dead.owner == f"owner:{run_id}"
    store.release(key, dead.owner)  # stands in for that TTL, to keep the test short
    assert store.acquire(key, "owner:other-runner", 30, now=0).acquired
    try:
        _faults(ledger.url)
        charged = _balance(ledger.url)["balance"]
        started = time.monotonic()
        done = _recover(ledger.url, path, "--lock", REDIS, "--lock-wait", "1s", "-f", "json")
        assert done.returncode == 1, done.stdout + done.stderr
        assert time.monotonic() - started >= 1.0
        result = json.loads(done.stdout)["result"]
        assert result["lock_held"] is True and result["compensated"] == []
        assert _balance(ledger.url)["balance"] == charged  # nothing was refunded
    finally:
        store.release(key, "owner:other-runner")
    done = _recover(ledger.url, path, "--lock", REDIS)
    assert done.returncode == 0, done.stdout + done.stderr
    _assert_undone_once(ledger)
    assert _verified(path)
