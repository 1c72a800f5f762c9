"""The saga engine's semantics, one test per rule, asserting exact evidence and ledgers."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from agentundo.evidence.chain import genesis_of, record_hash
from agentundo.evidence.events import (
    COMMON_FIELDS,
    SUMMARY_FIELDS,
    Event,
    FollowUp,
    RunStatus,
    Verdict,
)
from agentundo.evidence.writer import EvidenceWriter
from agentundo.model.scenario import Expect, FailMode, Fault
from agentundo.saga.clock import VirtualClock
from agentundo.saga.engine import drill
from agentundo.saga.faults import FaultPlan
from agentundo.saga.forward import backoff_delay
from agentundo.saga.plan import check_plan
from agentundo.saga.result import DrillResult
from agentundo.saga.setup import DrillSetup, Settings, Stop
from tests.saga_helpers import catalog, events, ledger, of, policy, run, workflow

FORWARD_OK = ["policy_decision", "step_dispatched", "step_succeeded"]
COMP_OK = ["policy_decision", "compensation_dispatched", "compensation_succeeded"]


def test_a_clean_run_dispatches_every_step_and_rolls_nothing_back() -> None:
    result, records = run()
    assert events(records) == ["run_started", *FORWARD_OK * 5, "run_summary"]
    assert result.status is RunStatus.SUCCEEDED
    assert result.verdict is Verdict.COMPLETED
    assert ledger(result) == {
        "lookup": "read",
        "reserve": "kept",
        "charge": "kept",
        "notify": "kept",
        "ship": "kept",
    }


def test_fatal_failure_rolls_back_lifo_including_the_failed_step() -> None:
    result, records = run({"type": "fatal", "step": "ship"})
    assert events(records, rollback_only=True) == [
        "rollback_triggered",
        "lock_acquired",
        *COMP_OK,  # ship (failed step: nothing to undo)
        "manual_followup",  # notify: irreversible
        *COMP_OK,  # charge
        *COMP_OK,  # reserve
        "lock_released",
        "rollback_finished",
        "run_summary",
    ]
    order = [r["step_id"] for r in of(records, "compensation_dispatched")]
    assert order == ["ship", "charge", "reserve"]
    succeeded = of(records, "compensation_succeeded")
    assert [r["applied"] for r in succeeded] == [False, True, True]
    assert ledger(result) == {
        "lookup": "read",
        "reserve": "undone",
        "charge": "undone",
        "notify": "escalated",
        "ship": "none",
    }
    assert result.verdict is Verdict.RECOVERED
    summary = records[-1]
    assert summary["status"] == "FAILED_FATAL"
    assert summary["job_id"] == "job_5"
    assert summary["matched_policy_id"] == "prod-writes"
    assert summary["rollback_triggered"] is True
    assert summary["rollback_mode"] == "lifo_stack"
    assert summary["compensation_jobs_dispatched"] == 3
    assert summary["compensation_jobs_skipped"] == 0
    assert summary["manual_followups"] == 1
    assert summary["rollback_finished_at"] is not None


def test_irreversible_steps_are_listed_with_reason_and_mitigation() -> None:
    result, records = run({"type": "fatal", "step": "ship"})
    (followup,) = of(records, "manual_followup")
    assert followup["category"] == FollowUp.IRREVERSIBLE
    assert followup["reason"] == "an email cannot be unsent"
    assert followup["mitigation"] == "send a correction email"
    assert [(f.step_id, f.category) for f in result.followups] == [
        ("notify", FollowUp.IRREVERSIBLE)
    ]


def test_idempotency_keys_come_from_the_template_or_are_derived() -> None:
    _, records = run({"type": "fatal", "step": "ship"})
    keys = {r["step_id"]: r.get("idempotency_key") for r in of(records, "compensation_dispatched")}
    assert keys == {
        "ship": "undo:run_t:order:ship:inventory.release:4",
        "charge": "run_t:charge:refund",
        "reserve": "undo:run_t:order:reserve:inventory.release:1",
    }
    forward = {r["step_id"]: r.get("idempotency_key") for r in of(records, "step_dispatched")}
    assert forward["charge"] == "run_t:charge"
    assert "idempotency_key" not in of(records, "step_dispatched")[0]


def test_derived_keys_are_stable_within_a_run_and_differ_between_runs() -> None:
    def keys(run_id: str) -> list[str]:
        records: list[dict[str, Any]] = []
        setup = DrillSetup(
            workflow=workflow(),
            catalog=catalog(),
            policy=policy(),
            plan=FaultPlan.of([Fault.model_validate({"type": "fatal", "step": "ship"})]),
            approvals=frozenset(),
            settings=Settings(),
            expect=None,
            seed=1,
        )
        drill(setup, run_id=run_id, sink=records.append, clock=VirtualClock())
        return [
            r["idempotency_key"]
            for r in of(records, "compensation_dispatched")
            if r["idempotency_key"].startswith("undo:")
        ]

    monday = keys("run_monday")
    assert monday == keys("run_monday")
    assert monday == [k.replace("run_next", "run_monday") for k in keys("run_next")]
    assert not set(monday) & set(keys("run_next"))


def test_transient_failures_are_retried_with_bounded_seeded_backoff() -> None:
    result, records = run({"type": "transient", "step": "charge", "count": 8})
    assert result.status is RunStatus.SUCCEEDED
    charge = [r["event"] for r in records if r.get("step_id") == "charge"]
    assert charge == [
        "policy_decision",
        *["step_dispatched", "step_failed", "retry_scheduled"] * 8,
        "step_dispatched",
        "step_succeeded",
    ]
    delays = [r["delay_s"] for r in of(records, "retry_scheduled")]
    assert all(1.0 <= d <= 30.0 for d in delays)
    assert delays[0] == 1.0
    assert delays[-1] > 15.0  # 2**7 = 128 s raw, capped at 30 s, jittered down to >= 15 s
    again = [
        r["delay_s"]
        for r in of(run({"type": "transient", "step": "charge", "count": 8})[1], "retry_scheduled")
    ]
    assert again == delays  # seeded


def test_more_than_fifty_transient_failures_is_failed_fatal() -> None:
    result, records = run({"type": "transient", "step": "charge", "count": 51})
    assert len(of(records, "step_dispatched")) == 2 + 51  # lookup, reserve, then 51 attempts
    assert len(of(records, "retry_scheduled")) == 50
    (fatal,) = of(records, "step_failed_fatal")
    assert fatal["attempts"] == 51
    assert fatal["error"].startswith("gave up after 50 retries")
    assert result.status is RunStatus.FAILED_FATAL
    assert result.verdict is Verdict.RECOVERED
    fifty, _ = run({"type": "transient", "step": "charge", "count": 50})
    assert fifty.status is RunStatus.SUCCEEDED


def test_backoff_is_exponential_capped_and_jittered() -> None:
    rng = random.Random(3)
    for failures in range(1, 60):
        delay = backoff_delay(failures, 1.0, 30.0, rng)
        raw = min(30.0, 2.0 ** (failures - 1))
        assert max(1.0, raw / 2) <= delay <= raw


DENY_POLICY = """
version: v1
rules:
  - id: no-email-in-prod
    when: {env: production, topic: email.send, is_compensation: false}
    decision: deny
    reason: emails need a template review
  - id: compensations
    when: {is_compensation: true}
    decision: allow
