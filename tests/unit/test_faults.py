"""saga/faults.py: the fault plan, contradictions, and the wrappers that apply faults at
their seams (executor, policy gate, lock store) without fault hooks in the real parts."""

from __future__ import annotations

from typing import Any

import pytest

from agentundo.evidence.events import Event, FollowUp
from agentundo.model.scenario import Fault, FaultType, Phase
from agentundo.saga.clock import VirtualClock
from agentundo.saga.context import RunContext
from agentundo.saga.executor import Call, CallKind, Outcome, Result
from agentundo.saga.faults import (
    OTHER_RUNNER,
    FaultInjector,
    FaultPlan,
    FaultyGate,
    FaultyLockStore,
    contradictions,
)
from agentundo.saga.gate import GateAnswer, GateRequest
from agentundo.saga.lock import MemoryLockStore, holds
from agentundo.saga.setup import DrillSetup, Stop
from tests.saga_helpers import catalog, policy, workflow

KEY = "saga:checkout:lock"


def _faults(*specs: dict[str, object]) -> list[Fault]:
    return [Fault.model_validate(s) for s in specs]


@pytest.mark.parametrize(
    ("specs", "pairs"),
    [
        ([{"type": "fatal", "step": "a"}, {"type": "partial", "step": "a"}], [(0, 1)]),
        ([{"type": "fatal", "step": "a"}, {"type": "partial", "step": "b"}], []),
        ([{"type": "fatal", "step": "a"}, {"type": "fatal", "step": "a"}], []),
        (
            [
                {"type": "transient", "step": "a", "count": 2},
                {"type": "transient", "step": "a", "count": 3},
            ],
            [(0, 1)],
        ),
        (
            [{"type": "transient", "step": "a", "count": 2}, {"type": "fatal", "step": "a"}],
            [],
        ),
        (
            [
                {"type": "compensation_timeout", "step": "a"},
                {"type": "compensation_failure", "step": "a"},
            ],
            [(0, 1)],
        ),
        (
            [
                {"type": "compensation_denied", "step": "a"},
                {"type": "duplicate_delivery", "step": "a"},
                {"type": "key_reuse", "step": "a"},
            ],
            [(0, 1), (0, 2)],
        ),
        ([{"type": "lock_held"}, {"type": "lock_expires"}], [(0, 1)]),
        ([{"type": "lock_held", "expired": True}, {"type": "lock_expires"}], []),
        ([{"type": "lock_held"}, {"type": "lock_held", "expired": True}], [(0, 1)]),
        (
            [
                {"type": "policy_unavailable", "phase": "forward"},
                {"type": "policy_unavailable", "phase": "compensation"},
            ],
            [],
        ),
    ],
)
def test_contradictions(specs: list[dict[str, object]], pairs: list[tuple[int, int]]) -> None:
    assert [(c.first, c.second) for c in contradictions(_faults(*specs))] == pairs


def _plan(*specs: dict[str, object]) -> FaultPlan:
    return FaultPlan.of(_faults(*specs))


class _Recorder:
    """An executor that answers OK and remembers every call."""

    def __init__(self, applied: bool | None = True) -> None:
        self.calls: list[Call] = []
        self.applied = applied

    def execute(self, call: Call) -> Result:
        self.calls.append(call)
        return Result(outcome=Outcome.OK, applied=self.applied, detail={"status": 200})


def _call(kind: CallKind, step: str = "a", attempt: int = 1) -> Call:
    return Call(
        kind=kind,
        run_id="r",
        workflow_id="w",
        job_id="job_1",
        step_id=step,
        step_index=0,
        topic="t",
        attempt=attempt,
        timeout_s=2.0,
    )


# -- the executor's seam -------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "outcome", "calls"),
    [
        ({"type": "fatal", "step": "a"}, Outcome.FATAL, 0),
        ({"type": "transient", "step": "a", "count": 1}, Outcome.TRANSIENT, 0),
        ({"type": "partial", "step": "a"}, Outcome.FATAL, 1),
    ],
)
def test_a_forward_fault_is_named_in_the_result(
    spec: dict[str, object], outcome: Outcome, calls: int
) -> None:
    inner = _Recorder()
    result = FaultInjector(inner, _plan(spec), VirtualClock()).execute(_call(CallKind.FORWARD))
    assert result.outcome is outcome
    assert result.injected is FaultType(str(spec["type"]))
    assert result.detail["injected"] == spec["type"]  # what the evidence shows
    assert len(inner.calls) == calls  # only partial lets the effect land


def test_a_call_without_a_fault_is_the_executors_own_answer() -> None:
    inner = _Recorder()
    plan = _plan({"type": "fatal", "step": "b"}, {"type": "compensation_failure", "step": "b"})
    injector = FaultInjector(inner, plan, VirtualClock())
    for kind in CallKind:
        result = injector.execute(_call(kind))
        assert result.outcome is Outcome.OK and result.injected is None
    assert len(inner.calls) == 2


def test_a_partial_fault_over_a_real_failure_reports_the_real_failure() -> None:
    class Failing:
        def execute(self, call: Call) -> Result:
            return Result(outcome=Outcome.FATAL, error="HTTP 404")

    result = FaultInjector(
        Failing(), _plan({"type": "partial", "step": "a"}), VirtualClock()
    ).execute(_call(CallKind.FORWARD))
    assert result.error == "HTTP 404" and result.injected is None


