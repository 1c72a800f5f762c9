"""The fault plan of a drill, and the wrappers that apply it at its seams.

Each fault type's :class:`~agentundo.model.scenario.FaultSpec` names its seam; a fault is
applied by a wrapper around the real part at that seam, the way an interceptor wraps the
next handler: :class:`FaultInjector` around the executor, :class:`FaultyGate` around the
policy gate, :class:`FaultyLockStore` around the lock store. The real parts have no
fault hooks; :func:`wrap` builds the wrappers a plan needs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from agentundo.evidence.events import Event, FollowUp
from agentundo.model.common import Decision
from agentundo.model.scenario import FailMode, Fault, FaultType, Phase
from agentundo.saga.clock import Clock
from agentundo.saga.executor import Call, CallKind, Executor, Outcome, Result
from agentundo.saga.lock import Acquisition, LockState, LockStore
from agentundo.saga.simulate import SimulatedExecutor

if TYPE_CHECKING:
    from agentundo.saga.context import RunContext
    from agentundo.saga.gate import Gate, GateAnswer, GateRequest

OTHER_RUNNER = "drill:other-runner"
"""The owner token the lock faults use for the runner that competes for the lock."""


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Faults indexed for the engine: by (type, step) and by type."""

    faults: tuple[Fault, ...] = ()
    _at: dict[tuple[FaultType, str | None], Fault] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )
    _first: dict[FaultType, Fault] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )
    _unavailable: list[Fault] = field(init=False, repr=False, compare=False, default_factory=list)

    def __post_init__(self) -> None:
        for fault in self.faults:  # the first fault of a kind (at a step) wins
            self._at.setdefault((fault.type, fault.step), fault)
            self._first.setdefault(fault.type, fault)
            if fault.type is FaultType.POLICY_UNAVAILABLE:
                self._unavailable.append(fault)

    @classmethod
    def of(cls, faults: Iterable[Fault]) -> FaultPlan:
        return cls(tuple(faults))

    def with_fault(self, fault: Fault) -> FaultPlan:
        return FaultPlan((*self.faults, fault))

    def at(self, kind: FaultType, step: str) -> Fault | None:
        """The first fault of ``kind`` aimed at ``step``."""
        return self._at.get((kind, step)) if self.faults else None

    def first(self, kind: FaultType) -> Fault | None:
        return self._first.get(kind) if self.faults else None

    def policy_unavailable(self, step: str, phase: Phase) -> bool:
        """Whether the policy engine is down for ``step``'s gate in ``phase``."""
        return any(
            (f.step is None or f.step == step) and f.phase in (Phase.ANY, phase)
            for f in self._unavailable
        )

    def steps(self) -> list[str]:
        return [f.step for f in self.faults if f.step is not None]


_DENIED = "the policy gate denies the compensation, so it is never dispatched and"
_EXCLUSIVE: dict[frozenset[FaultType], str] = {
    frozenset({FaultType.FATAL, FaultType.PARTIAL}): (
        "a fatal fault fails the step before its effect lands, a partial one after"
    ),
    frozenset({FaultType.COMPENSATION_TIMEOUT, FaultType.COMPENSATION_FAILURE}): (
        "every attempt of the compensation hangs until its timeout, so it cannot fail another way"
    ),
    **{
        frozenset({FaultType.COMPENSATION_DENIED, other}): f"{_DENIED} cannot {what}"
        for other, what in (
            (FaultType.COMPENSATION_FAILURE, "fail"),
            (FaultType.COMPENSATION_TIMEOUT, "time out"),
            (FaultType.DUPLICATE_DELIVERY, "be delivered twice"),
            (FaultType.KEY_REUSE, "meet a reused key"),
        )
    },
}
"""Pairs of faults that cannot both happen at one step: one would silently win."""


@dataclass(frozen=True, slots=True)
class Contradiction:
    """Faults ``first`` and ``second`` (indexes into the list) cannot both apply."""

    first: int
    second: int
    reason: str


