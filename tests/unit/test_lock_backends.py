"""saga/lock_file.py, saga/lock_redis.py, saga/lock_stores.py: the real rollback locks.

The Redis tests run against the server on 127.0.0.1:6379 (skipped, saying so, when
nothing listens there), each under its own workflow id, whose keys are deleted after.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from agentundo.errors import UsageError
from agentundo.saga.lock import LockStore, MemoryLockStore, holds, lock_key
from agentundo.saga.lock_file import FileLockStore, file_name
from agentundo.saga.lock_redis import RedisLockStore
from agentundo.saga.lock_stores import open_lock_store
from tests.saga_helpers import WORKFLOW, events, of, run, workflow

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
TTL = 60.0


def _redis_listening() -> bool:
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=0.5):
            return True
    except OSError:
        return False


def _free_port() -> int:
    """A port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def workflow_id() -> Iterator[str]:
    """A workflow id of this test alone; its Redis keys are deleted afterwards."""
    wf = f"test-{uuid.uuid4().hex}"
    yield wf
    if _redis_listening():
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
        try:
            keys = list(client.scan_iter(match=f"saga:{wf}:*"))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


@pytest.fixture
def key(workflow_id: str) -> str:
    return lock_key(workflow_id, "run_1")


@pytest.fixture
def redis_url() -> str:
    if not _redis_listening():
        pytest.skip(f"no Redis server listens on {REDIS_HOST}:{REDIS_PORT}")
    return REDIS_URL


@pytest.fixture
def redis_store(redis_url: str, workflow_id: str) -> Iterator[RedisLockStore]:
    store = RedisLockStore(redis_url)
    yield store
    store.close()


@pytest.fixture
def file_store(tmp_path: Path) -> Iterator[FileLockStore]:
    store = FileLockStore(tmp_path / ".locks")
    yield store
    store.close()


