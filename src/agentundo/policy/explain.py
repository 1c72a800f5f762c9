"""Why a policy decides what it decides for one dispatch. Pure functions, no I/O.

:func:`explain` runs :func:`agentundo.policy.evaluate.evaluate` and states, for every
rule, whether it decided, matched but lost (and to which rule, and why), or did not
match (and which conditions failed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, assert_never

from agentundo.model.common import Decision
from agentundo.model.policy import Policy, Rule
from agentundo.policy.evaluate import Context, Mismatch, RuleResult, evaluate


class Status(StrEnum):
    """What one rule did for the dispatch."""

    DECIDED = "decided"
    OVERRIDDEN = "overridden"
    NOT_MATCHED = "not_matched"


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
class Explanation:
    """The decision for ``context``, the rule that won (None: the default), every rule."""

    context: Context
    decision: Decision
    combining: str
    default_decision: Decision
    winner: RuleVerdict | None
    rules: tuple[RuleVerdict, ...]
    notes: tuple[str, ...] = ()

    @property
    def matched(self) -> tuple[RuleVerdict, ...]:
        return tuple(r for r in self.rules if r.status is not Status.NOT_MATCHED)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``--format json``."""
        ctx = self.context
        return {
            "decision": str(self.decision),
            "rule": None if self.winner is None else self.winner.rule.id,
            "rule_index": None if self.winner is None else self.winner.index,
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


def _verdict(
    result: RuleResult, winner: RuleResult | None, combining: str, matched: int, line: int
) -> RuleVerdict:
    if not result.matched:
        failed = "; ".join(str(m) for m in result.mismatches)
        return RuleVerdict(
            result.index,
            result.rule,
            Status.NOT_MATCHED,
            f"not matched: {failed}",
            result.mismatches,
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


def explain(
    policy: Policy,
    ctx: Context,
    *,
    lines: Sequence[int] = (),
    notes: Sequence[str] = (),
) -> Explanation:
    """Explain the decision of ``policy`` for ``ctx``; ``lines`` are the rules' line numbers."""
    evaluation = evaluate(policy, ctx)
    winner = next((r for r in evaluation.results if r.rule is evaluation.rule), None)
    matched = sum(1 for r in evaluation.results if r.matched)
    verdicts = tuple(
        _verdict(
            result,
            winner,
            policy.combining,
            matched,
            lines[result.index] if result.index < len(lines) else 0,
        )
        for result in evaluation.results
    )
    decided = next((v for v in verdicts if v.status is Status.DECIDED), None)
    return Explanation(
        context=ctx,
        decision=evaluation.decision,
        combining=policy.combining,
        default_decision=policy.default_decision,
        winner=decided,
        rules=verdicts,
        notes=tuple(notes),
    )


def summary(explanation: Explanation) -> str:
    """One sentence: the decision and who made it."""
    winner = explanation.winner
    who = (
        f"rule '{winner.rule.id}'"
        if winner is not None
        else f"the default decision (no rule matches; default {explanation.default_decision})"
    )
    ctx = explanation.context
    approval = "with approval" if ctx.approval_present else "without approval"
    return f"{explanation.decision}: '{ctx.topic}' in {ctx.env} {approval} is decided by {who}"


def symbol(status: Status) -> str:
    match status:
        case Status.DECIDED:
            return "=>"
        case Status.OVERRIDDEN:
            return "~ "
        case Status.NOT_MATCHED:
            return "x "
        case _:
            assert_never(status)
