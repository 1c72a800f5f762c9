"""What a drill run reports: per step, per compensation, per follow-up, the ledger, the verdict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agentundo.evidence.events import (
    CompensationOutcome,
    FollowUp,
    LedgerState,
    RunStatus,
    StepState,
    Verdict,
)


@dataclass(slots=True)
class StepReport:
    step_id: str
    index: int
    topic: str
    job_id: str | None = None
    state: StepState = StepState.NOT_RUN
    decision: str | None = None
    rule_id: str | None = None
    attempts: int = 0
    error: str | None = None
    landed: bool = False  # failed, but its effect landed first (a partial failure)

    @property
    def stopped(self) -> bool:
        """Whether the run stopped at this step (it ran and did not succeed)."""
        return self.state not in (StepState.SUCCEEDED, StepState.NOT_RUN)


@dataclass(slots=True)
class CompensationReport:
    """The final outcome of one stack entry (exactly one per entry)."""

    step_id: str
    for_topic: str
    topic: str | None
    job_id: str | None
    idempotency_key: str | None
    outcome: CompensationOutcome
    applied: bool | None = None
    attempts: int = 0
    dispatched: bool = False
    deliveries: int = 0
    applied_twice: bool = False  # a second delivery was applied again by the service


@dataclass(frozen=True, slots=True)
class FollowUpReport:
    step_id: str
    topic: str
    category: FollowUp
    reason: str
    mitigation: str | None = None
    injected: bool = False  # a fault the drill injected caused it


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """How one step's effect ended (see :class:`LedgerState`)."""

    step_id: str
    topic: str
    applied: int
    undone: int
    state: LedgerState


@dataclass(slots=True)
class DrillResult:
    run_id: str
    workflow_id: str
    env: str
    status: RunStatus
    verdict: Verdict
    rollback_triggered: bool
    steps: list[StepReport]
    compensations: list[CompensationReport]
    followups: list[FollowUpReport]
    ledger: list[LedgerRow]
    problems: list[str]
    summary: dict[str, Any]
    events: int = 0
    lock_expired: bool = False
