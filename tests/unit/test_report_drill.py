"""The drill report (report/drill.py): JSON and text for one drill, and for a sweep.

Every result here is a real one: the engine runs on a virtual clock (tests/saga_helpers.py)
and sweeps run through agentundo.saga.sweep.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from rich.console import Console

from agentundo.model.scenario import Fault
from agentundo.report.drill import as_dict, render_json, render_sweep_text, render_text, sweep_dict
from agentundo.saga.clock import VirtualClock
from agentundo.saga.engine import drill
from agentundo.saga.faults import FaultPlan
from agentundo.saga.result import DrillResult
from agentundo.saga.setup import DrillSetup, Settings
from agentundo.saga.sweep import NOT_REACHED, SweepRow, sweep
from tests.saga_helpers import DENY_EMAIL, catalog, policy, run, workflow

FATAL_SHIP = {"type": "fatal", "step": "ship"}


@pytest.fixture(scope="module")
def recovered() -> DrillResult:
    """ship fails for good; charge's refund is delivered twice (its key makes that safe)."""
    result, _ = run(FATAL_SHIP, {"type": "duplicate_delivery", "step": "charge"})
    return result


@pytest.fixture(scope="module")
def failed() -> DrillResult:
    """reserve's release is delivered twice without a key: undone twice, the drill fails."""
    result, _ = run(
        FATAL_SHIP,
        {"type": "duplicate_delivery", "step": "reserve"},
        settings=Settings(derive_compensation_keys=False),
    )
    return result


def _text(result: DrillResult, evidence: str | None = None) -> str:
    console = Console(file=io.StringIO(), width=100, color_system=None)
    render_text(result, console, evidence)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(out, str)
    return out


def _cells(out: str, first: str, *, section: str = "") -> list[str]:
    """The cells of the table row whose first or second cell is ``first`` (after ``section``)."""
    text = out[out.index(section) :] if section else out
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if first in cells[:2]:
            return cells
    raise AssertionError(f"no row for {first!r} in:\n{text}")


def _line(out: str, start: str) -> str:
    found = [line for line in out.splitlines() if line.startswith(start)]
    assert len(found) == 1, f"{len(found)} lines start with {start!r} in:\n{out}"
    return found[0]


# -- as_dict / render_json ---------------------------------------------------------------


def test_as_dict_has_the_report_keys(recovered: DrillResult) -> None:
    out = as_dict(recovered, "ev/run_t.jsonl")
    assert list(out) == [
        "summary",
        "steps",
        "compensations",
        "manual_followups",
        "ledger",
        "problems",
        "verdict",
        "exit_code",
        "evidence",
    ]
    assert out["evidence"] == "ev/run_t.jsonl"
    assert as_dict(recovered, None)["evidence"] is None


def test_as_dict_verdict_exit_code_and_summary(recovered: DrillResult, failed: DrillResult) -> None:
    good = as_dict(recovered, None)
    assert (good["verdict"], good["exit_code"]) == ("recovered", 0)
    assert good["summary"] is recovered.summary
    assert good["summary"]["status"] == "FAILED_FATAL"
    bad = as_dict(failed, None)
    assert (bad["verdict"], bad["exit_code"]) == ("failed", 1)
    assert any("compensation applied twice" in p for p in bad["problems"])


def test_as_dict_steps_in_order_with_state_and_error(recovered: DrillResult) -> None:
    steps = as_dict(recovered, None)["steps"]
    assert [s["step_id"] for s in steps] == ["lookup", "reserve", "charge", "notify", "ship"]
    assert steps[0] == {
        "step_id": "lookup",
        "topic": "orders.lookup",
        "job_id": "job_1",
        "state": "succeeded",
        "rule_id": None,
        "attempts": 1,
        "error": None,
    }
    ship = steps[-1]
    assert (ship["state"], ship["rule_id"], ship["attempts"]) == ("FAILED_FATAL", "prod-writes", 1)
    assert ship["error"] == "injected fatal failure"


def test_as_dict_compensations_in_rollback_order(recovered: DrillResult) -> None:
    comps = {c["step_id"]: c for c in as_dict(recovered, None)["compensations"]}
    assert list(comps) == ["ship", "notify", "charge", "reserve"]  # LIFO
    assert comps["ship"]["outcome"] == "succeeded"
    assert comps["ship"]["applied"] is False  # the failed step landed nothing
    assert comps["charge"] == {
        "step_id": "charge",
        "for_topic": "payments.charge",
        "topic": "payments.refund",
        "job_id": comps["charge"]["job_id"],
        "idempotency_key": "run_t:charge:refund",
        "outcome": "succeeded",
        "applied": True,
        "attempts": 1,
        "deliveries": 2,
    }
    assert comps["charge"]["job_id"].startswith("job_")
    assert (comps["notify"]["outcome"], comps["notify"]["topic"]) == ("manual", None)