def contradictions(faults: Sequence[Fault]) -> list[Contradiction]:
    """Every pair of faults of which only one could take effect.

    Two faults of one kind at one step with different settings (say transient counts 2
    and 5), the pairs in ``_EXCLUSIVE`` at one step, and a lock held (not expired) by
    another runner next to a lock that expires under this rollback, which never takes
    it. Identical repeats are harmless; ``policy_unavailable`` faults add up.
    """
    found: list[Contradiction] = []
    for j, second in enumerate(faults):
        for i, first in enumerate(faults[:j]):
            reason = _contradiction(first, second)
            if reason is not None:
                found.append(Contradiction(i, j, reason))
    return found


def _contradiction(a: Fault, b: Fault) -> str | None:
    kinds = frozenset({a.type, b.type})
    if kinds == {FaultType.LOCK_HELD, FaultType.LOCK_EXPIRES}:
        held = a if a.type is FaultType.LOCK_HELD else b
        if not held.expired:
            return (
                "another runner holds the lock, so this rollback never takes it and it "
                "cannot expire under it"
            )
        return None
    if a.step != b.step:
        return None
    if a.type is b.type:
        if a.type is FaultType.POLICY_UNAVAILABLE:
            return None
        settings = ("count", "phase", "after", "taken_over", "expired")
        if any(getattr(a, name) != getattr(b, name) for name in settings):
            return "the same fault is given twice with different settings; only one can apply"
        return None
    failure = next((f for f in (a, b) if f.type is FaultType.COMPENSATION_FAILURE), None)
    if failure is not None and failure.count is None:
        other = b if failure is a else a
        if other.type in (FaultType.DUPLICATE_DELIVERY, FaultType.KEY_REUSE):
            return (
                "the compensation fails for good (compensation_failure without count) "
                f"before it is delivered, so {other.type} never takes effect"
            )
    return _EXCLUSIVE.get(kinds)


class FaultInjector:
    """Wraps an executor and makes calls fail the way the plan says.

    Forward faults decide the outcome without calling the executor, except ``partial``,
    which lets the effect land first. ``duplicate_delivery`` delivers the same call twice
    (the engine sees one answer, as behind an at-least-once queue). ``key_reuse`` needs a
    :class:`SimulatedExecutor` to plant the conflicting payload. Every outcome a fault
    decides carries it in ``Result.injected``.
    """

    def __init__(self, inner: Executor, plan: FaultPlan, clock: Clock) -> None:
        self.inner = inner
        self.plan = plan
        self.clock = clock

    def execute(self, call: Call) -> Result:
        if call.kind is CallKind.FORWARD:
            return self._forward(call)
        return self._compensation(call)

    def describe(self, call: Call) -> dict[str, Any] | None:
        """The call as the wrapped executor would send it (for the intent record)."""
        describe = getattr(self.inner, "describe", None)
        return None if describe is None else describe(call)

    def _forward(self, call: Call) -> Result:
        step = call.step_id
        transient = self.plan.at(FaultType.TRANSIENT, step)
        if transient is not None and call.attempt <= (transient.count or 0):
            return Result(
                outcome=Outcome.TRANSIENT,
                error=f"injected transient failure {call.attempt} of {transient.count}",
                detail={"injected": "transient"},
                injected=FaultType.TRANSIENT,
                sent=False,
            )
        if self.plan.at(FaultType.FATAL, step) is not None:
            return Result(
                outcome=Outcome.FATAL,
                error="injected fatal failure",
                detail={"injected": "fatal"},
                injected=FaultType.FATAL,
                sent=False,
            )
        if self.plan.at(FaultType.PARTIAL, step) is not None:
            landed = self.inner.execute(call)
            if landed.outcome is not Outcome.OK:
                # The call failed for real (a 401, a 503, an unreachable endpoint): no effect
                # landed, so that failure is the truth; it is retried or fails as it would.
                return landed
            return Result(
                outcome=Outcome.FATAL,
                error="injected failure after the effect landed",
                applied=True,
                detail={**landed.detail, "injected": "partial"},
                injected=FaultType.PARTIAL,
                response=landed.response,
            )
        return self.inner.execute(call)

    def _compensation(self, call: Call) -> Result:
        step = call.step_id
        if self.plan.at(FaultType.COMPENSATION_TIMEOUT, step) is not None:
            waited = call.timeout_s or 0.0
            self.clock.sleep(waited)
            return Result(
                outcome=Outcome.TRANSIENT,
                error=f"no answer within {waited:g}s",
                detail={"injected": "compensation_timeout", "timed_out": True},
                injected=FaultType.COMPENSATION_TIMEOUT,
                sent=False,
            )
        failure = self.plan.at(FaultType.COMPENSATION_FAILURE, step)
        if failure is not None and (failure.count is None or call.attempt <= failure.count):
            return Result(
                outcome=Outcome.FATAL if failure.count is None else Outcome.TRANSIENT,
                error="injected compensation failure",
                detail={"injected": "compensation_failure"},
                injected=FaultType.COMPENSATION_FAILURE,
                sent=False,
            )
        planted = False
        if (
            self.plan.at(FaultType.KEY_REUSE, step) is not None
            and call.idempotency_key is not None
            and isinstance(self.inner, SimulatedExecutor)
        ):
            self.inner.world.plant_key(call.idempotency_key, "another operation's payload")
            planted = True
        result = self.inner.execute(call)
        if planted and result.outcome is not Outcome.OK:
            result = replace(result, injected=FaultType.KEY_REUSE)
        if self.plan.at(FaultType.DUPLICATE_DELIVERY, step) is not None:
            second = self.inner.execute(call)
            result = replace(
                result,
                detail={
                    **result.detail,
                    "injected": "duplicate_delivery",
                    "deliveries": 2,
                    "second_applied": applied_again(result, second),
                    "second": _answer(second),
                },
                injected=FaultType.DUPLICATE_DELIVERY,
            )
        return result


