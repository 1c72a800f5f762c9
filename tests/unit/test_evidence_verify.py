"""Verification: each kind of tampering and each completeness gap is named at its line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentundo.evidence.chain import GENESIS, seal
from agentundo.evidence.reader import read_path
from agentundo.evidence.verify import RULES, Problem, Verifier, names_its_rule
from agentundo.evidence.writer import EvidenceWriter
from tests.evidence_factory import RunBuilder, big_run, clean_run, standard_run


def verify(path: Path) -> list[tuple[str, int]]:
    return [(p.code, p.line) for p in problems(path)]


def problems(path: Path) -> list[Problem]:
    verifier = Verifier(str(path))
    for item in read_path(str(path)):
        verifier.feed(item)
    return verifier.finish()


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def rewrite(path: Path, new: list[str]) -> Path:
    path.write_text("".join(new), encoding="utf-8")
    return path


def record(path: Path, line: int) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(lines(path)[line - 1])
    return value


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return standard_run(tmp_path / "run.jsonl")


def test_untouched_runs_verify(tmp_path: Path, run: Path) -> None:
    assert verify(run) == []
    assert verify(clean_run(tmp_path / "ok.jsonl")) == []
    assert verify_big(tmp_path) == []


def verify_big(tmp_path: Path) -> list[tuple[str, int]]:
    path = tmp_path / "big.jsonl"
    big_run(path, steps=50, skip_every=7)
    return verify(path)


def test_edited_line(run: Path) -> None:
    text = lines(run)
    text[12] = text[12].replace("smtp 421 try later", "all fine")
    assert verify(rewrite(run, text)) == [("EV101", 13)]


def test_edited_and_resealed_line_breaks_the_link_of_the_next(run: Path) -> None:
    text = lines(run)
    data = json.loads(text[12])
    data["error"] = "all fine"
    body = {k: v for k, v in data.items() if k not in ("hash", "prev_hash")}
    text[12] = json.dumps(seal(body, data["prev_hash"]), separators=(",", ":")) + "\n"
    found = problems(rewrite(run, text))
    assert [(p.code, p.line) for p in found] == [("EV102", 14)]
    assert "seq 12 (line 13)" in found[0].message


def test_deleted_line(run: Path) -> None:
    text = lines(run)
    del text[14]  # the second step_dispatched of notify: seq 14
    found = problems(rewrite(run, text))
    assert ("EV103", 15) in [(p.code, p.line) for p in found]
    assert any("seq 14 missing" in p.message for p in found)


def test_deleted_first_line(run: Path) -> None:
    text = lines(run)
    del text[0]
    codes = verify(rewrite(run, text))
    assert ("EV106", 1) in codes


def test_inserted_line(run: Path) -> None:
    text = lines(run)
    forged = dict(record(run, 20))  # a copy of the compensation_skipped record
    text.insert(20, json.dumps(forged, separators=(",", ":")) + "\n")
    # the repeated skip also makes the events disagree with the summary's count
    assert verify(rewrite(run, text)) == [("EV105", 21), ("EV204", 34)]


def test_inserted_forged_line_with_valid_own_hash(run: Path) -> None:
    text = lines(run)
    previous = record(run, 20)
    body = {k: v for k, v in previous.items() if k not in ("hash", "prev_hash")}
    body.update(seq=previous["seq"] + 1, event="compensation_succeeded", applied=True)
    text.insert(20, json.dumps(seal(body, previous["hash"]), separators=(",", ":")) + "\n")
    codes = verify(rewrite(run, text))
    assert ("EV105", 22) in codes  # the genuine seq 20 appears again
    assert ("EV102", 23) in codes


def test_reordered_lines(run: Path) -> None:
    text = lines(run)
    text[20], text[21] = text[21], text[20]
    found = problems(rewrite(run, text))
    assert [(p.code, p.line) for p in found] == [("EV104", 22)]
    assert "belongs before line 21" in found[0].message


def test_truncated_last_line_is_reported_and_the_rest_checked(run: Path) -> None:
    text = lines(run)
    text[-1] = text[-1][:40]
    found = problems(rewrite(run, text))
    codes = [(p.code, p.line) for p in found]
    assert ("EV002", 33) in codes
    assert ("EV205", 32) in codes
    summary = next(p for p in found if p.code == "EV205")
    assert "truncated" in summary.message
    # every complete line before it still checked: an edit earlier is found too
    text[3] = text[3].replace('"attempt":1', '"attempt":2')
    assert ("EV101", 4) in verify(rewrite(run, text))


def test_tail_deleted_at_a_line_boundary(run: Path) -> None:
    text = lines(run)
    found = verify(rewrite(run, text[:15]))
    assert ("EV205", 15) in found
    assert ("EV201", 12) in found  # the notify job (first dispatched on line 12) has no outcome


def test_malformed_line_in_the_middle(run: Path) -> None:
    text = lines(run)
    text[5] = '{"seq": 5, oops\n'
    codes = verify(rewrite(run, text))
    assert ("EV001", 6) in codes
    assert ("EV103", 7) in codes


def write_run(path: Path, records: list[dict[str, Any]]) -> Path:
    with EvidenceWriter(path) as writer:
        builder = RunBuilder(writer)
        for data in records:
            fields = dict(data)
            builder.event(fields.pop("event"), **fields)
    return path


SUMMARY = {
    "event": "run_summary",
    "job_id": "j",
    "status": "succeeded",
    "matched_policy_id": None,
    "rollback_triggered": False,
    "rollback_mode": "lifo",
    "compensation_jobs_dispatched": 0,
    "compensation_jobs_skipped": 0,
    "compensation_jobs_failed": 0,
    "manual_followups": 0,
    "rollback_finished_at": None,
    "started_at": "2024-05-01T10:00:00.000Z",
    "finished_at": "2024-05-01T10:00:01.000Z",
    "env": "staging",
    "verdict": "pass",
}
STEP = {"job_id": "job-a", "step_id": "a", "topic": "t.a"}


def test_dispatch_without_outcome(tmp_path: Path) -> None:
    path = write_run(
        tmp_path / "r.jsonl",
        [
            {"event": "run_started", "env": "staging"},
            {"event": "step_dispatched", **STEP, "attempt": 1},
            dict(SUMMARY),
        ],
    )
    found = problems(path)
    assert [(p.code, p.line) for p in found] == [("EV201", 2)]
    assert "step job job-a (step a)" in found[0].message


def test_applied_step_not_compensated_after_rollback(tmp_path: Path) -> None:
    path = write_run(
        tmp_path / "r.jsonl",
        [
            {"event": "run_started", "env": "staging"},
            {"event": "step_dispatched", **STEP, "attempt": 1},
            {"event": "step_succeeded", **STEP, "attempt": 1},
            {"event": "rollback_triggered", "cause": "x"},
            {"event": "rollback_finished", "outcome": "complete"},
            {**SUMMARY, "rollback_triggered": True},
        ],
    )
    assert verify(path) == [("EV202", 3)]


def test_pending_counts_settle_the_rollback_so_read_only_steps_need_nothing(
    tmp_path: Path,
) -> None:
    lookup = {"job_id": "job-r", "step_id": "r", "topic": "t.read"}
    records = [
        {"event": "run_started", "env": "staging"},
        {"event": "step_dispatched", **lookup, "attempt": 1},
        {"event": "step_succeeded", **lookup, "attempt": 1},  # read-only: not on the stack
        {"event": "step_dispatched", **STEP, "attempt": 1},
        {"event": "step_succeeded", **STEP, "attempt": 1},
        {"event": "rollback_triggered", "cause": "step_denied", "pending": 1},
    ]
    undo = {"job_id": "comp-a", "step_id": "a", "topic": "t.undo", "for_topic": "t.a"}
    done = [
        {"event": "compensation_dispatched", **undo, "attempt": 1},
        {"event": "compensation_succeeded", **undo, "applied": True},
    ]
    summary = {**SUMMARY, "rollback_triggered": True, "compensation_jobs_dispatched": 1}
    assert verify(write_run(tmp_path / "ok.jsonl", [*records, *done, summary])) == []
    found = problems(
        write_run(
            tmp_path / "bad.jsonl", [*records, {**summary, "compensation_jobs_dispatched": 0}]
        )
    )
    assert [(p.code, p.line) for p in found] == [("EV202", 6)]
    assert "1 of 1 pending compensations" in found[0].message
    assert "unsettled applied steps: r, a" in found[0].message


def test_partial_failure_counts_as_applied_and_a_followup_settles_it(tmp_path: Path) -> None:
    records = [
        {"event": "run_started", "env": "staging"},
        {"event": "step_dispatched", **STEP, "attempt": 1},
        {"event": "step_failed_fatal", **STEP, "attempts": 1, "partial": True},
        {"event": "rollback_triggered", "cause": "x"},
    ]
    closing = [{**SUMMARY, "rollback_triggered": True, "status": "FAILED_FATAL"}]
    assert verify(write_run(tmp_path / "a.jsonl", [*records, *closing])) == [("EV202", 3)]
    followup = {
        "event": "manual_followup",
        "step_id": "a",
        "topic": "t.a",
        "category": "irreversible",
    }
    settled = write_run(
        tmp_path / "b.jsonl", [*records, followup, {**closing[0], "manual_followups": 1}]
    )
    assert verify(settled) == []


@pytest.mark.parametrize(
    ("fields", "ok"),
    [
        ({"rule_id": "r1"}, True),
        ({"rule_id": None, "default": True}, True),
        ({"rule_id": None}, False),
        ({"rule_id": None, "default": False}, False),
        ({}, False),
        ({"rule_id": ""}, False),
    ],
)
def test_decision_names_its_rule(tmp_path: Path, fields: dict[str, Any], ok: bool) -> None:
    assert names_its_rule(fields) is ok
    path = write_run(
        tmp_path / "r.jsonl",
        [
            {"event": "run_started", "env": "staging"},
            {"event": "policy_decision", **STEP, "decision": "allow", **fields},
            dict(SUMMARY),
        ],
    )
    assert verify(path) == ([] if ok else [("EV203", 2)])


def test_summary_counts_must_agree(tmp_path: Path) -> None:
    path = write_run(
        tmp_path / "r.jsonl",
        [
            {"event": "run_started", "env": "staging"},
            {"event": "compensation_skipped", **STEP, "reason": "denied", "rule_id": "r"},
            {"event": "manual_followup", "step_id": "a", "category": "compensation_denied"},
            {**SUMMARY, "compensation_jobs_skipped": 0, "manual_followups": 1},
        ],
    )
    found = problems(path)
    assert [(p.code, p.line) for p in found] == [("EV204", 4)]
    assert "compensation_jobs_skipped=0, the events give 1" in found[0].message


def test_summary_fields_and_rollback_flag(tmp_path: Path) -> None:
    summary = {k: v for k, v in SUMMARY.items() if k != "verdict"}
    path = write_run(
        tmp_path / "r.jsonl",
        [{"event": "run_started", "env": "staging"}, {**summary, "rollback_triggered": True}],
    )
    messages = [p.message for p in problems(path)]
    assert any("lacks verdict" in m for m in messages)
    assert any("rollback_triggered=true" in m for m in messages)


def test_record_after_summary_and_unknown_events(tmp_path: Path) -> None:
    path = write_run(
        tmp_path / "r.jsonl",
        [
            {"event": "run_started", "env": "staging"},
            {"event": "quantum_entangled", "spin": "up"},  # a newer version's event: fine
            dict(SUMMARY),
            {"event": "lock_released", "released": True},
        ],
    )
    assert verify(path) == [("EV205", 4)]


def test_concatenated_runs_verify_as_separate_chains(tmp_path: Path) -> None:
    first = standard_run(tmp_path / "a.jsonl", run_id="run-a")
    second = clean_run(tmp_path / "b.jsonl", run_id="run-b")
    both = tmp_path / "both.jsonl"
    both.write_bytes(first.read_bytes() + second.read_bytes())
    assert verify(both) == []


def test_every_rule_is_documented_and_distinct() -> None:
    import agentundo.evidence.verify as module

    assert len({r.name for r in RULES.values()}) == len(RULES)
    for code, rule in RULES.items():
        assert rule.code == code
        assert code in (module.__doc__ or "")
    assert GENESIS == "0" * 64