"""


def test_a_denied_step_stops_the_run_and_rolls_back_what_was_applied() -> None:
    result, records = run(pol=policy(DENY_POLICY))
    assert result.status is RunStatus.DENIED
    (denied,) = of(records, "step_denied")
    assert denied["step_id"] == "notify"
    assert denied["rule_id"] == "no-email-in-prod"
    assert denied["reason"] == "emails need a template review"
    assert "notify" not in [r["step_id"] for r in of(records, "step_dispatched")]
    assert [r["step_id"] for r in of(records, "compensation_dispatched")] == ["charge", "reserve"]
    assert records[-1]["matched_policy_id"] == "no-email-in-prod"
    assert result.verdict is Verdict.RECOVERED


def test_every_decision_names_its_rule_or_says_it_was_the_default() -> None:
    _, records = run({"type": "fatal", "step": "ship"})
    for decision in of(records, "policy_decision"):
        assert decision["rule_id"] is not None or decision["default"] is True
    assert of(records, "policy_decision")[0]["default"] is True  # lookup: no rule matches


HUMAN_POLICY = """
version: v1
rules:
  - id: human-for-charges
    when: {topic: payments.charge}
    decision: require_human
"""


def test_require_human_waits_for_an_approval_and_is_denied_without_one() -> None:
    result, records = run(pol=policy(HUMAN_POLICY))
    charge = [r for r in records if r.get("step_id") == "charge"]
    assert [r["event"] for r in charge[:4]] == [
        "policy_decision",
        "approval_waiting",
        "approval_timeout",
        "step_denied",
    ]
    assert charge[1]["timeout_s"] == 300.0
    waited = _seconds(charge[2]["ts"]) - _seconds(charge[1]["ts"])
    assert waited == pytest.approx(300.0, abs=0.01)
    assert result.status is RunStatus.DENIED


def test_require_human_with_an_approval_in_the_scenario_proceeds() -> None:
    result, records = run(pol=policy(HUMAN_POLICY), approvals=("charge",))
    charge = [r["event"] for r in records if r.get("step_id") == "charge"][:4]
    assert charge == ["policy_decision", "approval_waiting", "approval_granted", "step_dispatched"]
    assert result.status is RunStatus.SUCCEEDED


def _seconds(ts: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


# -- the lock -----------------------------------------------------------------------


def test_a_held_lock_means_the_rollback_is_already_in_progress() -> None:
    result, records = run({"type": "fatal", "step": "ship"}, {"type": "lock_held"})
    assert events(records, rollback_only=True) == [
        "rollback_triggered",
        "lock_busy",
        "manual_followup",
        "manual_followup",
        "manual_followup",
        "manual_followup",
        "rollback_finished",
        "run_summary",
    ]
    assert of(records, "lock_busy")[0]["holder"] == "drill:other-runner"
    assert {f["category"] for f in of(records, "manual_followup")} == {"lock_held"}
    assert of(records, "compensation_dispatched") == []
    assert not of(records, "lock_released")  # never release a lock we do not own
    assert of(records, "rollback_finished")[0]["outcome"] == "lock_held"
    assert result.verdict is Verdict.RECOVERED  # nothing silent: all escalated


def test_a_held_but_expired_lock_is_taken_over() -> None:
    result, records = run({"type": "fatal", "step": "ship"}, {"type": "lock_held", "expired": True})
    (taken,) = of(records, "lock_taken_over")
    assert taken["previous_owner"] == "drill:other-runner"
    assert taken["epoch"] == 2
    assert {r["epoch"] for r in of(records, "compensation_dispatched")} == {2}
    assert of(records, "lock_released")[0]["released"] is True
    assert result.verdict is Verdict.RECOVERED


def test_a_lock_lost_mid_rollback_fences_later_compensations() -> None:
    result, records = run(
        {"type": "fatal", "step": "ship"},
        {"type": "lock_expires", "after": 1, "taken_over": True},
    )
    assert events(records, rollback_only=True) == [
        "rollback_triggered",
        "lock_acquired",
        *COMP_OK,  # ship, under the lock
        "manual_followup",  # notify: irreversible, needs no lock
        "lock_expired",  # found at the next fenced dispatch
        "compensation_rejected",
        "manual_followup",  # charge
        "compensation_rejected",
        "manual_followup",  # reserve
        "lock_released",
        "rollback_finished",
        "run_summary",
    ]
    (expired,) = of(records, "lock_expired")
    assert expired["holder"] == "drill:other-runner" and expired["holder_epoch"] == 2
    released = of(records, "lock_released")[0]
    assert released["released"] is False
    assert "only its owner may release it" in released["reason"]
    assert result.summary["lock_expired"] is True
    assert ledger(result)["charge"] == "escalated"
    assert result.verdict is Verdict.RECOVERED


# -- the window, compensation failures, denials ---------------------------------------


def test_rollback_window_expiry_sends_pending_compensations_to_manual() -> None:
    result, records = run(
        {"type": "fatal", "step": "ship"}, {"type": "compensation_timeout", "step": "charge"}
    )
    charge = [r["event"] for r in records if r.get("step_id") == "charge" and "for_topic" in r]
    assert charge[-1] == "compensation_timed_out"
    assert charge.count("compensation_dispatched") >= 2
    reserve = [r["event"] for r in records if r.get("step_id") == "reserve" and "for_topic" in r]
    assert reserve == ["compensation_timed_out"]  # window gone before dispatch
    categories = {(f.step_id, f.category) for f in result.followups}
    assert ("charge", FollowUp.COMPENSATION_TIMEOUT) in categories
    assert ("reserve", FollowUp.COMPENSATION_TIMEOUT) in categories
    started = _seconds(of(records, "lock_acquired")[0]["ts"])
    last = _seconds(of(records, "compensation_timed_out")[0]["ts"])
    assert last - started == pytest.approx(30.0, abs=0.01)
    assert result.summary["compensation_jobs_failed"] == 1
    assert result.summary["compensation_jobs_skipped"] == 1
    assert result.verdict is Verdict.RECOVERED


def test_a_compensation_that_fails_transiently_is_retried() -> None:
    result, records = run(
        {"type": "fatal", "step": "ship"},
        {"type": "compensation_failure", "step": "charge", "count": 2},
    )
    charge = [r["event"] for r in records if r.get("step_id") == "charge" and "for_topic" in r]
    assert charge == [
        "policy_decision",
        *["compensation_dispatched", "compensation_failed", "compensation_retry_scheduled"] * 2,
        "compensation_dispatched",
        "compensation_succeeded",
    ]
    assert ledger(result)["charge"] == "undone"


def test_a_compensation_that_fails_for_good_goes_to_manual() -> None:
    result, records = run(
        {"type": "fatal", "step": "ship"}, {"type": "compensation_failure", "step": "charge"}
    )
    assert ("charge", FollowUp.COMPENSATION_FAILED) in {
        (f.step_id, f.category) for f in result.followups
    }
    assert ledger(result)["charge"] == "escalated"
    assert [r["step_id"] for r in of(records, "compensation_dispatched")] == [
        "ship",
        "charge",
        "reserve",
    ]
    assert result.summary["compensation_jobs_failed"] == 1
    assert result.verdict is Verdict.RECOVERED


def test_a_denied_compensation_is_skipped_and_recorded_never_silently() -> None:
    result, records = run(
        {"type": "fatal", "step": "ship"}, {"type": "compensation_denied", "step": "charge"}
    )
    (skipped,) = of(records, "compensation_skipped")
    assert skipped["step_id"] == "charge" and skipped["rule_id"] == "fault:compensation_denied"
    assert skipped["job_id"] and skipped["idempotency_key"] == "run_t:charge:refund"
    followup = [f for f in of(records, "manual_followup") if f["step_id"] == "charge"]
    assert followup[0]["category"] == "compensation_denied"
    assert followup[0]["job_id"] == skipped["job_id"]
    assert result.summary["compensation_jobs_skipped"] == 1
    assert ledger(result)["charge"] == "escalated"


def test_a_policy_that_denies_compensations_sends_them_to_manual() -> None:
    text = """
    version: v1
    rules:
      - id: no-refunds
        when: {topic: payments.refund}
        decision: deny
    """
    result, records = run({"type": "fatal", "step": "ship"}, pol=policy(text))
    (skipped,) = of(records, "compensation_skipped")
    assert skipped["rule_id"] == "no-refunds"
    # a real policy that blocks the undo path is what a drill exists to catch
    assert result.verdict is Verdict.FAILED
    assert result.problems == [
        "step 'charge': compensation payments.refund was not run (rule 'no-refunds'): the undo "
        "path is broken and nothing planned this follow-up (no injected fault caused it, "
        "expect.manual does not list the step)"
    ]
    planned, _ = run(
        {"type": "fatal", "step": "ship"},
        pol=policy(text),
        expect=Expect(manual=["charge", "notify"]),
    )
    assert planned.verdict is Verdict.RECOVERED  # the scenario says a human takes it


# -- the simulated world: duplicates, keys, partial effects ---------------------------


def test_duplicate_delivery_with_a_key_applies_once() -> None:
    result, records = run(
        {"type": "fatal", "step": "ship"}, {"type": "duplicate_delivery", "step": "charge"}
    )
    charge = next(r for r in of(records, "compensation_succeeded") if r["step_id"] == "charge")
    assert charge["detail"]["deliveries"] == 2
    assert charge["detail"]["second_applied"] is False  # answered from memory, applied once
    assert charge["detail"]["second"]["applied"] is True  # the first answer, replayed
    assert ledger(result)["charge"] == "undone"
    assert result.verdict is Verdict.RECOVERED


def test_duplicate_delivery_without_a_key_applies_twice_and_the_drill_fails() -> None:
    result, _ = run(
        {"type": "fatal", "step": "ship"},
        {"type": "duplicate_delivery", "step": "reserve"},
        settings=Settings(derive_compensation_keys=False),
    )
    row = next(r for r in result.ledger if r.step_id == "reserve")
    assert (row.applied, row.undone, row.state) == (1, 2, "undone_twice")
    assert result.verdict is Verdict.FAILED
    assert any(p.startswith("step 'reserve': compensation applied twice") for p in result.problems)
    assert result.summary["undone_twice"] == ["reserve"]


def test_reusing_a_key_with_another_payload_is_refused_and_escalated() -> None:
    result, records = run(
        {"type": "fatal", "step": "ship"}, {"type": "key_reuse", "step": "charge"}
    )
    failed = [r for r in of(records, "compensation_failed") if r["step_id"] == "charge"]
    assert failed[0]["error"] == "idempotency key reused with a different payload"
    assert failed[0]["transient"] is False
    assert ledger(result)["charge"] == "escalated"
    assert result.verdict is Verdict.RECOVERED


def test_a_partial_failure_is_undone_by_compensating_the_failed_step() -> None:
    result, _ = run({"type": "partial", "step": "ship"})
    assert ledger(result)["ship"] == "undone"
    assert result.verdict is Verdict.RECOVERED


def test_without_compensating_the_failed_step_a_partial_effect_is_left_behind() -> None:
    result, records = run(
        {"type": "partial", "step": "ship"}, settings=Settings(compensate_failed_step=False)
    )
    assert ledger(result)["ship"] == "left_behind"
    assert "ship" not in [r["step_id"] for r in of(records, "compensation_dispatched")]
    assert result.verdict is Verdict.FAILED
    assert result.summary["left_behind"] == ["ship"]


# -- policy engine unavailable ---------------------------------------------------------


def test_policy_unavailable_fails_closed_for_a_step() -> None:
    result, records = run({"type": "policy_unavailable", "step": "charge", "phase": "forward"})
    charge = [r["event"] for r in records if r.get("step_id") == "charge"][:3]
    assert charge == ["policy_unavailable", "step_denied", "manual_followup"]
    assert of(records, "policy_unavailable")[0]["fail_mode"] == "closed"
    assert result.status is RunStatus.DENIED
    assert "charge" not in [r["step_id"] for r in of(records, "step_dispatched")]
    assert [r["step_id"] for r in of(records, "compensation_dispatched")] == ["reserve"]


def test_policy_unavailable_fails_closed_for_a_compensation() -> None:
    result, records = run(
        {"type": "fatal", "step": "ship"},
        {"type": "policy_unavailable", "step": "charge", "phase": "compensation"},
    )
    (skipped,) = of(records, "compensation_skipped")
    assert skipped["step_id"] == "charge"
    assert ("charge", FollowUp.POLICY_UNAVAILABLE) in {
        (f.step_id, f.category) for f in result.followups
    }
    assert result.verdict is Verdict.RECOVERED


def test_policy_unavailable_can_fail_open() -> None:
    result, records = run(
        {"type": "fatal", "step": "ship"},
        {"type": "policy_unavailable"},
        settings=Settings(policy_fail_mode=FailMode.OPEN),
    )
    assert {r["fail_mode"] for r in of(records, "policy_unavailable")} == {"open"}
    assert of(records, "policy_decision") == []
    assert ledger(result)["charge"] == "undone"
    assert result.verdict is Verdict.RECOVERED


# -- expectations, interrupts, evidence --------------------------------------------------


def test_expectations_met_and_unmet() -> None:
    good = Expect(status="FAILED_FATAL", compensated=["reserve", "charge"], manual=["notify"])
    result, _ = run({"type": "fatal", "step": "ship"}, expect=good)
    assert result.verdict is Verdict.RECOVERED and result.problems == []
    bad = Expect(compensated=["reserve"], manual=[], rollback_triggered=False)
    result, _ = run({"type": "fatal", "step": "ship"}, expect=bad)
    assert result.verdict is Verdict.FAILED
    assert result.problems == [
        "expected rollback_triggered False, got True",
        "compensated but not expected: charge",
        "sent to manual follow-up but not expected: notify",
    ]


class _StopAfter(VirtualClock):
    """A virtual clock that asks the engine to stop at the n-th wait (``times`` requests:
    a second one halts)."""

    def __init__(self, stop: Stop, waits: int, times: int = 1) -> None:
        super().__init__()
        self.stop = stop
        self.waits = waits
        self.times = times

    def sleep(self, seconds: float, stop: Any = None) -> bool:
        self.waits -= 1
        if self.waits == 0:
            for _ in range(self.times):
                self.stop.request("SIGTERM")
        return super().sleep(seconds, stop)


def _interrupted(
    waits: int, *faults: dict[str, Any], times: int = 1
) -> tuple[DrillResult, list[dict[str, Any]]]:
    from agentundo.model.scenario import Fault

    stop = Stop()
    records: list[dict[str, Any]] = []
    setup = DrillSetup(
        workflow=workflow(),
        catalog=catalog(),
        policy=policy(),
        plan=FaultPlan.of(Fault.model_validate(f) for f in faults),
    )
    clock = _StopAfter(stop, waits, times)
    result = drill(setup, run_id="run_i", sink=records.append, clock=clock, stop=stop)
    return result, records


def test_a_stop_during_forward_retries_stops_forward_work_and_still_rolls_back() -> None:
    result, records = _interrupted(1, {"type": "transient", "step": "charge", "count": 5})
    assert result.verdict is Verdict.INTERRUPTED
    assert events(records, rollback_only=True) == [
        "rollback_triggered",
        "lock_acquired",
        *COMP_OK,  # reserve (charge's injected failures never reached the service)
        "lock_released",
        "rollback_finished",
        "run_summary",
    ]
    assert events(records).index("run_interrupted") < events(records).index("rollback_triggered")
    assert of(records, "run_interrupted")[0]["signal"] == "SIGTERM"
    assert of(records, "run_interrupted")[0]["job_id"] == "job_3"
    assert of(records, "rollback_triggered")[0]["cause"] == "run_interrupted"
    assert ledger(result)["reserve"] == "undone"
    assert (records[-1]["status"], records[-1]["verdict"]) == ("interrupted", "interrupted")
    assert records[-1]["owed"] == []


def test_a_stop_during_the_rollback_lets_it_finish() -> None:
    result, records = _interrupted(
        1,
        {"type": "fatal", "step": "ship"},
        {"type": "compensation_failure", "step": "charge", "count": 3},
    )
    assert "run_interrupted" not in events(records)
    assert ledger(result)["charge"] == ledger(result)["reserve"] == "undone"
    assert result.verdict is Verdict.RECOVERED


def test_a_second_stop_halts_the_rollback_and_says_what_is_owed() -> None:
    result, records = _interrupted(
        1,
        {"type": "fatal", "step": "ship"},
        {"type": "compensation_failure", "step": "charge", "count": 3},
        times=2,
    )
    assert result.verdict is Verdict.INTERRUPTED
    assert events(records)[-7:] == [
        "compensation_retry_scheduled",
        "run_interrupted",
        "manual_followup",  # charge, mid-retry
        "manual_followup",  # reserve, never reached
        "lock_released",
        "rollback_finished",
        "run_summary",
    ]
    interrupted = [f for f in of(records, "manual_followup") if f["category"] == "interrupted"]
    assert [f["step_id"] for f in interrupted] == ["charge", "reserve"]
    assert of(records, "lock_released")[0]["released"] is True
    assert of(records, "rollback_finished")[0]["outcome"] == "interrupted"
    assert records[-1]["status"] == "interrupted"
    assert records[-1]["owed"] == ["charge", "reserve"]


def test_evidence_records_are_complete_and_chained(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    setup = DrillSetup(
        workflow=workflow(),
        catalog=catalog(),
        policy=policy(),
        plan=FaultPlan.of([]).with_fault(_fault({"type": "fatal", "step": "ship"})),
    )
    with EvidenceWriter(path) as writer:
        drill(setup, run_id="run_e", sink=writer.write, clock=VirtualClock())
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    prev = genesis_of(lines[0])  # the run's own genesis
    known = {e.value for e in Event}
    for seq, record in enumerate(lines):
        assert set(COMMON_FIELDS) <= set(record)
        assert record["seq"] == seq and record["prev_hash"] == prev
        assert record["hash"] == record_hash(record)
        assert record["ts"].endswith("Z") and record["event"] in known
        if record["event"].startswith(("step_", "compensation_", "policy_decision")):
            assert {"job_id", "topic"} <= set(record)
        prev = record["hash"]
    assert lines[-1]["event"] == "run_summary"
    assert set(SUMMARY_FIELDS) <= set(lines[-1])


def _fault(data: dict[str, Any]) -> Any:
    from agentundo.model.scenario import Fault

    return Fault.model_validate(data)


def test_check_plan_names_unknown_steps_and_unrenderable_keys() -> None:
    cat = catalog(
        """
        version: v1
        topics:
          t:
            side_effect: true
            rollback: compensatable
            idempotency_key: "{params.order}"
            compensation: {topic: u}
        """
    )
    wf = workflow(
        """
        version: v1
        workflow: w
        env: prod
        steps: [{id: a, topic: t}]
        """
    )
    problems = check_plan(wf, cat, FaultPlan.of([_fault({"type": "fatal", "step": "zz"})]))
    assert [(p.fault_index, p.step_index) for p in problems] == [(0, None), (None, 0)]
    assert "'zz'" in problems[0].message and "params.order" in problems[1].message


@pytest.mark.parametrize("seed", range(20))
def test_backoff_delay_stays_between_initial_and_cap(seed: int) -> None:
    rng = random.Random(seed)
    for failures in (1, 2, 3, 5, 10, 64, 10_000):
        delay = backoff_delay(failures, 0.5, 30.0, rng)
        assert 0.5 <= delay <= 30.0
    assert backoff_delay(1, 2.0, 1.0, rng) == 2.0  # the initial wins over a smaller cap
    big = [backoff_delay(40, 1.0, 8.0, rng) for _ in range(50)]
    assert all(4.0 <= d <= 8.0 for d in big)  # equal jitter: at least half the cap
