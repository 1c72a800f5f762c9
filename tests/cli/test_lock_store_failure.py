"""The rollback lock's store fails mid-rollback: a real `agentundo drill` holds its lock in
the real Redis on 127.0.0.1 through a TCP relay that the test cuts while a refund is in
flight. Nothing more is compensated without the lock, what is left stays owed (exit 1,
`lock_unavailable`), and `agentundo recover` finishes it: the ledger's own state shows
every charge refunded exactly once.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.cli.test_recover import (
    REDIS,
    _assert_undone_once,
    _faults,
    _recover,
    _redis_or_skip,
    _start,
    _verified,
    _wait_for,
)
from tests.cli.test_recover import ledger as ledger  # the fixture


class Relay:
    """A TCP relay from 127.0.0.1:<port> to Redis; :meth:`cut` closes every connection
    and stops listening, as a network partition or a dead Redis would look to a client."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.cut_done = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            with self.lock:
                if self.cut_done:
                    client.close()
                    server.close()
                    return
                self.sockets += [client, server]
            threading.Thread(target=self._pipe, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        for end in (source, target):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        with self.lock:
            self.cut_done = True
            self.listener.close()
            for end in self.sockets:
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()


def _records(path: Path) -> Iterator[dict[str, Any]]:
    for line in path.read_text(encoding="utf-8").splitlines():
        yield json.loads(line)


def test_a_lock_store_lost_mid_rollback_leaves_the_rest_owed_and_recover_finishes_it(
    ledger: Any, tmp_path: Path
) -> None:
    from agentundo.saga.lock import lock_key

    store = _redis_or_skip()
    relay = Relay(("127.0.0.1", 6379))
    relayed = f"redis://127.0.0.1:{relay.port}/15"
    _faults(ledger.url, delay_ms=800, only="refund")  # charge_b's refund is in flight
    proc = _start(ledger.url, tmp_path, "--fail-at", "charge_c", "--lock", relayed)
    path = _wait_for(tmp_path, "compensation_dispatched")
    relay.cut()
    _, stderr = proc.communicate(timeout=60)

    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr
    assert "still owed: charge_a" in stderr
    assert "agentundo recover" in stderr
    records = list(_records(path))
    failed = [r for r in records if r["event"] == "lock_store_failed"]
    assert len(failed) == 1 and failed[0]["lock_key"] == lock_key("checkout", path.stem)
    owed = [
        r
        for r in records
        if r["event"] == "manual_followup" and r["category"] == "lock_unavailable"
    ]
    assert [r["step_id"] for r in owed] == ["charge_a"]
    dispatched = {r["step_id"] for r in records if r["event"] == "compensation_dispatched"}
    assert dispatched == {"charge_b"}  # nothing was dispatched once the lock was in doubt
    released = [r for r in records if r["event"] == "lock_released"]
    assert released and released[-1]["released"] is False
    summary = records[-1]
    assert summary["event"] == "run_summary" and summary["verdict"] != "recovered"
    assert summary["owed"] == ["charge_a"]
    balance = ledger.ledger.entries
    assert sum(1 for e in balance if e["type"] == "refund") == 1  # only charge_b's
    assert _verified(path)

    # the drill's lock outlives it in Redis until its TTL (2 min) runs out: stand in for it
    key = lock_key("checkout", path.stem)
    dead = store.state(key)
    assert dead is not None
    store.release(key, dead.owner)
    _faults(ledger.url)
    done = _recover(ledger.url, path, "--lock", REDIS)
    assert done.returncode == 0, done.stdout + done.stderr
    _assert_undone_once(ledger)
    assert _verified(path)


def test_a_lock_store_lost_before_the_rollback_compensates_nothing_and_owes_everything(
    ledger: Any, tmp_path: Path
) -> None:
    from agentundo.saga.lock import lock_key

    store = _redis_or_skip()
    relay = Relay(("127.0.0.1", 6379))
    relayed = f"redis://127.0.0.1:{relay.port}/15"
    _faults(ledger.url, delay_ms=600, only="charge")  # the forward path is still running
    proc = _start(ledger.url, tmp_path, "--fail-at", "charge_c", "--lock", relayed)
    path = _wait_for(tmp_path, "step_succeeded")
    relay.cut()
    _, stderr = proc.communicate(timeout=60)

    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr
    records = list(_records(path))
    failed = [r for r in records if r["event"] == "lock_store_failed"]
    assert [r["operation"] for r in failed] == ["acquire"]
    finished = [r for r in records if r["event"] == "rollback_finished"]
    assert [r["outcome"] for r in finished] == ["lock_unavailable"]
    assert not [r for r in records if r["event"] == "compensation_dispatched"]
    assert records[-1]["owed"] == ["charge_b", "charge_a"]
    assert not [e for e in ledger.ledger.entries if e["type"] == "refund"]
    assert _verified(path)

    assert store.state(lock_key("checkout", path.stem)) is None  # never taken
    _faults(ledger.url)
    done = _recover(ledger.url, path, "--lock", REDIS)
    assert done.returncode == 0, done.stdout + done.stderr
    _assert_undone_once(ledger)
    assert _verified(path)
