"""Mapping traced tool calls to topics and what became of each effect (agentundo.trace.plan)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from agentundo.load.files import load_file
from agentundo.model.catalog import Catalog
from agentundo.trace.evidence import opening_records
from agentundo.trace.otlp import read_spans
from agentundo.trace.plan import Effect, Settled, missing_content, plan_run
from agentundo.trace.runs import AgentRun, group_runs

ROOT = Path(__file__).parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "otlp"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    loaded: Catalog = load_file(str(ROOT / "examples" / "ledger" / "catalog.yaml")).model
    return loaded


def _runs(name: str) -> list[AgentRun]:
    return group_runs(read_spans(str(FIXTURES / name)))


def _effects(
    run: AgentRun, catalog: Catalog, settled: Settled | None = None
) -> list[tuple[str, str | None, str]]:
    plan = plan_run(run, catalog, settled)
    return [(c.call.call_id, c.topic, c.effect.value) for c in plan.calls]


def test_aliases_map_tool_names_to_topics(catalog: Catalog) -> None:
    assert catalog.topic_of_tool("charge_card") == "payments.charge"
    assert catalog.topic_of_tool("payments.charge") == "payments.charge"  # a topic's own name
    assert catalog.topic_of_tool("refund_charge") == "payments.refund"
    assert catalog.topic_of_tool("apply_coupon") is None


def test_a_failed_run_owes_its_landed_compensatable_effects_last_first(catalog: Catalog) -> None:
    (run,) = _runs("failed-run.otlp.jsonl")
    assert _effects(run, catalog) == [
        ("call_1", "ledger.balance", "read"),
        ("call_2", "payments.charge", "owed"),
        ("call_3", "access.grant", "owed"),
        ("call_4", "email.send", "manual"),
        ("call_5", "payments.charge", "none"),
    ]
    plan = plan_run(run, catalog)
    assert [c.call.call_id for c in plan.owed] == ["call_3", "call_2"]  # LIFO
    assert plan.manual[0].note == "a sent email cannot be recalled"
    assert plan.with_effect(Effect.NONE)[0].note.startswith("failed: RuntimeError: ledger answered")
    assert missing_content(plan, catalog) == []


def test_an_effect_the_agent_undid_itself_is_undone_and_its_undo_is_no_effect(
    catalog: Catalog,
) -> None:
    succeeded, failed = _runs("two-runs.otlp.json")
    assert _effects(succeeded, catalog) == [
        ("call_1", "payments.charge", "undone"),
        ("call_2", "payments.refund", "compensation"),
        ("call_3", "ledger.balance", "read"),
    ]
    notes = [c.note for c in plan_run(succeeded, catalog).calls]
    assert notes[:2] == ["undone by the agent's call call_2", "undoes call_1"]
    assert [e for _c, _t, e in _effects(failed, catalog)] == [
        "read", "owed", "owed", "manual", "none"
    ]  # fmt: skip


def test_a_refund_of_another_charge_does_not_undo_this_one(catalog: Catalog) -> None:
    (run,) = _runs("failed-run.otlp.jsonl")
    charge, grant = run.calls[1], run.calls[2]
    changed = replace(charge, result={**charge.result, "charge_id": "ch_99"})
    refund = replace(
        grant,
        tool="refund_charge",
        call_id="call_r",
        arguments={"charge_id": "ch_1", "amount": 1200},
        result={"applied": True},
    )
    rows = tuple(changed if r is charge else refund if r is grant else r for r in run.rows)
    effects = {c: e for c, _t, e in _effects(replace(run, rows=rows), catalog)}
    assert effects["call_2"] == "owed"  # the refund names ch_1, not this charge's ch_99


def test_a_succeeded_run_keeps_its_effects_and_flags_unknown_tools(catalog: Catalog) -> None:
    (run,) = _runs("unknown-tool.otlp.jsonl")
    assert not run.failed
    assert _effects(run, catalog) == [
        ("call_1", "ledger.balance", "read"),
        ("call_2", None, "unknown"),
        ("call_3", "payments.charge", "kept"),
    ]
    plan = plan_run(run, catalog)
    assert plan.owed == [] and "apply_coupon" in plan.unknown[0].note


def test_without_content_the_undo_lacks_what_it_needs(catalog: Catalog) -> None:
    (run,) = _runs("no-content.otlp.jsonl")
    missing = missing_content(plan_run(run, catalog), catalog)
    assert [(m.call_id, m.fields) for m in missing] == [
        ("call_3", ("response.grant_id",)),
        ("call_2", ("response.charge_id", "params.amount")),
    ]
    assert "call call_2 (charge_card): its compensation needs {response.charge_id}" in (
        missing[1].describe()
    )


def test_what_a_recovery_settled_shows_as_undone_or_with_a_human(catalog: Catalog) -> None:
    (run,) = _runs("failed-run.otlp.jsonl")
    settled = Settled(frozenset({"call_2", "call_3"}), {"call_4": "irreversible"})
    effects = [e for _c, _t, e in _effects(run, catalog, settled)]
    assert effects == ["read", "undone", "undone", "manual", "none"]


def test_the_opening_records_say_what_the_trace_shows(catalog: Catalog) -> None:
    (run,) = _runs("failed-run.otlp.jsonl")
    records = opening_records(
        plan_run(run, catalog), trace_path="t.json", sha256="ab", env="production", now=0.0
    )
    started = records[0]
    assert started["event"] == "run_started" and started["run_id"] == run.trace_id
    assert started["trace"]["path"] == "t.json" and started["trace"]["failed"] is True
    assert [r["event"] for r in records[1:3]] == ["step_dispatched", "step_succeeded"]
    assert records[3]["params"] == {"order_id": "o-1001", "amount": 1200}
    assert records[4]["response"]["charge_id"] == "ch_1"
    assert {r["ts"] for r in records} == {"1970-01-01T00:00:00.000Z"}
    fatal = records[-1]
    assert fatal["event"] == "step_failed_fatal" and fatal["sent"] is False
    assert all(r.get("source") == "trace" for r in records)
