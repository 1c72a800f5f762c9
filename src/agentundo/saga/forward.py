"""The forward path: each step through the gate, dispatched, retried with backoff, or failed.

A step that succeeds (or may have landed before it failed) goes on the compensation
stack; the first step that fails for good or is denied ends the forward path.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from agentundo.evidence.events import Event, FollowUp, RunStatus, StepState
from agentundo.model.scenario import Phase
from agentundo.model.templates import pick_response, render_key, response_fields
from agentundo.model.workflow import Step
from agentundo.saga.clock import bounded_wait
from agentundo.saga.context import ForwardCall, Interrupted, RunContext, StackEntry
from agentundo.saga.executor import Call, Executor, Outcome, Result
from agentundo.saga.gate import Gate, GateRequest
from agentundo.saga.result import StepReport


def backoff_delay(failures: int, initial: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with equal jitter, between ``initial`` and ``cap`` seconds."""
    raw = min(cap, initial * 2.0 ** min(failures - 1, 62))
    return max(initial, min(cap, raw / 2 + rng.uniform(0, raw / 2)))


@dataclass(slots=True)
class _Dispatch:
    """One step's dispatch: its report, stack entry, ids and idempotency key."""

    index: int
    step: Step
    report: StepReport
    entry: StackEntry
    ids: dict[str, Any]
    key: str | None
    may_land: bool
    needs: list[str]  # the response fields its compensation names
    sent: bool = False  # one of its calls reached the service

    @property
    def keyed(self) -> dict[str, Any]:
        return {**self.ids, "idempotency_key": self.key}


@dataclass(frozen=True, slots=True)
class _Retry:
    """The wait before the next attempt; ``past_deadline`` when it would start too late."""

    delay: float
    past_deadline: bool


