"""Safety policies of other agent control planes, and their mapping onto agentundo's Policy.

Such files hold a list of ``rules``, each with ``match:`` conditions (``topics`` globs,
``risk_tags``, ...), a ``decision`` (``allow``, ``deny``, ``require_approval`` and
aliases) and a ``reason``; the first matching rule wins and ``default_decision``
(default deny) applies when none does. :func:`convert` maps one onto a ``first_match``
:class:`~agentundo.model.policy.Policy` whose rule ``i`` is the file's ``rules[i]``,
and records what cannot be mapped as :class:`Note` objects that lint reports
(AU310-AU316) instead of failing.

Conditions on the job rather than the topic (Cordum's ``labels``, ``risk_tags`` which
are free job labels, ``capabilities``, ...) become :class:`RuleConditions` next to the
rule: the rule is *undecided* for a dispatch whose job facts are not given, never
broader. Keys agentundo cannot evaluate at all are kept as always-unknown conditions.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, PrivateAttr

# recognising the format lives in the loader, which imports this module only to build one
from agentundo.load.foreign import KIND as KIND
from agentundo.load.foreign import detect as detect
from agentundo.load.foreign import register as register
from agentundo.model.common import Decision
from agentundo.model.policy import Policy, Rule, When
from agentundo.policy.conditions import Compare, JobCondition, RuleConditions

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

FAIL_MODE_UNKNOWN = "AU314"
CONTENT_RULES_NOT_MODELLED = "AU315"
TENANT_LISTS_UNUSED = "AU316"

FAIL_MODES = frozenset({"open", "closed"})
"""``input_policy.fail_mode``: what the gate does when the policy engine is down."""

JOB_KEYS: dict[str, tuple[str, Compare]] = {
    "tenants": ("tenant", Compare.ONE_OF),
    "capabilities": ("capability", Compare.ONE_OF),
    "pack_ids": ("pack_id", Compare.ONE_OF),
    "actor_ids": ("actor_id", Compare.ONE_OF),
    "actor_types": ("actor_type", Compare.ONE_OF),
    "risk_tags": ("risk_tags", Compare.ANY_OF),
    "requires": ("requires", Compare.ALL_OF),
}
"""``match:`` keys that test one fact of the job (Cordum's ``PolicyMatch``), and how."""

MATCH_KEYS = frozenset({"topics", "labels", *JOB_KEYS})
"""``match:`` keys agentundo evaluates; any other is a condition it cannot evaluate."""

JsonPath = tuple[str | int, ...]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


StrOrList = str | list[str]


class ForeignMatch(_Open):
    """Conditions of a rule; keys beyond these are kept in ``model_extra``."""

    topics: StrOrList | None = None
    risk_tags: StrOrList | None = None
    tenants: StrOrList | None = None
    capabilities: StrOrList | None = None
    pack_ids: StrOrList | None = None
    actor_ids: StrOrList | None = None
    actor_types: StrOrList | None = None
    requires: StrOrList | None = None
    labels: dict[str, str | int | float | bool] | None = None


class ForeignRule(_Open):
    id: str | int | None = None
    name: str | None = None
    description: str | None = None
    reason: str | None = None
    decision: str
    match: ForeignMatch | None = None


class ContentRule(_Open):
    """An input or output rule: it scans a job's content (not modelled; reported)."""

    id: str | int | None = None
    decision: str | None = None


class EnginePolicy(_Open):
    """``input_policy``/``output_policy``: whether scanning runs, and its fail mode."""

    enabled: bool | None = None
    fail_mode: str | None = None


class Tenant(_Open):
    allow_topics: list[str] | None = None
    deny_topics: list[str] | None = None


class ForeignPolicy(_Open):
    """A control plane's policy file as written (open: unknown keys are kept)."""

    default_decision: str | None = None
    rules: list[ForeignRule]
    input_policy: EnginePolicy | None = None
    input_rules: list[ContentRule] | None = None
    output_policy: EnginePolicy | None = None
    output_rules: list[ContentRule] | None = None
    default_tenant: str | None = None
    tenants: dict[str, Tenant] | None = None


class ConvertedPolicy(Policy):
    """A control plane's policy in agentundo's model, carrying each rule's job conditions,
    so that whatever compiles or evaluates it (lint, explain, a drill's gate, recover)
    treats those rules as undecided rather than as matching."""

    _job_conditions: tuple[RuleConditions, ...] = PrivateAttr(default=())
    _fail_mode: str | None = PrivateAttr(default=None)

    @property
    def job_conditions(self) -> tuple[RuleConditions, ...]:
        return self._job_conditions

    @property
    def fail_mode(self) -> str | None:
        """``input_policy.fail_mode`` (``open`` or ``closed``), when the file sets it."""
        return self._fail_mode


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
    """agentundo's view of a control plane's policy.

    ``conditions[i]``: the job conditions of ``policy.rules[i]`` (empty: fully modelled);
    ``paths[i]``: where rule ``i`` is written in the file; ``fail_mode``: the file's
    ``input_policy.fail_mode`` when it is ``open`` or ``closed``.
    """

    policy: Policy
    notes: tuple[Note, ...]
    conditions: tuple[RuleConditions, ...] = ()
    paths: tuple[JsonPath, ...] = ()
    fail_mode: str | None = None


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


def _label(value: str | float | bool) -> str:
    """A label value as the control plane reads it (YAML ``true`` is the string ``true``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_DECIDED_BY = (
    "no catalog says which jobs carry {}, so the rule is undecided unless the job is known "
    "(it may or may not match) and shadows no other rule"
)


def _job_note(key: str, rule: str, where: JsonPath) -> Note:
    if key == "risk_tags":
        return Note(
            RISK_TAG_UNMAPPED,
            (*where, key),
            f"risk_tags of rule '{rule}' are labels of the job, not risk levels: "
            + _DECIDED_BY.format("them"),
            "explain decides it with --risk-tag TAG; a drill of a Cordum workflow with the "
            "step's meta.risk_tags",
            key=True,
        )
    how = {
        "labels": "explain decides it with --label KEY=VALUE; a drill of a Cordum workflow "
        "with the step's labels",
    }.get(
        key,
        f"explain decides it with --fact {JOB_KEYS[key][0] if key in JOB_KEYS else key}=VALUE; "
        "a drill of a Cordum workflow from the step's meta",
    )
    return Note(
        MATCH_KEY_UNKNOWN,
        (*where, key),
        f"match key '{key}' of rule '{rule}' is a condition on the job: "
        + _DECIDED_BY.format("what it asks"),
        how,
        key=True,
    )


def _conditions(
    match: ForeignMatch | None, rule: str, where: JsonPath, notes: list[Note]
) -> tuple[When, RuleConditions]:
    """The rule's topic condition, and its conditions on the job (with their notes)."""
    if match is None:
        return When(), RuleConditions()
    items: list[JobCondition] = []
    for key, (fact, test) in JOB_KEYS.items():
        raw = getattr(match, key)
        values = () if raw is None else tuple(_as_list(raw))
        if values:  # an empty list is no condition (Cordum: len(match.X) > 0)
            items.append(JobCondition(key, test, fact, values))
            notes.append(_job_note(key, rule, where))
    if match.labels:
        pairs = tuple((k, _label(v)) for k, v in match.labels.items())
        items.append(JobCondition("labels", Compare.LABELS, labels=pairs))
        notes.append(_job_note("labels", rule, where))
    for key in match.model_extra or {}:
        items.append(JobCondition(str(key), Compare.NOT_MODELLED))
        notes.append(
            Note(
                MATCH_KEY_UNKNOWN,
                (*where, key),
                f"match key '{key}' of rule '{rule}' is not modelled by agentundo: the rule "
                "is undecided for every dispatch it could match (never taken as matching)",
                f"agentundo evaluates: {', '.join(sorted(MATCH_KEYS))}",
                key=True,
            )
        )
    topics = None if match.topics is None or match.topics == [] else match.topics
    return When(topic=topics), RuleConditions(tuple(items))


def _engine_notes(foreign: ForeignPolicy, notes: list[Note]) -> str | None:
    """Notes for what the file says beyond ``rules``; the input fail mode if it maps."""
    fail_mode = None
    for section in ("input_policy", "output_policy"):
        engine: EnginePolicy | None = getattr(foreign, section)
        if engine is None or engine.fail_mode is None:
            continue
        mode = engine.fail_mode.strip().lower()
        if mode not in FAIL_MODES:
            notes.append(
                Note(
                    FAIL_MODE_UNKNOWN,
                    (section, "fail_mode"),
                    f"{section}.fail_mode '{engine.fail_mode}' is neither open nor closed",
                    "use closed (hold the job while the policy engine is down) or open",
                )
            )
        elif section == "input_policy":
            fail_mode = mode
    for section, when in (("input_rules", "before"), ("output_rules", "after")):
        content: list[ContentRule] | None = getattr(foreign, section)
        if not content:
            continue
        ids = ", ".join(str(r.id) for r in content if r.id is not None) or f"{len(content)} rules"
        notes.append(
            Note(
                CONTENT_RULES_NOT_MODELLED,
                (section,),
                f"{section} ({ids}) scan each job's content {when} it runs; agentundo does "
                "not model content scanning, so a dispatch it allows may still be held or "
                "denied by them",
                "rehearse their effect with a gate fault (compensation_denied, "
                "policy_unavailable) or a require_approval rule",
                key=True,
            )
        )
    return fail_mode


def _tenant_rules(
    foreign: ForeignPolicy, notes: list[Note]
) -> list[tuple[JsonPath, Rule, RuleConditions]]:
    """Cordum's tenant lists: rules of their own when ``rules:`` is empty, else unused."""
    found: list[tuple[JsonPath, Rule, RuleConditions]] = []
    for name, tenant in (foreign.tenants or {}).items():
        lists = (("deny_topics", Decision.DENY), ("allow_topics", Decision.ALLOW))
        for key, decision in lists:
            patterns = getattr(tenant, key) or []
            if not patterns:
                continue
            if foreign.rules:
                notes.append(
                    Note(
                        TENANT_LISTS_UNUSED,
                        ("tenants", name, key),
                        f"tenants.{name}.{key} is not consulted: the control plane reads "
                        "tenant topic lists only when the policy has no rules",
                        "write the list as a rule with match.topics (and match.tenants)",
                        key=True,
                    )
                )
                continue
            word = "deny" if decision is Decision.DENY else "allow"
            for i, pattern in enumerate(patterns):
                tenant_is = JobCondition("tenants", Compare.ONE_OF, "tenant", (name,))
                rule = Rule(
                    id=f"legacy:{name}:{word}:{i + 1}",
                    when=When(topic=pattern),
                    decision=decision,
                    reason=f"topic {pattern!r} {word} by tenant policy",
                )
                found.append(((("tenants", name, key, i)), rule, RuleConditions((tenant_is,))))
    return found


def convert(foreign: ForeignPolicy) -> Conversion:
    """agentundo's view of ``foreign``: first_match, default deny, rule ``i`` is ``rules[i]``."""
    notes: list[Note] = []
    default = Decision.DENY
    if foreign.default_decision is not None:
        default = _decision(foreign.default_decision, ("default_decision",), notes)
    rules: list[Rule] = []
    conditions: list[RuleConditions] = []
    paths: list[JsonPath] = []
    for index, item in enumerate(foreign.rules):
        where: JsonPath = ("rules", index)
        shown = rule_id(item, index)
        decision = _decision(item.decision, (*where, "decision"), notes)
        when, job = _conditions(item.match, shown, (*where, "match"), notes)
        rules.append(
            Rule(
                id=shown,
                when=when,
                decision=decision,
                reason=item.reason,
                description=item.description,
            )
        )
        conditions.append(job)
        paths.append(where)
    for path, rule, job in _tenant_rules(foreign, notes):
        rules.append(rule)
        conditions.append(job)
        paths.append(path)
    fail_mode = _engine_notes(foreign, notes)
    policy = ConvertedPolicy(
        version="v1", combining="first_match", default_decision=default, rules=rules
    )
    policy._job_conditions = tuple(conditions)
    policy._fail_mode = fail_mode
    return Conversion(
        policy=policy,
        notes=tuple(notes),
        conditions=tuple(conditions),
        paths=tuple(paths),
        fail_mode=fail_mode,
    )
