"""Property tests: for random workflows and fault plans, nothing is ever lost."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentundo.evidence.events import RunStatus, Verdict
from agentundo.model.catalog import Catalog
from agentundo.model.scenario import FailMode, Fault, FaultType
from agentundo.model.workflow import Workflow
from agentundo.saga.setup import Settings
from tests.saga_helpers import policy, run

ROLLBACKS = ["reversible", "compensatable", "irreversible", "none", "readonly"]


def _catalog(kinds: list[str], keyed: list[bool]) -> Catalog:
    topics: dict[str, Any] = {"undo": {"side_effect": True, "rollback": "irreversible"}}
    for i, (kind, key) in enumerate(zip(kinds, keyed, strict=True)):
        if kind == "readonly":
            topics[f"t{i}"] = {"side_effect": False}
        elif kind == "none":
            topics[f"t{i}"] = {"side_effect": True, "rollback": "compensatable"}
        elif kind == "irreversible":
            topics[f"t{i}"] = {"side_effect": True, "rollback": "irreversible"}
        else:
            comp: dict[str, Any] = {"topic": "undo"}
            if key:
                comp["idempotency_key"] = "{run_id}:{step_id}:undo"
            topics[f"t{i}"] = {"side_effect": True, "rollback": kind, "compensation": comp}
    return Catalog.model_validate({"version": "v1", "topics": topics})


def _workflow(n: int) -> Workflow:
    steps = [{"id": f"s{i}", "topic": f"t{i}"} for i in range(n)]
    return Workflow.model_validate(
        {"version": "v1", "workflow": "w", "env": "production", "steps": steps}
    )


@st.composite
def drills(draw: st.DrawFn) -> tuple[Workflow, Catalog, list[Fault], Settings]:
    n = draw(st.integers(1, 8))
    kinds = draw(st.lists(st.sampled_from(ROLLBACKS), min_size=n, max_size=n))
    keyed = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    step = st.sampled_from([f"s{i}" for i in range(n)])
    fault = st.one_of(
        st.builds(Fault, type=st.sampled_from([FaultType.FATAL, FaultType.PARTIAL]), step=step),
        st.builds(Fault, type=st.just(FaultType.TRANSIENT), step=step, count=st.integers(1, 60)),
        st.builds(
            Fault,
            type=st.just(FaultType.COMPENSATION_FAILURE),
            step=step,
            count=st.none() | st.integers(1, 8),
        ),
        st.builds(
            Fault,
            type=st.sampled_from(
                [
                    FaultType.COMPENSATION_TIMEOUT,
                    FaultType.COMPENSATION_DENIED,
                    FaultType.DUPLICATE_DELIVERY,
                    FaultType.KEY_REUSE,
                ]
            ),
            step=step,
        ),
        st.builds(Fault, type=st.just(FaultType.LOCK_HELD), expired=st.booleans()),
        st.builds(
            Fault,
            type=st.just(FaultType.LOCK_EXPIRES),
            after=st.integers(0, 4),
            taken_over=st.booleans(),
        ),
        st.builds(Fault, type=st.just(FaultType.POLICY_UNAVAILABLE), step=st.none() | step),
    )
    faults = draw(st.lists(fault, max_size=4))
    engine_settings = Settings(
        compensate_failed_step=draw(st.booleans()),
        derive_compensation_keys=draw(st.booleans()),
        policy_fail_mode=draw(st.sampled_from(list(FailMode))),
    )
    return _workflow(n), _catalog(kinds, keyed), faults, engine_settings


ALLOW_ALL = policy("version: v1\nrules: []\n")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drills())
def test_nothing_is_lost_and_the_ledger_balances_or_the_gap_is_escalated(
    case: tuple[Workflow, Catalog, list[Fault], Settings],
) -> None:
    wf, cat, faults, engine_settings = case
    result, records = run(*faults, wf=wf, cat=cat, pol=ALLOW_ALL, settings=engine_settings)
    names = [r["event"] for r in records]
    assert names[0] == "run_started" and names[-1] == "run_summary"
    assert names.count("run_summary") == 1
    # every dispatched job has an outcome
    outcome_events = {
        "step_succeeded",
        "step_failed_fatal",
        "compensation_succeeded",
        "compensation_failed",
        "compensation_timed_out",
        "compensation_rejected",
        "manual_followup",
        "compensation_skipped",
    }
    dispatched = {r["job_id"] for r in records if r["event"].endswith("_dispatched")}
    final: dict[str, str] = {}
    for r in records:
        if r.get("job_id") and r["event"] in outcome_events:
            final[r["job_id"]] = r["event"]
    assert dispatched <= set(final)
    # every stack entry got exactly one outcome, and every escalation says why
    rolled_back = [c.step_id for c in result.compensations]
    assert len(rolled_back) == len(set(rolled_back))
    assert all(c.outcome != "pending" for c in result.compensations)
    for f in result.followups:
        assert f.reason
    # counts agree with events
    summary = records[-1]
    assert summary["manual_followups"] == names.count("manual_followup")
    assert summary["compensation_jobs_dispatched"] == len(
        {r["job_id"] for r in records if r["event"] == "compensation_dispatched"}
    )
    assert summary["compensation_jobs_skipped"] + summary["compensation_jobs_dispatched"] == len(
        {c.job_id for c in result.compensations if c.job_id}
    )
    # the ledger: each effect undone exactly once, or escalated, or the drill fails
    escalated = {f.step_id for f in result.followups}
    for row in result.ledger:
        if result.status is RunStatus.SUCCEEDED:
            continue
        balanced = row.applied == row.undone
        if not balanced and row.step_id not in escalated:
            assert result.verdict is Verdict.FAILED, row
        if row.undone > row.applied:
            assert result.verdict is Verdict.FAILED, row
    if result.verdict is Verdict.RECOVERED:
        assert all(r.state in ("undone", "escalated", "none", "read") for r in result.ledger)
    # a lock is never left held by this run
    assert not any(
        r["event"] == "lock_released"
        and r["released"] is False
        and "held by owner:" in r.get("reason", "")
        for r in records
    )
