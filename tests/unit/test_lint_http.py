"""AU501: the templates of `http` blocks render, or lint says where they would not."""

from __future__ import annotations

from pathlib import Path

from tests.lint_helpers import lint_texts, located

CATALOG = """
version: v1
topics:
  payments.charge:
    side_effect: true
    rollback: compensatable
    idempotency_key: "{run_id}:{step_id}"
    http:
      method: POST
      url: "${LEDGER_URL:-http://127.0.0.1:8080}/charges/{URL_FIELD}"
      headers: {Authorization: "Bearer ${LEDGER_TOKEN}"}
      body: {amount: "{params.amount}", order: "{BODY_FIELD}", tags: ["{run_id}"]}
    compensation:
      topic: payments.refund
      idempotency_key: "{run_id}:{step_id}:compensate"
      http: {method: POST, url: "http://ledger/refunds/{COMP_FIELD}"}
  payments.refund:
    side_effect: true
    rollback: irreversible
    no_rollback_reason: a refund is final
    idempotency_key: "{run_id}:{step_id}"
"""


def _catalog(url: str, body: str, comp: str) -> str:
    return CATALOG.replace("URL_FIELD", url).replace("BODY_FIELD", body).replace("COMP_FIELD", comp)


def test_fires_on_unknown_fields_and_malformed_templates(tmp_path: Path) -> None:
    findings = lint_texts(tmp_path, catalog=_catalog("stepid", "params.order}x{", "job"))
    assert located(findings, "AU501") == [
        ("catalog.yaml", 9, 12),
        ("catalog.yaml", 11, 48),
        ("catalog.yaml", 15, 33),
    ]
    messages = [f.message for f in findings if f.code == "AU501"]
    assert "uses unknown field '{stepid}'" in messages[0]
    assert "is malformed" in messages[1]
    assert "uses unknown field '{job}'" in messages[2]


def test_silent_on_known_fields_and_environment_variables(tmp_path: Path) -> None:
    findings = lint_texts(tmp_path, catalog=_catalog("step_id", "params.order", "idempotency_key"))
    assert located(findings, "AU501") == []
