"""Drill scenarios: the faults to inject into one workflow run and what must happen then.

A scenario is the fourth file format (``kind: scenario``); a weekly drill runs one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from agentundo.model.common import Duration, Name, Strict


class FaultType(StrEnum):
    """Every fault a drill can inject."""

    FATAL = "fatal"  # the step fails with no retry; nothing landed
    PARTIAL = "partial"  # the step's effect lands, then it fails fatally
    TRANSIENT = "transient"  # the step fails transiently ``count`` times, then succeeds
    COMPENSATION_FAILURE = "compensation_failure"  # fails ``count`` times, or for good
    COMPENSATION_TIMEOUT = "compensation_timeout"  # every attempt hangs until its timeout
    COMPENSATION_DENIED = "compensation_denied"  # the policy gate denies the compensation
    DUPLICATE_DELIVERY = "duplicate_delivery"  # the compensation is delivered twice
    KEY_REUSE = "key_reuse"  # another payload already used the compensation's key
    LOCK_HELD = "lock_held"  # another runner holds the rollback lock (``expired``: stale)
    LOCK_EXPIRES = "lock_expires"  # the lock expires after ``after`` compensations
    POLICY_UNAVAILABLE = "policy_unavailable"  # the policy engine cannot be reached


class Seam(StrEnum):
    """Where a fault acts: the wrapper that applies it sits around this part of the engine."""

    FORWARD_CALL = "forward_call"  # the executor, for a forward step
    COMPENSATION_CALL = "compensation_call"  # the executor, for a compensation
    GATE = "gate"  # the policy gate
    LOCK = "lock"  # the workflow's rollback lock


class Reached(StrEnum):
    """What the run must get to for a fault to have been rehearsed."""

    DISPATCHED = "dispatched"  # its step was dispatched (a step that never ran has no effect)
    GATE = "gate"  # its step reached the gate of the fault's phase
    ROLLBACK = "rollback"  # a lock fault: acts on the rollback, names no step


class StepNaming(StrEnum):
    """Whether a fault names the step it hits."""

    REQUIRED = "required"
    OPTIONAL = "optional"  # no step: every step
    FORBIDDEN = "forbidden"  # the fault is about the workflow, not a step


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """Everything the model, the drill's checks, a sweep and the verdict know of one fault type.

    Adding a fault type is one entry in :data:`FAULT_SPECS` plus the hook that applies it
    at its seam (see ``docs/architecture.md``).
    """

    type: FaultType
    seam: Seam
    step: StepNaming
    reached: Reached
    settings: frozenset[str] = frozenset()
    """The optional settings (``count``, ``phase``, ...) that mean something for it."""
    required: frozenset[str] = frozenset()
    """Settings it cannot do without."""
    needs_compensation: bool = False
    """It acts on the step's compensation, so a step without one makes it meaningless."""
    ends_forward: bool = False
    """It fails its step for good: a sweep replaces it with the failure it injects."""


def _spec(
    kind: FaultType,
    seam: Seam,
    *,
    step: StepNaming = StepNaming.REQUIRED,
    reached: Reached = Reached.DISPATCHED,
    settings: tuple[str, ...] = (),
    required: tuple[str, ...] = (),
    needs_compensation: bool = False,
    ends_forward: bool = False,
) -> FaultSpec:
    return FaultSpec(
        type=kind,
        seam=seam,
        step=step,
        reached=reached,
        settings=frozenset(settings),
        required=frozenset(required),
        needs_compensation=needs_compensation,
        ends_forward=ends_forward,
    )


_COMP = Seam.COMPENSATION_CALL
FAULT_SPECS: dict[FaultType, FaultSpec] = {
    spec.type: spec
    for spec in (
        _spec(FaultType.FATAL, Seam.FORWARD_CALL, ends_forward=True),
        _spec(FaultType.PARTIAL, Seam.FORWARD_CALL, ends_forward=True),
        _spec(FaultType.TRANSIENT, Seam.FORWARD_CALL, settings=("count",), required=("count",)),
        _spec(FaultType.COMPENSATION_FAILURE, _COMP, settings=("count",), needs_compensation=True),
        _spec(FaultType.COMPENSATION_TIMEOUT, _COMP, needs_compensation=True),
        _spec(FaultType.COMPENSATION_DENIED, Seam.GATE, needs_compensation=True),
        _spec(FaultType.DUPLICATE_DELIVERY, _COMP, needs_compensation=True),
        _spec(FaultType.KEY_REUSE, _COMP, needs_compensation=True),
        _spec(
            FaultType.LOCK_HELD,
            Seam.LOCK,
            step=StepNaming.FORBIDDEN,
            reached=Reached.ROLLBACK,
            settings=("expired",),
        ),
        _spec(
            FaultType.LOCK_EXPIRES,
            Seam.LOCK,
            step=StepNaming.FORBIDDEN,
            reached=Reached.ROLLBACK,
            settings=("after", "taken_over"),
        ),
        _spec(
            FaultType.POLICY_UNAVAILABLE,
            Seam.GATE,
            step=StepNaming.OPTIONAL,
            reached=Reached.GATE,
            settings=("phase",),
        ),
    )
}
"""One :class:`FaultSpec` per fault type."""