@pytest.fixture(params=["memory", "file", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path, workflow_id: str) -> Iterator[LockStore]:
    """Each backend, for the semantics all of them share with MemoryLockStore."""
    if request.param == "redis":
        request.getfixturevalue("redis_url")
    opened = open_lock_store(
        REDIS_URL if request.param == "redis" else request.param, directory=tmp_path / ".locks"
    )
    yield opened
    if isinstance(opened, FileLockStore | RedisLockStore):
        opened.close()


# -- the protocol, on every backend ------------------------------------------------------


def test_a_lock_is_granted_once_and_released_only_by_its_owner(store: LockStore, key: str) -> None:
    got = store.acquire(key, "a", TTL, now=0)
    assert got.acquired and got.epoch == 1 and got.previous_owner is None
    busy = store.acquire(key, "b", TTL, now=1)
    assert (busy.acquired, busy.epoch, busy.holder) == (False, 1, "a")
    assert store.release(key, "b") is False
    assert holds(store, key, "a", 1, now=1)
    assert not holds(store, key, "a", 2, now=1)  # another epoch
    assert not holds(store, key, "b", 1, now=1)  # another owner
    assert store.release(key, "a") is True
    assert store.state(key) is None
    assert not holds(store, key, "a", 1, now=1)


def test_epochs_increase_on_every_grant_even_after_a_release(
    store: LockStore, key: str, workflow_id: str
) -> None:
    epochs = []
    for owner in ("a", "b", "a", "c"):
        got = store.acquire(key, owner, TTL, now=0)
        assert got.acquired
        epochs.append(got.epoch)
        assert store.release(key, owner)
    assert epochs == [1, 2, 3, 4]
    assert store.acquire(lock_key(workflow_id, "run_2"), "a", TTL, now=0).epoch == 1  # per key


def test_a_busy_acquire_changes_nothing(store: LockStore, key: str) -> None:
    store.acquire(key, "a", TTL, now=0)
    for owner in ("b", "c", "a"):  # the holder itself is refused a second grant too
        busy = store.acquire(key, owner, TTL, now=1)
        assert (busy.acquired, busy.epoch, busy.holder) == (False, 1, "a")
    state = store.state(key)
    assert state is not None and (state.owner, state.epoch) == ("a", 1)
    assert store.release(key, "a")
    assert store.acquire(key, "b", TTL, now=2).epoch == 2  # the busy attempts burnt none


def test_release_is_compare_and_delete(store: LockStore, key: str) -> None:
    assert store.release(key, "a") is False  # nothing to release
    store.acquire(key, "a", TTL, now=0)
    assert store.release(key, "b") is False
    assert store.state(key) is not None
    assert store.release(key, "a") is True
    assert store.release(key, "a") is False  # once
    got = store.acquire(key, "b", TTL, now=1)
    assert got.acquired and got.previous_owner is None  # a released lock has no owner left


def test_only_the_owner_renews(store: LockStore, key: str) -> None:
    assert store.renew(key, "a", TTL, now=0) is False  # nothing to renew
    store.acquire(key, "a", TTL, now=0)
    assert store.renew(key, "b", TTL, now=1) is False
    assert store.renew(key, "a", TTL, now=1) is True
    assert holds(store, key, "a", 1, now=2)
    store.release(key, "a")
    assert store.renew(key, "a", TTL, now=2) is False


def test_an_owner_may_contain_colons(store: LockStore, key: str) -> None:
    owner = "owner:run_1:host:4242"  # the engine's owners are "owner:<run_id>"
    assert store.acquire(key, owner, TTL, now=0).acquired
    assert store.acquire(key, "b", TTL, now=0).holder == owner
    state = store.state(key)
    assert state is not None and (state.owner, state.epoch) == (owner, 1)
    assert store.release(key, owner)


# -- Redis ----------------------------------------------------------------------------


def _wait_gone(store: LockStore, key: str, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while store.state(key) is not None:
        assert time.monotonic() < deadline, f"{key} never expired"
        time.sleep(0.02)


def test_redis_keys_hold_epoch_and_owner(redis_store: RedisLockStore, key: str) -> None:
    client = redis_store.client
    redis_store.acquire(key, "owner:run_1", TTL, now=0)
    assert client.get(key) == b"1:owner:run_1"
    assert client.get(f"{key}:epoch") == b"1"
    assert client.get(f"{key}:last") == b"1:owner:run_1"
    assert 0 < client.pttl(key) <= TTL * 1000
    assert client.ttl(f"{key}:epoch") == -1  # epochs never expire
    for _ in range(3):
        assert not redis_store.acquire(key, "b", TTL, now=0).acquired
    assert client.get(f"{key}:epoch") == b"1"  # a busy attempt burns no epoch
    assert redis_store.release(key, "owner:run_1")
    assert client.get(key) is None and client.get(f"{key}:last") is None
    assert client.get(f"{key}:epoch") == b"1"  # kept: the next grant is epoch 2


def test_an_expired_redis_lock_is_taken_over_and_fences_the_old_owner(
    redis_store: RedisLockStore, key: str
) -> None:
    first = redis_store.acquire(key, "a", 0.2, now=0)
    assert first.acquired and first.epoch == 1
    _wait_gone(redis_store, key)  # the TTL runs on the server's clock
    assert not holds(redis_store, key, "a", 1, now=0)
    taken = redis_store.acquire(key, "b", TTL, now=0)
    assert taken.acquired and taken.epoch == 2 and taken.previous_owner == "a"
    assert not holds(redis_store, key, "a", 1, now=0)
    assert redis_store.release(key, "a") is False  # the Lua compare refuses the stale owner
    assert redis_store.renew(key, "a", TTL, now=0) is False
    assert holds(redis_store, key, "b", 2, now=0)
    assert redis_store.release(key, "b") is True


def test_a_stale_runner_with_the_same_owner_name_cannot_release_its_successors_lock(
    redis_url: str, key: str
) -> None:
    """Two runners of one run are both ``owner:<run_id>``: the epoch tells them apart."""
    stale, successor = RedisLockStore(redis_url), RedisLockStore(redis_url)
    try:
        owner = "owner:run_1"
        assert stale.acquire(key, owner, 0.2, now=0).acquired
        _wait_gone(stale, key)
        taken = successor.acquire(key, owner, TTL, now=0)
        assert taken.acquired and taken.epoch == 2 and taken.previous_owner == owner
        assert not holds(stale, key, owner, 1, now=0)
        assert stale.release(key, owner) is False  # epoch 1 is not the lock's epoch 2
        assert stale.renew(key, owner, TTL, now=0) is False
        assert holds(successor, key, owner, 2, now=0)
        assert successor.release(key, owner) is True
    finally:
        stale.close()
        successor.close()


def test_renew_extends_a_redis_lock_for_its_owner_only(
    redis_store: RedisLockStore, key: str
) -> None:
    redis_store.acquire(key, "a", 0.5, now=0)
    assert redis_store.renew(key, "b", 30, now=0) is False
    assert redis_store.client.pttl(key) <= 500
    assert redis_store.renew(key, "a", 30, now=0) is True
    assert redis_store.client.pttl(key) > 10_000
    time.sleep(0.6)  # past the first TTL
    assert holds(redis_store, key, "a", 1, now=0)


def test_an_unreachable_redis_is_a_usage_error_naming_the_url() -> None:
    url = f"redis://127.0.0.1:{_free_port()}/0"
    with pytest.raises(UsageError, match=f"cannot reach the Redis lock store at {url}"):
        RedisLockStore(url, timeout_s=2)


def test_a_redis_password_stays_out_of_messages() -> None:
    port = _free_port()
    with pytest.raises(UsageError) as caught:
        RedisLockStore(f"redis://agent:hunter2@127.0.0.1:{port}/0", timeout_s=2)
    assert f"redis://agent:***@127.0.0.1:{port}/0" in str(caught.value)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis://127.0.0.1:6379/orders", "the database 'orders' is not a number"),
        ("redis:///0", "there is no host"),
        ("redis://127.0.0.1:port/0", "invalid Redis URL"),
    ],
)
def test_a_bad_redis_url_is_a_usage_error(url: str, problem: str) -> None:
    with pytest.raises(UsageError, match=problem):
        RedisLockStore(url)


