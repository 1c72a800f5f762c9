"""Static reasoning about rules: when one rule matches everything another matches."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from agentundo.model.common import Risk, Rollback
from agentundo.model.policy import Policy, Rule, When
from agentundo.policy.compiled import CompiledPolicy

_GLOBS = ("env", "topic", "workflow")
_ENUMS: dict[str, frozenset[str]] = {
    "risk": frozenset(Risk),
    "rollback": frozenset(Rollback),
}
_META = frozenset("*?[")


def _values(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def pattern_covers(outer: str, inner: str) -> bool:
    """True when every string matched by glob ``inner`` is matched by glob ``outer``."""
    if outer == inner or outer == "*":
        return True
    if not _META & set(inner):
        return fnmatchcase(inner, outer)
    prefix = outer[:-1]
    return outer.endswith("*") and not _META & set(prefix) and inner.startswith(prefix)


def _condition_covers(name: str, outer: Any, inner: Any) -> bool:
    if outer is None:
        return True
    if name in _ENUMS and set(_values(outer)) >= _ENUMS[name]:
        return True
    if inner is None:
        return False
    if name in _GLOBS:
        return all(any(pattern_covers(o, i) for o in _values(outer)) for i in _values(inner))
    return set(_values(inner)) <= set(_values(outer))


def covers(outer: When, inner: When) -> bool:
    """True when ``outer`` matches every dispatch that ``inner`` matches."""
    return all(
        _condition_covers(name, getattr(outer, name), getattr(inner, name))
        for name in When.model_fields
    )


def _topic_candidates(policy: Policy, rule: Rule, compiled: CompiledPolicy) -> set[int]:
    topics = rule.when.topic
    if topics is None:
        return set(compiled.any_topic)
    common: set[int] | None = None
    for name in _values(topics):
        head = name[:-1] if name.endswith("*") else name
        if _META & set(head):
            return set(range(len(policy.rules)))
        # a rule covering 'head*' must match 'head' itself, so it is among its candidates
        found = set(compiled.candidates(head))
        common = found if common is None else common & found
    return common or set()


def _outer_candidates(policy: Policy, rule: Rule, compiled: CompiledPolicy) -> list[int]:
    """Indexes of rules that could cover ``rule`` (a superset), in file order.

    A rule that covers another matches every dispatch the other matches, so it matches
    the other's literal topics and envs: the compiled index narrows the search.
    """
    found = _topic_candidates(policy, rule, compiled)
    envs = rule.when.env
    if envs is not None and not any(_META & set(e) for e in _values(envs)):
        for env in _values(envs):
            found &= compiled.env_candidates(env)
    else:
        found &= compiled.env_candidates("")  # rules without an env condition (or a glob)
    return sorted(found)


def shadowing_rule(
    policy: Policy, index: int, compiled: CompiledPolicy | None = None
) -> Rule | None:
    """A rule that keeps rule ``index`` from ever deciding, if there is one.

    Only fully modelled rules can shadow: a rule with job conditions
    (``compiled.undecidable``) matches some dispatches of its topics and not others, so it
    cannot be said to match everything another matches. (A rule with job conditions can
    be shadowed: they only narrow it.)
    """
    rule = policy.rules[index]
    compiled = compiled or CompiledPolicy(policy)
    for other_index in _outer_candidates(policy, rule, compiled):
        other = policy.rules[other_index]
        if other_index == index or other_index in compiled.undecidable:
            continue
        if not covers(other.when, rule.when):
            continue
        if policy.combining == "first_match":
            if other_index < index:
                return other
            continue
        stricter = other.decision.strictness > rule.decision.strictness
        earlier_same = other_index < index and other.decision is rule.decision
        if stricter or earlier_same:
            return other
    return None