class Forward:
    """Runs the workflow's steps in order until one fails for good or is denied."""

    def __init__(self, ctx: RunContext, gate: Gate, executor: Executor) -> None:
        self.ctx = ctx
        self.gate = gate
        self.executor = executor

    def run(self) -> RunStatus:
        for index, step in enumerate(self.ctx.setup.workflow.steps):
            self.ctx.check_stop()
            state = self.step(index, step)
            if state is StepState.FAILED_FATAL:
                return RunStatus.FAILED_FATAL
            if state is StepState.DENIED:
                return RunStatus.DENIED
        return RunStatus.SUCCEEDED

    def step(self, index: int, step: Step) -> StepState:
        ctx = self.ctx
        report = ctx.steps[index]
        spec = ctx.catalog.topics.get(step.topic)
        job = ctx.new_job()
        report.job_id = job
        key = None
        if spec is not None and spec.idempotency_key:
            key = render_key(spec.idempotency_key, ctx.key_fields(step, index, job, step.topic))
        ids = {"job_id": job, "step_id": step.id, "topic": step.topic}
        may_land = spec is None or spec.side_effect
        needs = response_fields(spec) if spec is not None and may_land else []
        entry = StackEntry(step, index, spec, sent=False, forward=ForwardCall(job, key, 0, False))
        one = _Dispatch(index, step, report, entry, ids, key, may_land, needs)
        left = ctx.time_left()
        if left is not None and left <= 0:
            return self._too_late(one)
        answer = self.gate.check(GateRequest(step, step.topic, spec, one.keyed, Phase.FORWARD))
        report.rule_id = answer.rule_id
        ctx.trigger.last_rule = answer.rule_id
        ctx.trigger.job = job
        if not answer.allowed:
            report.state = StepState.DENIED
            report.decision = "denied"
            ctx.emit(
                Event.STEP_DENIED,
                ctx.agent,
                **ids,
                idempotency_key=key,
                rule_id=answer.rule_id,
                reason=answer.reason,
            )
            if answer.category is FollowUp.POLICY_UNAVAILABLE:
                ctx.followup(
                    step, step.topic, answer.category, answer.reason, None, injected=answer.injected
                )
            return StepState.DENIED
        report.decision = "allowed"
        return self._attempts(one)

    def _too_late(self, one: _Dispatch) -> StepState:
        """The deadline passed before the step started: it fails without a dispatch."""
        error = f"not started: {self.ctx.deadline_name()} had passed"
        one.report.state = StepState.FAILED_FATAL
        one.report.error = error
        self.ctx.trigger.job = one.ids["job_id"]
        self.ctx.emit(
            Event.STEP_FAILED_FATAL,
            self.ctx.agent,
            **one.ids,
            idempotency_key=one.key,
            attempts=0,
            error=error,
        )
        self.ctx.cut(one.step, f"{error}; the run was cut short")
        return StepState.FAILED_FATAL

    def _attempts(self, one: _Dispatch) -> StepState:
        """Dispatch until the step succeeds or fails for good, retrying transient failures."""
        ctx = self.ctx
        attempt = 0
        while True:
            attempt += 1
            one.report.attempts = attempt
            ctx.emit(
                Event.STEP_DISPATCHED,
                ctx.agent,
                **one.ids,
                step_index=one.index,
                attempt=attempt,
                idempotency_key=one.key,
                **self._intent(one, attempt),
            )
            result = self.executor.execute(self._call(one, attempt))
            one.sent = one.sent or result.sent
            if one.entry.forward is not None:
                one.entry.forward.attempts = attempt
                one.entry.forward.answered = result.response is not None
            if ctx.stop.requested and result.outcome is not Outcome.OK:
                self._interrupted(one, result, attempt)
            if result.outcome is Outcome.OK:
                ctx.emit(
                    Event.STEP_SUCCEEDED,
                    ctx.agent,
                    **one.ids,
                    idempotency_key=one.key,
                    attempt=attempt,
                    detail=result.detail,
                    **self._answer(one, result),
                )
                one.report.state = StepState.SUCCEEDED
                if one.may_land:
                    ctx.stack.append(one.entry)
                return StepState.SUCCEEDED
            transient = result.outcome is Outcome.TRANSIENT
            error = result.error or result.outcome.value
            ctx.emit(
                Event.STEP_FAILED,
                ctx.agent,
                **one.ids,
                idempotency_key=one.key,
                attempt=attempt,
                transient=transient,
                error=error,
                detail=result.detail,
                sent=result.sent,
            )
            retry = self._next_attempt(result, attempt) if transient else None
            if retry is not None and not retry.past_deadline:
                self._wait_to_retry(one, attempt, retry.delay)
                continue
            return self._failed(one, result, attempt, error, retry)

    def _intent(self, one: _Dispatch, attempt: int) -> dict[str, Any]:
        """What a later recovery needs of this dispatch, written before the call: the
        step's params when its effect can be compensated, and the call as it is sent
        (``call``: method and URL, when the executor can say; never headers)."""
        intent: dict[str, Any] = {}
        if one.may_land and one.entry.spec is not None and one.entry.spec.compensation:
            intent["params"] = one.step.params
        describe = getattr(self.executor, "describe", None)
        if describe is not None:
            shown = describe(self._call(one, attempt))
            if shown:
                intent["call"] = shown
        return intent

    def _call(self, one: _Dispatch, attempt: int) -> Call:
        return self.ctx.forward_call(
            one.step, one.index, job_id=one.ids["job_id"], key=one.key, attempt=attempt
        )

    def _next_attempt(self, result: Result, attempt: int) -> _Retry | None:
        """When the next attempt would start, or None when no retry is left."""
        settings = self.ctx.settings
        if attempt > settings.max_retries:
            return None
        delay = backoff_delay(
            attempt, settings.backoff_initial_s, settings.backoff_max_s, self.ctx.rng
        )
        if result.retry_after_s is not None:  # the server asked for a longer wait
            delay = max(delay, bounded_wait(result.retry_after_s))
        left = self.ctx.time_left()
        return _Retry(delay, past_deadline=left is not None and delay >= left)

    def _wait_to_retry(self, one: _Dispatch, attempt: int, delay: float) -> None:
        ctx = self.ctx
        ctx.emit(
            Event.RETRY_SCHEDULED,
            ctx.agent,
            **one.ids,
            idempotency_key=one.key,
            attempt=attempt + 1,
            delay_s=round(delay, 3),
        )
        try:
            ctx.sleep(delay, one.keyed)
        except Interrupted:
            one.report.state = StepState.INTERRUPTED
            self._stack_failed(one)
            raise

    def _failed(
        self, one: _Dispatch, result: Result, attempt: int, error: str, retry: _Retry | None
    ) -> StepState:
        """The step failed for good: record why, and stack it when its effect may have landed."""
        ctx = self.ctx
        if result.outcome is Outcome.TRANSIENT:
            error = f"{self._gave_up(one, result, attempt, error, retry)}: {error}"
        elif result.injected is None:
            ctx.cut(
                one.step,
                f"it failed for real ({error}), not by a fault the drill injected: the "
                "rollback it triggered is not the planned fault, so the drill did not "
                "rehearse its scenario",
            )
        one.report.state = StepState.FAILED_FATAL
        one.report.error = error
        one.report.landed = result.applied is True
        ctx.emit(
            Event.STEP_FAILED_FATAL,
            ctx.agent,
            **one.ids,
            idempotency_key=one.key,
            attempts=attempt,
            error=error,
            sent=one.sent,
            **self._answer(one, result),
        )
        self._stack_failed(one)
        return StepState.FAILED_FATAL

    def _interrupted(self, one: _Dispatch, result: Result, attempt: int) -> None:
        """A stop came while the call was in flight: its outcome is unknown when it was
        sent (it may have landed, so it is stacked); then the forward path stops."""
        ctx = self.ctx
        one.report.state = StepState.INTERRUPTED
        if result.sent:
            ctx.emit(
                Event.STEP_OUTCOME_UNKNOWN,
                ctx.agent,
                **one.ids,
                idempotency_key=one.key,
                attempt=attempt,
                reason=f"stopped while the call was in flight: {result.error or 'no answer'}",
            )
        self._stack_failed(one)
        ctx.check_stop(one.keyed)

    def _stack_failed(self, one: _Dispatch) -> None:
        """Stack a step that did not succeed when its effect may have landed (or always or
        never, as ``compensate_failed_step`` says)."""
        if not one.may_land:
            return
        wanted = self.ctx.settings.compensate_failed_step
        if wanted is False or (wanted is None and not one.sent):
            return
        one.entry.failed = True
        one.entry.sent = one.sent
        self.ctx.stack.append(one.entry)

    def _answer(self, one: _Dispatch, result: Result) -> dict[str, Any]:
        """The answer's fields the step's compensation names, kept on its stack entry and
        recorded as ``response`` (nothing when it names none)."""
        one.entry.sent = one.sent
        if not one.needs or result.response is None:
            return {}
        kept = pick_response(one.needs, result.response)
        one.entry.response = kept
        return {"response": kept}

    def _gave_up(
        self, one: _Dispatch, result: Result, attempt: int, error: str, retry: _Retry | None
    ) -> str:
        """Why transient failures ended the step: the retries, or the deadline."""
        ctx = self.ctx
        past_deadline = retry is not None and retry.past_deadline
        if retry is not None and retry.past_deadline:
            gave_up = (
                f"gave up after {attempt} attempts: the next retry (in "
                f"{round(retry.delay, 3):g}s) would start after {ctx.deadline_name()}"
            )
        else:
            gave_up = f"gave up after {ctx.settings.max_retries} retries"
        if result.injected is None:
            ctx.cut(
                one.step,
                f"its endpoint was unreachable or kept failing ({error}; {gave_up}). "
                "A real outage is not a fault the drill injected, so the drill did "
                "not rehearse its scenario",
            )
        elif past_deadline:
            ctx.cut(one.step, f"{gave_up}; the run was cut short")
        return gave_up