def test_a_missing_redis_client_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # import redis raises ImportError
    with pytest.raises(UsageError, match=r"pip install 'agentundo\[redis\]'"):
        open_lock_store(REDIS_URL, directory=Path("unused"))


# -- lock files -------------------------------------------------------------------------


def test_file_epochs_survive_the_store(tmp_path: Path, key: str) -> None:
    directory = tmp_path / "locks"
    first = FileLockStore(directory)
    for owner in ("a", "b"):
        first.acquire(key, owner, TTL, now=0)
        first.release(key, owner)
    first.close()
    record = json.loads((directory / f"{file_name(key)}.json").read_text())
    assert record == {"epoch": 2, "owner": None}  # released: the epoch stays, the owner goes
    restarted = FileLockStore(directory)
    try:
        assert restarted.acquire(key, "c", TTL, now=0).epoch == 3
        assert json.loads((directory / f"{file_name(key)}.json").read_text()) == {
            "epoch": 3,
            "owner": "c",
        }
    finally:
        restarted.close()


def test_two_file_stores_in_one_process_contend(tmp_path: Path, key: str) -> None:
    one, two = FileLockStore(tmp_path), FileLockStore(tmp_path)
    try:
        assert one.acquire(key, "a", TTL, now=0).acquired
        busy = two.acquire(key, "b", TTL, now=0)
        assert (busy.acquired, busy.epoch, busy.holder) == (False, 1, "a")
        assert two.release(key, "a") is False  # the name alone does not release it
        assert two.renew(key, "a", TTL, now=0) is False
        assert holds(two, key, "a", 1, now=0)  # seen from the other store: held
        assert one.release(key, "a")
        assert two.acquire(key, "b", TTL, now=0).epoch == 2
    finally:
        one.close()
        two.close()