def test_as_dict_followups_and_ledger(recovered: DrillResult, failed: DrillResult) -> None:
    out = as_dict(recovered, None)
    assert out["manual_followups"] == [
        {
            "step_id": "notify",
            "topic": "email.send",
            "category": "irreversible",
            "reason": "an email cannot be unsent",
            "mitigation": "send a correction email",
        }
    ]
    ledger = {row["step_id"]: row for row in out["ledger"]}
    assert ledger["reserve"] == {
        "step_id": "reserve",
        "topic": "inventory.reserve",
        "applied": 1,
        "undone": 1,
        "state": "undone",
    }
    assert ledger["notify"]["state"] == "escalated"
    assert ledger["lookup"]["state"] == "read"
    twice = next(r for r in as_dict(failed, None)["ledger"] if r["step_id"] == "reserve")
    assert (twice["applied"], twice["undone"], twice["state"]) == (1, 2, "undone_twice")


def test_render_json_is_as_dict_as_json(recovered: DrillResult) -> None:
    stream = io.StringIO()
    render_json(recovered, stream, "ev.jsonl")
    text = stream.getvalue()
    assert text.endswith("}\n")
    assert json.loads(text) == json.loads(json.dumps(as_dict(recovered, "ev.jsonl")))
    assert json.loads(text)["verdict"] == "recovered"


# -- render_text -------------------------------------------------------------------------


def test_text_header_names_workflow_env_run_and_status(recovered: DrillResult) -> None:
    header = _text(recovered).splitlines()[0]
    assert header.startswith("drill order (production)")
    assert "run run_t" in header
    assert header.endswith("status FAILED_FATAL")
    assert "scenario" not in header


def test_text_header_names_the_scenario_when_there_is_one() -> None:
    setup = DrillSetup(
        workflow=workflow(),
        catalog=catalog(),
        policy=policy(),
        plan=FaultPlan.of([Fault.model_validate(FATAL_SHIP)]),
        scenario="ship-breaks",
    )
    result = drill(setup, run_id="run_s", sink=lambda _r: None, clock=VirtualClock())
    assert "(production) scenario ship-breaks  run run_s" in _text(result).splitlines()[0]


def test_text_steps_table_has_a_row_per_step(recovered: DrillResult) -> None:
    out = _text(recovered)
    steps = out[: out.index("rollback (")]
    assert _cells(steps, "lookup") == [
        "1",
        "lookup",
        "orders.lookup",
        "job_1",
        "(default)",  # decided without a rule
        "1",
        "succeeded",
    ]
    assert _cells(steps, "ship")[0] == "5"
    assert _cells(steps, "ship")[-1] == "FAILED_FATAL"
    assert _cells(steps, "charge")[4] == "prod-writes"


def test_text_rollback_table_shows_each_compensation_outcome(recovered: DrillResult) -> None:
    out = _text(recovered)
    assert "rollback (lifo_stack)" in out
    section = "rollback ("
    ship = _cells(out, "ship", section=section)
    assert ship[1] == "inventory.release"
    assert ship[-1] == "succeeded (nothing to undo)"
    charge = _cells(out, "charge", section=section)
    assert (charge[1], charge[-1]) == ("payments.refund", "succeeded, delivered 2x")
    notify = _cells(out, "notify", section=section)
    assert (notify[1], notify[2], notify[3], notify[-1]) == ("-", "", "", "manual")
    assert _cells(out, "reserve", section=section)[-1] == "succeeded"


def test_text_follow_ups_ledger_counts_and_verdict(recovered: DrillResult) -> None:
    out = _text(recovered, "ev/run_t.jsonl")
    assert "manual follow-up" in out.splitlines()
    assert (
        "  irreversible  notify email.send: an email cannot be unsent "
        "(mitigation: send a correction email)"
    ) in out.splitlines()
    ledger = _line(out, "ledger ").split()
    assert ledger[1:] == [
        "lookup=read",
        "reserve=undone",
        "charge=undone",
        "notify=escalated",
        "ship=none",
    ]
    assert _line(out, "compensations: ") == (
        "compensations: 3 dispatched, 0 skipped, 0 failed; 1 manual follow-ups"
    )
    assert _line(out, "verdict: ") == "verdict: recovered"
    assert out.splitlines()[-1] == "evidence: ev/run_t.jsonl"
    assert "problem" not in out


