"""The saga engine: run one workflow against a catalog and a policy, roll back on failure.

Pure: the clock, the random generator, the executor, the lock store and the evidence
sink are passed in. Nothing here prints or imports terminal code. The semantics (and
their defaults) are documented in ``docs/drill.md``; the evidence vocabulary in
``docs/evidence.md``.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields, replace
from typing import Any

from agentundo.evidence.events import Event, FollowUp, RunStatus, StepState, Verdict
from agentundo.model.catalog import Catalog, Topic
from agentundo.model.common import Decision, Rollback
from agentundo.model.policy import Policy
from agentundo.model.scenario import WORKFLOW_FAULTS, Expect, FailMode, Fault, FaultType, Phase
from agentundo.model.workflow import Step, Workflow
from agentundo.policy.compiled import CompiledPolicy
from agentundo.policy.evaluate import Context
from agentundo.saga.clock import Clock, bounded_wait, rfc3339
from agentundo.saga.executor import Call, CallKind, Executor, Outcome, Result
from agentundo.saga.faults import FaultInjector, FaultPlan
from agentundo.saga.keys import derived_compensation_key, render_key
from agentundo.saga.lock import LockStore, holds, lock_key
from agentundo.saga.simulate import SimulatedWorld

Sink = Callable[[dict[str, Any]], object]
"""Where evidence records go (an ``EvidenceWriter.write`` or a list's ``append``)."""

ROLLBACK_MODE = "lifo_stack"
NO_FAULTS = FaultPlan()
OTHER_RUNNER = "drill:other-runner"
"""The owner token the lock faults use for the runner that competes for the lock."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Engine semantics; the defaults are those of the production runtimes we mimic."""

    max_retries: int = 50
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 30.0
    approval_timeout_s: float = 300.0
    lock_ttl_s: float = 120.0
    rollback_window_s: float = 30.0
    compensation_timeout_s: float = 10.0
    compensation_max_retries: int = 5
    compensation_backoff_max_s: float = 8.0
    compensate_failed_step: bool = True
    derive_compensation_keys: bool = True
    policy_fail_mode: FailMode = FailMode.CLOSED
    deadline_s: float | None = None
    """Time the forward steps may take, waits included (None: no limit); see ``docs/drill.md``."""

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def bounded(self) -> Settings:
        """These settings with every duration a wait a clock can perform (0 to a week).

        A drill's loader refuses longer durations with their position; this keeps the
        engine itself from overflowing the time whatever it is given.
        """
        changes: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            numeric = f.name.endswith("_s") and isinstance(value, int | float)
            if numeric and bounded_wait(value) != value:
                changes[f.name] = bounded_wait(value)
        return replace(self, **changes) if changes else self


class Stop:
    """A request to stop at the next safe point (set from a signal handler)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason: str | None = None

    def request(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self.event.set()

    @property
    def requested(self) -> bool:
        return self.event.is_set()


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


@dataclass(slots=True)
class CompensationReport:
    """The final outcome of one stack entry (exactly one per entry)."""

    step_id: str
    for_topic: str
    topic: str | None
    job_id: str | None
    idempotency_key: str | None
    outcome: str  # succeeded | skipped | failed | timed_out | rejected | manual
    applied: bool | None = None
    attempts: int = 0
    dispatched: bool = False
    deliveries: int = 0


@dataclass(frozen=True, slots=True)
class FollowUpReport:
    step_id: str
    topic: str
    category: FollowUp
    reason: str
    mitigation: str | None = None


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """How one step's effect ended: undone, escalated, kept, left_behind, undone_twice."""

    step_id: str
    topic: str
    applied: int
    undone: int
    state: str


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


@dataclass(slots=True)
class _Entry:
    """One applied (or possibly applied) step on the compensation stack."""

    step: Step
    index: int
    spec: Topic | None
    failed: bool = False


@dataclass(slots=True)
class _Gate:
    allowed: bool
    reason: str = ""
    rule_id: str | None = None
    category: FollowUp = FollowUp.COMPENSATION_DENIED


@dataclass(frozen=True, slots=True)
class _Decided:
    """A policy decision as the gate reports it."""

    decision: Decision
    value: str
    rule_id: str | None
    reason: str
    default: bool


@dataclass(slots=True)
class _Counts:
    dispatched: int = 0
    skipped: int = 0
    failed: int = 0
    followups: int = 0


@dataclass(slots=True)
class _Rollback:
    owner: str
    epoch: int = 0
    deadline: float = 0.0
    expired_reported: bool = False
    finished_at: str | None = None
    lock_fault_fired: bool = False
    done: int = 0


class _Interrupted(Exception):
    """Raised inside the engine to unwind to the run's clean stop."""


def backoff_delay(failures: int, initial: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with equal jitter, between ``initial`` and ``cap`` seconds."""
    raw = min(cap, initial * 2.0 ** min(failures - 1, 62))
    return max(initial, min(cap, raw / 2 + rng.uniform(0, raw / 2)))


class Engine:
    """Runs one workflow run. Create one per run; :meth:`run` returns a :class:`DrillResult`."""

    def __init__(
        self,
        *,
        workflow: Workflow,
        catalog: Catalog,
        policy: Policy,
        executor: Executor,
        sink: Sink,
        clock: Clock,
        rng: random.Random,
        lock_store: LockStore,
        run_id: str,
        plan: FaultPlan = NO_FAULTS,
        approvals: Iterable[str] = (),
        settings: Settings = Settings(),
        world: SimulatedWorld | None = None,
        expect: Expect | None = None,
        stop: Stop | None = None,
        scenario: str | None = None,
        seed: int | None = None,
        clock_name: str = "virtual",
        compiled: CompiledPolicy | None = None,
        must_reach: tuple[Fault, ...] | None = None,
    ) -> None:
        self.workflow = workflow
        self.catalog = catalog
        self.policy = policy
        self.compiled = compiled or CompiledPolicy(policy)
        self.executor = FaultInjector(executor, plan, clock)
        self.sink = sink
        self.clock = clock
        self.rng = rng
        self.locks = lock_store
        self.run_id = run_id
        self.plan = plan
        self.approvals = frozenset(approvals)
        self.settings = settings.bounded()
        self.world = world
        self.expect = expect
        self.stop = stop or Stop()
        self.scenario = scenario
        self.seed = seed
        self.clock_name = clock_name
        self.must_reach = plan.faults if must_reach is None else must_reach
        self.wf_id = workflow.workflow
        self.env = workflow.env
        self.lock_key = lock_key(self.wf_id)
        self._agent = f"agent:{self.wf_id}"
        self._jobs = 0
        self._events = 0
        self._counts = _Counts()
        self._stack: list[_Entry] = []
        self._steps = [StepReport(s.id, i, s.topic) for i, s in enumerate(workflow.steps)]
        self._comps: list[CompensationReport] = []
        self._followups: list[FollowUpReport] = []
        self._rb = _Rollback(owner=f"owner:{run_id}")
        self._rollback_actor = f"rollback:{self._rb.owner}"
        self._ts_at = float("nan")  # the clock reading ``_ts`` is for (nan: none yet)
        self._ts = ""
        self._decisions: dict[tuple[str, bool, bool], _Decided] = {}
        self._topics = catalog.topics
        self._trigger_job: str | None = None
        self._trigger_rule: str | None = None
        self._last_rule: str | None = None
        self._interrupt_written = False
        self._deadline_at: float | None = None  # set when the run starts
        self._cut_short: list[str] = []  # why the run is no rehearsal (the drill fails)

    # -- evidence -------------------------------------------------------------------

    def _emit(self, event: Event, actor: str, /, **fields: Any) -> None:
        now = self.clock.now()
        if now != self._ts_at:  # a virtual clock stands still between waits
            self._ts_at = now
            self._ts = rfc3339(now)
        record: dict[str, Any] = {
            "ts": self._ts,
            "event": event._value_,  # the plain str (``.value`` is a slow descriptor)
            "run_id": self.run_id,
            "workflow_id": self.wf_id,
            "actor": actor,
        }
        record.update(fields)
        if "idempotency_key" in fields and fields["idempotency_key"] is None:
            del record["idempotency_key"]
        self.sink(record)
        self._events += 1

    def _new_job(self) -> str:
        self._jobs += 1
        return f"job_{self._jobs}"

    def _check_stop(self, job: dict[str, Any] | None = None) -> None:
        if self.stop.requested:
            self._write_interrupt(job)
            raise _Interrupted

    def _write_interrupt(self, job: dict[str, Any] | None) -> None:
        if self._interrupt_written:
            return
        self._interrupt_written = True
        self._emit(
            Event.RUN_INTERRUPTED,
            "agentundo",
            signal=self.stop.reason or "stop",
            **(job or {}),
        )

    def _sleep(self, seconds: float, job: dict[str, Any]) -> None:
        if not self.clock.sleep(seconds, self.stop.event):
            self._check_stop(job)
        self._check_stop(job)

    # -- the run --------------------------------------------------------------------

    def run(self) -> DrillResult:
        if self.settings.deadline_s is not None:
            self._deadline_at = self.clock.now() + self.settings.deadline_s
        started = rfc3339(self.clock.now())
        self._emit(
            Event.RUN_STARTED,
            "agentundo",
            env=self.env,
            scenario=self.scenario,
            seed=self.seed,
            clock=self.clock_name,
            rollback_mode=ROLLBACK_MODE,
            steps=len(self.workflow.steps),
            approvals=sorted(self.approvals),
            faults=[f.model_dump(mode="json", exclude_defaults=True) for f in self.plan.faults],
            settings={k: str(v) for k, v in self.settings.as_dict().items()},
        )
        status = RunStatus.SUCCEEDED
        rollback = False
        try:
            status = self._forward_all()
            if status in (RunStatus.FAILED_FATAL, RunStatus.DENIED):
                rollback = True
                self._rollback(status)
        except _Interrupted:
            status = RunStatus.INTERRUPTED
            self._escalate_rest(FollowUp.INTERRUPTED, "the drill was interrupted")
            if self._rb.epoch:
                self._release_lock()
                self._finish_rollback("interrupted")
        return self._finish(status, rollback, started)

    def _forward_all(self) -> RunStatus:
        for index, step in enumerate(self.workflow.steps):
            self._check_stop()
            state = self._forward(index, step)
            if state is StepState.FAILED_FATAL:
                return RunStatus.FAILED_FATAL
            if state is StepState.DENIED:
                return RunStatus.DENIED
        return RunStatus.SUCCEEDED

    def _key_fields(self, step: Step, index: int, job: str, topic: str) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "workflow_id": self.wf_id,
            "step_id": step.id,
            "step_index": index,
            "topic": topic,
            "env": self.env,
            "job_id": job,
            "params": step.params,
        }

    # -- the deadline ---------------------------------------------------------------

    def _time_left(self) -> float | None:
        """Seconds until the forward steps' deadline (None: no deadline)."""
        return None if self._deadline_at is None else self._deadline_at - self.clock.now()

    def _deadline_name(self) -> str:
        return f"the drill deadline of {self.settings.deadline_s:g}s"

    def _cut(self, step: Step, why: str) -> None:
        """The run stopped being the rehearsal it was written for: the drill fails."""
        self._cut_short.append(f"step '{step.id}': {why}")

    def _forward(self, index: int, step: Step) -> StepState:
        report = self._steps[index]
        spec = self.catalog.topics.get(step.topic)
        job = self._new_job()
        report.job_id = job
        key = None
        if spec is not None and spec.idempotency_key:
            key = render_key(spec.idempotency_key, self._key_fields(step, index, job, step.topic))
        ids = {"job_id": job, "step_id": step.id, "topic": step.topic}
        left = self._time_left()
        if left is not None and left <= 0:
            error = f"not started: {self._deadline_name()} had passed"
            report.state = StepState.FAILED_FATAL
            report.error = error
            self._trigger_job = job
            self._emit(
                Event.STEP_FAILED_FATAL,
                self._agent,
                **ids,
                idempotency_key=key,
                attempts=0,
                error=error,
            )
            self._cut(step, f"{error}; the run was cut short")
            return StepState.FAILED_FATAL
        gate = self._gate(
            step=step,
            topic=step.topic,
            spec=spec,
            ids={**ids, "idempotency_key": key},
            phase=Phase.FORWARD,
        )
        report.rule_id = gate.rule_id
        self._last_rule = gate.rule_id
        self._trigger_job = job
        self._trigger_rule = gate.rule_id
        if not gate.allowed:
            report.state = StepState.DENIED
            report.decision = "denied"
            self._emit(
                Event.STEP_DENIED,
                self._agent,
                **ids,
                idempotency_key=key,
                rule_id=gate.rule_id,
                reason=gate.reason,
            )
            if gate.category is FollowUp.POLICY_UNAVAILABLE:
                self._followup(step, step.topic, gate.category, gate.reason, None)
            return StepState.DENIED
        report.decision = "allowed"
        entry = _Entry(step, index, spec)
        may_land = spec is None or spec.side_effect
        attempt = 0
        while True:
            attempt += 1
            report.attempts = attempt
            self._emit(
                Event.STEP_DISPATCHED,
                self._agent,
                **ids,
                step_index=index,
                attempt=attempt,
                idempotency_key=key,
            )
            result = self.executor.execute(
                Call(
                    kind=CallKind.FORWARD,
                    run_id=self.run_id,
                    workflow_id=self.wf_id,
                    job_id=job,
                    step_id=step.id,
                    step_index=index,
                    topic=step.topic,
                    params=step.params,
                    idempotency_key=key,
                    attempt=attempt,
                    env=self.env,
                )
            )
            if result.outcome is Outcome.OK:
                self._emit(
                    Event.STEP_SUCCEEDED,
                    self._agent,
                    **ids,
                    idempotency_key=key,
                    attempt=attempt,
                    detail=result.detail,
                )
                report.state = StepState.SUCCEEDED
                if may_land:
                    self._stack.append(entry)
                return StepState.SUCCEEDED
            transient = result.outcome is Outcome.TRANSIENT
            error = result.error or result.outcome.value
            self._emit(
                Event.STEP_FAILED,
                self._agent,
                **ids,
                idempotency_key=key,
                attempt=attempt,
                transient=transient,
                error=error,
                detail=result.detail,
            )
            delay = 0.0
            past_deadline = False
            if transient and attempt <= self.settings.max_retries:
                delay = backoff_delay(
                    attempt, self.settings.backoff_initial_s, self.settings.backoff_max_s, self.rng
                )
                if result.retry_after_s is not None:  # the server asked for a longer wait
                    delay = max(delay, bounded_wait(result.retry_after_s))
                left = self._time_left()
                past_deadline = left is not None and delay >= left
            if transient and attempt <= self.settings.max_retries and not past_deadline:
                self._emit(
                    Event.RETRY_SCHEDULED,
                    self._agent,
                    **ids,
                    idempotency_key=key,
                    attempt=attempt + 1,
                    delay_s=round(delay, 3),
                )
                try:
                    self._sleep(delay, {**ids, "idempotency_key": key})
                except _Interrupted:
                    report.state = StepState.INTERRUPTED
                    if may_land and self.settings.compensate_failed_step:
                        entry.failed = True
                        self._stack.append(entry)
                    raise
                continue
            if past_deadline:
                gave_up = (
                    f"gave up after {attempt} attempts: the next retry (in "
                    f"{round(delay, 3):g}s) would start after {self._deadline_name()}"
                )
            else:
                gave_up = f"gave up after {self.settings.max_retries} retries"
            injected = "injected" in result.detail
            if transient:
                if not injected:
                    self._cut(
                        step,
                        f"its endpoint was unreachable or kept failing ({error}; {gave_up}). "
                        "A real outage is not a fault the drill injected, so the drill did "
                        "not rehearse its scenario",
                    )
                elif past_deadline:
                    self._cut(step, f"{gave_up}; the run was cut short")
                error = f"{gave_up}: {error}"
            elif not injected:
                self._cut(
                    step,
                    f"it failed for real ({error}), not by a fault the drill injected: the "
                    "rollback it triggered is not the planned fault, so the drill did not "
                    "rehearse its scenario",
                )
            report.state = StepState.FAILED_FATAL
            report.error = error
            report.landed = result.applied is True
            self._emit(
                Event.STEP_FAILED_FATAL,
                self._agent,
                **ids,
                idempotency_key=key,
                attempts=attempt,
                error=error,
            )
            if may_land and self.settings.compensate_failed_step:
                entry.failed = True
                self._stack.append(entry)
            return StepState.FAILED_FATAL

    # -- the policy gate ------------------------------------------------------------

    def _gate(
        self,
        *,
        step: Step,
        topic: str,
        spec: Topic | None,
        ids: dict[str, Any],
        phase: Phase,
    ) -> _Gate:
        is_comp = phase is Phase.COMPENSATION
        actor = self._rollback_actor if is_comp else self._agent
        approved = step.id in self.approvals
        if self.plan.policy_unavailable(step.id, phase):
            mode = self.settings.policy_fail_mode
            self._emit(
                Event.POLICY_UNAVAILABLE,
                actor,
                **ids,
                fail_mode=mode.value,
                is_compensation=is_comp,
            )
            if mode is FailMode.CLOSED:
                return _Gate(
                    False,
                    "policy engine unavailable (fail-closed)",
                    None,
                    FollowUp.POLICY_UNAVAILABLE,
                )
            return _Gate(True, "policy engine unavailable (fail-open)")
        if is_comp and self.plan.at(FaultType.COMPENSATION_DENIED, step.id) is not None:
            injected = "fault:compensation_denied"
            self._emit(
                Event.POLICY_DECISION,
                actor,
                **ids,
                decision=Decision.DENY.value,
                rule_id=injected,
                default=False,
                injected=True,
                is_compensation=True,
                approval_present=approved,
                reason="denied by the drill's compensation_denied fault",
            )
            return _Gate(False, "denied by the drill's compensation_denied fault", injected)
        decided = self._decisions.get((topic, approved, is_comp))
        if decided is None:
            decided = self._decide(topic, spec, approved, is_comp)
        decision, rule_id, reason = decided.decision, decided.rule_id, decided.reason
        self._emit(
            Event.POLICY_DECISION,
            actor,
            **ids,
            decision=decided.value,
            rule_id=rule_id,
            default=decided.default,
            is_compensation=is_comp,
            approval_present=approved,
            reason=reason,
        )
        if decision is Decision.ALLOW:
            return _Gate(True, reason, rule_id)
        if decision is Decision.DENY:
            return _Gate(False, reason, rule_id)
        if is_comp:
            if approved:
                self._emit(Event.APPROVAL_GRANTED, actor, **ids, approver="scenario")
                return _Gate(True, reason, rule_id)
            return _Gate(False, f"requires human approval and none is present ({reason})", rule_id)
        timeout = self.settings.approval_timeout_s
        self._emit(Event.APPROVAL_WAITING, actor, **ids, timeout_s=timeout, rule_id=rule_id)
        if approved:
            self._emit(Event.APPROVAL_GRANTED, actor, **ids, approver="scenario")
            return _Gate(True, reason, rule_id)
        left = self._time_left()
        if left is not None and left < timeout:
            self._sleep(left, ids)
            self._emit(Event.APPROVAL_TIMEOUT, actor, **ids, timeout_s=timeout)
            why = f"no approval before {self._deadline_name()}"
            self._cut(step, f"{why}; the run was cut short")
            return _Gate(False, f"{why} ({reason})", rule_id)
        self._sleep(timeout, ids)
        self._emit(Event.APPROVAL_TIMEOUT, actor, **ids, timeout_s=timeout)
        return _Gate(False, f"no approval within {timeout:g}s ({reason})", rule_id)

    def _decide(self, topic: str, spec: Topic | None, approved: bool, is_comp: bool) -> _Decided:
        """The policy's answer for ``topic`` (whose catalog entry is ``spec``), cached.

        Everything else a decision depends on (env, workflow, the policy) is fixed for the
        run, so one evaluation per (topic, approval, phase) gives every later gate its answer.
        """
        ctx = Context.for_topic(
            topic,
            spec,
            env=self.env,
            approval_present=approved,
            is_compensation=is_comp,
            workflow=self.wf_id,
        )
        decision, index = self.compiled.decide(ctx)
        rule = None if index is None else self.policy.rules[index]
        rule_id = None if rule is None else rule.id
        reason = (rule.reason if rule is not None else None) or (
            f"rule '{rule_id}'" if rule_id else f"default decision ({decision.value})"
        )
        decided = _Decided(decision, decision.value, rule_id, reason, rule is None)
        self._decisions[(topic, approved, is_comp)] = decided
        return decided

    # -- the rollback ---------------------------------------------------------------

    def _rollback(self, status: RunStatus) -> None:
        failed = next((s for s in self._steps if s.state is not StepState.SUCCEEDED), None)
        cause = "step_denied" if status is RunStatus.DENIED else "step_failed_fatal"
        self._emit(
            Event.ROLLBACK_TRIGGERED,
            self._rollback_actor,
            cause=cause,
            job_id=failed.job_id if failed else None,
            step_id=failed.step_id if failed else None,
            topic=failed.topic if failed else None,
            pending=len(self._stack),
        )
        now = self.clock.now()
        held = self.plan.first(FaultType.LOCK_HELD)
        if held is not None:
            ttl = self.settings.lock_ttl_s
            self.locks.acquire(
                self.lock_key, OTHER_RUNNER, ttl, now - ttl - 1 if held.expired else now
            )
        got = self.locks.acquire(self.lock_key, self._rb.owner, self.settings.lock_ttl_s, now)
        if not got.acquired:
            self._emit(
                Event.LOCK_BUSY,
                self._rollback_actor,
                lock_key=self.lock_key,
                holder=got.holder,
                epoch=got.epoch,
            )
            self._escalate_rest(
                FollowUp.LOCK_HELD,
                f"rollback already in progress: lock {self.lock_key} is held by {got.holder}",
            )
            self._finish_rollback("lock_held")
            return
        self._rb.epoch = got.epoch
        self._rb.deadline = now + self.settings.rollback_window_s
        if got.previous_owner is not None:
            self._emit(
                Event.LOCK_TAKEN_OVER,
                self._rollback_actor,
                lock_key=self.lock_key,
                owner=self._rb.owner,
                previous_owner=got.previous_owner,
                epoch=got.epoch,
                ttl_s=self.settings.lock_ttl_s,
            )
        else:
            self._emit(
                Event.LOCK_ACQUIRED,
                self._rollback_actor,
                lock_key=self.lock_key,
                owner=self._rb.owner,
                epoch=got.epoch,
                ttl_s=self.settings.lock_ttl_s,
            )
        while self._stack:
            self._maybe_lose_lock()
            self._check_stop()
            entry = self._stack[-1]  # peek: an entry leaves the stack only with its outcome
            try:
                self._compensate(entry)
            finally:
                if self._comps and self._comps[-1].step_id == entry.step.id:
                    self._stack.pop()  # its outcome is recorded, even when interrupted
            self._rb.done += 1
        self._release_lock()
        outcome = "escalated" if self._followups else "complete"
        self._finish_rollback(outcome)

    def _maybe_lose_lock(self) -> None:
        fault = self.plan.first(FaultType.LOCK_EXPIRES)
        if fault is None or self._rb.lock_fault_fired or self._rb.done < fault.after:
            return
        self._rb.lock_fault_fired = True
        now = self.clock.now()
        self.locks.expire(self.lock_key, now)
        if fault.taken_over:
            self.locks.acquire(self.lock_key, OTHER_RUNNER, self.settings.lock_ttl_s, now)

    def _release_lock(self) -> None:
        released = self.locks.release(self.lock_key, self._rb.owner)
        state = self.locks.state(self.lock_key)
        fields: dict[str, Any] = {}
        if not released:
            holder = state.owner if state is not None else None
            fields["reason"] = (
                f"lock is held by {holder}; only its owner may release it"
                if holder
                else "lock no longer exists"
            )
        self._emit(
            Event.LOCK_RELEASED,
            self._rollback_actor,
            lock_key=self.lock_key,
            owner=self._rb.owner,
            epoch=self._rb.epoch,
            released=released,
            **fields,
        )

    def _finish_rollback(self, outcome: str) -> None:
        self._rb.finished_at = rfc3339(self.clock.now())
        self._emit(
            Event.ROLLBACK_FINISHED,
            self._rollback_actor,
            outcome=outcome,
            rollback_mode=ROLLBACK_MODE,
            compensated=sum(1 for c in self._comps if c.outcome == "succeeded"),
            manual_followups=len(self._followups),
        )

    def _escalate_rest(self, category: FollowUp, reason: str) -> None:
        """Send every entry still on the stack to manual follow-up (nothing is dropped)."""
        while self._stack:
            entry = self._stack[-1]
            comp = entry.spec.compensation if entry.spec is not None else None
            self._comps.append(
                CompensationReport(
                    step_id=entry.step.id,
                    for_topic=entry.step.topic,
                    topic=comp.topic if comp is not None else None,
                    job_id=None,
                    idempotency_key=None,
                    outcome="manual",
                )
            )
            mitigation = entry.spec.mitigation if entry.spec is not None else None
            self._followup(entry.step, entry.step.topic, category, reason, mitigation)
            self._stack.pop()

    def _followup(
        self,
        step: Step,
        topic: str,
        category: FollowUp,
        reason: str,
        mitigation: str | None,
        **ids: Any,
    ) -> None:
        self._counts.followups += 1
        self._followups.append(FollowUpReport(step.id, topic, category, reason, mitigation))
        self._emit(
            Event.MANUAL_FOLLOWUP,
            "agentundo",
            step_id=step.id,
            topic=topic,
            category=category.value,
            reason=reason,
            mitigation=mitigation,
            **ids,
        )

    def _compensate(self, entry: _Entry) -> None:
        step, spec = entry.step, entry.spec
        comp = spec.compensation if spec is not None else None
        if spec is None or spec.rollback is Rollback.IRREVERSIBLE or comp is None:
            irreversible = spec is not None and spec.rollback is Rollback.IRREVERSIBLE
            category = FollowUp.IRREVERSIBLE if irreversible else FollowUp.NO_COMPENSATION
            reason = (spec.no_rollback_reason if spec is not None else None) or (
                "the topic is irreversible"
                if irreversible
                else "no compensation is declared in the catalog"
                if spec is not None
                else f"topic '{step.topic}' is not in the catalog"
            )
            self._comps.append(
                CompensationReport(step.id, step.topic, None, None, None, outcome="manual")
            )
            self._followup(
                step, step.topic, category, reason, spec.mitigation if spec is not None else None
            )
            return
        job = self._new_job()
        key_fields = self._key_fields(step, entry.index, job, comp.topic)
        if comp.idempotency_key:
            key: str | None = render_key(comp.idempotency_key, key_fields)
        elif self.settings.derive_compensation_keys:
            key = derived_compensation_key(
                run_id=self.run_id,
                workflow_id=self.wf_id,
                step_id=step.id,
                topic=comp.topic,
                step_index=entry.index,
            )
        else:
            key = None
        params = {**step.params, **_render_params(comp.params or {}, key_fields)}
        report = CompensationReport(step.id, step.topic, comp.topic, job, key, outcome="pending")
        self._comps.append(report)
        ids: dict[str, Any] = {
            "job_id": job,
            "step_id": step.id,
            "topic": comp.topic,
            "for_topic": step.topic,
            "idempotency_key": key,
        }
        actor = self._rollback_actor

        def escalate(event: Event | None, outcome: str, category: FollowUp, reason: str) -> None:
            report.outcome = outcome
            if report.dispatched:
                self._counts.failed += 1
            else:
                self._counts.skipped += 1
            if event is not None:
                self._emit(event, actor, **ids, reason=reason)
            self._followup(step, comp.topic, category, reason, spec.mitigation, job_id=job)

        if self.clock.now() >= self._rb.deadline:
            escalate(
                Event.COMPENSATION_TIMED_OUT,
                "timed_out",
                FollowUp.COMPENSATION_TIMEOUT,
                f"rollback window of {self.settings.rollback_window_s:g}s elapsed before dispatch",
            )
            return
        if not self._fenced(ids):
            escalate(
                Event.COMPENSATION_REJECTED,
                "rejected",
                FollowUp.COMPENSATION_REJECTED,
                f"lock lost: fencing token epoch {self._rb.epoch} is no longer valid",
            )
            return
        gate = self._gate(
            step=step,
            topic=comp.topic,
            spec=self.catalog.topics.get(comp.topic),
            ids=ids,
            phase=Phase.COMPENSATION,
        )
        if not gate.allowed:
            report.outcome = "skipped"
            self._counts.skipped += 1
            self._emit(
                Event.COMPENSATION_SKIPPED,
                actor,
                **ids,
                reason=gate.reason,
                rule_id=gate.rule_id,
            )
            self._followup(
                step, comp.topic, gate.category, gate.reason, spec.mitigation, job_id=job
            )
            return
        per_attempt = bounded_wait(comp.timeout_seconds or self.settings.compensation_timeout_s)
        attempt = 0
        while True:
            now = self.clock.now()
            if attempt and now >= self._rb.deadline:
                escalate(
                    Event.COMPENSATION_TIMED_OUT,
                    "timed_out",
                    FollowUp.COMPENSATION_TIMEOUT,
                    f"rollback window of {self.settings.rollback_window_s:g}s elapsed",
                )
                return
            if attempt and not self._fenced(ids):
                escalate(
                    Event.COMPENSATION_REJECTED,
                    "rejected",
                    FollowUp.COMPENSATION_REJECTED,
                    f"lock lost: fencing token epoch {self._rb.epoch} is no longer valid",
                )
                return
            attempt += 1
            report.attempts = attempt
            if not report.dispatched:
                report.dispatched = True
                self._counts.dispatched += 1
            timeout = max(0.0, min(per_attempt, self._rb.deadline - now))
            self._emit(
                Event.COMPENSATION_DISPATCHED,
                actor,
                **ids,
                step_index=entry.index,
                attempt=attempt,
                epoch=self._rb.epoch,
                timeout_s=round(timeout, 3),
                failed_step=entry.failed,
            )
            result = self.executor.execute(
                Call(
                    kind=CallKind.COMPENSATION,
                    run_id=self.run_id,
                    workflow_id=self.wf_id,
                    job_id=job,
                    step_id=step.id,
                    step_index=entry.index,
                    topic=comp.topic,
                    params=params,
                    idempotency_key=key,
                    attempt=attempt,
                    for_topic=step.topic,
                    timeout_s=timeout,
                    env=self.env,
                    lock_owner=self._rb.owner,
                    epoch=self._rb.epoch,
                )
            )
            report.deliveries += int(result.detail.get("deliveries", 1))
            if self._settle(result, report, ids, escalate):
                return
            delay = backoff_delay(
                attempt,
                self.settings.backoff_initial_s,
                self.settings.compensation_backoff_max_s,
                self.rng,
            )
            if result.retry_after_s is not None:  # the server asked for a longer wait
                delay = max(delay, bounded_wait(result.retry_after_s))
            delay = min(delay, max(0.0, self._rb.deadline - self.clock.now()))
            self._emit(
                Event.COMPENSATION_RETRY_SCHEDULED,
                actor,
                **ids,
                attempt=attempt + 1,
                delay_s=round(delay, 3),
            )
            try:
                self._sleep(delay, ids)
            except _Interrupted:
                escalate(
                    None,
                    "manual",
                    FollowUp.INTERRUPTED,
                    "the drill was interrupted before the retry",
                )
                raise

    def _settle(
        self,
        result: Result,
        report: CompensationReport,
        ids: dict[str, Any],
        escalate: Callable[[Event | None, str, FollowUp, str], None],
    ) -> bool:
        """Record the outcome of one attempt; True when the entry has its final outcome."""
        actor = self._rollback_actor
        attempt = report.attempts
        if result.outcome is Outcome.OK:
            report.outcome = "succeeded"
            report.applied = result.applied
            self._emit(
                Event.COMPENSATION_SUCCEEDED,
                actor,
                **ids,
                attempt=attempt,
                applied=result.applied,
                detail=result.detail,
            )
            return True
        error = result.error or result.outcome.value
        if result.outcome is Outcome.REJECTED:
            escalate(
                Event.COMPENSATION_REJECTED,
                "rejected",
                FollowUp.COMPENSATION_REJECTED,
                f"the resource refused the fencing token: {error}",
            )
            return True
        transient = result.outcome is Outcome.TRANSIENT
        self._emit(
            Event.COMPENSATION_FAILED,
            actor,
            **ids,
            attempt=attempt,
            transient=transient,
            error=error,
            detail=result.detail,
        )
        if not transient:
            self._compensation_gave_up(report, f"compensation failed: {error}")
            return True
        if self.clock.now() >= self._rb.deadline:
            escalate(
                Event.COMPENSATION_TIMED_OUT,
                "timed_out",
                FollowUp.COMPENSATION_TIMEOUT,
                f"rollback window of {self.settings.rollback_window_s:g}s elapsed",
            )
            return True
        if attempt > self.settings.compensation_max_retries:
            retries = self.settings.compensation_max_retries
            self._compensation_gave_up(report, f"gave up after {retries} retries: {error}")
            return True
        return False

    def _compensation_gave_up(self, report: CompensationReport, reason: str) -> None:
        """A compensation failed for good: count it and send its step to a human."""
        report.outcome = "failed"
        self._counts.failed += 1
        self._followup(
            self.workflow.steps[self._index_of(report.step_id)],
            str(report.topic),
            FollowUp.COMPENSATION_FAILED,
            reason,
            self._mitigation(report.step_id),
            job_id=report.job_id,
        )

    def _index_of(self, step_id: str) -> int:
        return next(i for i, s in enumerate(self.workflow.steps) if s.id == step_id)

    def _mitigation(self, step_id: str) -> str | None:
        spec = self.catalog.topics.get(self.workflow.steps[self._index_of(step_id)].topic)
        return spec.mitigation if spec is not None else None

    def _fenced(self, ids: dict[str, Any]) -> bool:
        """Whether this rollback still holds its lock; reports the loss once."""
        now = self.clock.now()
        if holds(self.locks, self.lock_key, self._rb.owner, self._rb.epoch, now):
            return True
        if not self._rb.expired_reported:
            self._rb.expired_reported = True
            state = self.locks.state(self.lock_key)
            self._emit(
                Event.LOCK_EXPIRED,
                self._rollback_actor,
                lock_key=self.lock_key,
                owner=self._rb.owner,
                epoch=self._rb.epoch,
                holder=None if state is None else state.owner,
                holder_epoch=None if state is None else state.epoch,
                job_id=ids.get("job_id"),
            )
        return False

    # -- the verdict ----------------------------------------------------------------

    def _unreached_faults(self) -> list[str]:
        """Injected faults aimed at a step the run never got to: nothing was rehearsed.

        A forward fault (``fatal``, ``partial``, ``transient``) needs its step dispatched;
        a ``policy_unavailable`` fault on the forward gate (or any gate) needs the step to
        reach its gate; a compensation fault (and ``policy_unavailable`` on the
        compensation gate) needs its step dispatched, since a step that never ran has
        nothing to compensate. Whether a dispatched step's compensation then runs is the
        rollback's own outcome (no rollback, a held lock, the window, ...), recorded in
        the evidence, and is not checked here.
        """
        steps = {s.step_id: s for s in self._steps}
        stopped = next(
            (s for s in self._steps if s.state not in (StepState.SUCCEEDED, StepState.NOT_RUN)),
            None,
        )
        problems: list[str] = []
        seen: set[tuple[str, str]] = set()
        for fault in self.must_reach:
            if fault.step is None or fault.step not in steps:
                continue
            report = steps[fault.step]
            if fault.type is FaultType.POLICY_UNAVAILABLE and fault.phase is not Phase.COMPENSATION:
                reached = report.decision is not None or report.attempts > 0
            else:
                reached = report.attempts > 0
            if reached or (fault.type.value, fault.step) in seen:
                continue
            seen.add((fault.type.value, fault.step))
            if stopped is None:
                where = "the run stopped before it"
            elif stopped.step_id == fault.step:
                how = "denied" if stopped.state is StepState.DENIED else "stopped"
                where = f"the step was {how} before it was dispatched"
            else:
                where = f"the run stopped at '{stopped.step_id}'"
            problems.append(
                f"{fault.type.value} fault at '{fault.step}' was never reached ({where}): "
                "the drill did not rehearse it"
            )
        return problems

    def _finish(self, status: RunStatus, rollback: bool, started: str) -> DrillResult:
        ledger = self._ledger(rollback)
        problems = list(self._cut_short)  # an outage or the deadline: no rehearsal
        problems.extend(
            f"step '{row.step_id}': effect of {row.topic} left behind with no compensation "
            "and no manual follow-up"
            for row in ledger
            if row.state == "left_behind"
        )
        problems.extend(
            f"step '{row.step_id}': compensation applied {row.undone} times for "
            f"{row.applied} effect(s) (undone twice; no idempotency key?)"
            for row in ledger
            if row.state == "undone_twice"
        )
        if status is not RunStatus.INTERRUPTED:
            if self.must_reach:
                problems.extend(self._unreached_faults())
            problems.extend(self._check_expectations(status, rollback, ledger))
        if status is RunStatus.INTERRUPTED:
            verdict = Verdict.INTERRUPTED
        elif problems:
            verdict = Verdict.FAILED
        elif rollback:
            verdict = Verdict.RECOVERED
        else:
            verdict = Verdict.COMPLETED
        failed = next(
            (s for s in self._steps if s.state not in (StepState.SUCCEEDED, StepState.NOT_RUN)),
            None,
        )
        summary: dict[str, Any] = {
            "run_id": self.run_id,
            "job_id": failed.job_id if failed else self._trigger_job,
            "status": status.value,
            "matched_policy_id": failed.rule_id if failed else self._last_rule,
            "rollback_triggered": rollback,
            "rollback_mode": ROLLBACK_MODE,
            "compensation_jobs_dispatched": self._counts.dispatched,
            "compensation_jobs_skipped": self._counts.skipped,
            "compensation_jobs_failed": self._counts.failed,
            "manual_followups": self._counts.followups,
            "rollback_finished_at": self._rb.finished_at,
            "started_at": started,
            "finished_at": rfc3339(self.clock.now()),
            "env": self.env,
            "verdict": verdict.value,
            "scenario": self.scenario,
            "step_id": failed.step_id if failed else None,
            "steps_total": len(self._steps),
            "steps_succeeded": sum(1 for s in self._steps if s.state is StepState.SUCCEEDED),
            "compensated": [r.step_id for r in ledger if r.state == "undone"],
            "manual": [f.step_id for f in self._followups],
            "left_behind": [r.step_id for r in ledger if r.state == "left_behind"],
            "undone_twice": [r.step_id for r in ledger if r.state == "undone_twice"],
            "lock_expired": self._rb.expired_reported,
            "problems": problems,
        }
        self._emit(Event.RUN_SUMMARY, "agentundo", **summary)
        return DrillResult(
            run_id=self.run_id,
            workflow_id=self.wf_id,
            env=self.env,
            status=status,
            verdict=verdict,
            rollback_triggered=rollback,
            steps=self._steps,
            compensations=self._comps,
            followups=self._followups,
            ledger=ledger,
            problems=problems,
            summary=summary,
            events=self._events,
            lock_expired=self._rb.expired_reported,
        )

    def _ledger(self, rollback: bool) -> list[LedgerRow]:
        """Each dispatched step's effect: from the simulated world, else from outcomes."""
        escalated = {f.step_id for f in self._followups}
        outcomes = {c.step_id: c for c in self._comps}
        rows: list[LedgerRow] = []
        for report in self._steps:
            if report.attempts == 0:
                continue
            if self.world is not None:
                effect = self.world.effect(report.step_id)
                applied = effect.applied if effect else 0
                undone = effect.undone if effect else 0
            else:
                comp = outcomes.get(report.step_id)
                undone = int(
                    comp is not None and comp.outcome == "succeeded" and comp.applied is not False
                )
                # A real service that undid something for a failed step (a partial failure)
                # shows that its effect had landed: only the service can know.
                landed = (
                    report.state is StepState.SUCCEEDED
                    or report.landed
                    or (undone == 1 and comp is not None and comp.applied is True)
                )
                applied = int(landed)
            if applied == 0 and undone == 0:
                state = "none"
            elif undone > applied:
                state = "undone_twice"
            elif undone == applied:
                state = "undone"
            elif not rollback and report.step_id not in escalated:
                state = "kept"
            elif report.step_id in escalated:
                state = "escalated"
            else:
                state = "left_behind"
            rows.append(LedgerRow(report.step_id, report.topic, applied, undone, state))
        return rows

    def _check_expectations(
        self, status: RunStatus, rollback: bool, ledger: list[LedgerRow]
    ) -> list[str]:
        expect = self.expect
        if expect is None:
            return []
        failures: list[str] = []
        if expect.status is not None and expect.status != status.value:
            failures.append(f"expected status {expect.status}, got {status.value}")
        if expect.rollback_triggered is not None and expect.rollback_triggered != rollback:
            failures.append(
                f"expected rollback_triggered {expect.rollback_triggered}, got {rollback}"
            )
        if expect.compensated is not None:
            got = {r.step_id for r in ledger if r.state == "undone"}
            failures.extend(_set_diff("compensated", set(expect.compensated), got))
        if expect.manual is not None:
            got = {f.step_id for f in self._followups}
            failures.extend(_set_diff("sent to manual follow-up", set(expect.manual), got))
        return failures


def _set_diff(what: str, wanted: set[str], got: set[str]) -> list[str]:
    out: list[str] = []
    if wanted - got:
        out.append(f"expected {what} but was not: {', '.join(sorted(wanted - got))}")
    if got - wanted:
        out.append(f"{what} but not expected: {', '.join(sorted(got - wanted))}")
    return out


def _render_params(params: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in params.items():
        if isinstance(value, str) and "{" in value:
            try:
                out[name] = render_key(value, fields)
            except (KeyError, ValueError, IndexError):
                out[name] = value
        else:
            out[name] = value
    return out


@dataclass(frozen=True, slots=True)
class PlanProblem:
    """A reason the run cannot start: where (step index, or a fault) and what."""

    message: str
    step_index: int | None = None
    fault_index: int | None = None
    usage: bool = False  # the command line's doing (exit 2 as a usage error)


def check_plan(
    workflow: Workflow,
    catalog: Catalog,
    plan: FaultPlan,
    approvals: Iterable[str] = (),
) -> list[PlanProblem]:
    """Problems that would make a drill meaningless: unknown steps, unrenderable keys."""
    problems: list[PlanProblem] = []
    ids = [s.id for s in workflow.steps]
    known = set(ids)
    if len(known) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        problems.append(PlanProblem(f"step ids must be unique; repeated: {', '.join(dup)}"))
    for index, fault in enumerate(plan.faults):
        if fault.type in WORKFLOW_FAULTS and fault.step is not None:
            problems.append(
                PlanProblem(
                    f"a {fault.type} fault is about the workflow's rollback lock, not a step; "
                    f"remove 'step: {fault.step}'",
                    fault_index=index,
                )
            )
        elif fault.step is not None and fault.step not in known:
            problems.append(
                PlanProblem(
                    f"{fault.type} fault names step '{fault.step}', which is not in "
                    f"workflow '{workflow.workflow}'",
                    fault_index=index,
                )
            )
    problems.extend(
        PlanProblem(f"--approve names step '{name}', which is not in the workflow", usage=True)
        for name in approvals
        if name not in known
    )
    for index, step in enumerate(workflow.steps):
        spec = catalog.topics.get(step.topic)
        if spec is None:
            continue
        fields = {
            "run_id": "run",
            "workflow_id": workflow.workflow,
            "step_id": step.id,
            "step_index": index,
            "topic": step.topic,
            "env": workflow.env,
            "job_id": "job",
            "params": step.params,
        }
        templates = [("idempotency_key", spec.idempotency_key)]
        if spec.compensation is not None:
            templates.append(("compensation.idempotency_key", spec.compensation.idempotency_key))
        for where, template in templates:
            if not template:
                continue
            try:
                render_key(template, fields)
            except (KeyError, ValueError, IndexError) as exc:
                problems.append(
                    PlanProblem(
                        f"cannot render {where} {template!r} of topic '{step.topic}' for "
                        f"step '{step.id}': missing {exc}",
                        step_index=index,
                    )
                )
    return problems


@dataclass(slots=True)
class DrillSetup:
    """Everything a drill needs besides the per-run state; shared by a sweep's runs."""

    workflow: Workflow
    catalog: Catalog
    policy: Policy
    plan: FaultPlan = NO_FAULTS
    approvals: frozenset[str] = frozenset()
    settings: Settings = Settings()
    expect: Expect | None = None
    scenario: str | None = None
    seed: int = 0
    clock_name: str = "virtual"
    compiled: CompiledPolicy | None = field(default=None)
    must_reach: tuple[Fault, ...] | None = None
    """The faults whose step the run must get to, or the drill fails: None for every
    fault of the plan. A sweep names only the failure it injects into each run: the
    scenario's other faults apply to every run and lie behind the failure in early ones."""

    def __post_init__(self) -> None:
        if self.compiled is None:
            self.compiled = CompiledPolicy(self.policy)


def drill(
    setup: DrillSetup,
    *,
    run_id: str,
    sink: Sink,
    clock: Clock,
    stop: Stop | None = None,
    executor: Executor | None = None,
    lock_store: LockStore | None = None,
) -> DrillResult:
    """Run one drill against a fresh simulated world (or the given executor)."""
    from agentundo.saga.lock import MemoryLockStore
    from agentundo.saga.simulate import SimulatedExecutor

    world: SimulatedWorld | None = None
    if executor is None:
        simulated = SimulatedExecutor(setup.catalog)
        world = simulated.world
        executor = simulated
    engine = Engine(
        workflow=setup.workflow,
        catalog=setup.catalog,
        policy=setup.policy,
        executor=executor,
        sink=sink,
        clock=clock,
        rng=random.Random(setup.seed),
        lock_store=lock_store or MemoryLockStore(),
        run_id=run_id,
        plan=setup.plan,
        approvals=setup.approvals,
        settings=setup.settings,
        world=world,
        expect=setup.expect,
        stop=stop,
        scenario=setup.scenario,
        seed=setup.seed,
        clock_name=setup.clock_name,
        compiled=setup.compiled,
        must_reach=setup.must_reach,
    )
    return engine.run()
