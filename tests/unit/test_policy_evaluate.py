"""Policy evaluation: AND of conditions, any-of lists, globs, combining, and the fast path."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agentundo.model.common import Decision, Risk, Rollback
from agentundo.model.policy import Policy
from agentundo.policy.analysis import covers, pattern_covers, shadowing_rule
from agentundo.policy.compiled import CompiledPolicy
from agentundo.policy.evaluate import Context, evaluate


def ctx(**overrides: Any) -> Context:
    base: dict[str, Any] = {
        "env": "production",
        "topic": "payments.charge",
        "side_effect": True,
        "compensation_declared": True,
        "rollback_supported": True,
        "risk": Risk.HIGH,
        "rollback": Rollback.COMPENSATABLE,
    }
    return Context(**{**base, **overrides})


def policy(*rules: dict[str, Any], **top: Any) -> Policy:
    return Policy.model_validate({"version": "v1", "rules": list(rules), **top})


CARD = policy(
    {
        "id": "require-compensation-for-prod-writes",
        "when": {"env": "production", "side_effect": True, "compensation_declared": False},
        "decision": "require_human",
    }
)


def test_card_policy() -> None:
    assert evaluate(CARD, ctx(compensation_declared=False)).decision is Decision.REQUIRE_HUMAN
    result = evaluate(CARD, ctx())
    assert result.decision is Decision.ALLOW
    assert result.rule is None
    assert [str(m) for m in result.results[0].mismatches] == [
        "compensation_declared: wanted False, got True"
    ]


def test_most_restrictive_wins_and_first_rule_of_that_decision_is_named() -> None:
    p = policy(
        {"id": "allow-all", "when": {}, "decision": "allow"},
        {"id": "human-payments", "when": {"topic": "payments.*"}, "decision": "require_human"},
        {"id": "deny-high", "when": {"risk": ["high", "critical"]}, "decision": "deny"},
        {"id": "deny-prod", "when": {"env": "production"}, "decision": "deny"},
    )
    result = evaluate(p, ctx())
    assert (result.decision, result.rule_id) == (Decision.DENY, "deny-high")
    assert [r.rule.id for r in result.matched] == [
        "allow-all",
        "human-payments",
        "deny-high",
        "deny-prod",
    ]


def test_first_match_combining() -> None:
    p = policy(
        {"id": "allow-all", "when": {}, "decision": "allow"},
        {"id": "deny-prod", "when": {"env": "production"}, "decision": "deny"},
        combining="first_match",
    )
    assert evaluate(p, ctx()).rule_id == "allow-all"


def test_default_decision() -> None:
    p = policy(
        {"id": "r", "when": {"env": "staging"}, "decision": "allow"}, default_decision="deny"
    )
    result = evaluate(p, ctx())
    assert (result.decision, result.rule) == (Decision.DENY, None)


def test_is_compensation_separates_rollbacks() -> None:
    p = policy(
        {
            "id": "no-refunds",
            "when": {"topic": "payments.refund", "is_compensation": False},
            "decision": "deny",
        },
    )
    assert evaluate(p, ctx(topic="payments.refund")).decision is Decision.DENY
    assert (
        evaluate(p, ctx(topic="payments.refund", is_compensation=True)).decision is Decision.ALLOW
    )


def test_pattern_covers() -> None:
    assert pattern_covers("infra.*", "infra.dns.create")
    assert pattern_covers("infra.*", "infra.dns.*")
    assert pattern_covers("*", "anything")
    assert not pattern_covers("infra.dns.*", "infra.*")
    assert not pattern_covers("infra.dns.create", "infra.*")


def test_shadowing() -> None:
    p = policy(
        {"id": "deny-infra", "when": {"topic": "infra.*"}, "decision": "deny"},
        {"id": "human-dns", "when": {"topic": "infra.dns.create"}, "decision": "require_human"},
        {"id": "allow-staging", "when": {"env": "staging"}, "decision": "allow"},
    )
    assert shadowing_rule(p, 1) is p.rules[0]
    assert shadowing_rule(p, 0) is None
    assert shadowing_rule(p, 2) is None
    assert covers(p.rules[0].when, p.rules[1].when)


_TOPICS = ["payments.charge", "payments.refund", "infra.dns.create", "email.send"]
_when = st.fixed_dictionaries(
    {},
    optional={
        "env": st.sampled_from(["production", "staging", ["production", "staging"], "prod*"]),
        "topic": st.sampled_from(
            [
                "payments.*",
                "infra.*",
                "email.send",
                "*",
                "p?yments.charge",
                ["email.*", "infra.dns.*"],
            ]
        ),
        "side_effect": st.booleans(),
        "compensation_declared": st.booleans(),
        "rollback_supported": st.booleans(),
        "approval_present": st.booleans(),
        "is_compensation": st.booleans(),
        "risk": st.sampled_from(["low", "high", ["high", "critical"]]),
        "rollback": st.sampled_from(["irreversible", ["reversible", "compensatable"]]),
    },
)
_rule = st.fixed_dictionaries(
    {"when": _when, "decision": st.sampled_from(["allow", "deny", "require_human"])}
)
_context = st.builds(
    Context,
    env=st.sampled_from(["production", "staging", "dev"]),
    topic=st.sampled_from(_TOPICS),
    side_effect=st.booleans(),
    compensation_declared=st.booleans(),
    rollback_supported=st.booleans(),
    risk=st.sampled_from(list(Risk)),
    rollback=st.sampled_from([None, *Rollback]),
    approval_present=st.booleans(),
    is_compensation=st.booleans(),
)


@settings(max_examples=400, deadline=None)
@given(
    rules=st.lists(_rule, max_size=8),
    combining=st.sampled_from(["most_restrictive", "first_match"]),
    default=st.sampled_from(["allow", "deny", "require_human"]),
    contexts=st.lists(_context, min_size=1, max_size=5),
)
def test_compiled_policy_agrees_with_evaluate(
    rules: list[dict[str, Any]], combining: str, default: str, contexts: list[Context]
) -> None:
    p = policy(
        *({"id": f"r{i}", **r} for i, r in enumerate(rules)),
        combining=combining,
        default_decision=default,
    )
    compiled = CompiledPolicy(p)
    for c in contexts:
        slow = evaluate(p, c)
        decision, index = compiled.decide(c)
        assert decision is slow.decision
        assert (None if index is None else p.rules[index].id) == slow.rule_id


@settings(max_examples=300, deadline=None)
@given(
    rules=st.lists(_rule, min_size=2, max_size=6),
    contexts=st.lists(_context, min_size=1, max_size=8),
)
def test_a_shadowed_rule_never_decides(
    rules: list[dict[str, Any]], contexts: list[Context]
) -> None:
    p = policy(*({"id": f"r{i}", **r} for i, r in enumerate(rules)))
    shadowed = {i for i in range(len(p.rules)) if shadowing_rule(p, i) is not None}
    for c in contexts:
        winner = evaluate(p, c).rule
        assert winner is None or p.rules.index(winner) not in shadowed
