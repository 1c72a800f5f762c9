"""Each check fires on a small bad example at the exact place, and stays silent on a good one."""

from __future__ import annotations

import textwrap
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
        "AU108",
        """
        version: v1
        topics:
          payments.charge:
            side_effect: true
            rollback: compensatable
            idempotency_key: "{run_id}:{step_id}"
            compensation:
              topic: payments.refund
              idempotency_key: "{run_id}:{step_id}:c"
              timeout: 20m
              http: {method: POST, url: "http://ledger/refunds", timeout: 31s}
          payments.refund:
            side_effect: true
            rollback: irreversible
            no_rollback_reason: final
            idempotency_key: "{run_id}:{step_id}"
            compensation: {topic: payments.charge, timeout: 1h}
          iam.grant:
            side_effect: true
            rollback: reversible
            idempotency_key: "{run_id}:{step_id}"
            compensation: {topic: iam.grant, timeout: 169h, idempotency_key: "{run_id}:{step_id}:c"}
        """,
        None,
        None,
        [("catalog.yaml", 10, 16), ("catalog.yaml", 11, 67)],
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
        "AU110",
        """
        version: v1
        topics:
          tickets.read:
            side_effect: false
            aliases: [read_ticket, tickets.list, read_ticket]
          tickets.list:
            side_effect: false
            aliases: [list_tickets, read_ticket]
        """,
        None,
        None,
        [("catalog.yaml", 5, 28), ("catalog.yaml", 5, 42), ("catalog.yaml", 8, 29)],
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
        "AU205",
        """
        version: v1
        topics:
          payments.charge:
            side_effect: true
            rollback: compensatable
            idempotency_key: "{run_id}:{step_id}:{response.id}"
            http: {method: POST, url: "http://ledger/charges"}
            compensation:
              topic: payments.refund
              idempotency_key: "{run_id}:{step_id}:{response.}"
          payments.refund:
            side_effect: true
            rollback: compensatable
            idempotency_key: "{run_id}:{step_id}"
            compensation: {topic: payments.charge, idempotency_key: "{run_id}:{step_id}:{response.id}"}
        """,
        None,
        None,
        [("catalog.yaml", 6, 22), ("catalog.yaml", 10, 24), ("catalog.yaml", 15, 61)],
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
        "AU407",
        """
        version: v1
        topics:
          payments.charge:
            side_effect: true
            rollback: compensatable
            idempotency_key: "{run_id}:{step_id}"
            http: {method: POST, url: "http://ledger/charges", body: {amount: "{params.amount}"}}
            compensation:
              topic: payments.refund
              idempotency_key: "{run_id}:{step_id}:{params.reason}:{params.ticket}"
              params: {reason: duplicate, note: "{params.note}"}
              http:
                method: POST
                url: "${LEDGER_URL}/refunds/{params.order_id}"
                headers: {X-Order: "{params.order_id}", X-Reason: "{params.reason}:{params.ticket}"}
                body: {amount: "{params.amount}", note: "{params.note}"}
          payments.refund:
            side_effect: true
            rollback: compensatable
            idempotency_key: "{run_id}:{step_id}"
            http: {method: POST, url: "http://ledger/charges", body: {order: "{params.order_id}"}}
            compensation: {topic: payments.charge, idempotency_key: "{run_id}:{step_id}:c"}
        """,
        None,
        """
        version: v1
        workflow: w
        env: production
        steps:
          - {id: charge, topic: payments.charge, params: {amount: 10}}
          - {id: refund, topic: payments.refund, params: {order_id: A1}}
          - {id: charge-again, topic: payments.charge, params: {amount: 5, order_id: A1, note: x}}
        """,
        [
            ("wf.yaml", 5, 5),
            ("wf.yaml", 5, 5),
            ("wf.yaml", 5, 5),
            ("wf.yaml", 5, 5),
            ("wf.yaml", 6, 5),
            ("wf.yaml", 7, 5),
            ("wf.yaml", 7, 5),
        ],
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
    (
        "AU108",
        """
        version: v1
        topics:
          payments.charge:
            side_effect: true
            rollback: compensatable
            idempotency_key: "{run_id}:{step_id}"
            http: {method: POST, url: "http://ledger/charges", timeout: 2m}
            compensation:
              topic: payments.refund
              idempotency_key: "{run_id}:{step_id}:c"
              timeout: 30s
              http: {method: POST, url: "http://ledger/refunds", timeout: 30000ms}
          payments.refund:
            side_effect: true
            rollback: irreversible
            no_rollback_reason: final
            idempotency_key: "{run_id}:{step_id}"
            http: {method: POST, url: "http://ledger/refunds", timeout: 5m}
        """,
        None,
        None,
    ),
    ("AU109", CLEAN_CATALOG, None, None),
    (
        "AU110",
        """
        version: v1
        topics:
          tickets.read: {side_effect: false, aliases: [read_ticket, get_ticket]}
          tickets.list: {side_effect: false, aliases: [list_tickets]}
        """,
        None,
        None,
    ),
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
    (
        "AU205",
        """
        version: v1
        topics:
          payments.charge:
            side_effect: true
            rollback: compensatable
            idempotency_key: "{run_id}:{step_id}"
            http: {method: POST, url: "http://ledger/charges"}
            compensation:
              topic: payments.refund
              idempotency_key: "{run_id}:{step_id}:{response.id}:{response.data.refund-id}"
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
    (
        "AU407",
        """
        version: v1
        topics:
          payments.charge:
            side_effect: true
            rollback: compensatable
            idempotency_key: "{run_id}:{step_id}"
            http: {method: POST, url: "http://ledger/charges"}
            compensation:
              topic: payments.refund
              idempotency_key: "{run_id}:{step_id}:{params.order_id}:{response.id}"
              params: {reason: duplicate, order: "{params.order_id}"}
              http:
                method: POST
                url: "${LEDGER_URL:-http://ledger}/refunds/{params.order_id}"
                headers: {X-Reason: "{params.reason}", X-Env: "${ENV_NAME}"}
                body: {order: "{params.order}", charge: "{response.id}", literal: "{{params.x}}"}
          payments.refund:
            side_effect: true
            rollback: compensatable
            idempotency_key: "{run_id}:{step_id}"
            compensation:
              topic: ledger.reverse
              idempotency_key: "{run_id}:{step_id}:c"
              params: {order: "{params.order_id}"}
          ledger.reverse:
            side_effect: false
            http: {method: POST, url: "http://ledger/reverse", body: {order: "{params.order}"}}
          email.send:
            side_effect: true
            rollback: irreversible
            no_rollback_reason: gone
            idempotency_key: "{run_id}:{step_id}"
            compensation: {topic: payments.refund, idempotency_key: "{params.nowhere}"}
        """,
        None,
        """
        version: v1
        workflow: w
        env: production
        steps:
          - {id: charge, topic: payments.charge, params: {order_id: A1}}
          - {id: refund, topic: payments.refund, params: {order_id: A1}}
          - {id: mail, topic: email.send}
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


def _firing(code: str, containing: str = "") -> tuple[str | None, str | None]:
    """The catalog and workflow of the firing case of ``code`` whose catalog has ``containing``."""
    (found,) = [c for c in FIRING if c[0] == code and containing in str(c[1])]
    return found[1], found[3]


def test_compensation_param_missing_names_step_topic_place_and_param(tmp_path: Path) -> None:
    catalog_text, workflow = _firing("AU407")
    findings = lint_texts(tmp_path, catalog=catalog_text, workflow=workflow)
    found = [(f.line, f.message, f.hint) for f in findings if f.code == "AU407"]
    comp = "which the compensation of 'payments.charge' uses in"
    assert found == [
        (
            5,
            f"step 'charge' has no param 'note', {comp} compensation.params.note",
            "add 'note' under the step's params: the compensation's idempotency_key and "
            "params are filled from the step's params alone",
        ),
        (
            5,
            f"step 'charge' has no param 'order_id', {comp} compensation.http.url, "
            "compensation.http.headers.X-Order",
            "add 'order_id' under the step's params or the compensation's params",
        ),
        (
            5,
            f"step 'charge' has no param 'reason', {comp} compensation.idempotency_key",
            "add 'reason' under the step's params: the compensation's idempotency_key and "
            "params are filled from the step's params alone",
        ),
        (
            5,
            f"step 'charge' has no param 'ticket', {comp} compensation.idempotency_key, "
            "compensation.http.headers.X-Reason",
            "add 'ticket' under the step's params",
        ),
        (
            6,
            "step 'refund' has no param 'amount', which the compensation of 'payments.refund' "
            "uses in http.body.amount of 'payments.charge'",
            "add 'amount' under the step's params or the compensation's params",
        ),
        (
            7,
            f"step 'charge-again' has no param 'reason', {comp} compensation.idempotency_key",
            "add 'reason' under the step's params: the compensation's idempotency_key and "
            "params are filled from the step's params alone",
        ),
        (
            7,
            f"step 'charge-again' has no param 'ticket', {comp} compensation.idempotency_key, "
            "compensation.http.headers.X-Reason",
            "add 'ticket' under the step's params",
        ),
    ]
    # the forward key's params are AU405's, the compensation's AU407's: no finding twice
    assert located(findings, "AU405") == []


def test_compensation_timeout_cut_names_the_timeout_and_the_window(tmp_path: Path) -> None:
    catalog_text, _workflow = _firing("AU108")
    findings = [f for f in lint_texts(tmp_path, catalog=catalog_text) if f.code == "AU108"]
    cut = "a drill cuts each attempt to the time left in the window"
    assert [f.message for f in findings] == [
        "compensation timeout 20m of topic 'payments.charge' is longer than the rollback "
        f"window (30s): {cut}",
        "compensation http timeout 31s of topic 'payments.charge' is longer than the rollback "
        f"window (30s): {cut}",
    ]
    assert (
        findings[0].hint == "shorten it, or raise 'settings.rollback_window' in the drill scenario"
    )
    assert {f.severity for f in findings} == {"warning"}


def test_response_fields_in_keys(tmp_path: Path) -> None:
    catalog_text, _workflow = _firing("AU205", "{response.")
    findings = [f for f in lint_texts(tmp_path, catalog=catalog_text) if f.code == "AU205"]
    assert [f.message for f in findings] == [
        "idempotency key of 'payments.charge' uses unknown field '{response.id}'",
        "compensation idempotency key of 'payments.charge' uses unknown field '{response.}'",
        "compensation idempotency key of 'payments.refund' uses unknown field '{response.id}'",
    ]
    forward, bad_path, no_http = (f.hint or "" for f in findings)
    assert forward.startswith("{response.PATH} (the forward call's JSON answer) may be used only")
    assert "response.PATH" not in forward.split("fields: ")[1]
    assert bad_path.startswith("a response path is written {response.NAME}")
    assert bad_path.endswith("params.NAME, response.PATH")
    assert no_http.startswith(
        "{response.PATH} reads the forward call's JSON answer, and this topic"
    )


def test_rollback_window_default_is_the_engines() -> None:
    from agentundo.model.common import ROLLBACK_WINDOW_S
    from agentundo.saga.setup import Settings

    assert Settings().rollback_window_s == ROLLBACK_WINDOW_S


def test_compensation_sites_are_the_models_compensation_templates() -> None:
    import yaml

    from agentundo.lint.sites import compensation_sites
    from agentundo.model.catalog import Catalog
    from agentundo.model.templates import compensation_templates

    catalog_text, _workflow = _firing("AU407")
    model = Catalog.model_validate(yaml.safe_load(textwrap.dedent(str(catalog_text))))
    for topic in model.topics.values():
        sites = [(site.place, site.text) for site in compensation_sites(topic)]
        assert sites == list(compensation_templates(topic))


def test_template_param_missing_covers_the_forward_http_call(tmp_path: Path) -> None:
    catalog_text = """
    version: v1
    topics:
      tickets.close:
        side_effect: true
        rollback: irreversible
        no_rollback_reason: closed tickets stay closed
        idempotency_key: "{run_id}:{step_id}:{params.ticket}"
        http:
          method: POST
          url: "http://tickets.internal/tickets/{params.ticket}/close?team={params.team}"
          headers: {X-Reason: "{params.reason}"}
          body: {note: "{params.note}", who: "{params.team}"}
    """
    workflow = """
    version: v1
    workflow: w
    env: production
    steps:
      - {id: close, topic: tickets.close, params: {note: done}}
      - {id: close-all, topic: tickets.close, params: {ticket: T-1, team: ops, reason: x, note: y}}
    """
    findings = lint_texts(
        tmp_path, catalog=textwrap.dedent(catalog_text), workflow=textwrap.dedent(workflow)
    )
    found = sorted((f.line, f.message) for f in findings if f.code == "AU405")
    assert found == [
        (
            5,
            "step 'close' has no param 'reason', which http.headers.X-Reason of 'tickets.close' uses",
        ),
        (
            5,
            "step 'close' has no param 'team', which http.url, http.body.who of 'tickets.close' uses",
        ),
        (
            5,
            "step 'close' has no param 'ticket', which the idempotency key, http.url of "
            "'tickets.close' uses",
        ),
    ]
