"""Helpers for saga and drill tests: small catalogs/policies/workflows, one-call drills."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from agentundo.model.catalog import Catalog
from agentundo.model.policy import Policy
from agentundo.model.scenario import Expect, Fault
from agentundo.model.workflow import Workflow
from agentundo.saga.clock import VirtualClock
from agentundo.saga.engine import drill
from agentundo.saga.faults import FaultPlan
from agentundo.saga.lock import LockStore
from agentundo.saga.result import DrillResult
from agentundo.saga.setup import DrillSetup, Settings

CATALOG = """
version: v1
topics:
  orders.lookup:
    side_effect: false
  inventory.reserve:
    side_effect: true
    rollback: reversible
    compensation:
      topic: inventory.release
  payments.charge:
    side_effect: true
    rollback: compensatable
    idempotency_key: "{run_id}:{step_id}"
    compensation:
      topic: payments.refund
      idempotency_key: "{run_id}:{step_id}:refund"
  email.send:
    side_effect: true
    rollback: irreversible
    no_rollback_reason: an email cannot be unsent
    mitigation: send a correction email
  inventory.release:
    side_effect: true
    rollback: irreversible
  payments.refund:
    side_effect: true
    rollback: irreversible
"""

POLICY = """
version: v1
rules:
  - id: prod-writes
    when: {env: production, side_effect: true, is_compensation: false}
    decision: allow
  - id: compensations
    when: {is_compensation: true}
    decision: allow
"""

DENY_EMAIL = """
version: v1
rules:
  - id: no-email
    when: {topic: email.send, is_compensation: false}
    decision: deny
  - id: prod-writes
    when: {env: production, side_effect: true, is_compensation: false}
    decision: allow
  - id: compensations
    when: {is_compensation: true}
    decision: allow
"""
"""POLICY's writes, but sending email is denied: a run stops at its email step."""

WORKFLOW = """
version: v1
workflow: order
env: production
steps:
  - {id: lookup, topic: orders.lookup}
  - {id: reserve, topic: inventory.reserve, params: {sku: A1}}
  - {id: charge, topic: payments.charge, params: {amount: 10}}
  - {id: notify, topic: email.send}
  - {id: ship, topic: inventory.reserve, params: {sku: B2}}
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def _yaml(text: str) -> Any:
    import yaml

    return yaml.safe_load(textwrap.dedent(text))


def catalog(text: str = CATALOG) -> Catalog:
    return Catalog.model_validate(_yaml(text))


def policy(text: str = POLICY) -> Policy:
    return Policy.model_validate(_yaml(text))


def workflow(text: str = WORKFLOW) -> Workflow:
    return Workflow.model_validate(_yaml(text))


ALWAYS_COMPENSATE_FAILED = Settings(compensate_failed_step=True)


def run(
    *faults: Fault | dict[str, Any],
    wf: Workflow | None = None,
    cat: Catalog | None = None,
    pol: Policy | None = None,
    settings: Settings | None = None,
    approvals: tuple[str, ...] = (),
    expect: Expect | None = None,
    lock_store: LockStore | None = None,
    seed: int = 1,
) -> tuple[DrillResult, list[dict[str, Any]]]:
    """Run one drill on a virtual clock; return the result and the evidence records.

    Without ``settings``, the failed step is always compensated (``compensate_failed_step``
    True), so that the rollback of every stacked step is exercised; the default (only
    when its call was sent) has its own tests in ``test_engine.py``.
    """
    records: list[dict[str, Any]] = []
    plan = FaultPlan.of(f if isinstance(f, Fault) else Fault.model_validate(f) for f in faults)
    setup = DrillSetup(
        workflow=wf or workflow(),
        catalog=cat or catalog(),
        policy=pol or policy(),
        plan=plan,
        approvals=frozenset(approvals),
        settings=settings or ALWAYS_COMPENSATE_FAILED,
        expect=expect,
        seed=seed,
    )
    result = drill(
        setup, run_id="run_t", sink=records.append, clock=VirtualClock(), lock_store=lock_store
    )
    return result, records


def events(records: list[dict[str, Any]], *, rollback_only: bool = False) -> list[str]:
    names = [r["event"] for r in records]
    if rollback_only:
        return names[names.index("rollback_triggered") :]
    return names


def of(records: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [r for r in records if r["event"] == event]


def ledger(result: DrillResult) -> dict[str, str]:
    return {row.step_id: row.state for row in result.ledger}
