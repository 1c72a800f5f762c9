"""saga/lock.py: the rollback lock's key, TTL, epochs (fencing) and compare-and-delete."""

from __future__ import annotations

from agentundo.saga.lock import MemoryLockStore, holds, lock_key

KEY = lock_key("wf", "run_1")


def test_lock_is_released_only_by_its_owner() -> None:
    store = MemoryLockStore()
    key = lock_key("wf", "run_1")
    assert key == "saga:wf:run_1:lock"
    got = store.acquire(key, "a", 120, now=0)
    assert got.acquired and got.epoch == 1
    busy = store.acquire(key, "b", 120, now=60)
    assert not busy.acquired and busy.holder == "a"
    assert store.release(key, "b") is False
    assert holds(store, key, "a", 1, now=60)
    assert store.release(key, "a") is True
    assert store.state(key) is None


def test_an_expired_lock_can_be_taken_over_and_fences_the_old_owner() -> None:
    store = MemoryLockStore()
    key = lock_key("wf", "run_1")
    store.acquire(key, "a", 120, now=0)
    taken = store.acquire(key, "b", 120, now=120.5)
    assert taken.acquired and taken.epoch == 2 and taken.previous_owner == "a"
    assert not holds(store, key, "a", 1, now=121)
    assert store.release(key, "a") is False
    assert holds(store, key, "b", 2, now=121)


def test_the_key_names_the_workflow() -> None:
    assert lock_key("orders", "run_1") == "saga:orders:run_1:lock"
    assert lock_key("orders", "run_1") != lock_key("orders", "run_2")


def test_a_lock_lives_exactly_its_ttl() -> None:
    store = MemoryLockStore()
    store.acquire(KEY, "a", 10, now=100)
    assert not store.acquire(KEY, "b", 10, now=109.999).acquired
    assert holds(store, KEY, "a", 1, now=109.999)
    assert not holds(store, KEY, "a", 1, now=110)  # expires_at is exclusive
    assert store.acquire(KEY, "b", 10, now=110).acquired


def test_epochs_increase_on_every_grant_even_after_a_release() -> None:
    store = MemoryLockStore()
    epochs = []
    for now, owner in enumerate(("a", "b", "a", "c")):
        got = store.acquire(KEY, owner, 5, now=now * 100)
        assert got.acquired
        epochs.append(got.epoch)
        if owner != "b":
            assert store.release(KEY, owner)
    assert epochs == [1, 2, 3, 4]
    assert store.acquire(lock_key("other", "run_1"), "a", 5, now=0).epoch == 1  # per key


def test_a_busy_acquire_changes_nothing() -> None:
    store = MemoryLockStore()
    store.acquire(KEY, "a", 60, now=0)
    busy = store.acquire(KEY, "b", 60, now=1)
    assert (busy.acquired, busy.epoch, busy.holder) == (False, 1, "a")
    state = store.state(KEY)
    assert state is not None and (state.owner, state.epoch, state.expires_at) == ("a", 1, 60)


def test_release_is_compare_and_delete() -> None:
    store = MemoryLockStore()
    assert store.release(KEY, "a") is False  # nothing to release
    store.acquire(KEY, "a", 60, now=0)
    assert store.release(KEY, "b") is False
    assert store.state(KEY) is not None
    assert store.release(KEY, "a") is True
    assert store.release(KEY, "a") is False  # once
    got = store.acquire(KEY, "b", 60, now=1)
    assert got.acquired and got.previous_owner is None  # a released lock has no owner left


def test_an_expired_lock_is_kept_until_taken_over_and_the_owner_may_still_release_it() -> None:
    store = MemoryLockStore()
    store.acquire(KEY, "a", 10, now=0)
    state = store.state(KEY)
    assert state is not None and state.expires_at == 10
    assert not holds(store, KEY, "a", 1, now=50)
    assert store.state(KEY) is not None  # state() answers expired entries too
    assert store.release(KEY, "a") is True


def test_holds_checks_owner_epoch_and_time() -> None:
    store = MemoryLockStore()
    assert not holds(store, KEY, "a", 1, now=0)
    store.acquire(KEY, "a", 60, now=0)
    assert holds(store, KEY, "a", 1, now=0)
    assert not holds(store, KEY, "b", 1, now=0)
    assert not holds(store, KEY, "a", 2, now=0)
    assert not holds(store, KEY, "a", 1, now=60)
