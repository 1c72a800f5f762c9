"""Evaluate a policy for one dispatch, and explain the answer. Pure functions, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from agentundo.model.catalog import Topic
from agentundo.model.common import Decision, Risk, Rollback
from agentundo.model.policy import Policy, Rule, When


@dataclass(frozen=True, slots=True)
class Context:
    """Everything a rule can test about one dispatch."""

    env: str
    topic: str
    side_effect: bool
    compensation_declared: bool
    rollback_supported: bool
    risk: Risk
    rollback: Rollback | None
    approval_present: bool = False
    is_compensation: bool = False
    workflow: str | None = None

    @classmethod
    def for_topic(
        cls,
        name: str,
        topic: Topic | None,
        *,
        env: str,
        approval_present: bool = False,
        is_compensation: bool = False,
        workflow: str | None = None,
    ) -> Context:
        """The context of dispatching catalog topic ``name`` (unknown topics are risky)."""
        if topic is None:
            return cls(
                env=env,
                topic=name,
                side_effect=True,
                compensation_declared=False,
                rollback_supported=False,
                risk=Risk.HIGH,
                rollback=None,
                approval_present=approval_present,
                is_compensation=is_compensation,
                workflow=workflow,
            )
        return cls(
            env=env,
            topic=name,
            side_effect=topic.side_effect,
            compensation_declared=topic.compensation_declared,
            rollback_supported=topic.rollback_supported,
            risk=topic.effective_risk,
            rollback=topic.rollback,
            approval_present=approval_present,
            is_compensation=is_compensation,
            workflow=workflow,
        )


@dataclass(frozen=True, slots=True)
class Mismatch:
    """A condition of a rule that the context did not meet."""

    condition: str
    expected: Any
    actual: Any

    def __str__(self) -> str:
        expected = self.expected
        if isinstance(expected, list | tuple):
            expected = " | ".join(str(e) for e in expected)
        return f"{self.condition}: wanted {expected}, got {self.actual}"


@dataclass(frozen=True, slots=True)
class RuleResult:
    """How one rule fared against the context."""

    index: int
    rule: Rule
    mismatches: tuple[Mismatch, ...]

    @property
    def matched(self) -> bool:
        return not self.mismatches


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The decision, the rule that won it (None for the default) and every rule's result."""

    decision: Decision
    rule: Rule | None
    results: tuple[RuleResult, ...]
    combining: str

    @property
    def rule_id(self) -> str | None:
        return None if self.rule is None else self.rule.id

    @property
    def matched(self) -> tuple[RuleResult, ...]:
        return tuple(r for r in self.results if r.matched)


GLOB_CONDITIONS = ("env", "topic", "workflow")
"""Conditions whose values are globs (``fnmatch``), tested against strings."""
EXACT_CONDITIONS = (
    "side_effect",
    "compensation_declared",
    "rollback_supported",
    "approval_present",
    "is_compensation",
    "risk",
    "rollback",
)
"""Conditions compared for equality with one of the listed values."""


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def mismatches(when: When, ctx: Context) -> tuple[Mismatch, ...]:
    """The conditions of ``when`` that ``ctx`` fails (empty: the rule matches)."""
    failed: list[Mismatch] = []
    for name in GLOB_CONDITIONS:
        wanted = getattr(when, name)
        if wanted is None:
            continue
        actual = getattr(ctx, name)
        patterns = _as_list(wanted)
        if actual is None or not any(fnmatchcase(actual, p) for p in patterns):
            failed.append(Mismatch(name, patterns, actual))
    for name in EXACT_CONDITIONS:
        wanted = getattr(when, name)
        if wanted is None:
            continue
        actual = getattr(ctx, name)
        options = _as_list(wanted)
        if actual not in options:
            failed.append(Mismatch(name, options, actual))
    return tuple(failed)


def evaluate(policy: Policy, ctx: Context) -> Evaluation:
    """Decide one dispatch.

    ``most_restrictive``: the strictest matching decision wins (deny > require_human >
    allow) and the winning rule is the first in file order with that decision.
    ``first_match``: the first matching rule wins. No match: ``default_decision``.
    """
    results = tuple(
        RuleResult(index, rule, mismatches(rule.when, ctx))
        for index, rule in enumerate(policy.rules)
    )
    winner: Rule | None = None
    if policy.combining == "first_match":
        winner = next((r.rule for r in results if r.matched), None)
    else:
        for result in results:
            if result.matched and (
                winner is None or result.rule.decision.strictness > winner.decision.strictness
            ):
                winner = result.rule
    decision = policy.default_decision if winner is None else winner.decision
    return Evaluation(decision=decision, rule=winner, results=results, combining=policy.combining)