def applied_again(first: Result, second: Result) -> bool:
    """Whether the service applied a second delivery of the same call again.

    It did when its answer is not marked as a replay and either says it applied
    (``applied: true``) or names an effect other than the first answer's (a distinct
    ``id``/``*_id`` value): an idempotent service replays, or answers that nothing was
    left to do.
    """
    if second.replayed or second.outcome is not Outcome.OK:
        return False
    said = second.applied if second.response is None else second.response.get("applied")
    return said is True or _distinct_effect(first.response, second.response)


def _distinct_effect(first: dict[str, Any] | None, second: dict[str, Any] | None) -> bool:
    if not first or not second:
        return False
    ids = [k for k in second if k == "id" or k.endswith("_id")]
    return any(k in first and first[k] != second[k] for k in ids)


def _answer(result: Result) -> dict[str, Any]:
    """What evidence keeps of the second delivery's answer."""
    kept: dict[str, Any] = {"outcome": result.outcome.value, "applied": result.applied}
    kept.update((k, result.detail[k]) for k in ("status", "body", "replayed") if k in result.detail)
    return kept


class FaultyGate:
    """Wraps the policy gate: the policy engine is unreachable, or denies a compensation."""

    def __init__(self, inner: Gate, plan: FaultPlan, ctx: RunContext) -> None:
        self.inner = inner
        self.plan = plan
        self.ctx = ctx

    def check(self, request: GateRequest) -> GateAnswer:
        from agentundo.saga.gate import GateAnswer, gate_actor

        ctx, step = self.ctx, request.step.id
        actor = gate_actor(ctx, request)
        is_comp = request.is_compensation
        if self.plan.policy_unavailable(step, request.phase):
            mode = ctx.settings.policy_fail_mode
            ctx.emit(
                Event.POLICY_UNAVAILABLE,
                actor,
                **request.ids,
                fail_mode=mode.value,
                is_compensation=is_comp,
            )
            if mode is FailMode.CLOSED:
                return GateAnswer(
                    False,
                    "policy engine unavailable (fail-closed)",
                    None,
                    FollowUp.POLICY_UNAVAILABLE,
                    injected=True,
                )
            return GateAnswer(True, "policy engine unavailable (fail-open)", injected=True)
        if is_comp and self.plan.at(FaultType.COMPENSATION_DENIED, step) is not None:
            rule = "fault:compensation_denied"
            reason = "denied by the drill's compensation_denied fault"
            ctx.emit(
                Event.POLICY_DECISION,
                actor,
                **request.ids,
                decision=Decision.DENY.value,
                rule_id=rule,
                default=False,
                injected=True,
                is_compensation=True,
                approval_present=step in ctx.setup.approvals,
                reason=reason,
            )
            return GateAnswer(False, reason, rule, injected=True)
        return self.inner.check(request)


