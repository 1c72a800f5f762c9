"""evidence/verify.py: each kind of tampering and each completeness gap named at its line;
keyed (HMAC) chains, the key from the environment, and deeply nested lines."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agentundo.errors import UsageError
from agentundo.evidence.chain import (
    GENESIS,
    GENESIS_LABEL,
    HMAC_SHA256,
    genesis,
    genesis_of,
    record_hash,
    record_mac,
    seal,
)
from agentundo.evidence.keys import (
    ENV_VAR,
    REQUIRE_ENV_VAR,
    evidence_key,
    key_required,
    required_key,
)
from agentundo.evidence.problems import RULES, Problem
from agentundo.evidence.reader import (
    MAX_DEPTH,
    BadLine,
    LineKind,
    Record,
    first_record,
    last_record,
    read_path,
    read_stream,
)
from agentundo.evidence.verify import AcrossFiles, Verifier, named_run
from agentundo.evidence.verify_chain import ChainHead
from agentundo.evidence.verify_complete import names_its_rule
from agentundo.evidence.writer import EvidenceWriter
from agentundo.timeline.times import TimeBound
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
    root = Path(__file__).resolve().parents[2]
    table = (root / "docs" / "timeline.md").read_text(encoding="utf-8")
    for code, rule in RULES.items():
        assert rule.code == code
        assert code in (module.__doc__ or "")
        assert f"| {code} | {rule.name} |" in table
    assert GENESIS == "0" * 64


KEY = b"unit-test-evidence-key-0123456789"


# --- deeply nested lines ----------------------------------------------------------------

RECORD = b'{"seq":0,"event":"run_started","run_id":"r"}'


def nested(depth: int, kind: str) -> bytes:
    if kind == "list":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


def with_field(depth: int, kind: str) -> bytes:
    """A record whose extra field nests so that the whole line is ``depth`` levels deep."""
    return RECORD[:-1] + b',"deep":' + nested(depth - 1, kind) + b"}"


def items(data: bytes) -> list[Record | BadLine]:
    return list(read_stream(io.BufferedReader(io.BytesIO(data)), "x.jsonl"))


@pytest.mark.parametrize("kind", ["list", "dict"])
@pytest.mark.parametrize(
    "line",
    [
        pytest.param(lambda kind: nested(100_000, kind), id="100000-bare"),
        pytest.param(lambda kind: with_field(100_000, kind), id="100000-in-a-record"),
        pytest.param(lambda kind: with_field(990, kind), id="990-near-the-recursion-limit"),
        pytest.param(lambda kind: with_field(MAX_DEPTH + 1, kind), id="one-too-deep"),
    ],
)
def test_a_deeply_nested_line_is_malformed_not_a_crash(line: Any, kind: str) -> None:
    found = items(RECORD + b"\n" + line(kind) + b"\n" + RECORD + b"\n")
    assert [type(i).__name__ for i in found] == ["Record", "BadLine", "Record"]
    bad = found[1]
    assert isinstance(bad, BadLine)
    assert (bad.line, bad.kind) == (2, LineKind.MALFORMED)
    assert bad.message == (
        f"malformed line: arrays or objects nested more than {MAX_DEPTH} levels deep"
    )
    verifier = Verifier("x.jsonl")
    for item in found:
        verifier.feed(item)
    assert ("EV001", 2) in [(p.code, p.line) for p in verifier.finish()]


def test_a_deep_last_line_without_newline_is_malformed_too() -> None:
    found = items(RECORD + b"\n" + nested(100_000, "dict"))
    assert isinstance(found[-1], BadLine)
    assert found[-1].kind is LineKind.MALFORMED


def test_nesting_up_to_the_limit_is_a_record_and_brackets_in_strings_do_not_count() -> None:
    at_limit = with_field(MAX_DEPTH, "list")
    in_string = RECORD[:-1] + b',"text":"' + b"[{" * 5000 + b'"}'
    found = items(at_limit + b"\n" + in_string + b"\n")
    assert [type(i).__name__ for i in found] == ["Record", "Record"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (RECORD[:-1] + b',"n":' + b"9" * 5000 + b"}", "malformed line: a number too long to read"),
        (RECORD[:-1] + b',"t":"caf\xe9"}', "malformed line: not valid UTF-8"),
    ],
    ids=["5000-digit-number", "latin-1-byte"],
)
def test_a_line_json_cannot_decode_says_why(line: bytes, message: str) -> None:
    found = items(RECORD + b"\n" + line + b"\n")
    bad = found[1]
    assert isinstance(bad, BadLine)
    assert (bad.kind, bad.message) == (LineKind.MALFORMED, message)


def test_first_and_last_record_do_not_crash_on_deep_lines(tmp_path: Path) -> None:
    path = tmp_path / "deep.jsonl"
    path.write_bytes(with_field(100_000, "list") + b"\n" + with_field(100_000, "dict") + b"\n")
    assert first_record(str(path)) is None
    assert last_record(str(path)) is None


# --- --since / --until offsets ----------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["+99999999999999999999h", "+99999999h", "+876001h", "+" + "9" * 400 + "ms"]
)
def test_a_huge_offset_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="offset too large"):
        TimeBound.parse(text, "--since")


def test_an_offset_past_the_last_representable_time_is_after_everything() -> None:
    bound = TimeBound.parse("+876000h", "--until")
    late = datetime(9999, 12, 31, tzinfo=UTC)
    assert bound.instant(late) == datetime.max.replace(tzinfo=UTC)
    assert bound.instant(datetime(2024, 1, 1, tzinfo=UTC)) == datetime(
        2024, 1, 1, tzinfo=UTC
    ) + timedelta(hours=876_000)


# --- the key ----------------------------------------------------------------------------


def test_the_key_comes_from_the_environment_and_is_never_in_a_message() -> None:
    assert evidence_key({}) is None
    assert evidence_key({ENV_VAR: KEY.decode()}) == KEY
    for bad in ("", "s3cret-short"):
        with pytest.raises(UsageError) as caught:
            evidence_key({ENV_VAR: bad})
        assert ENV_VAR in str(caught.value)
        assert not bad or bad not in str(caught.value)


# --- keyed chains -----------------------------------------------------------------------


def keyed_run(path: Path, *, key: bytes | None = KEY, run_id: str = "run-k") -> Path:
    with EvidenceWriter(path, key=key) as writer:
        run = RunBuilder(writer, run_id=run_id, workflow_id="restock")
        run.event("run_started", env="staging", note=f"the key is {KEY.decode()}")
        run.forward_ok("reserve", "inventory.reserve")
        run.forward_ok("order", "supplier.order")
        run.summary(env="staging")
    return path


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def write_records(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows))
    return path


def reseal(path: Path, index: int, change: dict[str, Any], *, key: bytes | None = None) -> Path:
    """What a forger does: edit record ``index`` and recompute every later hash."""
    rows = records(path)
    prev = rows[index - 1]["hash"] if index else genesis_of(rows[0])
    for at in range(index, len(rows)):
        body = {k: v for k, v in rows[at].items() if k not in ("hash", "prev_hash")}
        if at == index:
            body.update(change)
            body = {k: v for k, v in body.items() if v is not None}
        rows[at] = seal(body, prev, key=key)
        prev = rows[at]["hash"]
    return write_records(path, rows)


def check(path: Path, key: bytes | None) -> tuple[list[Problem], list[ChainHead]]:
    verifier = Verifier(str(path), key=key)
    for item in read_path(str(path)):
        verifier.feed(item)
    return verifier.finish(), verifier.chains


def codes(found: list[Problem]) -> list[tuple[str, int]]:
    return [(p.code, p.line) for p in found]


def test_a_keyed_writer_marks_the_first_record_and_seals_with_hmac(tmp_path: Path) -> None:
    path = keyed_run(tmp_path / "k.jsonl")
    rows = records(path)
    assert rows[0]["mac"] == HMAC_SHA256
    assert all("mac" not in r for r in rows[1:])
    assert all(r["hash"] == record_mac(r, KEY) != record_hash(r) for r in rows)
    assert KEY not in path.read_bytes()  # redacted like any secret
    assert "[REDACTED]" in rows[0]["note"]


def test_the_writer_reads_the_key_from_the_environment_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_VAR, KEY.decode())
    with EvidenceWriter(tmp_path / "env.jsonl") as writer:
        written = writer.write({"event": "run_started", "run_id": "r"})
    assert written["mac"] == HMAC_SHA256
    assert written["hash"] == record_mac(written, KEY)
    with EvidenceWriter(tmp_path / "plain.jsonl", key=None) as writer:
        assert writer.write({"event": "run_started"})["hash"] == record_hash(
            records(tmp_path / "plain.jsonl")[0]
        )
    monkeypatch.setenv(ENV_VAR, "short")
    with pytest.raises(UsageError, match="too short"):
        EvidenceWriter(tmp_path / "never.jsonl")
    assert not (tmp_path / "never.jsonl").exists()


def test_a_keyed_chain_verifies_with_its_key_and_names_its_head(tmp_path: Path) -> None:
    path = keyed_run(tmp_path / "k.jsonl")
    found, chains = check(path, KEY)
    assert found == []
    (chain,) = chains
    last = records(path)[-1]
    assert (chain.run_id, chain.seq, chain.head) == ("run-k", last["seq"], last["hash"])
    assert (chain.keyed, chain.authenticated) == (True, True)
    assert "MACs checked" in chain.describe()


def test_a_reseal_without_the_key_fails_at_the_first_forged_record(tmp_path: Path) -> None:
    path = reseal(keyed_run(tmp_path / "k.jsonl"), 3, {"actor": "agent:someone-else"})
    found, _ = check(path, KEY)
    assert codes(found) == [("EV101", 4), ("EV101", 5)]
    assert "the first bad record of this run" in found[0].message
    assert found[1].message == (
        "4 more records after line 4 fail their MAC too (lines 5, 6, 7, 8): resealed "
        "without this key, or edited"
    )
    # the same forgery passes an unkeyed chain: what docs/evidence.md says it cannot catch
    plain = reseal(keyed_run(tmp_path / "p.jsonl", key=None), 3, {"actor": "agent:x"})
    assert check(plain, None)[0] == []


def test_a_reseal_with_another_key_fails_every_record(tmp_path: Path) -> None:
    path = reseal(keyed_run(tmp_path / "k.jsonl"), 0, {}, key=b"another-key-another-key")
    found, _ = check(path, KEY)
    assert codes(found) == [("EV101", 1), ("EV101", 2)]
    assert found[1].message == (
        "every record of this run fails its MAC (8 records): it was sealed with a "
        "different key, or forged"
    )


def test_an_edit_without_reseal_fails_its_mac_alone(tmp_path: Path) -> None:
    path = keyed_run(tmp_path / "k.jsonl")
    rows = records(path)
    rows[2]["actor"] = "agent:someone-else"
    found, _ = check(write_records(path, rows), KEY)
    assert codes(found) == [("EV101", 3)]  # its stored hash still links to line 4


def test_a_keyed_chain_without_the_key_is_unchecked_not_verified(tmp_path: Path) -> None:
    path = keyed_run(tmp_path / "k.jsonl")
    found, chains = check(path, None)
    assert codes(found) == [("EV107", 1)]
    assert "AGENTUNDO_EVIDENCE_KEY is not set" in found[0].message
    assert (chains[0].keyed, chains[0].authenticated) == (True, False)
    rows = records(path)
    del rows[4]  # links, order and completeness are still checked
    assert ("EV103", 5) in codes(check(write_records(path, rows), None)[0])


def test_a_downgraded_chain_fails_with_the_key(tmp_path: Path) -> None:
    """The forger strips "mac" and reseals with plain SHA-256: only the key tells."""
    path = reseal(keyed_run(tmp_path / "k.jsonl"), 0, {"mac": None, "actor": "agent:x"})
    assert "mac" not in records(path)[0]
    assert codes(check(path, KEY)[0]) == [("EV108", 1)]
    found, chains = check(path, None)
    assert found == []
    assert not chains[0].keyed
    assert "not a deliberate reseal" in chains[0].describe()


def test_an_unkeyed_chain_with_a_key_given_cannot_be_authenticated(tmp_path: Path) -> None:
    path = clean_run(tmp_path / "plain.jsonl")
    found, chains = check(path, KEY)
    assert codes(found) == [("EV108", 1)]
    assert chains[0].head == records(path)[-1]["hash"]
    assert check(path, None)[0] == []  # unkeyed files verify as before


def test_a_keyed_chain_that_lost_its_head(tmp_path: Path) -> None:
    path = keyed_run(tmp_path / "k.jsonl")
    write_records(path, records(path)[1:])
    assert codes(check(path, KEY)[0]) == [("EV106", 1)]
    found = check(path, None)[0]
    assert codes(found) == [("EV106", 1), ("EV107", 1)]
    assert "lost its first record" in found[1].message


def test_an_unknown_mac_scheme_is_unchecked(tmp_path: Path) -> None:
    path = reseal(keyed_run(tmp_path / "k.jsonl"), 0, {"mac": "hmac-md5"})
    for key in (KEY, None):
        found = check(path, key)[0]
        assert codes(found) == [("EV107", 1)]
        assert "unknown MAC scheme 'hmac-md5'" in found[0].message


def test_concatenated_runs_each_have_a_head_and_a_scheme(tmp_path: Path) -> None:
    keyed = keyed_run(tmp_path / "k.jsonl")
    plain = keyed_run(tmp_path / "p.jsonl", key=None, run_id="run-p")
    both = tmp_path / "both.jsonl"
    both.write_text(keyed.read_text() + plain.read_text())
    found, chains = check(both, KEY)
    assert codes(found) == [("EV108", 9)]
    assert [(c.run_id, c.keyed, c.authenticated) for c in chains] == [
        ("run-k", True, True),
        ("run-p", False, False),
    ]


def test_evidence_through_a_dangling_link_names_the_directory(tmp_path: Path) -> None:
    from agentundo.evidence.writer import EvidenceWriter

    link = tmp_path / "evidence"
    link.symlink_to(tmp_path / "nowhere" / "at-all")
    with pytest.raises(UsageError) as caught:
        EvidenceWriter(link / "run.jsonl", key=None)
    assert str(caught.value) == f"cannot write evidence to {link}: it exists and is not a directory"


# --- the run-specific genesis -----------------------------------------------------------


def test_the_genesis_is_a_hash_of_the_label_the_run_id_and_the_first_ts() -> None:
    import hashlib

    text = '["agentundo/evidence-genesis/v1","run-1","2024-05-01T10:00:00.000Z"]'
    assert GENESIS_LABEL == "agentundo/evidence-genesis/v1"
    assert genesis("run-1", "2024-05-01T10:00:00.000Z") == hashlib.sha256(text.encode()).hexdigest()
    assert genesis("run-1", "2024-05-01T10:00:00.000Z") != genesis(
        "run-2", "2024-05-01T10:00:00.000Z"
    )
    assert genesis("run-1", "2024-05-01T10:00:00.000Z") != genesis(
        "run-1", "2024-05-01T10:00:00.001Z"
    )
    assert genesis("a,b", "c") != genesis("a", "b,c")  # a JSON array: no ambiguous joins
    assert genesis_of({"run_id": "run-1", "ts": "t"}) == genesis("run-1", "t")


def test_the_writer_starts_each_new_chain_from_its_run_genesis(tmp_path: Path) -> None:
    for key in (None, KEY):
        path = keyed_run(tmp_path / f"{key is None}.jsonl", key=key)
        first = records(path)[0]
        assert first["prev_hash"] == genesis(first["run_id"], first["ts"]) != GENESIS
        assert check(path, key)[0] == []


def legacy_run(path: Path, *, key: bytes | None, prev_hash: str = GENESIS) -> Path:
    """A file as an older agentundo wrote it: the real writer, its chain rooted at
    ``prev_hash`` (the legacy GENESIS by default) through ``resume``."""
    path.touch()
    with EvidenceWriter.resume(path, seq=0, prev_hash=prev_hash, key=key) as writer:
        run = RunBuilder(writer, run_id="run-old", workflow_id="restock")
        run.event("run_started", env="staging")
        run.forward_ok("reserve", "inventory.reserve")
        run.summary(env="staging")
    return path


def test_an_unkeyed_chain_from_the_legacy_genesis_still_verifies(tmp_path: Path) -> None:
    path = legacy_run(tmp_path / "old.jsonl", key=None)
    assert records(path)[0]["prev_hash"] == GENESIS
    found, chains = check(path, None)
    assert found == []
    assert chains[0].head == records(path)[-1]["hash"]


def test_a_keyed_chain_from_the_legacy_genesis_is_reported(tmp_path: Path) -> None:
    path = legacy_run(tmp_path / "old.jsonl", key=KEY)
    assert records(path)[0]["mac"] == HMAC_SHA256
    found, _ = check(path, KEY)
    assert codes(found) == [("EV111", 1)]
    assert "a keyed chain from the legacy GENESIS" in found[0].message
    # without the key too: the start is checked whether or not the MACs can be
    assert codes(check(path, None)[0]) == [("EV107", 1), ("EV111", 1)]


def test_a_keyed_chain_rooted_at_another_runs_genesis_is_reported(tmp_path: Path) -> None:
    other = keyed_run(tmp_path / "other.jsonl", run_id="run-other")
    root = records(other)[0]["prev_hash"]
    path = legacy_run(tmp_path / "spliced.jsonl", key=KEY, prev_hash=root)
    found, _ = check(path, KEY)
    assert codes(found) == [("EV111", 1)]
    assert "does not chain to its run's genesis" in found[0].message
    assert "spliced from another run's chain" in found[0].message


def test_an_edited_first_ts_no_longer_matches_its_genesis(tmp_path: Path) -> None:
    path = clean_run(tmp_path / "plain.jsonl")
    rows = records(path)
    rows[0]["ts"] = "2024-05-01T09:00:00.000Z"
    rows[0] = seal(
        {k: v for k, v in rows[0].items() if k not in ("hash", "prev_hash")}, rows[0]["prev_hash"]
    )
    found = codes(check(write_records(path, rows), None)[0])
    assert ("EV111", 1) in found


def test_concatenated_runs_from_both_geneses_split_into_their_runs(tmp_path: Path) -> None:
    old = legacy_run(tmp_path / "old.jsonl", key=None)
    new = clean_run(tmp_path / "new.jsonl", run_id="run-new")
    both = tmp_path / "both.jsonl"
    both.write_bytes(old.read_bytes() + new.read_bytes())
    found, chains = check(both, None)
    assert found == []
    assert [c.run_id for c in chains] == ["run-old", "run-new"]


# --- --require-key ----------------------------------------------------------------------


def check_required(path: Path) -> list[Problem]:
    verifier = Verifier(str(path), key=KEY, require_key=True)
    for item in read_path(str(path)):
        verifier.feed(item)
    return verifier.finish()


def test_require_key_fails_an_unkeyed_chain_with_its_own_code(tmp_path: Path) -> None:
    plain = clean_run(tmp_path / "plain.jsonl")
    found = check_required(plain)
    assert codes(found) == [("EV110", 1)]
    assert found[0].name == "key-required"
    assert check_required(keyed_run(tmp_path / "k.jsonl")) == []
    with pytest.raises(ValueError, match="needs the key"):
        Verifier("x", require_key=True)


def test_require_key_names_a_chain_keyed_only_in_part(tmp_path: Path) -> None:
    """The tail resealed with plain SHA-256 after a keyed head: the key tells the records
    apart, --require-key says what they are instead of a MAC failure."""
    path = reseal(keyed_run(tmp_path / "k.jsonl"), 3, {"actor": "agent:x"})
    found = check_required(path)
    assert codes(found) == [("EV110", 4), ("EV110", 5)]
    assert "sealed with plain SHA-256, not the key" in found[0].message
    assert found[1].message == (
        "4 more records after line 4 are sealed with plain SHA-256 too: lines 5, 6, 7, 8"
    )
    assert codes(check(path, KEY)[0]) == [("EV101", 4), ("EV101", 5)]  # as before


def test_require_key_fails_the_unkeyed_run_of_a_partly_keyed_file(tmp_path: Path) -> None:
    keyed = keyed_run(tmp_path / "k.jsonl")
    plain = keyed_run(tmp_path / "p.jsonl", key=None, run_id="run-p")
    both = tmp_path / "both.jsonl"
    both.write_text(keyed.read_text() + plain.read_text())
    assert codes(check_required(both)) == [("EV110", 9)]


@pytest.mark.parametrize(
    ("value", "required"),
    [("1", True), ("true", True), ("YES", True), (" on ", True), ("0", False), ("", False),
     ("false", False), ("off", False), (None, False)],
)  # fmt: skip
def test_the_require_key_variable_takes_true_and_false_words(
    value: str | None, required: bool
) -> None:
    environ = {} if value is None else {REQUIRE_ENV_VAR: value}
    assert key_required(environ) is required


def test_a_require_key_variable_of_another_word_is_a_usage_error_that_does_not_echo_it() -> None:
    with pytest.raises(UsageError) as caught:
        key_required({REQUIRE_ENV_VAR: KEY.decode()})  # the key in the wrong variable
    assert REQUIRE_ENV_VAR in str(caught.value)
    assert KEY.decode() not in str(caught.value)


def test_a_required_key_that_is_not_set_is_a_usage_error() -> None:
    for environ, option, why in (
        ({}, True, "--require-key"),
        ({REQUIRE_ENV_VAR: "1"}, False, REQUIRE_ENV_VAR),
    ):
        with pytest.raises(UsageError) as caught:
            required_key(environ, option=option)
        assert str(caught.value).startswith(f"{why} ")
        assert f"needs the evidence key: {ENV_VAR} is not set" in str(caught.value)
    assert required_key({ENV_VAR: KEY.decode()}, option=True) == (KEY, True)
    assert required_key({ENV_VAR: KEY.decode(), REQUIRE_ENV_VAR: "0"}, option=False) == (
        KEY,
        False,
    )
    assert required_key({}, option=False) == (None, False)


# --- across files -----------------------------------------------------------------------


def check_across(across: AcrossFiles, path: Path) -> list[Problem]:
    across.begin_source()
    verifier = Verifier(str(path), across=across)
    for item in read_path(str(path)):
        verifier.feed(item)
    found = verifier.finish()
    across.end_source(passed=not found)
    return found


def test_a_file_named_for_another_run_is_reported(tmp_path: Path) -> None:
    original = clean_run(tmp_path / "run_1a2b3c4d.jsonl", run_id="run_1a2b3c4d")
    assert check_across(AcrossFiles(), original) == []
    copy = tmp_path / "run_deadbeef.jsonl"
    copy.write_bytes(original.read_bytes())
    found = check_across(AcrossFiles(), copy)
    assert codes(found) == [("EV301", 1)]
    assert found[0].message == (
        "the file is named for run 'run_deadbeef' but holds run 'run_1a2b3c4d': a copy or "
        "a rename of another run's evidence"
    )
    for name in ("backup.jsonl", "run-1a2b3c4d.jsonl", "run_deadbeef.ndjson"):  # not judged
        other = tmp_path / name
        other.write_bytes(original.read_bytes())
        assert check_across(AcrossFiles(), other) == []
    assert named_run("ev/run_9c2a41f0.jsonl") == "run_9c2a41f0"
    assert named_run("<stdin>") is None


def test_one_run_id_in_several_files_names_every_file(tmp_path: Path) -> None:
    across = AcrossFiles()
    first = clean_run(tmp_path / "a.jsonl", run_id="run-x")
    second = standard_run(tmp_path / "b.jsonl", run_id="run-x")
    assert check_across(across, first) == []
    found = check_across(across, second)
    assert codes(found) == [("EV302", 1)]
    assert found[0].message == (
        f"run 'run-x' is also in {first} (line 1): a copy of its evidence, or two runs with one id"
    )
    ((late, passed),) = across.finish()
    assert (late.path, late.line, late.code, passed) == (str(first), 1, "EV302", True)
    assert late.message == f"run 'run-x' is also in 1 more file: {second}"


def test_the_same_file_given_twice_is_not_a_copy(tmp_path: Path) -> None:
    across = AcrossFiles()
    path = clean_run(tmp_path / "run_a.jsonl", run_id="run_a")
    assert check_across(across, path) == check_across(across, path) == []
    assert across.finish() == []


def test_a_run_id_twice_in_one_file(tmp_path: Path) -> None:
    first = clean_run(tmp_path / "a.jsonl", run_id="run-x")
    middle = clean_run(tmp_path / "b.jsonl", run_id="run-y")
    both = tmp_path / "both.jsonl"
    both.write_bytes(first.read_bytes() + middle.read_bytes() + first.read_bytes())
    found = check_across(AcrossFiles(), both)
    assert codes(found) == [("EV302", 23)]
    assert "appears again in this file (first at line 1)" in found[0].message


def test_across_files_memory_is_one_entry_per_run_id(tmp_path: Path) -> None:
    across = AcrossFiles()
    original = clean_run(tmp_path / "run_0.jsonl", run_id="run_0")
    data = original.read_bytes()
    check_across(across, original)
    for index in range(1, 200):
        copy = tmp_path / f"copy{index}.jsonl"
        copy.write_bytes(data)
        assert codes(check_across(across, copy)) == [("EV302", 1)]
    assert len(across._seen) == 1
    (seen,) = across._seen.values()
    assert (seen.others, len(seen.listed)) == (199, 5)
    ((late, _),) = across.finish()
    assert late.message.endswith(f"{tmp_path / 'copy5.jsonl'}, ... (199 in all)")