def test_text_lists_problems_and_the_failed_verdict(failed: DrillResult) -> None:
    out = _text(failed)
    problems: list[str] = []
    for line in out.splitlines():  # a problem wraps at words, its lines under its text
        if line.startswith("  problem "):
            problems.append(line)
        elif problems and line.startswith(" " * len("  problem ")) and line.strip():
            problems[-1] += " " + line.strip()
    assert problems
    assert problems == [f"  problem {p}" for p in failed.problems]
    assert any("compensation applied twice" in p for p in problems)
    assert "reserve=undone_twice" in _line(out, "ledger ")
    assert _line(out, "verdict: ") == "verdict: failed"
    assert "evidence:" not in out


def test_text_of_a_clean_run_has_no_rollback_and_no_follow_ups() -> None:
    result, _ = run()
    out = _text(result)
    assert "rollback (" not in out
    assert "manual follow-up" not in out.splitlines()
    assert out.splitlines()[0].endswith("status SUCCEEDED")
    assert "reserve=kept" in _line(out, "ledger ")
    assert _line(out, "verdict: ") == "verdict: completed"


def test_text_of_a_denied_compensation_shows_it_skipped() -> None:
    no_refunds = """
    version: v1
    rules:
      - id: no-refunds
        when: {topic: payments.refund}
        decision: deny
    """
    result, _ = run(FATAL_SHIP, pol=policy(no_refunds))
    out = _text(result)
    charge = _cells(out, "charge", section="rollback (")
    assert (charge[1], charge[-1]) == ("payments.refund", "skipped")
    assert "1 skipped" in _line(out, "compensations: ")


# -- the sweep ---------------------------------------------------------------------------


def _sweep(**changes: Any) -> list[SweepRow]:
    fields: dict[str, Any] = {"workflow": workflow(), "catalog": catalog(), "policy": policy()}
    setup = DrillSetup(**{**fields, **changes})
    return sweep(setup, clock_factory=VirtualClock, evidence_dir=None)


@pytest.fixture(scope="module")
def denied_rows() -> list[SweepRow]:
    """Sending email is denied: the runs failing at notify and ship never reach their step."""
    return _sweep(policy=policy(DENY_EMAIL))


def _sweep_text(rows: list[SweepRow], evidence: str | None = None) -> str:
    """The sweep table at 120 columns, wide enough for every column of these rows."""
    console = Console(file=io.StringIO(), width=120, color_system=None)
    render_sweep_text(rows, console, evidence)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(out, str)
    return out


def test_sweep_dict_counts_and_rows(denied_rows: list[SweepRow]) -> None:
    out = sweep_dict(denied_rows, "ev")
    assert (out["total"], out["failed"], out["not_reached"], out["evidence"]) == (5, 0, 2, "ev")
    runs = out["runs"]
    assert [r["index"] for r in runs] == [0, 1, 2, 3, 4]
    assert [r["verdict"] for r in runs] == ["recovered"] * 3 + [NOT_REACHED] * 2
    assert set(runs[0]) == {
        "index",
        "step_id",
        "topic",
        "run_id",
        "status",
        "verdict",
        "reached",
        "stopped_at",
        "compensated",
        "manual",
        "problems",
        "evidence",
    }
    charge = runs[2]
    assert (charge["step_id"], charge["topic"], charge["status"]) == (
        "charge",
        "payments.charge",
        "FAILED_FATAL",
    )
    assert (charge["reached"], charge["compensated"], charge["problems"]) == (True, 1, [])
    ship = runs[4]
    assert (ship["status"], ship["reached"], ship["stopped_at"]) == ("DENIED", False, "notify")
    assert isinstance(ship["problems"], list) and "never reached" in ship["problems"][0]
    assert json.loads(json.dumps(out)) == out


def test_sweep_dict_counts_failed_runs() -> None:
    rows = _sweep(
        plan=FaultPlan.of(
            [Fault.model_validate({"type": "duplicate_delivery", "step": "reserve"})]
        ),
        settings=Settings(derive_compensation_keys=False),
    )
    out = sweep_dict(rows, None)
    assert [r["verdict"] for r in out["runs"]] == ["recovered"] * 2 + ["failed"] * 3
    assert (out["failed"], out["not_reached"], out["evidence"]) == (3, 0, None)


def test_sweep_text_rows_and_not_reached_notes(denied_rows: list[SweepRow]) -> None:
    out = _sweep_text(denied_rows, "ev")
    assert out.splitlines()[0].strip() == "sweep: FAILED_FATAL at each step"
    assert _cells(out, "charge")[:7] == [
        "3",
        "charge",
        "payments.charge",
        "FAILED_FATAL",
        "1",
        "0",
        "recovered",
    ]
    notify = _cells(out, "notify")
    assert (notify[3], notify[6]) == ("DENIED", "not reached")
    assert notify[7].startswith("DENIED before")  # the note wraps in its column
    ship = _cells(out, "ship")
    assert ship[6] == "not reached"
    assert ship[7].startswith("stopped at")
    assert "'notify' first" in out
    assert _line(out, "5 runs") == (
        "5 runs, 0 failed, 2 not reached: incomplete (steps not reached were not rehearsed)"
    )
    assert out.splitlines()[-1] == "evidence: ev"


