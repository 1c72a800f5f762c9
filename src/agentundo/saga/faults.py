"""The fault plan of a drill, and the injector that applies it around any executor."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from agentundo.model.scenario import Fault, FaultType, Phase
from agentundo.saga.clock import Clock
from agentundo.saga.executor import Call, CallKind, Executor, Outcome, Result
from agentundo.saga.simulate import SimulatedExecutor


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
    :class:`SimulatedExecutor` to plant the conflicting payload.
    """

    def __init__(self, inner: Executor, plan: FaultPlan, clock: Clock) -> None:
        self.inner = inner
        self.plan = plan
        self.clock = clock

    def execute(self, call: Call) -> Result:
        if call.kind is CallKind.FORWARD:
            return self._forward(call)
        return self._compensation(call)

    def _forward(self, call: Call) -> Result:
        step = call.step_id
        transient = self.plan.at(FaultType.TRANSIENT, step)
        if transient is not None and call.attempt <= (transient.count or 0):
            return Result(
                outcome=Outcome.TRANSIENT,
                error=f"injected transient failure {call.attempt} of {transient.count}",
                detail={"injected": "transient"},
            )
        if self.plan.at(FaultType.FATAL, step) is not None:
            return Result(
                outcome=Outcome.FATAL,
                error="injected fatal failure",
                detail={"injected": "fatal"},
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
            )
        failure = self.plan.at(FaultType.COMPENSATION_FAILURE, step)
        if failure is not None and (failure.count is None or call.attempt <= failure.count):
            return Result(
                outcome=Outcome.FATAL if failure.count is None else Outcome.TRANSIENT,
                error="injected compensation failure",
                detail={"injected": "compensation_failure"},
            )
        if (
            self.plan.at(FaultType.KEY_REUSE, step) is not None
            and call.idempotency_key is not None
            and isinstance(self.inner, SimulatedExecutor)
        ):
            self.inner.world.plant_key(call.idempotency_key, "another operation's payload")
        result = self.inner.execute(call)
        if self.plan.at(FaultType.DUPLICATE_DELIVERY, step) is not None:
            second = self.inner.execute(call)
            result = replace(
                result,
                detail={
                    **result.detail,
                    "injected": "duplicate_delivery",
                    "deliveries": 2,
                    "second_applied": second.applied,
                },
            )
        return result
