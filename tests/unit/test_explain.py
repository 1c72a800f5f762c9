"""Policy explanation: the decision, the rule that won, and why every other rule did not."""

from __future__ import annotations

import io
import json

from rich.console import Console

from agentundo.model.catalog import Topic
from agentundo.model.common import Decision, Risk, Rollback
from agentundo.model.policy import Policy
from agentundo.policy.evaluate import Context
from agentundo.policy.explain import Status, explain, summary, symbol
from agentundo.report.explain import render_json, render_text

POLICY = Policy.model_validate(
    {
        "version": "v1",
        "rules": [
            {"id": "allow-all", "when": {}, "decision": "allow"},
            {
                "id": "human-for-risky",
                "when": {"risk": ["high", "critical"], "approval_present": False},
                "decision": "require_human",
                "reason": "risky actions need a person",
            },
            {
                "id": "deny-staging-db",
                "when": {"env": "staging", "topic": "db.*"},
                "decision": "deny",
            },
            {"id": "allow-all-again", "when": {}, "decision": "allow"},
        ],
    }
)
TOPIC = Topic(side_effect=True, rollback=Rollback.IRREVERSIBLE, risk=Risk.HIGH)


def _ctx(**changes: object) -> Context:
    options: dict[str, object] = {"env": "production"}
    options.update(changes)
    return Context.for_topic("db.drop", TOPIC, **options)  # type: ignore[arg-type]


def test_most_restrictive_explains_each_rule() -> None:
    result = explain(POLICY, _ctx(), lines=[3, 6, 11, 14])
    assert result.decision is Decision.REQUIRE_HUMAN
    assert result.winner is not None and result.winner.rule.id == "human-for-risky"
    assert [(v.rule.id, v.status, v.line) for v in result.rules] == [
        ("allow-all", Status.OVERRIDDEN, 3),
        ("human-for-risky", Status.DECIDED, 6),
        ("deny-staging-db", Status.NOT_MATCHED, 11),
        ("allow-all-again", Status.OVERRIDDEN, 14),
    ]
    assert [v.why for v in result.rules] == [
        "matched, but rule 'human-for-risky' decides require_human, which is stricter than "
        "allow (most_restrictive)",
        "decided: the strictest matching rule, first in file order (most_restrictive)",
        "not matched: env: wanted staging, got production",
        "matched, but rule 'human-for-risky' decides require_human, which is stricter than "
        "allow (most_restrictive)",
    ]
    assert summary(result) == (
        "require_human: 'db.drop' in production without approval is decided by rule "
        "'human-for-risky'"
    )


def test_every_failed_condition_is_named() -> None:
    result = explain(POLICY, _ctx(approval_present=True))
    failed = result.rules[1].failed
    assert [(m.condition, m.expected, m.actual) for m in failed] == [
        ("approval_present", [False], True)
    ]
    assert result.decision is Decision.ALLOW
    assert result.rules[3].why == (
        "matched, but rule 'allow-all' comes first with the same decision allow (most_restrictive)"
    )


def test_first_match_and_the_default() -> None:
    first = POLICY.model_copy(update={"combining": "first_match"})
    result = explain(first, _ctx())
    assert result.winner is not None and result.winner.rule.id == "allow-all"
    assert result.rules[1].why == "matched, but rule 'allow-all' matched first (first_match)"
    empty = Policy.model_validate(
        {
            "version": "v1",
            "default_decision": "deny",
            "rules": [{"id": "x", "when": {"env": "qa"}, "decision": "allow"}],
        }
    )
    result = explain(empty, _ctx(), notes=["a note"])
    assert result.decision is Decision.DENY and result.winner is None
    assert "the default decision (no rule matches; default deny)" in summary(result)
    assert result.notes == ("a note",)


def test_json_and_text_rendering() -> None:
    result = explain(POLICY, _ctx(), lines=[3, 6, 11, 14])
    stream = io.StringIO()
    render_json(result, stream)
    data = json.loads(stream.getvalue())
    assert data["decision"] == "require_human"
    assert data["rule"] == "human-for-risky"
    assert data["rules"][2]["failed"] == [
        {"condition": "env", "expected": ["staging"], "actual": "production"}
    ]
    out = io.StringIO()
    render_text(result, Console(file=out, width=100, no_color=True, highlight=False))
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("require_human: 'db.drop' in production")
    assert "  => human-for-risky (line 6) -> require_human" in lines
    assert "       reason: risky actions need a person" in lines


def test_every_status_has_a_symbol() -> None:
    assert {symbol(s) for s in Status} == {"=>", "~ ", "x ", "? "}
