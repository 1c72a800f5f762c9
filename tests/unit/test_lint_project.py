"""What lint/project.py computes once per project and shares between checks: the same
findings as deciding each dispatch afresh, for every topic and step that shares a decision."""

from __future__ import annotations

from pathlib import Path

from tests.lint_helpers import lint_texts, located

CATALOG = """
version: v1
topics:
  pay.charge:
    side_effect: true
    rollback: compensatable
    risk: high
    idempotency_key: "{run_id}:{step_id}"
    compensation: {topic: pay.refund, idempotency_key: "{run_id}:{step_id}:undo"}
  pay.capture:
    side_effect: true
    rollback: compensatable
    risk: high
    idempotency_key: "{run_id}:{step_id}"
    compensation: {topic: pay.refund, idempotency_key: "{run_id}:{step_id}:undo"}
  pay.refund:
    side_effect: true
    rollback: irreversible
    risk: low
    no_rollback_reason: money sent
    idempotency_key: "{run_id}:{step_id}:refund"
  ops.page:
    side_effect: true
    rollback: irreversible
    risk: low
    no_rollback_reason: a page is read
    idempotency_key: "{run_id}:{step_id}:{attempt}"
"""

POLICY = """
version: v1
rules:
  - {id: no-refunds, when: {topic: pay.refund, env: production}, decision: deny}
  - {id: human-refunds, when: {topic: pay.refund, env: staging}, decision: require_human}
  - {id: no-pages, when: {topic: ops.page, approval_present: false}, decision: deny}
  - {id: human-pages, when: {topic: ops.page, approval_present: true}, decision: require_human}
  - {id: no-capture, when: {topic: pay.capture, env: staging}, decision: deny}
"""

WORKFLOW = """
version: v1
workflow: settle
env: staging
steps:
  - {id: capture-1, topic: pay.capture}
  - {id: page-1, topic: ops.page}
  - {id: capture-2, topic: pay.capture}
  - {id: page-2, topic: ops.page}
"""


def test_a_compensation_shared_by_two_topics_is_reported_for_each(tmp_path: Path) -> None:
    findings = lint_texts(tmp_path, catalog=CATALOG, policy=POLICY, envs=("production", "staging"))
    denied = sorted(f.message for f in findings if f.code == "AU302")
    assert denied == [
        "rule 'no-refunds' denies compensation 'pay.refund' of 'pay.capture' in production: "
        "a rollback would skip it",
        "rule 'no-refunds' denies compensation 'pay.refund' of 'pay.charge' in production: "
        "a rollback would skip it",
    ]
    stalled = sorted(f.message for f in findings if f.code == "AU303")
    assert [m.split(" of ")[1].split(" in ")[0] for m in stalled] == [
        "'pay.capture'",
        "'pay.charge'",
    ]


def test_steps_that_repeat_a_topic_are_each_reported(tmp_path: Path) -> None:
    findings = lint_texts(tmp_path, catalog=CATALOG, policy=POLICY, workflow=WORKFLOW)
    assert located(findings, "AU403") == [("wf.yaml", 5, 28), ("wf.yaml", 7, 28)]
    # ops.page: denied without an approval, but not with one: needs no finding of AU403
    assert [f.message for f in findings if f.code == "AU403"] == [
        "step 'capture-1' (pay.capture) is always denied in staging by rule 'no-capture' "
        f"of {tmp_path / 'policy.yaml'}",
        "step 'capture-2' (pay.capture) is always denied in staging by rule 'no-capture' "
        f"of {tmp_path / 'policy.yaml'}",
    ]


def test_every_key_that_shares_a_bad_template_is_reported_at_its_own_line(
    tmp_path: Path,
) -> None:
    catalog = CATALOG.replace('"{run_id}:{step_id}"', '"{run_id}:{step_id}:{attempt}"')
    findings = lint_texts(tmp_path, catalog=catalog)
    assert located(findings, "AU203") == [
        ("catalog.yaml", 7, 22),
        ("catalog.yaml", 13, 22),
        ("catalog.yaml", 26, 22),
    ]
