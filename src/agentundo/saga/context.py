"""The state of one run that every part of the engine shares: ids, clock, stop, evidence, stack.

The forward path, the gate, the rollback and the verdict each take a :class:`RunContext`;
it owns the evidence stream (:meth:`RunContext.emit`), the job counter, the step reports,
the compensation stack and the follow-ups, so the parts never talk to each other directly.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agentundo.evidence.events import Event, FollowUp
from agentundo.model.catalog import Catalog, Topic
from agentundo.model.workflow import Step
from agentundo.saga.clock import Clock, rfc3339
from agentundo.saga.executor import Call, CallKind
from agentundo.saga.result import CompensationReport, FollowUpReport, StepReport
from agentundo.saga.setup import DrillSetup, Settings, Stop

Sink = Callable[[dict[str, Any]], object]
"""Where evidence records go (an ``EvidenceWriter.write`` or a list's ``append``)."""

ROLLBACK_MODE = "lifo_stack"


class Interrupted(Exception):
    """Raised inside the engine to unwind to the run's clean stop."""


@dataclass(slots=True)
class StackEntry:
    """One applied (or possibly applied) step on the compensation stack."""

    step: Step
    index: int
    spec: Topic | None
    failed: bool = False
    sent: bool = True  # one of its calls reached the service: its effect may have landed
    response: dict[str, Any] | None = None  # the answer's fields its compensation names
    resume: ResumedJob | None = None  # recovery: the compensation job a crash cut short
    forward: ForwardCall | None = None  # how the step was called (to ask it again)


@dataclass(slots=True)
class ForwardCall:
    """A forward step's job as sent: its id, idempotency key and attempts so far, and
    whether its answer came back (else asking again with the key may tell what landed)."""

    job_id: str
    idempotency_key: str | None
    attempts: int
    answered: bool


@dataclass(frozen=True, slots=True)
class ResumedJob:
    """A compensation job dispatched before a crash: recovery sends it again as itself."""

    job_id: str
    idempotency_key: str | None
    attempts: int


@dataclass(slots=True)
class Counts:
    """The summary's compensation counters."""

    dispatched: int = 0
    skipped: int = 0
    failed: int = 0
    followups: int = 0


@dataclass(slots=True)
class Trigger:
    """What the summary names when no step stopped the run: the last job and rule seen."""

    job: str | None = None
    last_rule: str | None = None


@dataclass(slots=True)
class RunContext:
    """One run's shared state; create one per run."""

    setup: DrillSetup
    run_id: str
    sink: Sink
    clock: Clock
    stop: Stop
    settings: Settings = field(init=False)
    rng: random.Random = field(init=False)
    agent: str = field(init=False)
    rollback_actor: str = field(init=False)
    owner: str = field(init=False)
    steps: list[StepReport] = field(init=False)
    stack: list[StackEntry] = field(default_factory=list)
    comps: list[CompensationReport] = field(default_factory=list)
    followups: list[FollowUpReport] = field(default_factory=list)
    counts: Counts = field(default_factory=Counts)
    trigger: Trigger = field(default_factory=Trigger)
    cut_short: list[str] = field(default_factory=list)
    """Why the run is no rehearsal (an outage, the deadline): each fails the drill."""
    deadline_at: float | None = None
    events: int = 0
    in_rollback: bool = False
    """Set once the rollback runs: then only a second stop request (a halt) stops it."""
    _jobs: int = 0
    _ts_at: float = float("nan")  # the clock reading ``_ts`` is for (nan: none yet)
    _ts: str = ""
    _interrupt_written: bool = False

    def __post_init__(self) -> None:
        self.settings = self.setup.settings.bounded()
        self.rng = random.Random(self.setup.seed)
        self.agent = f"agent:{self.workflow_id}"
        self.owner = f"owner:{self.run_id}"
        self.rollback_actor = f"rollback:{self.owner}"
        self.steps = [StepReport(s.id, i, s.topic) for i, s in enumerate(self.setup.workflow.steps)]

    @property
    def workflow_id(self) -> str:
        return self.setup.workflow.workflow

    @property
    def env(self) -> str:
        return self.setup.workflow.env

    @property
    def catalog(self) -> Catalog:
        return self.setup.catalog

    # -- evidence -------------------------------------------------------------------

    def emit(self, event: Event, actor: str, /, **fields: Any) -> None:
        """Write one evidence record (the common fields first, then ``fields``)."""
        now = self.clock.now()
        if now != self._ts_at:  # a virtual clock stands still between waits
            self._ts_at = now
            self._ts = rfc3339(now)
        record: dict[str, Any] = {
            "ts": self._ts,
            "event": event._value_,  # the plain str (``.value`` is a slow descriptor)
            "run_id": self.run_id,
            "workflow_id": self.workflow_id,
            "actor": actor,
        }
        record.update(fields)
        if "idempotency_key" in fields and fields["idempotency_key"] is None:
            del record["idempotency_key"]
        self.sink(record)
        self.events += 1

    def new_job(self) -> str:
        self._jobs += 1
        return f"job_{self._jobs}"

    def followup(
        self,
        step: Step,
        topic: str,
        category: FollowUp,
        reason: str,
        mitigation: str | None,
        *,
        injected: bool = False,
        **ids: Any,
    ) -> None:
        """Send ``step``'s effect to a human, with the reason and the mitigation.

        ``injected``: a fault the drill injected caused it (a planned follow-up).
        """
        self.counts.followups += 1
        self.followups.append(
            FollowUpReport(step.id, topic, category, reason, mitigation, injected)
        )
        if injected:
            ids["injected"] = True
        self.emit(
            Event.MANUAL_FOLLOWUP,
            "agentundo",
            step_id=step.id,
            topic=topic,
            category=category.value,
            reason=reason,
            mitigation=mitigation,
            **ids,
        )

    # -- stopping and waiting -------------------------------------------------------

    def check_stop(self, job: dict[str, Any] | None = None) -> None:
        """Unwind (:class:`Interrupted`) when a stop was requested, recording it once; in
        the rollback, only when the stop became a halt."""
        if self.stop.halted if self.in_rollback else self.stop.requested:
            self.write_interrupt(job)
            raise Interrupted

    def write_interrupt(self, job: dict[str, Any] | None) -> None:
        if self._interrupt_written:
            return
        self._interrupt_written = True
        self.emit(
            Event.RUN_INTERRUPTED,
            "agentundo",
            signal=self.stop.reason or "stop",
            **(job or {}),
        )

    def sleep(self, seconds: float, job: dict[str, Any]) -> None:
        wake = self.stop.halt if self.in_rollback else self.stop.event
        if not self.clock.sleep(seconds, wake):
            self.check_stop(job)
        self.check_stop(job)

    # -- the forward deadline -------------------------------------------------------

    def time_left(self) -> float | None:
        """Seconds until the forward steps' deadline (None: no deadline)."""
        return None if self.deadline_at is None else self.deadline_at - self.clock.now()

    def deadline_name(self) -> str:
        return f"the drill deadline of {self.settings.deadline_s:g}s"

    def cut(self, step: Step, why: str) -> None:
        """The run stopped being the rehearsal it was written for: the drill fails."""
        self.cut_short.append(f"step '{step.id}': {why}")

    # -- lookups --------------------------------------------------------------------

    def key_fields(
        self,
        step: Step,
        index: int,
        job: str,
        topic: str,
        response: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The values an idempotency-key or parameter template of this dispatch may use
        (``response``: a compensation's, the forward answer's recorded fields)."""
        return {
            "response": response,
            "run_id": self.run_id,
            "workflow_id": self.workflow_id,
            "step_id": step.id,
            "step_index": index,
            "topic": topic,
            "env": self.env,
            "job_id": job,
            "params": step.params,
        }

    def forward_call(
        self,
        step: Step,
        index: int,
        *,
        job_id: str,
        key: str | None,
        attempt: int,
        rollback: bool = False,
    ) -> Call:
        """One attempt at ``step``'s forward call (``rollback``: asked again by the rollback)."""
        return Call(
            kind=CallKind.FORWARD,
            run_id=self.run_id,
            workflow_id=self.workflow_id,
            job_id=job_id,
            step_id=step.id,
            step_index=index,
            topic=step.topic,
            params=step.params,
            idempotency_key=key,
            attempt=attempt,
            env=self.env,
            rollback=rollback,
        )

    def stopped_step(self) -> StepReport | None:
        """The step the run stopped at (it ran and did not succeed), if any."""
        return next((s for s in self.steps if s.stopped), None)

    def step_by_id(self, step_id: str) -> tuple[int, Step]:
        steps = self.setup.workflow.steps
        index = next(i for i, s in enumerate(steps) if s.id == step_id)
        return index, steps[index]
