"""Conditions on the job that a catalog does not know: labels, risk tags, capability, ...

Control planes such as Cordum match rules on what a *job* carries (its labels, its free
risk tags, its capability or pack) as well as on its topic. agentundo knows those only
when someone gives them: ``explain --label/--risk-tag``, or a Cordum workflow step's
``meta`` in a drill. A condition on something not given is neither true nor false but
:attr:`Tri.UNKNOWN`, and a rule with such a condition is *undecided* for that dispatch:
it may or may not match, never "matches" by default. Conditions agentundo cannot
evaluate at all (content scanners, delegation predicates, ...) are always unknown.
Pure data and functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import assert_never


class Tri(Enum):
    """A three-valued truth: a condition holds, does not, or cannot be told."""

    FALSE = 0
    UNKNOWN = 1
    TRUE = 2

    def __and__(self, other: Tri) -> Tri:
        return self if self.value <= other.value else other


class Compare(StrEnum):
    """How a condition compares its values with the job's."""

    ONE_OF = "one_of"  # the job's single value is one of the listed (case-insensitive)
    ANY_OF = "any_of"  # the job's set shares an item with the listed (case-insensitive)
    ALL_OF = "all_of"  # the job's set holds every listed item (case-insensitive)
    LABELS = "labels"  # every listed label has exactly the listed value
    NOT_MODELLED = "not_modelled"  # agentundo cannot evaluate it: always unknown


FACTS = ("tenant", "capability", "pack_id", "actor_id", "actor_type", "risk_tags", "requires")
"""The job facts a condition can read besides labels (one value, or a set for the last two)."""

SET_FACTS = frozenset({"risk_tags", "requires"})


@dataclass(frozen=True, slots=True)
class JobCondition:
    """One condition of a rule on the job: ``key`` (the file's name), ``fact`` read, values."""

    key: str
    test: Compare
    fact: str = ""
    values: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        """The condition in words, as explain and lint show it."""
        match self.test:
            case Compare.LABELS:
                return "labels " + ", ".join(f"{k}={v}" for k, v in self.labels)
            case Compare.ONE_OF | Compare.ANY_OF:
                return f"{self.key} {' | '.join(self.values)}"
            case Compare.ALL_OF:
                return f"{self.key} all of {', '.join(self.values)}"
            case Compare.NOT_MODELLED:
                return f"{self.key} (not modelled)"
            case _:
                assert_never(self.test)

    def holds(self, job: Job) -> Tri:
        match self.test:
            case Compare.NOT_MODELLED:
                return Tri.UNKNOWN
            case Compare.LABELS:
                return job.labels_hold(self.labels)
            case Compare.ONE_OF:
                value = job.value(self.fact)
                if value is None:
                    return Tri.UNKNOWN
                return _tri(bool(value) and value.casefold() in _folded(self.values))
            case Compare.ANY_OF | Compare.ALL_OF:
                items = job.items(self.fact)
                if items is None:
                    return Tri.UNKNOWN
                have = _folded(items)
                wanted = _folded(self.values)
                if self.test is Compare.ANY_OF:
                    return _tri(bool(have & wanted))
                return _tri(wanted <= have)
            case _:
                assert_never(self.test)


def _folded(values: Iterable[str]) -> frozenset[str]:
    return frozenset(v.strip().casefold() for v in values)


def _tri(value: bool) -> Tri:
    return Tri.TRUE if value else Tri.FALSE


@dataclass(frozen=True, slots=True)
class Job:
    """What is known about the job beyond its topic. A fact that is absent is unknown,
    unless ``complete``: then the job is known not to have it (a drill's step).

    ``labels`` are known label values; with ``complete`` every other label is absent.
    """

    facts: Mapping[str, str | frozenset[str]] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    complete: bool = False

    def value(self, fact: str) -> str | None:
        found = self.facts.get(fact)
        if isinstance(found, str):
            return found
        return "" if self.complete else None

    def items(self, fact: str) -> frozenset[str] | None:
        found = self.facts.get(fact)
        if isinstance(found, frozenset):
            return found
        return frozenset() if self.complete else None

    def labels_hold(self, wanted: tuple[tuple[str, str], ...]) -> Tri:
        result = Tri.TRUE
        for key, value in wanted:
            actual = self.labels.get(key)
            if actual is None:
                result &= Tri.FALSE if self.complete else Tri.UNKNOWN
            else:
                result &= _tri(actual == value)
        return result

    def describe(self) -> str:
        """The known facts, for a dispatch line (empty when nothing is known)."""
        parts = []
        for name in FACTS:
            found = self.facts.get(name)
            if isinstance(found, frozenset):
                parts.append(f"{name}=[{','.join(sorted(found))}]")
            elif found:
                parts.append(f"{name}={found}")
        parts.extend(f"label {k}={v}" for k, v in sorted(self.labels.items()))
        return " ".join(parts)


UNKNOWN_JOB = Job()
"""Nothing known about the job: every job condition is unknown (lint without a workflow)."""


@dataclass(frozen=True, slots=True)
class RuleConditions:
    """The job conditions of one rule, ANDed; empty: the rule is fully modelled."""

    items: tuple[JobCondition, ...] = ()

    def holds(self, job: Job) -> Tri:
        result = Tri.TRUE
        for item in self.items:
            result &= item.holds(job)
            if result is Tri.FALSE:
                break
        return result

    def unknown(self, job: Job) -> tuple[JobCondition, ...]:
        """The conditions that cannot be told for ``job``."""
        return tuple(c for c in self.items if c.holds(job) is Tri.UNKNOWN)

    def describe(self, job: Job) -> str:
        """The undecided conditions in words (``labels _source=workflow; risk_tags low``)."""
        return "; ".join(c.describe() for c in self.unknown(job))


NONE = RuleConditions()


def conditions_of(policy: object) -> tuple[RuleConditions, ...]:
    """The job conditions a (converted) policy carries for its rules; () for agentundo's."""
    found: tuple[RuleConditions, ...] = getattr(policy, "job_conditions", ())
    return found
