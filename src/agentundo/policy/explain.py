"""Why a policy decides what it decides for one dispatch. Pure functions, no I/O.

:func:`explain` runs :func:`agentundo.policy.evaluate.evaluate` and states, for every
rule, whether it decided, matched but lost (and to which rule, and why), did not match
(and which conditions failed), or is undecided: its conditions on the job (a control
plane's labels, risk tags, ...) were not given. When the decision depends on undecided
rules, every possible outcome is listed with what it assumes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, assert_never

from agentundo.model.common import Decision
from agentundo.model.policy import Policy, Rule
from agentundo.policy.conditions import Compare, Job, JobCondition
from agentundo.policy.evaluate import Context, Mismatch, Outcome, RuleResult, evaluate


class Status(StrEnum):
    """What one rule did for the dispatch."""

    DECIDED = "decided"
    OVERRIDDEN = "overridden"
    NOT_MATCHED = "not_matched"
    UNDECIDED = "undecided"


@dataclass(frozen=True, slots=True)
class RuleVerdict:
    """One rule's part in the decision, with a sentence that says why."""

    index: int
    rule: Rule
    status: Status
    why: str
    failed: tuple[Mismatch, ...] = ()
    line: int = 0


@dataclass(frozen=True, slots=True)
class Possible:
    """One possible decision when rules are undecided: by whom, and what it assumes."""

    decision: Decision
    rule: Rule | None
    index: int | None
    assuming: str


@dataclass(frozen=True, slots=True)
class Explanation:
    """The decision for ``context``, the rule that won (None: the default), every rule.

    When the answer depends on undecided rules, ``possible`` lists every outcome,
    ``depends_on`` what it depends on, and ``decision``/``winner`` are the strictest
    outcome (what a gate that must answer does: it fails closed).
    """

    context: Context
    decision: Decision
    combining: str
    default_decision: Decision
    winner: RuleVerdict | None
    rules: tuple[RuleVerdict, ...]
    notes: tuple[str, ...] = ()
    possible: tuple[Possible, ...] = ()
    depends_on: tuple[str, ...] = ()
    rule: Rule | None = None
    """The rule behind ``decision`` (None: the default); with undecided rules, that of the
    strictest outcome."""

    @property
    def matched(self) -> tuple[RuleVerdict, ...]:
        return tuple(
            r for r in self.rules if r.status not in (Status.NOT_MATCHED, Status.UNDECIDED)
        )

    @property
    def decided(self) -> bool:
        """Whether the decision is the same whatever the undecided rules do."""
        return len({p.decision for p in self.possible}) <= 1

    @property
    def rule_index(self) -> int | None:
        return next((p.index for p in self.possible if p.rule is self.rule), None)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``--format json``."""
        ctx = self.context
        return {
            "decision": str(self.decision),
            "decided": self.decided,
            "rule": None if self.rule is None else self.rule.id,
            "rule_index": self.rule_index,
            "depends_on": list(self.depends_on),
            "outcomes": [
                {
                    "decision": str(p.decision),
                    "rule": None if p.rule is None else p.rule.id,
                    "rule_index": p.index,
                    "assuming": p.assuming,
                }
                for p in self.possible
            ],
            "combining": self.combining,
            "default_decision": str(self.default_decision),
            "context": {
                "env": ctx.env,
                "topic": ctx.topic,
                "workflow": ctx.workflow,
                "side_effect": ctx.side_effect,
                "compensation_declared": ctx.compensation_declared,
                "rollback_supported": ctx.rollback_supported,
                "risk": str(ctx.risk),
                "rollback": None if ctx.rollback is None else str(ctx.rollback),
                "approval_present": ctx.approval_present,
                "is_compensation": ctx.is_compensation,
                "job": _job_data(ctx.job),
            },
            "rules": [
                {
                    "index": r.index,
                    "id": r.rule.id,
                    "decision": str(r.rule.decision),
                    "line": r.line,
                    "status": str(r.status),
                    "why": r.why,
                    "failed": [
                        {
                            "condition": m.condition,
                            "expected": [str(e) for e in m.expected]
                            if isinstance(m.expected, list | tuple)
                            else str(m.expected),
                            "actual": None if m.actual is None else str(m.actual),
                        }
                        for m in r.failed
                    ],
                }
                for r in self.rules
            ],
            "notes": list(self.notes),
        }


def _job_data(job: Job) -> dict[str, Any]:
    data: dict[str, Any] = {
        name: sorted(value) if isinstance(value, frozenset) else value
        for name, value in sorted(job.facts.items())
    }
    if job.labels:
        data["labels"] = dict(sorted(job.labels.items()))
    return data


def _lost(result: RuleResult, winner: RuleResult, combining: str) -> str:
    rule, other = result.rule, winner.rule
    if combining == "first_match":
        return f"matched, but rule '{other.id}' matched first (first_match)"
    if other.decision.strictness > rule.decision.strictness:
        return (
            f"matched, but rule '{other.id}' decides {other.decision}, which is stricter "
            f"than {rule.decision} (most_restrictive)"
        )
    return (
        f"matched, but rule '{other.id}' comes first with the same decision "
        f"{other.decision} (most_restrictive)"
    )


def _won(combining: str, matched: int) -> str:
    if combining == "first_match":
        return "decided: the first rule that matches (first_match)"
    if matched == 1:
        return "decided: the only rule that matches"
    return "decided: the strictest matching rule, first in file order (most_restrictive)"


def _job_mismatch(condition: JobCondition, job: Job) -> Mismatch:
    """A job condition that failed, as a :class:`Mismatch` (``labels: wanted ..., got ...``)."""
    if condition.test is Compare.LABELS:
        wanted = [f"{k}={v}" for k, v in condition.labels]
        got = ", ".join(f"{k}={job.labels.get(k, '(none)')}" for k, _ in condition.labels)
        return Mismatch(condition.key, wanted, got)
    value = job.facts.get(condition.fact)
    got = ",".join(sorted(value)) if isinstance(value, frozenset) else (value or "")
    return Mismatch(condition.key, list(condition.values), got or "(none)")


_HOW = {"risk_tags": "--risk-tag TAG", "labels": "--label KEY=VALUE"}
_FACT_OPTION = "--fact NAME=VALUE"


def undecided_why(conditions: Sequence[JobCondition]) -> str:
    """Why a rule is undecided: the conditions, and how to decide them."""
    described = "; ".join(c.describe() for c in conditions)
    how = sorted(
        {_HOW.get(c.key, _FACT_OPTION) for c in conditions if c.test is not Compare.NOT_MODELLED}
    )
    given = f" (give {' and '.join(how)})" if how else ""
    return f"undecided: matches only if the job has {described}{given}"


def _verdict(
    result: RuleResult,
    winner: RuleResult | None,
    combining: str,
    matched: int,
    line: int,
    job: Job,
) -> RuleVerdict:
    if result.maybe:
        return RuleVerdict(
            result.index, result.rule, Status.UNDECIDED, undecided_why(result.undecided), line=line
        )
    if not result.matched:
        failed = (*result.mismatches, *(_job_mismatch(c, job) for c in result.job_failed))
        return RuleVerdict(
            result.index,
            result.rule,
            Status.NOT_MATCHED,
            f"not matched: {'; '.join(str(m) for m in failed)}",
            failed,
            line,
        )
    if winner is not None and result is winner:
        return RuleVerdict(
            result.index, result.rule, Status.DECIDED, _won(combining, matched), line=line
        )
    assert winner is not None  # a matching rule that did not decide lost to the winner
    return RuleVerdict(
        result.index, result.rule, Status.OVERRIDDEN, _lost(result, winner, combining), line=line
    )


def _assuming(outcome: Outcome, results: Sequence[RuleResult]) -> str:
    parts = []
    for index, matches in outcome.assumes:
        result = results[index]
        if matches:
            parts.append(f"the job has {'; '.join(c.describe() for c in result.undecided)}")
        else:
            parts.append(f"rule '{result.rule.id}' does not match")
    return " and ".join(parts)


def explain(
    policy: Policy,
    ctx: Context,
    *,
    lines: Sequence[int] = (),
    notes: Sequence[str] = (),
) -> Explanation:
    """Explain the decision of ``policy`` for ``ctx``; ``lines`` are the rules' line numbers."""
    evaluation = evaluate(policy, ctx)
    results = evaluation.results
    # the outcome that assumes no undecided rule matches: its rule decides unless one does
    base = next(o for o in evaluation.outcomes if not any(m for _, m in o.assumes))
    winner = None if base.index is None else results[base.index]
    matched = sum(1 for r in results if r.matched)
    verdicts = tuple(
        _verdict(
            result,
            winner,
            policy.combining,
            matched,
            lines[result.index] if result.index < len(lines) else 0,
            ctx.job,
        )
        for result in results
    )
    if len(evaluation.outcomes) > 1:
        verdicts = tuple(
            replace(v, why=f"{v.why}, unless an undecided rule matches")
            if v.status is Status.DECIDED
            else v
            for v in verdicts
        )
    possible = tuple(
        Possible(
            o.decision,
            None if o.index is None else policy.rules[o.index],
            o.index,
            _assuming(o, results),
        )
        for o in evaluation.outcomes
    )
    depends = {
        c.key: None
        for o in evaluation.outcomes
        for i, matches in o.assumes
        if matches
        for c in results[i].undecided
    }
    return Explanation(
        context=ctx,
        decision=evaluation.decision,
        combining=policy.combining,
        default_decision=policy.default_decision,
        winner=next((v for v in verdicts if v.status is Status.DECIDED), None),
        rules=verdicts,
        notes=tuple(notes),
        possible=possible,
        depends_on=tuple(depends),
        rule=evaluation.rule,
    )