STEP_FAULTS = frozenset(k for k, s in FAULT_SPECS.items() if s.step is StepNaming.REQUIRED)
"""Faults that name the step they hit (``policy_unavailable`` may, the lock faults do not)."""

WORKFLOW_FAULTS = frozenset(k for k, s in FAULT_SPECS.items() if s.step is StepNaming.FORBIDDEN)
"""Faults about the workflow's rollback lock: they name no step (a drill refuses one that does)."""

COMPENSATION_FAULTS = frozenset(k for k, s in FAULT_SPECS.items() if s.needs_compensation)
"""Faults that act on a step's compensation."""

FAULT_SETTINGS = ("count", "phase", "after", "taken_over", "expired")
"""The optional settings of a fault; each applies to the types whose spec lists it."""


class Phase(StrEnum):
    """Which gate a ``policy_unavailable`` fault hits."""

    FORWARD = "forward"
    COMPENSATION = "compensation"
    ANY = "any"


class FailMode(StrEnum):
    """What the gate does when the policy engine is unavailable."""

    CLOSED = "closed"  # do not run; send to manual follow-up
    OPEN = "open"  # run as if allowed, and record it


class Fault(Strict):
    """One injected fault."""

    type: FaultType
    step: Name | None = None
    count: int | None = Field(default=None, ge=1)
    phase: Phase = Phase.ANY
    after: int = Field(default=0, ge=0)
    taken_over: bool = False
    expired: bool = False
    description: str | None = None

    @model_validator(mode="after")
    def _step_named(self) -> Fault:
        if self.type in STEP_FAULTS and self.step is None:
            raise ValueError(f"a {self.type} fault must name its 'step'")
        spec = FAULT_SPECS[self.type]
        for name in sorted(spec.required):
            if getattr(self, name) is None:
                raise ValueError(f"a {self.type} fault must give its '{name}'")
        for name in FAULT_SETTINGS:
            if name in self.model_fields_set and name not in spec.settings:
                types = sorted(k for k, s in FAULT_SPECS.items() if name in s.settings)
                where = " and ".join(types)
                raise ValueError(
                    f"'{name}' does not apply to a {self.type} fault (only to {where})"
                )
        return self


class Settings(Strict):
    """Engine settings a scenario may change (every one has a default).

    A drill refuses a duration longer than 168h (7 days) at its position.
    """

    max_retries: int | None = Field(default=None, ge=0)
    backoff_initial: Duration | None = None
    backoff_max: Duration | None = None
    approval_timeout: Duration | None = None
    lock_ttl: Duration | None = None
    rollback_window: Duration | None = None
    compensation_timeout: Duration | None = None
    compensation_max_retries: int | None = Field(default=None, ge=0)
    compensate_failed_step: bool | None = None
    derive_compensation_keys: bool | None = None
    policy_fail_mode: FailMode | None = None
    deadline: Duration | None = None


class Expect(Strict):
    """What must be true after the run for the drill to pass."""

    status: Literal["SUCCEEDED", "FAILED_FATAL", "DENIED"] | None = None
    rollback_triggered: bool | None = None
    compensated: list[Name] | None = None
    manual: list[Name] | None = None

    @model_validator(mode="after")
    def _each_step_once(self) -> Expect:
        for name in ("compensated", "manual"):
            steps = getattr(self, name) or []
            if len(set(steps)) != len(steps):
                raise ValueError(f"'{name}' names a step more than once")
        return self


class Scenario(Strict):
    """A versioned drill scenario."""

    version: Literal["v1"]
    kind: Literal["scenario"] | None = None
    scenario: Name
    description: str | None = None
    workflow: Name | None = None
    seed: int | None = Field(default=None, ge=0)
    clock: Literal["virtual", "real"] | None = None
    approvals: list[Name] = Field(default_factory=list)
    settings: Settings = Settings()
    faults: list[Fault] = Field(default_factory=list)
    expect: Expect | None = None
