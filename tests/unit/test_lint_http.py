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


RESPONSE_CATALOG = """
version: v1
topics:
  payments.charge:
    side_effect: true
    rollback: compensatable
    idempotency_key: "{run_id}:{step_id}"
    http:
      method: POST
      url: "http://ledger/charges/{FORWARD}"
      headers: {X-Order: "{params.order_id}"}
    compensation:
      topic: payments.refund
      idempotency_key: "{run_id}:{step_id}:refund"
      http:
        method: POST
        url: "http://ledger/charges/{response.id}/refund"
        headers: {X-Charge: "{COMP_HEADER}", Authorization: "Bearer ${TOKEN:-x}"}
        body: {charge: "{response.data.id}", lines: ["{response.lines-0}"]}
  payments.refund:
    side_effect: true
    rollback: compensatable
    idempotency_key: "{run_id}:{step_id}"
    compensation:
      topic: payments.charge
      idempotency_key: "{run_id}:{step_id}:c"
      http: {method: POST, url: "http://ledger/charges", body: {refund: "{response.id}"}}
"""


def test_response_fields_only_in_the_compensation_http_of_a_topic_with_http(
    tmp_path: Path,
) -> None:
    fine = RESPONSE_CATALOG.replace("FORWARD", "step_id").replace("COMP_HEADER", "response.id")
    findings = lint_texts(tmp_path, catalog=fine)
    # payments.charge has http: its compensation may read the answer; payments.refund has
    # none, so the compensation's {response.id} has nothing to read
    assert located(findings, "AU501") == [("catalog.yaml", 26, 73)]
    (finding,) = (f for f in findings if f.code == "AU501")
    assert finding.message == (
        "compensation.http.body.refund template of 'payments.refund' uses unknown field "
        "'{response.id}'"
    )
    assert "this topic has no http block" in (finding.hint or "")


def test_response_fields_in_a_forward_call_and_unknown_header_fields(tmp_path: Path) -> None:
    bad = RESPONSE_CATALOG.replace("FORWARD", "response.id").replace("COMP_HEADER", "stepid")
    findings = [f for f in lint_texts(tmp_path, catalog=bad) if f.code == "AU501"]
    assert [(f.line, f.column) for f in findings] == [(9, 12), (17, 29), (26, 73)]
    forward, header, _refund = findings
    assert forward.message == (
        "http.url template of 'payments.charge' uses unknown field '{response.id}'"
    )
    assert (forward.hint or "").startswith(
        "{response.PATH} (the forward call's JSON answer) may be used only in a compensation's"
    )
    assert header.message == (
        "compensation.http.headers.X-Charge template of 'payments.charge' uses unknown field "
        "'{stepid}'"
    )
    assert (header.hint or "").endswith("params.NAME, response.PATH")


def test_a_malformed_header_value_is_not_shown(tmp_path: Path) -> None:
    text = _catalog("step_id", "run_id", "job_id")
    findings = lint_texts(tmp_path, catalog=text.replace("${LEDGER_TOKEN}", "s3cret{"))
    (finding,) = (f for f in findings if f.code == "AU501")
    assert (finding.line, finding.column) == (10, 32)
    assert finding.message == (
        "http.headers.Authorization template of 'payments.charge' is malformed"
    )
    assert "s3cret" not in finding.message


def test_environment_variables_are_read_only_in_the_url_and_headers(tmp_path: Path) -> None:
    findings = lint_texts(tmp_path, catalog=_catalog("step_id", "run_id}${ORDER", "job_id"))
    (finding,) = (f for f in findings if f.code == "AU501")
    assert (
        finding.message
        == "http.body.order template of 'payments.charge' uses unknown field '{ORDER}'"
    )
    assert (finding.hint or "").startswith("${VAR} reads the environment only in the url")


ENV_CATALOG = """
version: v1
environment: [{name: LEDGER_URL, secret: false}, LEDGER_TOKEN, LEDGER_KEY]
topics:
  payments.charge:
    side_effect: true
    rollback: compensatable
    idempotency_key: "{run_id}:{step_id}"
    http:
      method: POST
      url: "THE_URL"
      headers: {Authorization: "THE_HEADER"}
    compensation:
      topic: payments.refund
      idempotency_key: "{run_id}:{step_id}:compensate"
  payments.refund:
    side_effect: true
    rollback: irreversible
    no_rollback_reason: a refund is final
    idempotency_key: "{run_id}:{step_id}"
"""


def _env(url: str, header: str = "Bearer ${LEDGER_TOKEN}") -> str:
    return ENV_CATALOG.replace("THE_URL", url).replace("THE_HEADER", header)


def test_au502_a_variable_the_catalog_does_not_list_or_our_own(tmp_path: Path) -> None:
    text = _env("${LEDGER_URL}/charges", "Bearer ${CI_DEPLOY_TOKEN} ${AGENTUNDO_EVIDENCE_KEY}")
    findings = lint_texts(tmp_path, catalog=text)
    assert located(findings, "AU502") == [("catalog.yaml", 11, 32), ("catalog.yaml", 11, 32)]
    messages = sorted(f.message for f in findings if f.code == "AU502")
    assert "${AGENTUNDO_EVIDENCE_KEY}" in messages[0] and "never readable" in messages[0]
    assert "${CI_DEPLOY_TOKEN}" in messages[1] and "does not name" in messages[1]
    (tmp_path / "ok").mkdir()
    clean = lint_texts(tmp_path / "ok", catalog=_env("${LEDGER_URL}/charges"))
    assert located(clean, "AU502") == []


def test_au503_a_secret_in_a_url_path_or_query(tmp_path: Path) -> None:
    for number, (url, fires) in enumerate(
        (
            ("${LEDGER_URL}/charges?api_key=${LEDGER_KEY}", True),
            ("https://ledger/${LEDGER_KEY}/charges", True),
            ("${LEDGER_URL}/charges", False),  # not a secret: listed with secret: false
            ("${LEDGER_KEY}/charges", False),  # the whole base: not in the path or query
            ("https://${LEDGER_KEY}@ledger/charges", False),  # credentials: the authority
        )
    ):
        (tmp_path / str(number)).mkdir()
        findings = lint_texts(tmp_path / str(number), catalog=_env(url))
        found = located(findings, "AU503")
        assert found == ([("catalog.yaml", 10, 12)] if fires else []), url
        if fires:
            (finding,) = [f for f in findings if f.code == "AU503"]
            assert "ends up in logs and proxies" in finding.message
            assert finding.hint is not None and "Authorization" in finding.hint