def _who(possible: Possible, default: Decision) -> str:
    if possible.rule is None:
        return f"the default decision ({default})"
    return f"rule '{possible.rule.id}'"


def summary(explanation: Explanation) -> str:
    """One sentence: the decision and who made it (or what it depends on)."""
    ctx = explanation.context
    approval = "with approval" if ctx.approval_present else "without approval"
    if not explanation.decided:
        choices = ", ".join(
            dict.fromkeys(
                f"{p.decision} by "
                + ("the default decision" if p.rule is None else f"rule '{p.rule.id}'")
                for p in explanation.possible
            )
        )
        return (
            f"depends on the job's {', '.join(explanation.depends_on)}: '{ctx.topic}' in "
            f"{ctx.env} {approval} is decided {choices}, as the job goes"
        )
    if len(explanation.possible) > 1:
        who = " or ".join(
            dict.fromkeys(_who(p, explanation.default_decision) for p in explanation.possible)
        )
        return (
            f"{explanation.decision}: '{ctx.topic}' in {ctx.env} {approval} is decided by "
            f"{who}, whatever the job's {', '.join(explanation.depends_on)}"
        )
    winner = explanation.winner
    who = (
        f"rule '{winner.rule.id}'"
        if winner is not None
        else f"the default decision (no rule matches; default {explanation.default_decision})"
    )
    return f"{explanation.decision}: '{ctx.topic}' in {ctx.env} {approval} is decided by {who}"


def symbol(status: Status) -> str:
    match status:
        case Status.DECIDED:
            return "=>"
        case Status.OVERRIDDEN:
            return "~ "
        case Status.NOT_MATCHED:
            return "x "
        case Status.UNDECIDED:
            return "? "
        case _:
            assert_never(status)
