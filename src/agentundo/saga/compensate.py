"""One compensation: from a stack entry to exactly one recorded outcome.

The entry is checked against the rollback window and the lock (fencing), passes the
policy gate, and is dispatched with retries until it succeeds, fails for good, times
out, or is rejected. Anything not undone goes to a human with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agentundo.evidence.events import CompensationOutcome, Event, FollowUp
from agentundo.model.catalog import Compensation, Topic
from agentundo.model.common import Rollback
from agentundo.model.scenario import Phase
from agentundo.model.templates import (
    compensation_key,
    lookup_response,
    pick_response,
    render_key,
    response_fields,
    response_path,
)
from agentundo.saga.clock import bounded_wait
from agentundo.saga.context import Interrupted, ResumedJob, RunContext, StackEntry
from agentundo.saga.executor import Call, CallKind, Executor, Outcome, Result
from agentundo.saga.forward import backoff_delay
from agentundo.saga.gate import Gate, GateRequest
from agentundo.saga.result import CompensationReport

if TYPE_CHECKING:
    from agentundo.saga.rollback import Rollback as RollbackRun


@dataclass(slots=True)
class _Job:
    """One entry's compensation job: what it undoes, how, and its report."""

    entry: StackEntry
    spec: Topic
    comp: Compensation
    report: CompensationReport
    ids: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)
    last_error: str | None = None  # the last answer that was not a success
    injected: bool = False  # an injected fault decided one of its attempts


