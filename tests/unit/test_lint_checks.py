"""Each check fires on a small bad example at the exact place, and stays silent on a good one."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentundo.lint.engine import lint_paths
from agentundo.lint.registry import all_checks
from tests.lint_helpers import lint_texts, located, write
from tests.samples import catalog

CLEAN_CATALOG = catalog(
    """\
  email.send:
    side_effect: true
    rollback: irreversible
    risk: low
    retriable: true
    no_rollback_reason: a sent email cannot be recalled
    idempotency_key: "{run_id}:{step_id}"
  tickets.read:
    side_effect: false
"""
)

CLEAN_POLICY = """
version: v1
rules:
  - id: require-compensation-for-prod-writes
    when: {env: production, side_effect: true, compensation_declared: false, risk: [high, critical]}
    decision: require_human
  - id: allow-compensations
    when: {is_compensation: true}
    decision: allow
"""

CLEAN_WORKFLOW = """
version: v1
workflow: refund
env: production
steps:
  - {id: read, topic: tickets.read}
  - {id: charge, topic: payments.charge, params: {amount: 10}}
  - {id: notify, topic: email.send}
"""


def test_clean_project_has_no_findings(tmp_path: Path) -> None:
    findings = lint_texts(
        tmp_path, catalog=CLEAN_CATALOG, policy=CLEAN_POLICY, workflow=CLEAN_WORKFLOW
    )
    assert findings == []


# (code, catalog, policy, workflow, expected locations) — each firing case.
FIRING = [
    (
        "AU101",
        """
        version: v1
        topics:
          payments.charge:
            side_effect: true
            idempotency_key: "{run_id}:{step_id}"
        """,
        None,
        None,
        [("catalog.yaml", 3, 3)],
    ),
    (
        "AU102",
        """
        version: v1
        topics:
          iam.grant:
            side_effect: true
            rollback: reversible
            idempotency_key: "{run_id}:{step_id}"
        """,
        None,
        None,
        [("catalog.yaml", 5, 15)],
    ),
    (
        "AU103",
        """
        version: v1
        topics:
          email.send:
            side_effect: true
            rollback: irreversible
            idempotency_key: "{run_id}:{step_id}"
        """,
        None,
        None,
        [("catalog.yaml", 5, 15)],
    ),
    (
        "AU103",
        """
        version: v1
        topics:
          email.send:
            side_effect: true
            rollback: irreversible
            no_rollback_reason: "   "
            idempotency_key: "{run_id}:{step_id}"
        """,
        None,
        None,
        [("catalog.yaml", 6, 25)],
    ),
    (
        "AU104",
        """
        version: v1
        topics:
          payments.charge:
            side_effect: true
            rollback: compensatable
            idempotency_key: "{run_id}:{step_id}"
            compensation:
              topic: payments.refnd
              idempotency_key: "{run_id}:{step_id}:c"
        """,
        None,
        None,
        [("catalog.yaml", 8, 14)],
    ),
    (
        "AU105",
        """
        version: v1
        topics:
          a.b:
            side_effect: true
            rollback: irreversible
            no_rollback_reason: gone
            idempotency_key: "{run_id}:{step_id}"
            compensation: {topic: a.b, idempotency_key: "{run_id}:{step_id}:c"}
        """,
        None,
        None,
        [("catalog.yaml", 8, 5)],
    ),
    (
        "AU107",
        """
        version: v1
        topics:
          a.b:
            side_effect: true
            rollback: compensatable
            idempotency_key: "{run_id}:{step_id}"
            compensation: {topic: a.c, timeout: 169h, idempotency_key: "{run_id}:{step_id}:c"}
          a.c: {side_effect: false, http: {method: GET, url: "http://x/", timeout: 99999999h}}
        """,
        None,
        None,
        [("catalog.yaml", 7, 41), ("catalog.yaml", 8, 76)],
    ),
    (
        "AU109",
        """
        version: v1
        topics:
          tickets.read:
            side_effect: false
            needs_review: true
        """,
        None,
        None,
        [("catalog.yaml", 5, 5)],
    ),
    (
        "AU201",
        """
        version: v1
        topics:
          email.send:
            side_effect: true
            rollback: irreversible
            no_rollback_reason: gone
        """,
        None,
        None,
        [("catalog.yaml", 3, 3)],
    ),
    (
        "AU202",
        """
        version: v1
        topics:
          iam.grant:
            side_effect: true
            rollback: reversible
            idempotency_key: "{run_id}:{step_id}"
            compensation: {topic: iam.grant}
        """,
        None,
        None,
        [("catalog.yaml", 7, 5)],
    ),
    (
        "AU203",
        """
        version: v1
        topics:
          email.send:
            side_effect: true
            rollback: irreversible
            no_rollback_reason: gone
            idempotency_key: "{run_id}:{step_id}:{attempt}"
        """,
        None,
        None,
        [("catalog.yaml", 7, 22)],
    ),
    (
        "AU204",
        """
        version: v1
        topics:
          email.send:
            side_effect: true
            rollback: irreversible
            no_rollback_reason: gone
            idempotency_key: "{workflow_id}:{topic}"
        """,
        None,
        None,
        [("catalog.yaml", 7, 22)],
    ),
    (
        "AU205",
        """
        version: v1
        topics:
          email.send:
            side_effect: true
            rollback: irreversible
            no_rollback_reason: gone
            idempotency_key: "{run_id}:{stepid}"
        """,
        None,
        None,
        [("catalog.yaml", 7, 22)],
    ),
    (
        "AU206",
        """
        version: v1
        topics:
          iam.grant:
            side_effect: true
            rollback: reversible
            idempotency_key: "{run_id}:{step_id}"
            compensation: {topic: iam.grant, idempotency_key: "{run_id}:{step_id}"}
        """,
        None,
        None,
        [("catalog.yaml", 7, 55)],
    ),
    (
        "AU301",
        """
        version: v1
        topics:
          infra.db.delete:
            side_effect: true
            rollback: irreversible
            risk: critical
            no_rollback_reason: data is gone
            idempotency_key: "{run_id}:{step_id}"
        """,
        """
        version: v1
        rules:
          - id: allow-infra
            when: {topic: "infra.*"}
            decision: allow
        """,
        None,
        [("policy.yaml", 3, 5)],
    ),
    (
        "AU302",
        CLEAN_CATALOG,
        """
        version: v1
        rules:
          - id: no-refunds
            when: {topic: payments.refund}
            decision: deny
        """,
        None,
        [("policy.yaml", 3, 5)],
    ),
    (
        "AU303",
        CLEAN_CATALOG,
        """
        version: v1
        default_decision: require_human
        rules: []
        """,
        None,
        [("policy.yaml", 2, 1)],
    ),
    (
        "AU304",
        None,
        """
        version: v1
        rules:
          - {id: same, when: {env: production}, decision: allow}
          - {id: same, when: {env: staging}, decision: allow}
        """,
        None,
        [("policy.yaml", 4, 10)],
    ),
    (
        "AU305",
        None,
        """
        version: v1
        rules:
          - {id: deny-infra, when: {topic: "infra.*"}, decision: deny}
          - {id: human-dns, when: {topic: infra.dns.create, env: production}, decision: require_human}
        """,
        None,
        [("policy.yaml", 4, 5)],
    ),
    (
        "AU306",
        CLEAN_CATALOG,
        """
        version: v1
        rules:
          - {id: payments, when: {topic: "payment.*", is_compensation: false}, decision: allow}
        """,
        None,
        [("policy.yaml", 3, 34)],
    ),
    (
        "AU401",
        CLEAN_CATALOG,
        None,
        """
        version: v1
        workflow: w
        env: production
        steps:
          - {id: charge, topic: payments.charg}
        """,
        [("wf.yaml", 5, 25)],
    ),
    (
        "AU402",
        None,
        None,
        """
        version: v1
        workflow: w
        env: production
        steps:
          - {id: a, topic: x}
          - {id: a, topic: y}
        """,
        [("wf.yaml", 6, 10)],
    ),
    (
        "AU403",
        CLEAN_CATALOG,
        """
        version: v1
        rules:
          - {id: no-charges-in-prod, when: {topic: payments.charge, env: production}, decision: deny}
          - {id: allow-compensations, when: {is_compensation: true}, decision: allow}
        """,
        """
        version: v1
        workflow: w
        env: production
        steps:
          - {id: charge, topic: payments.charge}
        """,
        [("wf.yaml", 5, 25)],
    ),
    (
        "AU404",
        CLEAN_CATALOG,
        None,
        """
        version: v1
        workflow: w
        env: production
        steps:
          - {id: refund, topic: payments.refund}
          - {id: charge, topic: payments.charge}
        """,
        [("wf.yaml", 5, 5)],
    ),
    (
        "AU405",
        """
        version: v1
        topics:
          email.send:
            side_effect: true
            rollback: irreversible
            no_rollback_reason: gone
            idempotency_key: "{run_id}:{step_id}:{params.to}"
        """,
        None,
        """
        version: v1
        workflow: w
        env: production
        steps:
          - {id: mail, topic: email.send, params: {subject: hi}}
        """,
        [("wf.yaml", 5, 5)],
    ),
    (
        "AU406",
        CLEAN_CATALOG,
        """
        version: v1
        rules:
          - {id: humans-for-money, when: {topic: "payments.*", is_compensation: false}, decision: require_human}
        """,
        """
        version: v1
        workflow: w
        env: production
        steps:
          - {id: charge, topic: payments.charge}
        """,
        [("wf.yaml", 5, 25)],
    ),
]

# (code, catalog, policy, workflow) — the nearest good version: the check stays silent.
SILENT = [
    ("AU101", CLEAN_CATALOG, None, None),
    ("AU102", CLEAN_CATALOG, None, None),
    ("AU103", CLEAN_CATALOG, None, None),
    ("AU104", CLEAN_CATALOG, None, None),
    ("AU105", CLEAN_CATALOG, None, None),
    (
        "AU107",
        """
        version: v1
        topics:
          a.b:
            side_effect: true
            rollback: compensatable
            idempotency_key: "{run_id}:{step_id}"
            compensation: {topic: a.c, timeout: 168h, idempotency_key: "{run_id}:{step_id}:c"}
          a.c: {side_effect: false}
        """,
        None,
        None,
    ),
    ("AU109", CLEAN_CATALOG, None, None),
    ("AU201", CLEAN_CATALOG, None, None),
    ("AU202", CLEAN_CATALOG, None, None),
    ("AU203", CLEAN_CATALOG, None, None),
    (
        "AU204",
        """
        version: v1
        topics:
          email.send:
            side_effect: true
            rollback: irreversible
            no_rollback_reason: gone
            idempotency_key: "{run_id}-{step_index}"
        """,
        None,
        None,
    ),
    (
        "AU205",
        """
        version: v1
        topics:
          email.send:
            side_effect: true
            rollback: irreversible
            no_rollback_reason: gone
            idempotency_key: "{{literal}}:{run_id}:{step_id}:{params.to}"
        """,
        None,
        None,
    ),
    ("AU206", CLEAN_CATALOG, None, None),
    (
        "AU301",
        CLEAN_CATALOG.replace("risk: low", "risk: critical"),
        """
        version: v1
        rules:
          - id: human-for-unrecoverable
            when: {risk: [high, critical], rollback_supported: false, approval_present: false}
            decision: require_human
          - {id: allow-compensations, when: {is_compensation: true}, decision: allow}
        """,
        None,
    ),
    ("AU302", CLEAN_CATALOG, CLEAN_POLICY, None),
    ("AU303", CLEAN_CATALOG, CLEAN_POLICY, None),
    (
        "AU304",
        None,
        """
        version: v1
        rules:
          - {id: prod, when: {env: production}, decision: allow}
          - {id: staging, when: {env: staging}, decision: allow}
        """,
        None,
    ),
    (
        "AU305",
        None,
        """
        version: v1
        rules:
          - {id: deny-infra, when: {topic: "infra.*", env: production}, decision: deny}
          - {id: human-dns, when: {topic: infra.dns.create}, decision: require_human}
        """,
        None,
    ),
    ("AU306", CLEAN_CATALOG, CLEAN_POLICY, None),
    ("AU401", CLEAN_CATALOG, None, CLEAN_WORKFLOW),
    ("AU402", CLEAN_CATALOG, None, CLEAN_WORKFLOW),
    (
        "AU403",
        CLEAN_CATALOG,
        """
        version: v1
        rules:
          - id: no-charges-without-approval
            when: {topic: payments.charge, env: production, approval_present: false}
            decision: deny
          - {id: allow-compensations, when: {is_compensation: true}, decision: allow}
        """,
        CLEAN_WORKFLOW,
    ),
    ("AU404", CLEAN_CATALOG, None, CLEAN_WORKFLOW),
    (
        "AU405",
        """
        version: v1
        topics:
          email.send:
            side_effect: true
            rollback: irreversible
            no_rollback_reason: gone
            idempotency_key: "{run_id}:{step_id}:{params.to}"
        """,
        None,
        """
        version: v1
        workflow: w
        env: production
        steps:
          - {id: mail, topic: email.send, params: {to: ops@example.com}}
        """,
    ),
    ("AU406", CLEAN_CATALOG, CLEAN_POLICY, CLEAN_WORKFLOW),
]


@pytest.mark.parametrize(
    ("code", "catalog", "policy", "workflow", "expected"), FIRING, ids=[c[0] for c in FIRING]
)
def test_check_fires(
    tmp_path: Path,
    code: str,
    catalog: str | None,
    policy: str | None,
    workflow: str | None,
    expected: list[tuple[str, int, int]],
) -> None:
    findings = lint_texts(tmp_path, catalog=catalog, policy=policy, workflow=workflow)
    assert located(findings, code) == expected


@pytest.mark.parametrize(
    ("code", "catalog", "policy", "workflow"), SILENT, ids=[c[0] for c in SILENT]
)
def test_check_is_silent(
    tmp_path: Path, code: str, catalog: str | None, policy: str | None, workflow: str | None
) -> None:
    findings = lint_texts(tmp_path, catalog=catalog, policy=policy, workflow=workflow)
    assert located(findings, code) == []


def test_duplicate_topic_across_catalogs(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", CLEAN_CATALOG)
    write(tmp_path, "b.yaml", "version: v1\ntopics:\n  tickets.read: {side_effect: false}\n")
    write(tmp_path, "c.yaml", "version: v1\ntopics:\n  tickets.write: {side_effect: false}\n")
    findings = lint_paths([str(tmp_path)]).findings
    assert located(findings, "AU106") == [("b.yaml", 3, 3)]
    assert "already declared at" in next(f.message for f in findings if f.code == "AU106")


def test_duplicate_topic_silent_for_distinct_topics(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", CLEAN_CATALOG)
    write(tmp_path, "c.yaml", "version: v1\ntopics:\n  tickets.write: {side_effect: false}\n")
    assert located(lint_paths([str(tmp_path)]).findings, "AU106") == []


SEPARATE_TESTS = {"AU106"}
FOUNDATION_FAMILIES = ("catalog", "idempotency", "policy_gate", "policy_rules", "workflow")


def test_every_registered_check_has_a_firing_and_a_silent_case() -> None:
    modules = {f"agentundo.lint.checks.{m}" for m in FOUNDATION_FAMILIES}
    codes = {c.code for c in all_checks().values() if c.function.__module__ in modules}
    codes -= SEPARATE_TESTS
    assert len(codes) >= 20
    assert codes <= {case[0] for case in FIRING}
    assert codes <= {case[0] for case in SILENT}


def test_every_check_documents_a_bad_and_a_good_example() -> None:
    for check in all_checks().values():
        assert check.summary, check.code
        assert check.section("Bad"), f"{check.code} has no Bad: example"
        assert check.section("Good"), f"{check.code} has no Good: example"


def test_policy_gate_checks_each_env(tmp_path: Path) -> None:
    policy = """
    version: v1
    rules:
      - {id: no-refunds-in-staging, when: {topic: payments.refund, env: staging}, decision: deny}
      - {id: allow-compensations, when: {is_compensation: true}, decision: allow}
    """
    only_prod = lint_texts(tmp_path, catalog=CLEAN_CATALOG, policy=policy)
    assert located(only_prod, "AU302") == []
    both = lint_texts(
        tmp_path, catalog=CLEAN_CATALOG, policy=policy, envs=("production", "staging")
    )
    assert located(both, "AU302") == [("policy.yaml", 3, 5)]
    assert "in staging" in next(f.message for f in both if f.code == "AU302")
