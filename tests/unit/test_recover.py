"""saga/recover.py and recover_file.py: what a run's evidence says is owed, and finishing it.

Runs are real drills writing real evidence files; a crash is the file cut where a killed
process would have left it (after an intent, mid-line). Recovery then runs against a
simulated world, and its records must continue the chain so that --verify accepts the run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentundo.errors import InputError
from agentundo.evidence.reader import Record, read_path
from agentundo.evidence.verify import verify_items
from agentundo.evidence.writer import EvidenceWriter
from agentundo.saga.clock import VirtualClock
from agentundo.saga.engine import drill
from agentundo.saga.faults import FaultPlan
from agentundo.saga.lock import MemoryLockStore, lock_key
from agentundo.saga.recover import read_plan, recover
from agentundo.saga.recover_file import RecoverRequest, run
from agentundo.saga.setup import DrillSetup
from agentundo.saga.simulate import SimulatedExecutor
from tests.saga_helpers import CATALOG, POLICY, WORKFLOW, catalog, policy, workflow, write


def _run(tmp_path: Path, *faults: dict[str, Any]) -> Path:
    from agentundo.model.scenario import Fault

    setup = DrillSetup(
        workflow=workflow(),
        catalog=catalog(),
        policy=policy(),
        plan=FaultPlan.of(Fault.model_validate(f) for f in faults),
    )
    path = tmp_path / "run_t.jsonl"
    with EvidenceWriter(path, sync="never") as writer:
        drill(setup, run_id="run_t", sink=writer.write, clock=VirtualClock())
    return path


def _cut_after(path: Path, event: str, step: str, *, partial: bool = False) -> None:
    """Leave the file as a process killed just after writing that record would."""
    lines = path.read_bytes().splitlines(keepends=True)
    at = next(
        i
        for i, line in enumerate(lines)
        if json.loads(line)["event"] == event and json.loads(line).get("step_id") == (step or None)
    )
    kept = b"".join(lines[: at + 1])
    if partial:
        kept += lines[at + 1][:25]  # the next record, cut off mid-write
    path.write_bytes(kept)


def _records(path: Path) -> list[Record]:
    return [item for item in read_path(str(path)) if isinstance(item, Record)]


def _verify(path: Path) -> list[tuple[str, int]]:
    return [(p.code, p.line) for p in verify_items(str(path), list(read_path(str(path))))]


def _files(tmp_path: Path) -> tuple[str, str]:
    return str(write(tmp_path, "catalog.yaml", CATALOG)), str(
        write(tmp_path, "policy.yaml", POLICY)
    )


def test_a_finished_run_owes_nothing(tmp_path: Path) -> None:
    path = _run(tmp_path, {"type": "fatal", "step": "ship"})
    plan = read_plan(str(path), _records(path), catalog())
    assert plan.nothing_owed
    assert plan.settled == [("notify", "irreversible")]  # already with a human


def test_killed_mid_rollback_owes_what_was_not_yet_undone(tmp_path: Path) -> None:
    path = _run(tmp_path, {"type": "partial", "step": "ship"})
    _cut_after(path, "compensation_dispatched", "charge")  # ship undone; charge in flight
    plan = read_plan(str(path), _records(path), catalog())
    owed = [(o.step.step_id, o.state) for o in plan.owed]
    assert owed == [("reserve", "landed"), ("charge", "landed")]  # the stack: last on top
    charge = plan.owed[1]
    assert charge.resume is not None and charge.resume.job_id == "job_7"
    assert charge.key == charge.resume.idempotency_key == "run_t:charge:refund"
    assert plan.owed[0].key == "undo:run_t:order:reserve:inventory.release:1"  # derived
    assert plan.settled == [("notify", "irreversible")]
    assert plan.has_rollback and not plan.interrupted and plan.summary is None


def test_killed_during_a_forward_call_the_call_is_unknown(tmp_path: Path) -> None:
    path = _run(tmp_path, {"type": "fatal", "step": "ship"})
    _cut_after(path, "step_dispatched", "charge", partial=True)
    plan = read_plan(str(path), _records(path), catalog())
    assert [(o.step.step_id, o.state) for o in plan.owed] == [
        ("reserve", "landed"),
        ("charge", "unknown"),  # dispatched, no outcome: it may have landed
    ]
    assert [s.step_id for s in plan.open_jobs] == ["charge"]
    assert plan.owed[1].step.params == {"amount": 10}  # from the intent record


def test_recovery_finishes_the_run_and_verify_accepts_it(tmp_path: Path) -> None:
    path = _run(tmp_path, {"type": "partial", "step": "ship"})
    _cut_after(path, "compensation_dispatched", "charge", partial=True)
    cat, pol = _files(tmp_path)
    outcome = run(RecoverRequest(evidence=path, catalog=cat, policy=pol, lock="memory"))
    assert outcome.cut == 25  # the unfinished line was cut, not left in the middle
    assert outcome.result is not None and outcome.result.owed == []
    assert outcome.result.compensated == ["charge", "reserve"]
    assert _verify(path) == []
    records = [r.data for r in _records(path)]
    resent = [
        r for r in records if r["event"] == "compensation_dispatched" and r["step_id"] == "charge"
    ]
    assert [(r["job_id"], r["attempt"], r["idempotency_key"]) for r in resent] == [
        ("job_7", 1, "run_t:charge:refund"),
        ("job_7", 2, "run_t:charge:refund"),  # the same job and key, sent again
    ]
    summary = records[-1]
    assert (summary["event"], summary["status"], summary["verdict"]) == (
        "run_summary",
        "interrupted",
        "recovered",
    )
    assert summary["owed"] == []
    again = run(RecoverRequest(evidence=path, catalog=cat, policy=pol, lock="memory"))
    assert again.plan.nothing_owed and again.result is None
    assert [r.data for r in _records(path)] == records  # a second recover writes nothing


def test_a_dry_run_calls_and_writes_nothing(tmp_path: Path) -> None:
    path = _run(tmp_path, {"type": "fatal", "step": "ship"})
    _cut_after(path, "step_dispatched", "notify")
    before = path.read_bytes()
    cat, pol = _files(tmp_path)
    outcome = run(RecoverRequest(evidence=path, catalog=cat, policy=pol, dry_run=True))
    assert outcome.result is None
    assert [o.step.step_id for o in outcome.plan.owed] == ["reserve", "charge", "notify"]
    assert path.read_bytes() == before
    assert not (tmp_path / ".locks").exists()


def test_a_lock_held_by_another_runner_compensates_nothing(tmp_path: Path) -> None:
    path = _run(tmp_path, {"type": "fatal", "step": "ship"})
    _cut_after(path, "step_succeeded", "charge")
    plan = read_plan(str(path), _records(path), catalog())
    clock = VirtualClock()
    locks = MemoryLockStore()
    locks.acquire(lock_key("order", "run_t"), "owner:elsewhere", 120, now=clock.now())
    written: list[dict[str, Any]] = []
    result = recover(
        plan,
        catalog=catalog(),
        policy=policy(),
        executor=SimulatedExecutor(catalog()),
        lock_store=locks,
        sink=written.append,
        clock=clock,
    )
    assert result.lock_held and result.owed == ["charge", "reserve"]
    assert not [r for r in written if r["event"] == "compensation_dispatched"]
    assert written[-1]["verdict"] == "failed"


def test_edited_evidence_is_refused(tmp_path: Path) -> None:
    path = _run(tmp_path, {"type": "fatal", "step": "ship"})
    _cut_after(path, "step_succeeded", "charge")
    path.write_text(path.read_text().replace('"amount":10', '"amount":99'), encoding="utf-8")
    cat, pol = _files(tmp_path)
    with pytest.raises(InputError, match="hash chain does not hold"):
        run(RecoverRequest(evidence=path, catalog=cat, policy=pol, lock="memory"))


def test_a_file_with_two_runs_is_refused(tmp_path: Path) -> None:
    first = _run(tmp_path / "a", {"type": "fatal", "step": "ship"})
    both = tmp_path / "both.jsonl"
    both.write_bytes(first.read_bytes() + first.read_bytes().replace(b"run_t", b"run_u"))
    with pytest.raises(InputError):
        read_plan(str(both), _records(both), catalog())


def test_the_workflow_file_is_not_needed(tmp_path: Path) -> None:
    """The intents carry the params a compensation needs: recovery reads no workflow."""
    assert "params" in WORKFLOW
    path = _run(tmp_path, {"type": "fatal", "step": "ship"})
    _cut_after(path, "step_succeeded", "charge")
    plan = read_plan(str(path), _records(path), catalog())
    assert {o.step.step_id: o.step.params for o in plan.owed} == {
        "reserve": {"sku": "A1"},
        "charge": {"amount": 10},
    }


def test_a_run_killed_after_its_last_compensation_is_closed_without_a_call(
    tmp_path: Path,
) -> None:
    path = _run(tmp_path, {"type": "fatal", "step": "ship"})
    _cut_after(path, "lock_released", "")  # everything undone; no rollback_finished, no summary
    cat, pol = _files(tmp_path)
    outcome = run(RecoverRequest(evidence=path, catalog=cat, policy=pol, lock="memory"))
    assert not outcome.plan.owed and outcome.result is not None
    events = [r.event for r in _records(path)]
    assert "compensation_dispatched" not in events[events.index("recovery_started") :]
    assert events[-1] == "run_summary"
    assert _verify(path) == []


def test_a_compensation_needing_a_redacted_secret_param_goes_to_a_human(
    tmp_path: Path,
) -> None:
    from agentundo.saga.drills import secret_param_values

    text = CATALOG.replace(
        '      idempotency_key: "{run_id}:{step_id}:refund"',
        '      idempotency_key: "{run_id}:{step_id}:refund"\n      params: {card: "{params.card}"}',
    )
    cat = catalog(text)
    wf = workflow(
        WORKFLOW.replace(
            "params: {amount: 10}}", "params: {amount: 10, card: 4242-4242}, secret_params: [card]}"
        )
    )
    setup = DrillSetup(workflow=wf, catalog=cat, policy=policy())
    path = tmp_path / "run_t.jsonl"
    secrets = secret_param_values(wf, cat)
    assert secrets == frozenset({"4242-4242"})
    with EvidenceWriter(path, sync="never", secrets=secrets) as writer:
        drill(setup, run_id="run_t", sink=writer.write, clock=VirtualClock())
    assert "4242-4242" not in path.read_text(encoding="utf-8")
    _cut_after(path, "step_succeeded", "charge")
    plan = read_plan(str(path), _records(path), cat)
    assert [o.step.step_id for o in plan.owed] == ["reserve", "charge"]
    result = recover(
        plan,
        catalog=cat,
        policy=policy(),
        executor=SimulatedExecutor(cat),
        lock_store=MemoryLockStore(),
        sink=[].append,
        clock=VirtualClock(),
    )
    assert result.owed == ["charge"]  # never sent with "[REDACTED]" as the card
    assert "secret param(s) card" in {s: r for s, _c, r in result.manual}["charge"]
    assert result.compensated == ["reserve"]


@pytest.mark.parametrize("content", [b"", b'{"seq":0,"ts":"2026-'], ids=["empty", "cut"])
def test_a_run_killed_before_its_first_record_owes_nothing(tmp_path: Path, content: bytes) -> None:
    from agentundo.saga.recover_file import NothingRecorded

    path = tmp_path / "run_x.jsonl"
    path.write_bytes(content)
    cat, pol = _files(tmp_path)
    with pytest.raises(NothingRecorded):
        run(RecoverRequest(evidence=path, catalog=cat, policy=pol, lock="memory"))
    assert path.read_bytes() == content
