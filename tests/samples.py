"""Small YAML documents shared by the tests: a payments pair and projects built on it."""

from __future__ import annotations

PAYMENTS_TOPICS = """\
  payments.charge:
    side_effect: true
    rollback: compensatable
    risk: high
    idempotency_key: "{run_id}:{step_id}"
    compensation:
      topic: payments.refund
      idempotency_key: "{run_id}:{step_id}:compensate"
      timeout: 10s
  payments.refund:
    side_effect: true
    rollback: irreversible
    risk: medium
    no_rollback_reason: refunded money is not taken back
    idempotency_key: "{run_id}:{step_id}"
"""
"""A charge compensated by a refund, and the refund (irreversible): catalog lines."""


def catalog(*extra_topics: str) -> str:
    """A catalog with the payments pair and ``extra_topics`` (indented topic blocks)."""
    return "version: v1\ntopics:\n" + PAYMENTS_TOPICS + "".join(extra_topics)


EMAIL_WITHOUT_ROLLBACK = """\
  email.send:
    side_effect: true
    risk: low
    idempotency_key: "{run_id}:{step_id}"
"""

FINDINGS_CATALOG = catalog(EMAIL_WITHOUT_ROLLBACK)
"""One error (AU101: email.send has no rollback tag)."""

FINDINGS_POLICY = """
version: v1
rules:
  - id: allow-compensations
    when: {is_compensation: true}
    decision: allow
  - id: human-for-email
    when: {topic: "email.*"}
    decision: require_human
  - id: human-for-email-send
    when: {topic: email.send}
    decision: require_human
"""
"""One warning (AU305: the second email rule is shadowed by the first)."""

ALLOW_COMPENSATIONS_POLICY = """
version: v1
rules:
  - id: allow-compensations
    when: {is_compensation: true}
    decision: allow
"""