class Compensator:
    """Compensates stack entries for one rollback."""

    def __init__(
        self, ctx: RunContext, *, gate: Gate, executor: Executor, rollback: RollbackRun
    ) -> None:
        self.ctx = ctx
        self.gate = gate
        self.executor = executor
        self.rollback = rollback

    def compensate(self, entry: StackEntry) -> None:
        spec = entry.spec
        comp = spec.compensation if spec is not None else None
        if spec is None or spec.rollback is Rollback.IRREVERSIBLE or comp is None:
            self._nothing_to_dispatch(entry)
            return
        missing = _missing_response(spec, entry)
        if missing and entry.sent:
            if self._ask_again(entry, spec):
                missing = _missing_response(spec, entry)
            self.ctx.check_stop()  # halted while asking: the entry stays owed
        if missing:
            self._without_answer(entry, spec, comp, missing)
            return
        job = self._job(entry, spec, comp)
        if self.ctx.clock.now() >= self.rollback.deadline:
            window = self.ctx.settings.rollback_window_s
            self._timed_out(job, f"rollback window of {window:g}s elapsed before dispatch")
            return
        if not self.rollback.fenced(job.ids):
            self._lock_lost(job)
            return
        if self._gated(job):
            self._dispatch(job)

    def _ask_again(self, entry: StackEntry, spec: Topic) -> bool:
        """Send a forward call whose answer never came again, with its own idempotency key,
        to learn the ids its compensation needs; True when an answer came back.

        An idempotent service answers a repeated key with the first answer and applies
        nothing (as payment APIs do), so the repeat says which effect to undo; if the first
        call never landed, the repeat makes it land, and it is undone like the rest. A call
        without a key is never repeated: its effect goes to a human.
        """
        forward = entry.forward
        if forward is None or forward.idempotency_key is None:
            return False
        ctx, step = self.ctx, entry.step
        forward.attempts += 1
        ids = {"job_id": forward.job_id, "step_id": step.id, "topic": step.topic}
        ctx.emit(
            Event.STEP_DISPATCHED,
            ctx.agent,
            **ids,
            step_index=entry.index,
            attempt=forward.attempts,
            idempotency_key=forward.idempotency_key,
            params=step.params,
            replay="its answer never came: the same key asks for the first answer",
        )
        result = self.executor.execute(
            ctx.forward_call(
                step,
                entry.index,
                job_id=forward.job_id,
                key=forward.idempotency_key,
                attempt=forward.attempts,
                rollback=True,
            )
        )
        if result.outcome is not Outcome.OK:
            ctx.emit(
                Event.STEP_OUTCOME_UNKNOWN,
                ctx.agent,
                **ids,
                idempotency_key=forward.idempotency_key,
                attempt=forward.attempts,
                reason=f"asked again for its answer and got none: {result.error}",
            )
            return False
        entry.response = pick_response(response_fields(spec), result.response)
        forward.answered = True
        ctx.emit(
            Event.STEP_SUCCEEDED,
            ctx.agent,
            **ids,
            idempotency_key=forward.idempotency_key,
            attempt=forward.attempts,
            detail=result.detail,
            response=entry.response,
        )
        return True

    def _without_answer(
        self, entry: StackEntry, spec: Topic, comp: Compensation, missing: list[str]
    ) -> None:
        """The compensation names fields of an answer the forward call never got.

        A call that never reached the service had no effect: nothing is owed, and the
        evidence says so. A call that reached it but got no usable answer may have landed,
        and cannot be undone from here: a human must look.
        """
        ctx, step = self.ctx, entry.step
        job = ctx.new_job()
        names = ", ".join(f"{{{name}}}" for name in missing)
        ids = {"job_id": job, "step_id": step.id, "topic": comp.topic, "for_topic": step.topic}
        if not entry.sent:
            ctx.comps.append(
                CompensationReport(
                    step.id, step.topic, comp.topic, job, None, CompensationOutcome.NOT_NEEDED
                )
            )
            ctx.emit(
                Event.COMPENSATION_NOT_NEEDED,
                ctx.rollback_actor,
                **ids,
                reason=f"its call names {names} of the forward answer, and the forward call "
                "never reached the service, so its effect did not land: nothing is owed",
            )
            return
        ctx.comps.append(
            CompensationReport(
                step.id, step.topic, comp.topic, job, None, CompensationOutcome.MANUAL
            )
        )
        ctx.counts.skipped += 1
        ctx.followup(
            step,
            comp.topic,
            FollowUp.COMPENSATION_FAILED,
            f"cannot call the compensation: it names {names} of the forward answer, and the "
            "forward call got no usable answer (its effect may have landed)",
            spec.mitigation,
            job_id=job,
        )

    def _nothing_to_dispatch(self, entry: StackEntry) -> None:
        """No compensation to run (irreversible, none declared, unknown topic): a human."""
        step, spec = entry.step, entry.spec
        irreversible = spec is not None and spec.rollback is Rollback.IRREVERSIBLE
        category = FollowUp.IRREVERSIBLE if irreversible else FollowUp.NO_COMPENSATION
        reason = (spec.no_rollback_reason if spec is not None else None) or (
            "the topic is irreversible"
            if irreversible
            else "no compensation is declared in the catalog"
            if spec is not None
            else f"topic '{step.topic}' is not in the catalog"
        )
        self.ctx.comps.append(
            CompensationReport(
                step.id, step.topic, None, None, None, outcome=CompensationOutcome.MANUAL
            )
        )
        mitigation = spec.mitigation if spec is not None else None
        self.ctx.followup(step, step.topic, category, reason, mitigation)

    def _job(self, entry: StackEntry, spec: Topic, comp: Compensation) -> _Job:
        ctx, step = self.ctx, entry.step
        if entry.resume is not None:
            return self._resumed(entry, spec, comp, entry.resume)
        job = ctx.new_job()
        key_fields = ctx.key_fields(step, entry.index, job, comp.topic, entry.response)
        derive = ctx.settings.derive_compensation_keys
        key = compensation_key(comp.idempotency_key, key_fields, derive=derive)
        report = CompensationReport(
            step.id, step.topic, comp.topic, job, key, outcome=CompensationOutcome.PENDING
        )
        ctx.comps.append(report)
        ids: dict[str, Any] = {
            "job_id": job,
            "step_id": step.id,
            "topic": comp.topic,
            "for_topic": step.topic,
            "idempotency_key": key,
        }
        params = {**step.params, **_render_params(comp.params or {}, key_fields)}
        return _Job(entry, spec, comp, report, ids, params)

    def _resumed(
        self, entry: StackEntry, spec: Topic, comp: Compensation, resume: ResumedJob
    ) -> _Job:
        """The job a crash cut short, sent again with its own id, key and attempt count."""
        ctx, step = self.ctx, entry.step
        key_fields = ctx.key_fields(step, entry.index, resume.job_id, comp.topic, entry.response)
        report = CompensationReport(
            step.id,
            step.topic,
            comp.topic,
            resume.job_id,
            resume.idempotency_key,
            outcome=CompensationOutcome.PENDING,
            attempts=resume.attempts,
            dispatched=True,
        )
        ctx.comps.append(report)
        ids: dict[str, Any] = {
            "job_id": resume.job_id,
            "step_id": step.id,
            "topic": comp.topic,
            "for_topic": step.topic,
            "idempotency_key": resume.idempotency_key,
        }
        params = {**step.params, **_render_params(comp.params or {}, key_fields)}
        return _Job(entry, spec, comp, report, ids, params)

    # -- outcomes that send the entry to a human ------------------------------------

    def _escalate(
        self,
        job: _Job,
        event: Event | None,
        outcome: CompensationOutcome,
        category: FollowUp,
        reason: str,
        *,
        injected: bool = False,
    ) -> None:
        job.report.outcome = outcome
        if job.report.dispatched:
            self.ctx.counts.failed += 1
        else:
            self.ctx.counts.skipped += 1
        if event is not None:
            self.ctx.emit(event, self.ctx.rollback_actor, **job.ids, reason=reason)
        self.ctx.followup(
            job.entry.step,
            job.comp.topic,
            category,
            reason,
            job.spec.mitigation,
            injected=injected,
            job_id=job.report.job_id,
        )

    def _timed_out(self, job: _Job, reason: str) -> None:
        """The window ran out: planned when injected faults used it up."""
        if job.last_error:
            reason = f"{reason}; last answer: {job.last_error}"
        self._escalate(
            job,
            Event.COMPENSATION_TIMED_OUT,
            CompensationOutcome.TIMED_OUT,
            FollowUp.COMPENSATION_TIMEOUT,
            reason,
            injected=job.injected or self.rollback.injected_delay,
        )

    def _lock_lost(self, job: _Job, reason: str | None = None) -> None:
        store_error = self.rollback.store_error
        if reason is None and store_error is not None:
            # nobody else took the lock: the entry stays owed to ``agentundo recover``
            category = FollowUp.LOCK_UNAVAILABLE
            reason = f"not compensated: the lock store failed ({store_error})"
        else:
            category = FollowUp.COMPENSATION_REJECTED
        self._escalate(
            job,
            Event.COMPENSATION_REJECTED,
            CompensationOutcome.REJECTED,
            category,
            reason or f"lock lost: fencing token epoch {self.rollback.epoch} is no longer valid",
            injected=self.rollback.lock_fault_fired,
        )

    def _gave_up(self, job: _Job, reason: str, *, injected: bool) -> None:
        """The compensation failed for good: count it and send its step to a human."""
        job.report.outcome = CompensationOutcome.FAILED
        self.ctx.counts.failed += 1
        self.ctx.followup(
            job.entry.step,
            job.comp.topic,
            FollowUp.COMPENSATION_FAILED,
            reason,
            job.spec.mitigation,
            injected=injected,
            job_id=job.report.job_id,
        )

    # -- the gate and the dispatch loop ---------------------------------------------

    def _gated(self, job: _Job) -> bool:
        """Whether the policy gate lets the compensation run; a denial goes to a human."""
        ctx = self.ctx
        step = job.entry.step
        spec = ctx.catalog.topics.get(job.comp.topic)
        answer = self.gate.check(
            GateRequest(step, job.comp.topic, spec, job.ids, Phase.COMPENSATION)
        )
        if answer.allowed:
            return True
        job.report.outcome = CompensationOutcome.SKIPPED
        ctx.counts.skipped += 1
        ctx.emit(
            Event.COMPENSATION_SKIPPED,
            ctx.rollback_actor,
            **job.ids,
            reason=answer.reason,
            rule_id=answer.rule_id,
        )
        ctx.followup(
            step,
            job.comp.topic,
            answer.category,
            answer.reason,
            job.spec.mitigation,
            injected=answer.injected,
            job_id=job.report.job_id,
        )
        return False

    def _dispatch(self, job: _Job) -> None:
        """Attempts until the entry has its outcome, within the window and under the lock."""
        ctx, rb, report = self.ctx, self.rollback, job.report
        per_attempt = bounded_wait(job.comp.timeout_seconds or ctx.settings.compensation_timeout_s)
        window = ctx.settings.rollback_window_s
        while True:
            now = ctx.clock.now()
            if report.attempts and now >= rb.deadline:
                self._timed_out(job, f"rollback window of {window:g}s elapsed")
                return
            if report.attempts and not rb.fenced(job.ids):
                self._lock_lost(job)
                return
            report.attempts += 1
            if not report.dispatched:
                report.dispatched = True
                ctx.counts.dispatched += 1
            timeout = max(0.0, min(per_attempt, rb.deadline - now))
            cut: dict[str, Any] = (
                {"declared_timeout_s": per_attempt} if per_attempt > window else {}
            )
            describe = getattr(self.executor, "describe", None)
            shown = None if describe is None else describe(self._call(job, timeout))
            if shown:
                cut["call"] = shown
            ctx.emit(
                Event.COMPENSATION_DISPATCHED,
                ctx.rollback_actor,
                **job.ids,
                step_index=job.entry.index,
                attempt=report.attempts,
                epoch=rb.epoch,
                timeout_s=round(timeout, 3),
                failed_step=job.entry.failed,
                **cut,
            )
            result = self.executor.execute(self._call(job, timeout))
            report.deliveries += int(result.detail.get("deliveries", 1))
            if result.injected is not None:
                job.injected = True
                rb.injected_delay = True
            if result.outcome is not Outcome.OK:
                job.last_error = result.error or result.outcome.value
            if self._settle(job, result):
                return
            self._wait_to_retry(job, result)

    def _call(self, job: _Job, timeout: float) -> Call:
        ctx, entry = self.ctx, job.entry
        return Call(
            kind=CallKind.COMPENSATION,
            run_id=ctx.run_id,
            workflow_id=ctx.workflow_id,
            job_id=str(job.report.job_id),
            step_id=entry.step.id,
            step_index=entry.index,
            topic=job.comp.topic,
            params=job.params,
            idempotency_key=job.report.idempotency_key,
            attempt=job.report.attempts,
            for_topic=entry.step.topic,
            timeout_s=timeout,
            env=ctx.env,
            lock_owner=ctx.owner,
            epoch=self.rollback.epoch,
            response=job.entry.response,
        )

    def _wait_to_retry(self, job: _Job, result: Result) -> None:
        ctx = self.ctx
        settings = ctx.settings
        attempt = job.report.attempts
        delay = backoff_delay(
            attempt, settings.backoff_initial_s, settings.compensation_backoff_max_s, ctx.rng
        )
        if result.retry_after_s is not None:  # the server asked for a longer wait
            delay = max(delay, bounded_wait(result.retry_after_s))
        delay = min(delay, max(0.0, self.rollback.deadline - ctx.clock.now()))
        ctx.emit(
            Event.COMPENSATION_RETRY_SCHEDULED,
            ctx.rollback_actor,
            **job.ids,
            attempt=attempt + 1,
            delay_s=round(delay, 3),
        )
        try:
            ctx.sleep(delay, job.ids)
        except Interrupted:
            self._escalate(
                job,
                None,
                CompensationOutcome.MANUAL,
                FollowUp.INTERRUPTED,
                "the drill was interrupted before the retry",
            )
            raise

    def _settle(self, job: _Job, result: Result) -> bool:
        """Record the outcome of one attempt; True when the entry has its final outcome."""
        ctx, report = self.ctx, job.report
        attempt = report.attempts
        if result.outcome is Outcome.OK:
            report.outcome = CompensationOutcome.SUCCEEDED
            report.applied = result.applied
            report.applied_twice = result.detail.get("second_applied") is True
            ctx.emit(
                Event.COMPENSATION_SUCCEEDED,
                ctx.rollback_actor,
                **job.ids,
                attempt=attempt,
                applied=result.applied,
                detail=result.detail,
            )
            return True
        error = result.error or result.outcome.value
        if result.outcome is Outcome.REJECTED:
            self._lock_lost(job, f"the resource refused the fencing token: {error}")
            return True
        transient = result.outcome is Outcome.TRANSIENT
        ctx.emit(
            Event.COMPENSATION_FAILED,
            ctx.rollback_actor,
            **job.ids,
            attempt=attempt,
            transient=transient,
            error=error,
            detail=result.detail,
        )
        if not transient:
            injected = result.injected is not None
            self._gave_up(job, f"compensation failed: {error}", injected=injected)
            return True
        if ctx.clock.now() >= self.rollback.deadline:
            window = ctx.settings.rollback_window_s
            self._timed_out(job, f"rollback window of {window:g}s elapsed")
            return True
        if attempt > ctx.settings.compensation_max_retries:
            retries = ctx.settings.compensation_max_retries
            self._gave_up(
                job,
                f"gave up after {retries} retries: {error}",
                injected=result.injected is not None,
            )
            return True
        return False


def _missing_response(spec: Topic, entry: StackEntry) -> list[str]:
    """The ``response.PATH`` fields the compensation names that the forward answer lacks."""
    missing: list[str] = []
    for name in response_fields(spec):
        path = response_path(name)
        try:
            if path is None:
                raise KeyError(name)
            lookup_response(entry.response, path)
        except KeyError:
            missing.append(name)
    return missing


def _render_params(params: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """The compensation's ``params`` with every template string filled, at any depth
    (lint checks nested strings as templates, so the engine renders them too)."""
    return {name: _render_value(value, fields) for name, value in params.items()}


def _render_value(value: Any, fields: dict[str, Any]) -> Any:
    if isinstance(value, str) and "{" in value:
        try:
            return render_key(value, fields)
        except (KeyError, ValueError, IndexError):
            return value
    if isinstance(value, dict):
        return {key: _render_value(item, fields) for key, item in value.items()}
    if isinstance(value, list):
        return [_render_value(item, fields) for item in value]
    return value
