"""Control-plane policies (rules with match:): recognised, mapped onto agentundo's
Policy, and what cannot be mapped reported as findings at its position."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from agentundo.lint.engine import lint_paths
from agentundo.load.files import load_file
from agentundo.model.common import Decision
from agentundo.model.foreign_policy import KIND, ForeignPolicy, convert, detect, register
from agentundo.policy.conditions import Compare, Job, JobCondition, RuleConditions
from agentundo.policy.evaluate import Context, Outcome, evaluate
from tests.samples import catalog

CATALOG = catalog(
    """\
  infra.db.delete:
    side_effect: true
    rollback: irreversible
    risk: critical
    no_rollback_reason: a dropped database is gone
    idempotency_key: "{run_id}:{step_id}"
"""
)

CONTROL_PLANE = """
# safety policy of the agent control plane
default_decision: deny
rules:
  - id: refunds-are-fine
    match:
      topics: ["payments.refund"]
    decision: permit
    reason: compensations must run
  - id: no-db-deletes
    match:
      topics: ["infra.db.*"]
      risk_tags: [critical]
    decision: block
    reason: deletes need a change ticket
  - name: approve-payments
    match: {topics: "payments.*"}
    decision: require-approval
"""


def _write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def _foreign(tmp_path: Path, text: str) -> ForeignPolicy:
    register()
    model = load_file(_write(tmp_path, "cp.yaml", text)).model
    assert isinstance(model, ForeignPolicy)
    return model


def _lint(tmp_path: Path, policy: str) -> list[tuple[str, int, int]]:
    _write(tmp_path, "catalog.yaml", CATALOG)
    _write(tmp_path, "cp.yaml", policy)
    result = lint_paths([str(tmp_path)])
    assert not result.input_errors, [e.describe() for e in result.input_errors]
    return [(f.code, f.line, f.column) for f in result.findings]


def test_detected_by_match_rules() -> None:
    assert detect({"rules": [{"match": {}, "decision": "allow"}]}) == KIND
    assert detect({"rules": [{"id": "a", "when": {}, "decision": "allow"}]}) is None
    assert detect({"rules": [{"match": {}}, {"when": {}}]}) is None
    assert detect({"topics": {}}) is None


def test_conversion_first_match_and_positions(tmp_path: Path) -> None:
    conversion = convert(_foreign(tmp_path, CONTROL_PLANE))
    policy = conversion.policy
    # risk_tags are the job's own labels: a condition on the job, never the catalog's risk
    assert [(n.code, n.path) for n in conversion.notes] == [
        ("AU312", ("rules", 1, "match", "risk_tags"))
    ]
    assert policy.combining == "first_match"
    assert policy.default_decision is Decision.DENY
    assert [(r.id, r.decision) for r in policy.rules] == [
        ("refunds-are-fine", Decision.ALLOW),
        ("no-db-deletes", Decision.DENY),
        ("approve-payments", Decision.REQUIRE_HUMAN),
    ]
    assert policy.rules[1].when.topic == ["infra.db.*"]
    assert policy.rules[1].when.risk is None
    assert conversion.conditions[1] == RuleConditions(
        (JobCondition("risk_tags", Compare.ANY_OF, "risk_tags", ("critical",)),)
    )
    assert conversion.conditions[0] == conversion.conditions[2] == RuleConditions()
    assert policy.rules[2].when.topic == "payments.*"


def test_default_decision_defaults_to_deny(tmp_path: Path) -> None:
    policy = convert(
        _foreign(tmp_path, "rules:\n  - match: {topics: [a]}\n    decision: allow\n")
    ).policy
    ctx = Context.for_topic("b", None, env="production")
    assert evaluate(policy, ctx).decision is Decision.DENY
    assert policy.rules[0].id == "rules[0]"


@pytest.mark.parametrize(
    ("word", "decision"),
    [
        ("allow", Decision.ALLOW),
        ("permit", Decision.ALLOW),
        ("deny", Decision.DENY),
        ("block", Decision.DENY),
        ("require_approval", Decision.REQUIRE_HUMAN),
        ("require-approval", Decision.REQUIRE_HUMAN),
        ("approval_required", Decision.REQUIRE_HUMAN),
        ("Require-Approval", Decision.REQUIRE_HUMAN),
    ],
)
def test_exact_decisions(tmp_path: Path, word: str, decision: Decision) -> None:
    text = f"rules:\n  - match: {{topics: [a]}}\n    decision: {word}\n"
    conversion = convert(_foreign(tmp_path, text))
    assert conversion.policy.rules[0].decision is decision
    assert conversion.notes == ()


@pytest.mark.parametrize("word", ["allow_with_constraints", "throttle", "allow-with-constraints"])
def test_constrained_decisions_allow_with_a_warning(tmp_path: Path, word: str) -> None:
    text = (
        f"rules:\n  - match: {{topics: [a]}}\n    decision: {word}\n    constraints: {{max: 3}}\n"
    )
    conversion = convert(_foreign(tmp_path, text))
    assert conversion.policy.rules[0].decision is Decision.ALLOW
    assert [(n.code, n.path) for n in conversion.notes] == [("AU311", ("rules", 0, "decision"))]


def test_lint_a_clean_control_plane_policy(tmp_path: Path) -> None:
    # the one finding: lint cannot see which jobs carry the tag 'critical'
    assert _lint(tmp_path, CONTROL_PLANE) == [("AU312", 12, 7)]


def test_lint_checks_run_on_the_converted_policy(tmp_path: Path) -> None:
    # 'permit' everything first: the critical delete is allowed (AU301 at rules[0]), and
    # the fully modelled first rule shadows both others (conditions on the job only narrow)
    text = CONTROL_PLANE.replace('topics: ["payments.refund"]', 'topics: ["*"]')
    assert _lint(tmp_path, text) == [
        ("AU301", 4, 5),
        ("AU305", 9, 5),
        ("AU312", 12, 7),
        ("AU305", 15, 5),
    ]


def test_unmappable_parts_are_findings_at_their_position(tmp_path: Path) -> None:
    text = """
