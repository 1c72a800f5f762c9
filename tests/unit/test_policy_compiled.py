"""policy/compiled.py's topic index against the rule-by-rule evaluation: many prefixes
that share first characters, nested prefixes, ``*``, and topics no prefix starts."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agentundo.model.common import Risk
from agentundo.model.policy import Policy
from agentundo.policy.compiled import CompiledPolicy
from agentundo.policy.evaluate import Context, evaluate

_PATTERNS = [
    "*",
    "p*",
    "pay*",
    "payments.*",
    "payments.charge*",
    "payments.charge",
    "pa?ments.*",
    "i*",
    "infra.db.*",
    "infra.dns.create",
    "x*",
]
_TOPICS = ["", "p", "pay", "payments.charge", "payments.charges", "payments.refund"]
_TOPICS += ["infra.db.delete", "infra.dns.create", "iam.grant", "email.send", "x"]


def _policy(rules: list[dict[str, Any]], combining: str) -> Policy:
    numbered = [{"id": f"r{i}", **rule} for i, rule in enumerate(rules)]
    return Policy.model_validate({"version": "v1", "rules": numbered, "combining": combining})


_rule = st.fixed_dictionaries(
    {
        "when": st.fixed_dictionaries(
            {},
            optional={
                "topic": st.one_of(
                    st.sampled_from(_PATTERNS), st.lists(st.sampled_from(_PATTERNS), min_size=1)
                ),
                "env": st.sampled_from(["production", "staging", "prod*"]),
                "approval_present": st.booleans(),
            },
        ),
        "decision": st.sampled_from(["allow", "deny", "require_human"]),
    }
)


@settings(max_examples=300, deadline=None)
@given(
    rules=st.lists(_rule, max_size=10),
    combining=st.sampled_from(["most_restrictive", "first_match"]),
    topics=st.lists(st.sampled_from(_TOPICS), min_size=1, max_size=6),
    env=st.sampled_from(["production", "staging", "dev"]),
    approval=st.booleans(),
)
def test_the_topic_index_finds_the_rules_evaluate_matches(
    rules: list[dict[str, Any]], combining: str, topics: list[str], env: str, approval: bool
) -> None:
    policy = _policy(rules, combining)
    compiled = CompiledPolicy(policy)
    for topic in topics:  # repeated topics come from the caches
        ctx = Context(
            env=env,
            topic=topic,
            side_effect=True,
            compensation_declared=False,
            rollback_supported=False,
            risk=Risk.HIGH,
            rollback=None,
            approval_present=approval,
        )
        slow = evaluate(policy, ctx)
        decision, index = compiled.decide(ctx)
        assert decision is slow.decision
        assert (None if index is None else policy.rules[index].id) == slow.rule_id