class FaultyLockStore:
    """Wraps the lock store: another runner holds the lock, or it is lost mid-rollback.

    ``lock_held`` plants the other runner's lock before this run's first acquire (already
    expired with ``expired: true``). ``lock_expires`` fires from :meth:`before_entry` once
    ``after`` stack entries are done: the lock looks expired from then on, or (with
    ``taken_over``) the other runner takes it. Only the store's own protocol is used.
    """

    def __init__(self, inner: LockStore, plan: FaultPlan, ttl_s: float) -> None:
        self.inner = inner
        self.ttl_s = ttl_s
        self._held = plan.first(FaultType.LOCK_HELD)
        self._expires = plan.first(FaultType.LOCK_EXPIRES)
        self._planted = False
        self.fired = False
        """Whether the lock was lost by this fault (a compensation fenced out is planned)."""
        self._expired: dict[str, tuple[str, int, float]] = {}

    def acquire(self, key: str, owner: str, ttl_s: float, now: float) -> Acquisition:
        if self._held is not None and not self._planted and owner != OTHER_RUNNER:
            self._planted = True
            at = now - self.ttl_s - 1 if self._held.expired else now
            self.inner.acquire(key, OTHER_RUNNER, self.ttl_s, at)
        return self.inner.acquire(key, owner, ttl_s, now)

    def release(self, key: str, owner: str) -> bool:
        self._expired.pop(key, None)
        return self.inner.release(key, owner)

    def renew(self, key: str, owner: str, ttl_s: float, now: float) -> bool:
        if key in self._expired:
            return False  # lost to the fault: it cannot be renewed
        return self.inner.renew(key, owner, ttl_s, now)

    def state(self, key: str) -> LockState | None:
        current = self.inner.state(key)
        lost = self._expired.get(key)
        if current is not None and lost is not None and lost[:2] == (current.owner, current.epoch):
            return LockState(current.owner, current.epoch, min(lost[2], current.expires_at))
        return current

    def before_entry(self, key: str, owner: str, done: int, now: float) -> None:
        """The rollback is about to handle its next entry, ``done`` entries in."""
        fault = self._expires
        if fault is None or self.fired or done < fault.after:
            return
        self.fired = True
        current = self.inner.state(key)
        if fault.taken_over:
            self.inner.release(key, owner)
            self.inner.acquire(key, OTHER_RUNNER, self.ttl_s, now)
        elif current is not None:
            self._expired[key] = (current.owner, current.epoch, now)


@dataclass(frozen=True, slots=True)
class Wrapped:
    """The run's executor, gate and lock store, each wrapped when the plan has faults there."""

    executor: Executor
    gate: Gate
    locks: LockStore
    faulty_locks: FaultyLockStore | None


def wrap(
    plan: FaultPlan, ctx: RunContext, executor: Executor, gate: Gate, locks: LockStore
) -> Wrapped:
    """Put the plan's faults around the real executor, gate and lock store."""
    faulty_locks = None
    if plan.first(FaultType.LOCK_HELD) or plan.first(FaultType.LOCK_EXPIRES):
        faulty_locks = FaultyLockStore(locks, plan, ctx.settings.lock_ttl_s)
    gated = plan.first(FaultType.POLICY_UNAVAILABLE) or plan.first(FaultType.COMPENSATION_DENIED)
    return Wrapped(
        executor=FaultInjector(executor, plan, ctx.clock),
        gate=FaultyGate(gate, plan, ctx) if gated else gate,
        locks=faulty_locks or locks,
        faulty_locks=faulty_locks,
    )