rules:
  - id: pii
    match:
      topics: ["payments.*"]
      risk_tags: [high, pii]
      tenants: [acme]
    decision: escalate
  - id: slow-down
    match: {topics: ["infra.*"], risk_tags: destructive}
    decision: throttle
default_decision: quarantine
"""
    assert _lint(tmp_path, text) == [
        ("AU302", 2, 5),  # escalate -> deny, for jobs of tenant acme tagged high or pii
        ("AU312", 5, 7),  # risk tags: the job's labels
        ("AU313", 6, 7),  # tenants: a condition on the job
        ("AU310", 7, 15),  # escalate: checked as deny
        ("AU301", 8, 5),  # throttle is checked as allow, for jobs tagged 'destructive'
        ("AU312", 9, 34),
        ("AU311", 10, 15),  # throttle
        ("AU302", 11, 1),  # quarantine -> deny denies the refund when 'pii' does not match
        ("AU310", 11, 19),  # quarantine
    ]


def test_undecided_outcomes_say_what_they_assume(tmp_path: Path) -> None:
    text = """
rules:
  - id: slow-down
    match: {topics: ["infra.*"], risk_tags: destructive}
    decision: throttle
"""
    _write(tmp_path, "catalog.yaml", CATALOG)
    _write(tmp_path, "cp.yaml", text)
    messages = {f.code: f.message for f in lint_paths([str(tmp_path)]).findings}
    assert messages["AU301"] == (
        "rule 'slow-down' allows 'infra.db.delete' (critical risk, cannot be rolled back) "
        "in production without a human, when the job has risk_tags destructive"
    )
    assert messages["AU302"] == (
        "the default decision (deny) denies compensation 'payments.refund' of "
        "'payments.charge' in production: a rollback would skip it"
    )


def test_risk_tags_are_never_risk_levels(tmp_path: Path) -> None:
    text = "rules:\n  - match: {topics: [a], risk_tags: [critical, pii]}\n    decision: deny\n"
    conversion = convert(_foreign(tmp_path, text))
    assert conversion.policy.rules[0].when.risk is None
    assert [n.code for n in conversion.notes] == ["AU312"]
    assert "labels of the job, not risk levels" in conversion.notes[0].message
    policy = conversion.policy
    critical = Context.for_topic("a", None, env="production")  # unknown topics are high risk
    assert evaluate(policy, critical).outcomes == (
        Outcome(Decision.DENY, 0, ((0, True),)),
        Outcome(Decision.DENY, None, ((0, False),)),
    )
    tagged = Context.for_topic(
        "a", None, env="production", job=Job({"risk_tags": frozenset({"PII"})})
    )
    assert evaluate(policy, tagged).rule_id == "rules[0]"


def test_kind_can_be_named(tmp_path: Path) -> None:
    register()
    path = _write(tmp_path, "p.yaml", "kind: foreign-policy\nrules: []\n")
    assert load_file(path).kind == KIND


def test_schema_problems_keep_positions(tmp_path: Path) -> None:
    _write(tmp_path, "cp.yaml", "rules:\n  - match: {topics: [a]}\n    decision: [allow]\n")
    result = lint_paths([str(tmp_path)])
    assert [(e.position.line, e.position.column) for e in result.input_errors] == [(3, 15)]


def test_engine_settings_and_tenant_lists_are_reported(tmp_path: Path) -> None:
    text = """
