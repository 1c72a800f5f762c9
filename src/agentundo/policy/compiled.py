"""A policy compiled for fast repeated decisions (lint evaluates every topic in every env).

:func:`agentundo.policy.evaluate.evaluate` explains a decision rule by rule; this
module only decides, and must always agree with it (a property test holds it to that).
Rules are indexed by their ``topic`` condition: exact names by dictionary, ``prefix*``
globs by prefix, other globs by ``fnmatch``; candidates are cached per topic.

A control plane's policy may also carry job conditions per rule
(:mod:`agentundo.policy.conditions`); :meth:`CompiledPolicy.outcomes` then lists every way
the undecided rules may go, and :meth:`CompiledPolicy.decide` answers with the strictest.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from agentundo.model.common import Decision
from agentundo.model.policy import Policy
from agentundo.policy.conditions import RuleConditions, Tri, conditions_of
from agentundo.policy.evaluate import (
    EXACT_CONDITIONS,
    GLOB_CONDITIONS,
    Context,
    Outcome,
    outcomes,
    strictest,
)

_META = frozenset("*?[")
_OTHER_CONDITIONS = tuple(c for c in (*GLOB_CONDITIONS, *EXACT_CONDITIONS) if c != "topic")
"""Every condition but ``topic``, which the index handles."""
_GLOB_CONDITIONS = frozenset(GLOB_CONDITIONS)


@dataclass(frozen=True, slots=True)
class _Test:
    name: str
    values: frozenset[Any]
    globs: tuple[str, ...]


def _passes(tests: tuple[_Test, ...], ctx: Context) -> bool:
    """Whether ``ctx`` meets every test of a rule (a plain loop: decisions are many)."""
    for test in tests:
        actual = getattr(ctx, test.name)
        if actual in test.values:
            continue
        if actual is None or not any(fnmatchcase(actual, g) for g in test.globs):
            return False
    return True


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


class CompiledPolicy:
    """Decide dispatches against one policy, fast."""

    def __init__(self, policy: Policy, conditions: Sequence[RuleConditions] | None = None) -> None:
        self.policy = policy
        self.conditions = tuple(conditions_of(policy) if conditions is None else conditions)
        self.undecidable = frozenset(i for i, c in enumerate(self.conditions) if c.items)
        """Rules with job conditions: undecided unless the job's facts are given."""
        self._tests: list[tuple[_Test, ...]] = []
        self._any_topic: list[int] = []
        self._exact: dict[str, list[int]] = defaultdict(list)
        self._prefix: dict[str, list[int]] = defaultdict(list)
        self._globs: list[tuple[int, str]] = []
        self._cache: dict[str, tuple[int, ...]] = {}
        self._env_any: set[int] = set()
        self._env_exact: dict[str, set[int]] = defaultdict(set)
        self._pair_cache: dict[tuple[str, str], tuple[int, ...]] = {}
        self._env_cache: dict[str, frozenset[int]] = {}
        self._generic_cache: dict[str, tuple[int, ...]] = {}
        for index, rule in enumerate(policy.rules):
            tests = []
            for name in _OTHER_CONDITIONS:
                wanted = getattr(rule.when, name)
                if wanted is None:
                    continue
                items = _as_list(wanted)
                globs = tuple(i for i in items if name in _GLOB_CONDITIONS and _META & set(str(i)))
                tests.append(_Test(name, frozenset(i for i in items if i not in globs), globs))
            self._tests.append(tuple(tests))
            envs = None if rule.when.env is None else _as_list(rule.when.env)
            if envs is None or any(_META & set(e) for e in envs):
                self._env_any.add(index)
            else:
                for env in envs:
                    self._env_exact[env].add(index)
            if rule.when.topic is None:
                self._any_topic.append(index)
                continue
            for pattern in _as_list(rule.when.topic):
                head = pattern[:-1]
                if not _META & set(pattern):
                    self._exact[pattern].append(index)
                elif pattern.endswith("*") and not _META & set(head):
                    self._prefix[head].append(index)
                else:
                    self._globs.append((index, pattern))
        lengths: dict[str, set[int]] = defaultdict(set)
        for head in self._prefix:
            lengths[head[:1]].add(len(head))
        everywhere = lengths.get("", set())  # the prefix '' (pattern '*') fits every topic
        self._everywhere = tuple(sorted(everywhere))
        self._prefix_lengths = {c: tuple(sorted(n | everywhere)) for c, n in lengths.items()}
        """Lengths of the prefixes, by their first character: a topic tries only those
        that can start it."""
        self.any_topic = frozenset(
            i
            for i, rule in enumerate(policy.rules)
            if rule.when.topic is None or "*" in _as_list(rule.when.topic)
        )
        """Rules that match every topic: no topic condition, or the pattern ``*``."""

    def _specific(self, topic: str) -> tuple[int, ...]:
        """Rules with a topic condition that matches ``topic`` (cached)."""
        found = self._cache.get(topic)
        if found is not None:
            return found
        indexes = set(self._exact.get(topic, ()))
        prefixed = self._prefix.get  # a defaultdict's get adds nothing
        size = len(topic)
        for length in self._prefix_lengths.get(topic[:1], self._everywhere):
            if length > size:
                break
            rules = prefixed(topic[:length])
            if rules:
                indexes.update(rules)
        if self._globs:
            indexes.update(i for i, pattern in self._globs if fnmatchcase(topic, pattern))
        found = tuple(sorted(indexes))
        self._cache[topic] = found
        return found

    def candidates(self, topic: str) -> tuple[int, ...]:
        """Indexes of the rules whose topic condition matches ``topic``, in file order."""
        return tuple(sorted((*self._any_topic, *self._specific(topic))))

    def env_candidates(self, env: str) -> frozenset[int]:
        """Indexes of the rules whose env condition matches ``env`` (unordered, cached)."""
        found = self._env_cache.get(env)
        if found is None:
            found = frozenset(self._env_any | self._env_exact.get(env, set()))
            self._env_cache[env] = found
            self._generic_cache[env] = tuple(i for i in self._any_topic if i in found)
        return found

    def candidates_in(self, topic: str, env: str) -> tuple[int, ...]:
        """Rules whose topic and env conditions both match, in file order."""
        key = (topic, env)
        found = self._pair_cache.get(key)
        if found is None:
            allowed = self.env_candidates(env)
            specific = [i for i in self._specific(topic) if i in allowed]
            generic = self._generic_cache[env]
            found = tuple(sorted((*generic, *specific))) if specific else generic
            self._pair_cache[key] = found
        return found

    def decide(self, ctx: Context) -> tuple[Decision, int | None]:
        """The decision and the index of the winning rule (None: the default decision).

        With undecided rules: the strictest possible outcome (a gate fails closed)."""
        if self.undecidable:
            chosen = strictest(self.outcomes(ctx))
            return chosen.decision, chosen.index
        rules = self.policy.rules
        first_match = self.policy.combining == "first_match"
        winner: int | None = None
        for index in self.candidates_in(ctx.topic, ctx.env):
            if not _passes(self._tests[index], ctx):
                continue
            if first_match:
                winner = index
                break
            if (
                winner is None
                or rules[index].decision.strictness > rules[winner].decision.strictness
            ):
                winner = index
                if rules[index].decision is Decision.DENY:
                    break
        if winner is None:
            return self.policy.default_decision, None
        return rules[winner].decision, winner

    def outcomes(self, ctx: Context) -> tuple[Outcome, ...]:
        """Every possible decision for ``ctx`` (one when no rule is undecided)."""
        if not self.undecidable:
            decision, index = self.decide(ctx)
            return (Outcome(decision, index),)
        candidates = []
        for index in self.candidates_in(ctx.topic, ctx.env):
            if not _passes(self._tests[index], ctx):
                continue
            tri = self.conditions[index].holds(ctx.job) if index in self.undecidable else Tri.TRUE
            candidates.append((index, tri))
        policy = self.policy
        return outcomes(policy.rules, policy.combining, policy.default_decision, candidates)
