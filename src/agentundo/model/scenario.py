"""Drill scenarios: the faults to inject into one workflow run and what must happen then.

A scenario is the fourth file format (``kind: scenario``); a weekly drill runs one.
"""

from __future__ import annotations

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


STEP_FAULTS = frozenset(
    {
        FaultType.FATAL,
        FaultType.PARTIAL,
        FaultType.TRANSIENT,
        FaultType.COMPENSATION_FAILURE,
        FaultType.COMPENSATION_TIMEOUT,
        FaultType.COMPENSATION_DENIED,
        FaultType.DUPLICATE_DELIVERY,
        FaultType.KEY_REUSE,
    }
)
"""Faults that name the step they hit (``policy_unavailable`` may, the lock faults do not)."""

WORKFLOW_FAULTS = frozenset({FaultType.LOCK_HELD, FaultType.LOCK_EXPIRES})
"""Faults about the workflow's rollback lock: they name no step (a drill refuses one that does)."""


class Phase(StrEnum):
    """Which gate a ``policy_unavailable`` fault hits."""

    FORWARD = "forward"
    COMPENSATION = "compensation"
    ANY = "any"


class FailMode(StrEnum):
    """What the gate does when the policy engine is unavailable."""

    CLOSED = "closed"  # do not run; send to manual follow-up
    OPEN = "open"  # run as if allowed, and record it


_APPLIES_TO: dict[str, frozenset[FaultType]] = {
    "count": frozenset({FaultType.TRANSIENT, FaultType.COMPENSATION_FAILURE}),
    "phase": frozenset({FaultType.POLICY_UNAVAILABLE}),
    "after": frozenset({FaultType.LOCK_EXPIRES}),
    "taken_over": frozenset({FaultType.LOCK_EXPIRES}),
    "expired": frozenset({FaultType.LOCK_HELD}),
}
"""The fault types each optional setting means something for; on any other it is refused."""


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
        if self.type is FaultType.TRANSIENT and self.count is None:
            raise ValueError("a transient fault must give its 'count'")
        for name, types in _APPLIES_TO.items():
            if name in self.model_fields_set and self.type not in types:
                where = " and ".join(sorted(types))
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