def test_a_file_lock_whose_holder_is_gone_is_taken_over(tmp_path: Path, key: str) -> None:
    crashed, other = FileLockStore(tmp_path), FileLockStore(tmp_path)
    try:
        crashed.acquire(key, "a", TTL, now=0)
        crashed.close()  # the descriptor is gone without a release, as in a crash
        state = other.state(key)
        assert state is not None and (state.owner, state.epoch) == ("a", 1)
        assert state.expires_at == -math.inf  # on record, but nobody holds it
        assert not holds(other, key, "a", 1, now=0)
        taken = other.acquire(key, "b", TTL, now=0)
        assert taken.acquired and taken.epoch == 2 and taken.previous_owner == "a"
    finally:
        other.close()


def test_a_held_file_lock_never_expires(file_store: FileLockStore, key: str) -> None:
    file_store.acquire(key, "a", 0.001, now=0)
    assert holds(file_store, key, "a", 1, now=1e12)  # no TTL: held until released
    assert file_store.renew(key, "a", 0.001, now=1e12)
    state = file_store.state(key)
    assert state is not None and state.expires_at == math.inf


def test_lock_file_names_are_safe_and_distinct(file_store: FileLockStore) -> None:
    keys = ["saga:wf:run_1:lock", "saga/../../etc:x", "saga_wf_run_1_lock", "", "é:ü"]
    names = {file_name(k) for k in keys}
    assert len(names) == len(keys)
    assert all("/" not in n and not n.startswith(".") and n for n in names)
    for k in keys:
        assert file_store.acquire(k, "a", TTL, now=0).epoch == 1
    files = {p.name for p in file_store.directory.iterdir()}
    assert files == {".guard"} | {f"{n}{s}" for n in names for s in (".lock", ".json")}


def test_a_damaged_lock_file_is_a_usage_error(file_store: FileLockStore, key: str) -> None:
    (file_store.directory / f"{file_name(key)}.json").write_text("{not json")
    with pytest.raises(UsageError, match="is damaged"):
        file_store.acquire(key, "a", TTL, now=0)


# -- several processes -------------------------------------------------------------------

HOLDER = """
import json, sys
from pathlib import Path
from agentundo.saga.lock_stores import open_lock_store

spec, directory, key, owner = sys.argv[1:5]
store = open_lock_store(spec, directory=Path(directory))
print("ready", flush=True)
sys.stdin.readline()
got = store.acquire(key, owner, 30, 0)
print(json.dumps({"acquired": got.acquired, "epoch": got.epoch, "holder": got.holder}), flush=True)
sys.stdin.read()  # hold the lock until told to end
if got.acquired:
    store.release(key, owner)
"""