rules:
  - id: a
    match: {topics: ["tickets.*"], secrets_present: true, labels: {pii: false}}
    decision: allow
input_policy:
  fail_mode: requeue
output_policy: {fail_mode: open}
input_rules:
  - id: scan
    match: {topics: ["*"], scanners: [pii]}
    decision: deny
tenants:
  default:
    deny_topics: ["sys.*"]
"""
    assert _lint(tmp_path, text) == [
        ("AU302", 1, 1),  # default deny: the refund is denied
        ("AU306", 3, 21),  # no tickets in the catalog
        ("AU313", 3, 36),  # secrets_present: not modelled
        ("AU313", 3, 59),  # labels: a condition on the job
        ("AU314", 6, 14),  # requeue is neither open nor closed
        ("AU315", 8, 1),  # input_rules
        ("AU316", 14, 5),  # deny_topics next to rules: not consulted
    ]
    conversion = convert(_foreign(tmp_path, text))
    assert conversion.fail_mode is None  # 'requeue' is not a fail mode
    labels, secrets = conversion.conditions[0].items
    assert (labels.key, labels.labels) == ("labels", (("pii", "false"),))  # YAML false: 'false'
    assert (secrets.key, secrets.test) == ("secrets_present", Compare.NOT_MODELLED)
    assert [n.message.split(": ")[0] for n in conversion.notes[:2]] == [
        "match key 'labels' of rule 'a' is a condition on the job",
        "match key 'secrets_present' of rule 'a' is not modelled by agentundo",
    ]


def test_tenant_lists_are_rules_when_there_are_no_rules(tmp_path: Path) -> None:
    text = """
kind: foreign-policy
default_decision: allow
input_policy: {fail_mode: Open}
rules: []
tenants:
  acme:
    allow_topics: ["infra.db.read"]
    deny_topics: ["infra.*"]
"""
    conversion = convert(_foreign(tmp_path, text))
    assert conversion.fail_mode == "open"
    assert [(r.id, r.decision, r.when.topic) for r in conversion.policy.rules] == [
        ("legacy:acme:deny:1", Decision.DENY, "infra.*"),
        ("legacy:acme:allow:1", Decision.ALLOW, "infra.db.read"),
    ]
    assert conversion.paths == (
        ("tenants", "acme", "deny_topics", 0),
        ("tenants", "acme", "allow_topics", 0),
    )
    policy = conversion.policy
    acme = Context.for_topic("infra.db.delete", None, env="production", job=Job({"tenant": "acme"}))
    assert evaluate(policy, acme).rule_id == "legacy:acme:deny:1"
    other = Context.for_topic("infra.db.delete", None, env="production", job=Job({"tenant": "b"}))
    assert evaluate(policy, other).decision is Decision.ALLOW  # the default
    # lint reports at the list entry, and gate outcomes with what they assume
    assert _lint(tmp_path, text) == [
        ("AU301", 2, 1),  # the default allows the delete unless the tenant is acme
        ("AU306", 7, 20),  # infra.db.read is not in the catalog
    ]
