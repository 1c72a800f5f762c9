"""What the engine asks an executor to do, and what comes back.

The engine owns retries, backoff, the policy gate, locking, fencing and evidence; an
executor only performs one call (a forward step or a compensation) and classifies the
outcome. Faults from a drill's plan wrap the executor (:mod:`agentundo.saga.faults`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from agentundo.model.scenario import FaultType


class CallKind(StrEnum):
    FORWARD = "forward"
    COMPENSATION = "compensation"


class Outcome(StrEnum):
    OK = "ok"
    TRANSIENT = "transient"  # retried with backoff
    FATAL = "fatal"  # no retry: the step is FAILED_FATAL
    REJECTED = "rejected"  # the resource refused a stale fencing token; never retried


@dataclass(frozen=True, slots=True, kw_only=True)
class Call:
    """One attempt at one dispatch."""

    kind: CallKind
    run_id: str
    workflow_id: str
    job_id: str
    step_id: str
    step_index: int
    topic: str
    params: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    attempt: int = 1
    for_topic: str | None = None  # for a compensation: the forward topic it undoes
    timeout_s: float | None = None
    env: str = "production"
    lock_owner: str | None = None  # compensation: the rollback lock's owner token
    epoch: int | None = None  # compensation: the lock epoch, a fencing token
    response: dict[str, Any] | None = None
    """compensation: the fields of the forward call's answer its templates use."""
    rollback: bool = False
    """Made by the rollback (a compensation, or a forward call asked again): a first stop
    request does not abandon it, only a halt does."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    """How an attempt ended; ``detail`` goes into evidence (status, timing), redacted."""

    outcome: Outcome
    error: str | None = None
    retry_after_s: float | None = None
    # compensation: whether there was something to undo; a failed forward call: True when
    # its effect landed all the same (a ``partial`` fault)
    applied: bool | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    injected: FaultType | None = None
    """The drill fault that decided this outcome (None: the executor's own answer)."""
    sent: bool = True
    """Whether the call reached the service (False: refused before sending, or a fault
    injected before the call): only a sent call can have had an effect."""
    replayed: bool = False
    """The service answered from its idempotency memory and applied nothing."""
    response: dict[str, Any] | None = None
    """A forward call's JSON answer (an object), for compensations that name its fields.
    Not evidence as it is: the engine records only the fields templates use."""


class Executor(Protocol):
    """Performs calls; must never raise for an ordinary failure (return a Result)."""

    def execute(self, call: Call) -> Result: ...
