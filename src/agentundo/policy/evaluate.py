"""Evaluate a policy for one dispatch, and explain the answer. Pure functions, no I/O.

A policy converted from a control plane may carry conditions on the job
(:mod:`agentundo.policy.conditions`) next to each rule; a rule whose job conditions cannot
be told for the dispatch is *undecided*, and the answer is then a list of
:class:`Outcome` objects, one per way the undecided rules may go.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from agentundo.model.catalog import Topic
from agentundo.model.common import Decision, Risk, Rollback
from agentundo.model.policy import Policy, Rule, When
from agentundo.policy.conditions import (
    UNKNOWN_JOB,
    Job,
    JobCondition,
    RuleConditions,
    Tri,
    conditions_of,
)


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
    job: Job = UNKNOWN_JOB
    """What is known of the job beyond the catalog (labels, risk tags, ...)."""

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
        job: Job = UNKNOWN_JOB,
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
                job=job,
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
            job=job,
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
    """How one rule fared against the context.

    ``undecided``: job conditions that cannot be told for the dispatch (when the modelled
    conditions all hold, the rule may or may not match).
    """

    index: int
    rule: Rule
    mismatches: tuple[Mismatch, ...]
    undecided: tuple[JobCondition, ...] = ()
    job_failed: tuple[JobCondition, ...] = ()

    @property
    def matched(self) -> bool:
        return not self.mismatches and not self.job_failed and not self.undecided

    @property
    def maybe(self) -> bool:
        """The rule matches only if its undecided conditions hold."""
        return not self.mismatches and not self.job_failed and bool(self.undecided)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One way a dispatch may be decided: the decision, the rule (None: the default), and
    what it assumes of undecided rules: ``(rule index, matches)`` pairs, in file order."""

    decision: Decision
    index: int | None
    assumes: tuple[tuple[int, bool], ...] = ()


def outcomes(
    rules: Sequence[Rule],
    combining: str,
    default: Decision,
    candidates: Sequence[tuple[int, Tri]],
) -> tuple[Outcome, ...]:
    """Every possible decision, given the rules whose modelled conditions hold
    (``candidates``, in file order) and whether their job conditions hold.

    One outcome when nothing is undecided. ``first_match``: each undecided rule before the
    first certain match may be the one that decides. ``most_restrictive``: the certain
    winner, and each undecided rule that would be stricter than it.
    """
    if combining == "first_match":
        found: list[Outcome] = []
        pending: list[tuple[int, bool]] = []
        for index, tri in candidates:
            if tri is Tri.FALSE:
                continue
            decision = rules[index].decision
            if tri is Tri.TRUE:
                found.append(Outcome(decision, index, tuple(pending)))
                return tuple(found)
            found.append(Outcome(decision, index, (*pending, (index, True))))
            pending.append((index, False))
        found.append(Outcome(default, None, tuple(pending)))
        return tuple(found)
    winner: int | None = None
    maybe: list[int] = []
    for index, tri in candidates:
        if tri is Tri.UNKNOWN:
            maybe.append(index)
        elif tri is Tri.TRUE and (
            winner is None or rules[index].decision.strictness > rules[winner].decision.strictness
        ):
            winner = index
    base = default if winner is None else rules[winner].decision
    stricter = [
        i for i in maybe if winner is None or rules[i].decision.strictness > base.strictness
    ]
    first = Outcome(base, winner, tuple((i, False) for i in stricter))
    return (first, *(Outcome(rules[i].decision, i, ((i, True),)) for i in stricter))


def strictest(found: Sequence[Outcome]) -> Outcome:
    """The outcome a gate that must answer takes: the strictest (fail closed), first wins."""
    best = found[0]
    for outcome in found[1:]:
        if outcome.decision.strictness > best.decision.strictness:
            best = outcome
    return best


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The decision, the rule that won it (None for the default) and every rule's result.

    When rules are undecided, ``outcomes`` lists every possible decision and
    ``decision``/``rule`` are the strictest of them (what a gate that must answer does).
    """

    decision: Decision
    rule: Rule | None
    results: tuple[RuleResult, ...]
    combining: str
    outcomes: tuple[Outcome, ...] = ()

    @property
    def rule_id(self) -> str | None:
        return None if self.rule is None else self.rule.id

    @property
    def matched(self) -> tuple[RuleResult, ...]:
        return tuple(r for r in self.results if r.matched)

    @property
    def decided(self) -> bool:
        """Whether the dispatch has one answer whatever the undecided rules do."""
        return len({o.decision for o in self.outcomes}) <= 1


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


def job_conditions(
    conditions: Sequence[RuleConditions], index: int, job: Job
) -> tuple[tuple[JobCondition, ...], tuple[JobCondition, ...]]:
    """Rule ``index``'s job conditions that cannot be told, and those that fail."""
    if index >= len(conditions) or not conditions[index].items:
        return (), ()
    items = conditions[index].items
    failed = tuple(c for c in items if c.holds(job) is Tri.FALSE)
    return tuple(c for c in items if c.holds(job) is Tri.UNKNOWN), failed


def evaluate(
    policy: Policy, ctx: Context, conditions: Sequence[RuleConditions] | None = None
) -> Evaluation:
    """Decide one dispatch.

    ``most_restrictive``: the strictest matching decision wins (deny > require_human >
    allow) and the winning rule is the first in file order with that decision.
    ``first_match``: the first matching rule wins. No match: ``default_decision``.
    ``conditions``: the job conditions of each rule (a control plane's policy); a rule
    whose job conditions cannot be told is undecided, and every outcome is listed. By
    default, the conditions the policy carries (a converted control-plane policy).
    """
    if conditions is None:
        conditions = conditions_of(policy)
    results = tuple(
        RuleResult(
            index, rule, mismatches(rule.when, ctx), *job_conditions(conditions, index, ctx.job)
        )
        for index, rule in enumerate(policy.rules)
    )
    candidates = [
        (r.index, Tri.TRUE if r.matched else Tri.UNKNOWN) for r in results if r.matched or r.maybe
    ]
    found = outcomes(policy.rules, policy.combining, policy.default_decision, candidates)
    chosen = strictest(found)
    winner = None if chosen.index is None else policy.rules[chosen.index]
    return Evaluation(
        decision=chosen.decision,
        rule=winner,
        results=results,
        combining=policy.combining,
        outcomes=found,
    )
