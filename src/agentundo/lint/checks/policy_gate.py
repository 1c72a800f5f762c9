"""Policy gate checks (AU30x): what the policy decides for risky actions and rollbacks.

Forward dispatches are evaluated with ``approval_present: false`` (no human in the
loop yet) and compensations with ``is_compensation: true``, in every ``--env``. A rule
undecided for lack of job facts (a control plane's ``labels``, ``risk_tags``, ...) gives
several possible outcomes; each one that is a problem is reported with what it assumes.
"""

from __future__ import annotations

from collections.abc import Iterator

from agentundo.lint.finding import Severity
from agentundo.lint.project import PolicyEntry, Problem, Project
from agentundo.lint.registry import check
from agentundo.model.common import Decision, Risk
from agentundo.policy.evaluate import Context

_RISKY = (Risk.HIGH, Risk.CRITICAL)


@check("AU301", "unrecoverable-action-allowed", Severity.ERROR, "policy")
def unrecoverable_action_allowed(project: Project) -> Iterator[Problem]:
    """The policy lets a high or critical risk action that cannot be rolled back run without a human.

    An action with side effects that has no usable rollback (irreversible, or no
    compensation declared) and a high or critical risk must be denied or sent to a
    human (`require_human`) in the env. Reported at the rule (or default) that allows it.

    Bad:
        # catalog: infra.db.delete {side_effect: true, rollback: irreversible, risk: critical}
        default_decision: allow
        rules: []
    Good:
        rules:
          - id: human-for-unrecoverable
            when: {risk: [high, critical], rollback_supported: false, approval_present: false}
            decision: require_human
    """
    for entry in project.policies:
        for env in project.envs:
            for topic_entry in project.side_effect_topics():
                topic = topic_entry.topic
                if topic.effective_risk not in _RISKY or topic.rollback_supported:
                    continue
                ctx = Context.for_topic(topic_entry.name, topic, env=env)
                for outcome in entry.outcomes(ctx):
                    if outcome.decision is not Decision.ALLOW:
                        continue
                    yield Problem(
                        entry.rule_position(outcome.index),
                        f"{entry.decided_by(outcome.index)} allows '{topic_entry.name}' "
                        f"({topic.effective_risk} risk, cannot be rolled back) in {env} "
                        f"without a human{entry.assuming(outcome, ctx.job)}",
                        "deny it or require_human unless approval_present",
                    )


def _compensation_decisions(
    project: Project, blocked: Decision
) -> Iterator[tuple[PolicyEntry, str, str, str, int | None, str]]:
    for entry in project.policies:
        for env in project.envs:
            for gate in project.compensation_gates(entry, env):
                for outcome in gate.outcomes:
                    if outcome.decision is blocked:
                        when = entry.assuming(outcome, gate.ctx.job)
                        name = gate.entry.name
                        yield entry, env, name, gate.compensation.topic, outcome.index, when


@check("AU302", "compensation-denied", Severity.ERROR, "policy")
def compensation_denied(project: Project) -> Iterator[Problem]:
    """The policy denies a compensation: the rollback would skip it.

    During a rollback a denied compensation is skipped and left for manual follow-up,
    so the effect it should undo stays in the world.

    Bad:
        rules:
          - {id: no-refunds, when: {topic: payments.refund}, decision: deny}
    Good:
        rules:
          - {id: no-refunds, when: {topic: payments.refund, is_compensation: false}, decision: deny}
    """
    for entry, env, name, compensation, index, when in _compensation_decisions(
        project, Decision.DENY
    ):
        yield Problem(
            entry.rule_position(index),
            f"{entry.decided_by(index)} denies compensation '{compensation}' of "
            f"'{name}' in {env}{when}: a rollback would skip it",
            "allow compensations, e.g. a rule with 'is_compensation: true'",
        )


@check("AU303", "compensation-needs-human", Severity.WARNING, "policy")
def compensation_needs_human(project: Project) -> Iterator[Problem]:
    """The policy sends a compensation to a human: the rollback would stall.

    A rollback must finish within its window (30 s by default); waiting for an approval
    usually outlasts it and the compensation goes to manual follow-up.

    Bad:
        rules:
          - {id: human-for-refunds, when: {topic: payments.refund}, decision: require_human}
    Good:
        rules:
          - id: human-for-refunds
            when: {topic: payments.refund, is_compensation: false}
            decision: require_human
    """
    for entry, env, name, compensation, index, when in _compensation_decisions(
        project, Decision.REQUIRE_HUMAN
    ):
        yield Problem(
            entry.rule_position(index),
            f"{entry.decided_by(index)} requires a human for compensation "
            f"'{compensation}' of '{name}' in {env}{when}: a rollback would stall",
            "allow compensations, e.g. a rule with 'is_compensation: true'",
        )