class Holder:
    """A process that opens ``spec``, waits for "go", acquires ``key`` and holds it."""

    def __init__(self, spec: str, directory: Path, key: str, owner: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, spec, str(directory), key, owner],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.reader = ThreadPoolExecutor(max_workers=1)

    def line(self, timeout_s: float = 30.0) -> str:
        assert self.proc.stdout is not None
        text = self.reader.submit(self.proc.stdout.readline).result(timeout=timeout_s)
        assert text, f"the holder ended: {self.proc.stderr.read() if self.proc.stderr else ''}"
        return text.strip()

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def end(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
        self.reader.shutdown(wait=False)


@pytest.fixture
def holders() -> Iterator[Callable[..., Holder]]:
    started: list[Holder] = []

    def start(*args: Any) -> Holder:
        holder = Holder(*args)
        started.append(holder)
        return holder

    yield start
    for holder in started:
        if holder.proc.poll() is None:
            holder.proc.kill()
        holder.end()


@pytest.mark.parametrize("backend", ["file", "redis"])
def test_of_processes_contending_for_one_lock_exactly_one_gets_it(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    key: str,
    holders: Callable[..., Holder],
) -> None:
    spec = request.getfixturevalue("redis_url") if backend == "redis" else "file"
    started = [holders(spec, tmp_path, key, f"runner-{i}") for i in range(3)]
    for holder in started:
        assert holder.line() == "ready"
    for holder in started:  # all at once: each is waiting in readline
        holder.send("go\n")
    answers = [json.loads(holder.line()) for holder in started]
    winners = [i for i, answer in enumerate(answers) if answer["acquired"]]
    assert len(winners) == 1, answers
    winner = f"runner-{winners[0]}"
    assert all(a["epoch"] == 1 for a in answers)
    assert all(a["holder"] == winner for a in answers if not a["acquired"])
    for holder in started:
        holder.end()
    assert all(holder.proc.returncode == 0 for holder in started)
    after = open_lock_store(spec, directory=tmp_path)
    assert after.state(key) is None  # the winner released it on its way out
    assert after.acquire(key, "last", TTL, now=0).epoch == 2
    assert isinstance(after, FileLockStore | RedisLockStore)
    after.close()


def test_a_killed_holders_file_lock_is_taken_over_with_a_higher_epoch(
    tmp_path: Path, key: str, holders: Callable[..., Holder]
) -> None:
    holder = holders("file", tmp_path, key, "owner:run_1")
    assert holder.line() == "ready"
    holder.send("go\n")
    assert json.loads(holder.line()) == {"acquired": True, "epoch": 1, "holder": None}
    store = FileLockStore(tmp_path)
    try:
        busy = store.acquire(key, "recover", TTL, now=0)
        assert (busy.acquired, busy.epoch, busy.holder) == (False, 1, "owner:run_1")
        assert holds(store, key, "owner:run_1", 1, now=0)
        os.kill(holder.proc.pid, signal.SIGKILL)
        assert holder.proc.wait(timeout=15) == -signal.SIGKILL
        assert not holds(store, key, "owner:run_1", 1, now=0)  # the OS dropped its flock
        taken = store.acquire(key, "recover", TTL, now=0)
        assert taken.acquired and taken.epoch == 2 and taken.previous_owner == "owner:run_1"
    finally:
        store.close()


# -- the factory and the engine ------------------------------------------------------


def test_the_factory_opens_each_backend(tmp_path: Path) -> None:
    assert isinstance(open_lock_store("memory", directory=tmp_path), MemoryLockStore)
    file_store = open_lock_store("file", directory=tmp_path / ".locks")
    assert isinstance(file_store, FileLockStore) and file_store.directory == tmp_path / ".locks"
    elsewhere = open_lock_store(f"file:{tmp_path / 'shared'}", directory=tmp_path)
    assert isinstance(elsewhere, FileLockStore)
    assert elsewhere.directory == tmp_path / "shared"


def test_the_factory_opens_a_redis_store(tmp_path: Path, redis_url: str) -> None:
    redis_store = open_lock_store(redis_url, directory=tmp_path)
    assert isinstance(redis_store, RedisLockStore)
    redis_store.close()


@pytest.mark.parametrize("spec", ["", "mem", "redis", "http://127.0.0.1:6379/0", "File"])
def test_an_unknown_lock_store_is_a_usage_error_listing_the_forms(
    spec: str, tmp_path: Path
) -> None:
    with pytest.raises(UsageError, match=r"expected one of: memory, file, .*redis://HOST:PORT/DB"):
        open_lock_store(spec, directory=tmp_path)


@pytest.mark.parametrize("backend", ["file", "redis"])
def test_a_rollback_takes_and_releases_a_real_lock(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, workflow_id: str
) -> None:
    spec = request.getfixturevalue("redis_url") if backend == "redis" else "file"
    store = open_lock_store(spec, directory=tmp_path)
    wf = workflow(WORKFLOW.replace("workflow: order", f"workflow: {workflow_id}"))
    for epoch in (1, 2):  # the same run rolled back again: a higher fencing token
        _, records = run({"type": "fatal", "step": "ship"}, wf=wf, lock_store=store)
        assert "lock_busy" not in events(records)
        assert of(records, "lock_acquired")[0]["epoch"] == epoch
        assert of(records, "lock_released")[0]["released"] is True
        assert store.state(lock_key(workflow_id, "run_t")) is None
    if isinstance(store, FileLockStore | RedisLockStore):
        store.close()
