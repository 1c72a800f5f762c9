"""Safety policies of other agent control planes, and their mapping onto agentundo's Policy.

Such files hold a list of ``rules``, each with ``match:`` conditions (``topics`` globs,
``risk_tags``, ...), a ``decision`` (``allow``, ``deny``, ``require_approval`` and
aliases) and a ``reason``; the first matching rule wins and ``default_decision``
(default deny) applies when none does. :func:`convert` maps one onto a ``first_match``
:class:`~agentundo.model.policy.Policy` whose rule ``i`` is the file's ``rules[i]``,
and records what cannot be mapped as :class:`Note` objects that lint reports
(AU310-AU313) instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

# recognising the format lives in the loader, which imports this module only to build one
from agentundo.load.foreign import KIND as KIND
from agentundo.load.foreign import detect as detect
from agentundo.load.foreign import register as register
from agentundo.model.common import Decision, Risk
from agentundo.model.policy import Policy, Rule, When

UNKNOWN_DECISION = "AU310"
CONSTRAINT_NOT_MODELLED = "AU311"
RISK_TAG_UNMAPPED = "AU312"
MATCH_KEY_UNKNOWN = "AU313"

DECISIONS: dict[str, Decision] = {
    "allow": Decision.ALLOW,
    "permit": Decision.ALLOW,
    "deny": Decision.DENY,
    "block": Decision.DENY,
    "require_approval": Decision.REQUIRE_HUMAN,
    "approval_required": Decision.REQUIRE_HUMAN,
    "require_human": Decision.REQUIRE_HUMAN,
}
"""Decisions (normalised: lower case, ``-`` read as ``_``) with an exact equivalent."""

CONSTRAINED = frozenset({"allow_with_constraints", "throttle"})
"""Decisions that allow with limits agentundo does not model: mapped to allow."""

MATCH_KEYS = frozenset({"topics", "risk_tags"})
_RISKS = {str(r): r for r in Risk}

JsonPath = tuple[str | int, ...]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class ForeignMatch(_Open):
    """Conditions of a rule; keys beyond these are kept in ``model_extra``."""

    topics: str | list[str] | None = None
    risk_tags: str | list[str] | None = None


class ForeignRule(_Open):
    id: str | int | None = None
    name: str | None = None
    description: str | None = None
    reason: str | None = None
    decision: str
    match: ForeignMatch | None = None


class ForeignPolicy(_Open):
    """A control plane's policy file as written (open: unknown keys are kept)."""

    default_decision: str | None = None
    rules: list[ForeignRule]


@dataclass(frozen=True, slots=True)
class Note:
    """Something that did not map exactly: its code, where, what, and what to do."""

    code: str
    path: JsonPath
    message: str
    hint: str | None = None
    key: bool = False


@dataclass(frozen=True, slots=True)
class Conversion:
    policy: Policy
    notes: tuple[Note, ...]


def normalise(decision: str) -> str:
    return decision.strip().lower().replace("-", "_").replace(" ", "_")


def rule_id(rule: ForeignRule, index: int) -> str:
    """The id agentundo shows for a rule: its ``id``, else its ``name``, else ``rules[i]``."""
    if rule.id is not None and str(rule.id):
        return str(rule.id)
    return rule.name or f"rules[{index}]"


def _decision(raw: str, where: JsonPath, notes: list[Note]) -> Decision:
    word = normalise(raw)
    if word in DECISIONS:
        return DECISIONS[word]
    if word in CONSTRAINED:
        notes.append(
            Note(
                CONSTRAINT_NOT_MODELLED,
                where,
                f"decision '{raw}' is checked as 'allow': agentundo does not model its "
                "constraints or limits",
                "enforce the constraint in the control plane; agentundo sees an allow",
            )
        )
        return Decision.ALLOW
    known = ", ".join(sorted({*DECISIONS, *CONSTRAINED}))
    notes.append(
        Note(
            UNKNOWN_DECISION,
            where,
            f"decision '{raw}' is not understood; it is checked as 'deny'",
            f"use one of: {known}",
        )
    )
    return Decision.DENY


def _as_list(value: str | list[str]) -> list[str]:
    return value if isinstance(value, list) else [value]


def _when(match: ForeignMatch | None, where: JsonPath, notes: list[Note]) -> When:
    if match is None:
        return When()
    notes.extend(
        Note(
            MATCH_KEY_UNKNOWN,
            (*where, key),
            f"match key '{key}' has no equivalent in agentundo; the rule is checked "
            "as if it did not have it (it matches more)",
            f"agentundo maps: {', '.join(sorted(MATCH_KEYS))}",
            key=True,
        )
        for key in match.model_extra or {}
    )
    risks: list[Risk] | None = None
    if match.risk_tags is not None:
        tags = _as_list(match.risk_tags)
        mapped = [_RISKS[t.strip().lower()] for t in tags if t.strip().lower() in _RISKS]
        unmapped = [(i, t) for i, t in enumerate(tags) if t.strip().lower() not in _RISKS]
        for i, tag in unmapped:
            path = (
                (*where, "risk_tags", i)
                if isinstance(match.risk_tags, list)
                else (
                    *where,
                    "risk_tags",
                )
            )
            effect = (
                "the rule is checked as if it did not list it"
                if mapped
                else "the rule is checked as if it had no risk_tags condition (it matches more)"
            )
            notes.append(
                Note(
                    RISK_TAG_UNMAPPED,
                    path,
                    f"risk tag '{tag}' is not a risk level; {effect}",
                    "risk levels are: low, medium, high, critical (the catalog's 'risk:')",
                )
            )
        risks = list(dict.fromkeys(mapped)) or None
    topics = None if match.topics is None else match.topics
    return When(topic=topics, risk=risks)


def convert(foreign: ForeignPolicy) -> Conversion:
    """agentundo's view of ``foreign``: first_match, default deny, rule ``i`` is ``rules[i]``."""
    notes: list[Note] = []
    default = Decision.DENY
    if foreign.default_decision is not None:
        default = _decision(foreign.default_decision, ("default_decision",), notes)
    rules = []
    for index, item in enumerate(foreign.rules):
        where: JsonPath = ("rules", index)
        decision = _decision(item.decision, (*where, "decision"), notes)
        when = _when(item.match, (*where, "match"), notes)
        rules.append(
            Rule(
                id=rule_id(item, index),
                when=when,
                decision=decision,
                reason=item.reason,
                description=item.description,
            )
        )
    policy = Policy(version="v1", combining="first_match", default_decision=default, rules=rules)
    return Conversion(policy=policy, notes=tuple(notes))