def test_sweep_text_all_recovered_and_failed_summaries() -> None:
    good = _sweep_text(_sweep())
    assert _line(good, "5 runs") == "5 runs, 0 failed: recovered"
    assert "evidence:" not in good
    bad_rows = _sweep(
        plan=FaultPlan.of(
            [Fault.model_validate({"type": "duplicate_delivery", "step": "reserve"})]
        ),
        settings=Settings(derive_compensation_keys=False),
    )
    bad = _sweep_text(bad_rows)
    assert _line(bad, "5 runs") == "5 runs, 3 failed: failed"
    ship = _cells(bad, "ship")
    assert ship[6] == "failed"
    assert ship[7].startswith("step 'reserve':")  # its first problem


def test_sweep_text_a_failure_outranks_an_unreached_step() -> None:
    base = _sweep(policy=policy(DENY_EMAIL))
    broken = SweepRow(**{**_fields(base[0]), "verdict": "failed", "problems": ("boom",)})
    out = _sweep_text([broken, *base[1:]])
    assert _line(out, "5 runs") == "5 runs, 1 failed, 2 not reached: failed"
    assert _cells(out, "lookup")[6:8] == ["failed", "boom"]


def test_not_reached_note_without_a_stopping_step() -> None:
    row = SweepRow(
        index=0,
        step_id="lookup",
        topic="orders.lookup",
        run_id="run_x-001",
        status="interrupted",
        verdict=NOT_REACHED,
        compensated=0,
        manual=0,
        problems=(),
        evidence=None,
        reached=False,
        stopped_at=None,
    )
    out = _sweep_text([row])
    assert _cells(out, "lookup")[7].startswith("interrupted before")
    assert _line(out, "1 run,") == (
        "1 run, 0 failed, 1 not reached: incomplete (steps not reached were not rehearsed)"
    )


def test_an_interrupted_sweep_is_not_reported_as_recovered() -> None:
    done = _sweep()[:2]
    stopped = SweepRow(**{**_fields(done[1]), "index": 2, "verdict": "interrupted"})
    out = _sweep_text([*done, stopped])
    assert _line(out, "3 runs") == (
        "3 runs, 0 failed, 1 interrupted: interrupted (the runs not finished were not rehearsed)"
    )
    assert "recovered" not in _line(out, "3 runs")
    assert sweep_dict([*done, stopped], None)["interrupted"] == 1


def _fields(row: SweepRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in SweepRow.__slots__}


def test_every_ledger_state_has_a_colour() -> None:
    from agentundo.evidence.events import LedgerState
    from agentundo.report.drill import _LEDGER_STYLE

    assert set(_LEDGER_STYLE) == set(LedgerState)
    assert all(_LEDGER_STYLE.values())


def test_junit_escapes_control_characters_and_counts_each_outcome() -> None:
    from pathlib import Path
    from xml.etree import ElementTree as ET

    from agentundo.report.drill import ERROR, DrillCase, render_junit

    xmlschema = pytest.importorskip("xmlschema")
    cases = [
        DrillCase("order", "ok", "recovered", (), "ev/run_1.jsonl"),
        DrillCase("order", "bad\x07", "failed", ("left behind: <ship> & \x01",), "ev/run_2.jsonl"),
        DrillCase("order", "lost", ERROR, ("drills/x.yaml:3:1: no workflow",)),
        DrillCase("order", "stopped", "interrupted", (), "ev/run_3.jsonl"),
        DrillCase("order", "ship", NOT_REACHED, ("not reached",), "ev"),
    ]
    out = io.StringIO()
    render_junit(cases, out)
    schema = Path(__file__).parents[1] / "fixtures" / "junit" / "junit-10.xsd"
    xmlschema.XMLSchema(str(schema)).validate(io.StringIO(out.getvalue()))
    suite = ET.fromstring(out.getvalue()).find("testsuite")
    assert suite is not None
    assert [suite.get(k) for k in ("tests", "failures", "errors", "skipped")] == [
        "5",
        "2",
        "1",
        "1",
    ]
    failure = suite.findall("testcase")[1].find("failure")
    assert failure is not None
    assert failure.get("message") == "left behind: <ship> & \ufffd"
