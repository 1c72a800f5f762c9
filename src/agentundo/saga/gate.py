"""The policy gate: every forward step and every compensation asks it before it runs.

:class:`PolicyGate` evaluates the run's policy (one evaluation per topic, approval and
phase), records the decision, and waits for a human where the policy requires one.
Faults that act on the gate wrap it (:class:`agentundo.saga.faults.FaultyGate`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from agentundo.evidence.events import Event, FollowUp
from agentundo.model.catalog import Topic
from agentundo.model.common import Decision
from agentundo.model.scenario import Phase
from agentundo.model.workflow import Step
from agentundo.policy.conditions import UNKNOWN_JOB
from agentundo.policy.evaluate import Context
from agentundo.saga.context import RunContext


@dataclass(frozen=True, slots=True)
class GateRequest:
    """One question to the gate: may ``step`` run ``topic`` now (in ``phase``)?"""

    step: Step
    topic: str
    spec: Topic | None
    ids: dict[str, Any]
    phase: Phase

    @property
    def is_compensation(self) -> bool:
        return self.phase is Phase.COMPENSATION


@dataclass(slots=True)
class GateAnswer:
    allowed: bool
    reason: str = ""
    rule_id: str | None = None
    category: FollowUp = FollowUp.COMPENSATION_DENIED
    injected: bool = False  # a fault decided it, not the policy


class Gate(Protocol):
    """Answers gate requests, writing the decision to the run's evidence."""

    def check(self, request: GateRequest) -> GateAnswer: ...


def gate_actor(ctx: RunContext, request: GateRequest) -> str:
    """Who asks: the rollback for a compensation, the agent for a forward step."""
    return ctx.rollback_actor if request.is_compensation else ctx.agent


@dataclass(frozen=True, slots=True)
class _Decided:
    """A policy decision as the gate reports it."""

    decision: Decision
    value: str
    rule_id: str | None
    reason: str
    default: bool


class PolicyGate:
    """The run's policy, evaluated and recorded; approvals come from the scenario."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self._decisions: dict[tuple[str, bool, bool, str], _Decided] = {}

    def check(self, request: GateRequest) -> GateAnswer:
        ctx = self.ctx
        actor = gate_actor(ctx, request)
        is_comp = request.is_compensation
        ids = request.ids
        approved = request.step.id in ctx.setup.approvals
        decided = self._decisions.get(self._key(request, approved))
        if decided is None:
            decided = self._decide(request, approved)
        decision, rule_id, reason = decided.decision, decided.rule_id, decided.reason
        ctx.emit(
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
            return GateAnswer(True, reason, rule_id)
        if decision is Decision.DENY:
            return GateAnswer(False, reason, rule_id)
        if is_comp:
            if approved:
                ctx.emit(Event.APPROVAL_GRANTED, actor, **ids, approver="scenario")
                return GateAnswer(True, reason, rule_id)
            why = f"requires human approval and none is present ({reason})"
            return GateAnswer(False, why, rule_id)
        return self._wait_for_approval(request, actor, approved, reason, rule_id)

    def _wait_for_approval(
        self, request: GateRequest, actor: str, approved: bool, reason: str, rule_id: str | None
    ) -> GateAnswer:
        """A forward step that needs a human: granted, or refused when the wait runs out."""
        ctx = self.ctx
        ids = request.ids
        timeout = ctx.settings.approval_timeout_s
        ctx.emit(Event.APPROVAL_WAITING, actor, **ids, timeout_s=timeout, rule_id=rule_id)
        if approved:
            ctx.emit(Event.APPROVAL_GRANTED, actor, **ids, approver="scenario")
            return GateAnswer(True, reason, rule_id)
        left = ctx.time_left()
        if left is not None and left < timeout:
            ctx.sleep(left, ids)
            ctx.emit(Event.APPROVAL_TIMEOUT, actor, **ids, timeout_s=timeout)
            why = f"no approval before {ctx.deadline_name()}"
            ctx.cut(request.step, f"{why}; the run was cut short")
            return GateAnswer(False, f"{why} ({reason})", rule_id)
        ctx.sleep(timeout, ids)
        ctx.emit(Event.APPROVAL_TIMEOUT, actor, **ids, timeout_s=timeout)
        return GateAnswer(False, f"no approval within {timeout:g}s ({reason})", rule_id)

    def _key(self, request: GateRequest, approved: bool) -> tuple[str, bool, bool, str]:
        """What a decision depends on: the topic, approval and phase, and the step when
        steps carry job facts of their own (a Cordum workflow)."""
        setup = self.ctx.setup
        per_step = request.step.id in setup.jobs or request.step.id in setup.approval_steps
        step = request.step.id if per_step else ""
        return (request.topic, approved, request.is_compensation, step)

    def _decide(self, request: GateRequest, approved: bool) -> _Decided:
        """The policy's answer for the request's topic (whose catalog entry is its spec), cached.

        Everything else a decision depends on (env, workflow, the policy) is fixed for the
        run, so one evaluation per (topic, approval, phase) gives every later gate its
        answer; steps with job facts of their own are evaluated each with its own. A rule
        undecided for the job counts as the strictest outcome (the gate fails closed), and an
        approval step waits for a human whatever the policy allows.
        """
        setup = self.ctx.setup
        topic, is_comp = request.topic, request.is_compensation
        context = Context.for_topic(
            topic,
            request.spec,
            env=self.ctx.env,
            approval_present=approved,
            is_compensation=is_comp,
            workflow=self.ctx.workflow_id,
            job=setup.jobs.get(request.step.id, UNKNOWN_JOB),
        )
        decision, index = setup.policy_index.decide(context)
        rule = None if index is None else setup.policy.rules[index]
        rule_id = None if rule is None else rule.id
        reason = (rule.reason if rule is not None else None) or (
            f"rule '{rule_id}'" if rule_id else f"default decision ({decision.value})"
        )
        if request.step.id in setup.approval_steps and not is_comp and decision is Decision.ALLOW:
            decision = Decision.REQUIRE_HUMAN
            reason = f"approval step '{request.step.id}' waits for a human ({reason})"
        decided = _Decided(decision, decision.value, rule_id, reason, rule is None)
        self._decisions[self._key(request, approved)] = decided
        return decided