def test_duplicate_delivery_delivers_twice_and_says_what_the_second_did() -> None:
    inner = _Recorder(applied=False)
    plan = _plan({"type": "duplicate_delivery", "step": "a"})
    result = FaultInjector(inner, plan, VirtualClock()).execute(_call(CallKind.COMPENSATION))
    assert len(inner.calls) == 2
    assert result.injected is FaultType.DUPLICATE_DELIVERY
    assert result.detail["deliveries"] == 2 and result.detail["second_applied"] is False


def test_a_compensation_timeout_waits_the_attempts_timeout_on_the_clock() -> None:
    clock = VirtualClock()
    before = clock.now()
    plan = _plan({"type": "compensation_timeout", "step": "a"})
    result = FaultInjector(_Recorder(), plan, clock).execute(_call(CallKind.COMPENSATION))
    assert result.outcome is Outcome.TRANSIENT and clock.now() - before == 2.0


# -- the gate's seam -----------------------------------------------------------------


class _Allow:
    def __init__(self) -> None:
        self.asked = 0

    def check(self, request: GateRequest) -> GateAnswer:
        self.asked += 1
        return GateAnswer(True, "allowed by the real gate")


def _gate(plan: FaultPlan, records: list[dict[str, Any]]) -> tuple[FaultyGate, _Allow]:
    setup = DrillSetup(workflow=workflow(), catalog=catalog(), policy=policy(), plan=plan)
    ctx = RunContext(setup, "run_1", records.append, VirtualClock(), Stop())
    inner = _Allow()
    return FaultyGate(inner, plan, ctx), inner


def _request(phase: Phase, step: str = "charge") -> GateRequest:
    steps = {s.id: s for s in workflow().steps}
    return GateRequest(steps[step], "payments.charge", None, {"job_id": "job_1"}, phase)


def test_policy_unavailable_fails_closed_without_asking_the_real_gate() -> None:
    records: list[dict[str, Any]] = []
    gate, inner = _gate(_plan({"type": "policy_unavailable", "phase": "forward"}), records)
    answer = gate.check(_request(Phase.FORWARD))
    assert not answer.allowed and answer.category is FollowUp.POLICY_UNAVAILABLE
    assert inner.asked == 0
    assert [r["event"] for r in records] == [Event.POLICY_UNAVAILABLE]
    assert gate.check(_request(Phase.COMPENSATION)).allowed  # the other phase is up
    assert inner.asked == 1


def test_compensation_denied_denies_only_the_compensation_of_its_step() -> None:
    records: list[dict[str, Any]] = []
    gate, inner = _gate(_plan({"type": "compensation_denied", "step": "charge"}), records)
    denied = gate.check(_request(Phase.COMPENSATION))
    assert not denied.allowed and denied.rule_id == "fault:compensation_denied"
    assert records[-1]["injected"] is True and records[-1]["decision"] == "deny"
    assert gate.check(_request(Phase.FORWARD)).allowed
    assert inner.asked == 1


# -- the lock's seam -----------------------------------------------------------------


def test_lock_held_plants_the_other_runner_before_the_first_acquire() -> None:
    store = FaultyLockStore(MemoryLockStore(), _plan({"type": "lock_held"}), ttl_s=120)
    got = store.acquire(KEY, "owner:run_1", 120, now=1000)
    assert not got.acquired and got.holder == OTHER_RUNNER


def test_an_expired_held_lock_is_taken_over() -> None:
    store = FaultyLockStore(
        MemoryLockStore(), _plan({"type": "lock_held", "expired": True}), ttl_s=120
    )
    got = store.acquire(KEY, "owner:run_1", 120, now=1000)
    assert got.acquired and got.previous_owner == OTHER_RUNNER and got.epoch == 2


def test_lock_expires_after_the_given_entries_and_the_owner_may_still_release() -> None:
    inner = MemoryLockStore()
    store = FaultyLockStore(inner, _plan({"type": "lock_expires", "after": 1}), ttl_s=120)
    got = store.acquire(KEY, "me", 120, now=0)
    store.before_entry(KEY, "me", 0, now=1)
    assert holds(store, KEY, "me", got.epoch, now=2)
    store.before_entry(KEY, "me", 1, now=3)
    assert not holds(store, KEY, "me", got.epoch, now=3)
    state = store.state(KEY)
    assert state is not None and state.owner == "me"  # expired, not taken
    assert store.release(KEY, "me") is True
    assert inner.state(KEY) is None


def test_a_lock_taken_over_fences_the_old_owner_out() -> None:
    inner = MemoryLockStore()
    plan = _plan({"type": "lock_expires", "taken_over": True})
    store = FaultyLockStore(inner, plan, ttl_s=120)
    got = store.acquire(KEY, "me", 120, now=0)
    store.before_entry(KEY, "me", 0, now=5)
    state = inner.state(KEY)
    assert state is not None and state.owner == OTHER_RUNNER and state.epoch == got.epoch + 1
    assert not holds(store, KEY, "me", got.epoch, now=5)
    assert store.release(KEY, "me") is False
