"""evidence/reader.py: records with line numbers, bad lines named, non-evidence refused;
lone surrogates, line caps, BOM/CRLF/blank lines, --follow, and run summaries checked
against their events."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from agentundo.errors import InputError
from agentundo.evidence.events import RunStatus, Verdict
from agentundo.evidence.problems import Problem
from agentundo.evidence.reader import (
    MAX_LINE_BYTES,
    BadLine,
    LineKind,
    Record,
    expand_paths,
    first_record,
    follow_path,
    last_record,
    read_path,
    read_stream,
)
from agentundo.evidence.verify import Verifier
from agentundo.evidence.verify_complete import STATUSES, VERDICTS
from agentundo.evidence.writer import EvidenceWriter
from agentundo.model.scenario import Fault, FaultType
from tests.evidence_factory import RunBuilder, clean_run, reseal, standard_run
from tests.saga_helpers import DENY_EMAIL, policy, run


def items(data: bytes) -> list[Record | BadLine]:
    return list(read_stream(io.BufferedReader(io.BytesIO(data)), "x.jsonl"))


def test_records_carry_line_numbers_and_every_field(tmp_path: Path) -> None:
    path = clean_run(tmp_path / "r.jsonl")
    found = list(read_path(str(path)))
    assert all(isinstance(i, Record) for i in found)
    assert [i.line for i in found] == list(range(1, len(found) + 1))
    first = found[0]
    assert isinstance(first, Record)
    assert first.event == "run_started"
    assert first.get("scenario") == "happy-path"
    assert first.raw == path.read_bytes().splitlines()[0]


def test_blank_lines_are_skipped_but_counted() -> None:
    found = items(b'{"event":"a","seq":0}\n\n{"event":"b","seq":1}\n')
    assert [(i.line, isinstance(i, Record)) for i in found] == [(1, True), (3, True)]


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (b'{"event": "a", oops}', LineKind.MALFORMED),
        (b"[1, 2]", LineKind.NOT_OBJECT),
        (b'{"seq": 3}', LineKind.NOT_RECORD),
        (b'{"event": "a", "x": "\xff"}', LineKind.MALFORMED),
    ],
)
def test_bad_lines_are_named_and_reading_goes_on(line: bytes, kind: LineKind) -> None:
    found = items(b'{"event":"a"}\n' + line + b'\n{"event":"b"}\n')
    assert [type(i).__name__ for i in found] == ["Record", "BadLine", "Record"]
    bad = found[1]
    assert isinstance(bad, BadLine)
    assert (bad.kind, bad.line) == (kind, 2)


def test_truncated_last_line() -> None:
    found = items(b'{"event":"a"}\n{"event":"b","de')
    bad = found[-1]
    assert isinstance(bad, BadLine)
    assert (bad.kind, bad.line) == (LineKind.TRUNCATED, 2)
    assert "truncated" in bad.message


def test_complete_last_record_without_newline_is_a_record() -> None:
    found = items(b'{"event":"a"}\n{"event":"b"}')
    assert all(isinstance(i, Record) for i in found)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty evidence file"),
        (b"\x00\x01\x02binary", "binary data"),
        (b"name: value\nother: 1\n", "expected JSON Lines"),
        (b'{"name": "package.json", "version": "1.0"}\n', 'no "event" field'),
        (b"[1]\n[2]\n", "expected JSON Lines"),
        (b'{"a": 1}\n' * 6, 'no "event" field'),
    ],
)
def test_not_evidence_at_all(data: bytes, message: str) -> None:
    with pytest.raises(InputError) as caught:
        items(data)
    assert message in caught.value.message
    assert caught.value.position.path == "x.jsonl"


def test_leading_bad_lines_before_a_record_are_still_yielded() -> None:
    found = items(b'{"oops"\n{"event":"a"}\n')
    assert [type(i).__name__ for i in found] == ["BadLine", "Record"]


def test_prefilter_skips_parsing_but_not_structure() -> None:
    data = (
        b'{"event":"a"}\n{"event":"keep"}\n{"event":"drop"}\n{"event":"drop", broken}\nnot json\n'
    )
    stream = io.BufferedReader(io.BytesIO(data))
    found = list(read_stream(stream, "x", keep=lambda raw: b"keep" in raw))
    assert [(type(i).__name__, i.line) for i in found] == [
        ("Record", 1),
        ("Record", 2),
        ("BadLine", 5),  # line 4 looks like one object: skipped unparsed; line 5 does not
    ]


def test_expand_paths(tmp_path: Path) -> None:
    clean_run(tmp_path / "b" / "2.jsonl")
    clean_run(tmp_path / "a.jsonl")
    (tmp_path / "notes.txt").write_text("x")
    assert expand_paths([str(tmp_path), "-"]) == [
        str(tmp_path / "a.jsonl"),
        str(tmp_path / "b" / "2.jsonl"),
        "-",
    ]
    with pytest.raises(InputError, match="no such file"):
        expand_paths([str(tmp_path / "missing.jsonl")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no evidence files"):
        expand_paths([str(tmp_path / "empty")])


def test_first_and_last_record(tmp_path: Path) -> None:
    path = standard_run(tmp_path / "r.jsonl")
    first, last = first_record(str(path)), last_record(str(path), window=2000)
    assert first is not None and first.event == "run_started"
    assert last is not None and last.event == "run_summary"
    assert last_record(str(path), window=100) is None  # longer than the window
    path.write_bytes(path.read_bytes()[:-20])
    assert last_record(str(path)) is None


def test_follow_tails_a_file_being_written(tmp_path: Path) -> None:
    path = tmp_path / "live.jsonl"
    seen: list[str] = []

    def writer() -> None:
        time.sleep(0.2)  # the follower starts before the file exists
        with EvidenceWriter(path) as out:
            run = RunBuilder(out)
            run.event("run_started", env="staging")
            for index in range(5):
                time.sleep(0.05)
                run.event("step_dispatched", job_id=f"j{index}", step_id=f"s{index}", topic="t")
                run.event("step_succeeded", job_id=f"j{index}", step_id=f"s{index}", topic="t")
            run.summary()
            run.event("lock_released")  # after the summary: the follower has stopped

    thread = threading.Thread(target=writer)
    thread.start()
    for item in follow_path(str(path), timeout=10, poll=0.01):
        assert isinstance(item, Record)
        seen.append(item.event)
    thread.join()
    assert seen[0] == "run_started" and seen[-1] == "run_summary"
    assert len(seen) == 12


def test_follow_stops_at_timeout_and_reports_a_partial_line(tmp_path: Path) -> None:
    path = tmp_path / "live.jsonl"
    path.write_bytes(b'{"event":"run_started","seq":0}\n{"event":"step_disp')
    found = list(follow_path(str(path), timeout=0.2, poll=0.01))
    assert isinstance(found[-1], BadLine)
    assert found[-1].kind is LineKind.TRUNCATED


LINE = b'{"event":"step_dispatched","seq":1,"attempt":1}'


def items_review(data: bytes, *, blanks: bool = False) -> list[Record | BadLine]:
    return list(read_stream(io.BufferedReader(io.BytesIO(data)), "x.jsonl", blanks=blanks))


def first_line() -> bytes:
    return b'{"event":"run_started","seq":0}\n'


# --- 1. lone surrogates -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (rb'"\ud800"', r"\ud800"),
        (rb'"\uDFFF"', r"\udfff"),  # upper case
        (rb'"a\ude00b"', r"\ude00"),  # a low half alone
        (rb'"\ude00\ud83d"', r"\ude00"),  # the halves of a pair, in the wrong order
        (b'"\xed\xa0\x80"', r"\ud800"),  # the UTF-8 form: json.loads decodes it too
        (rb'{"\ud800": 1}', r"\ud800"),  # in a key
        (rb'[["x", "\udbff"]]', r"\udbff"),  # nested
    ],
)
def test_a_lone_surrogate_makes_a_line_malformed(value: bytes, shown: str) -> None:
    line = LINE.replace(b'"attempt":1', b'"attempt":' + value)
    found = items_review(first_line() + line + b"\n" + LINE + b"\n")
    assert [type(i).__name__ for i in found] == ["Record", "BadLine", "Record"]
    bad = found[1]
    assert isinstance(bad, BadLine)
    assert (bad.kind, bad.line) == (LineKind.MALFORMED, 2)
    assert bad.message == (
        f"malformed line: a string holds a lone surrogate ({shown}), which is not a character"
    )


@pytest.mark.parametrize(
    "value",
    [rb'"\ud83d\ude00"', rb'"\uD83D\uDE00"', rb'"\\ud800"', b'"\xf0\x9f\x98\x80"', rb'"\u00e9"'],
)
def test_a_surrogate_pair_and_lookalikes_stay_records(value: bytes) -> None:
    line = LINE.replace(b'"attempt":1', b'"attempt":' + value)
    found = items_review(first_line() + line + b"\n")
    assert all(isinstance(i, Record) for i in found)
    attempt = found[1].data["attempt"] if isinstance(found[1], Record) else None
    assert isinstance(attempt, str)
    attempt.encode()  # real text: it can be shown, hashed and written


def test_verification_reports_a_lone_surrogate_as_ev001(tmp_path: Path) -> None:
    path = clean_run(tmp_path / "r.jsonl")
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b'"attempt":1,', rb'"attempt":"\ud800",')
    path.write_bytes(b"".join(lines))
    found = verify(path)
    assert ("EV001", 3) in [(p.code, p.line) for p in found]
    assert all(p.message.encode() for p in found)


# --- 2. line length, blank lines, BOM and CR ---------------------------------------------


def test_a_line_longer_than_the_cap_is_malformed_and_reading_goes_on() -> None:
    huge = b'{"event":"step_succeeded","x":"' + b"a" * MAX_LINE_BYTES + b'"}\n'
    found = items_review(first_line() + huge + LINE + b"\n")
    assert [(type(i).__name__, i.line) for i in found] == [
        ("Record", 1),
        ("BadLine", 2),
        ("Record", 3),
    ]
    bad = found[1]
    assert isinstance(bad, BadLine) and bad.kind is LineKind.MALFORMED
    assert bad.message == (
        f"malformed line: {len(huge)} bytes, longer than the 16 MiB a line may have "
        "(it was skipped, not read)"
    )


def test_a_line_at_the_cap_is_read() -> None:
    body = b'{"event":"step_succeeded","x":"'
    line = body + b"a" * (MAX_LINE_BYTES - len(body) - 2) + b'"}'
    assert len(line) == MAX_LINE_BYTES
    found = items_review(first_line() + line + b"\n")
    assert [type(i).__name__ for i in found] == ["Record", "Record"]


def test_blank_lines_are_yielded_only_when_asked() -> None:
    data = b"\n" + first_line() + b"\n \n" + LINE + b"\n\n"
    assert [i.line for i in items_review(data)] == [2, 5]
    found = items_review(data, blanks=True)
    assert [(i.line, getattr(i, "kind", None)) for i in found] == [
        (1, LineKind.BLANK),
        (2, None),
        (3, LineKind.BLANK),
        (5, None),
        (6, LineKind.BLANK),
    ]
    assert isinstance(found[2], BadLine)
    assert found[2].message == (
        "2 blank lines (from this line on): the writer never writes one (a line was inserted)"
    )


def test_blank_lines_do_not_make_evidence_out_of_nothing() -> None:
    with pytest.raises(InputError, match="empty evidence file"):
        items_review(b"\n\n  \n", blanks=True)


def test_a_bom_and_crlf_are_stripped_and_named() -> None:
    found = items_review(b"\xef\xbb\xbf" + first_line().replace(b"\n", b"\r\n") + LINE + b"\r\n")
    assert all(isinstance(i, Record) for i in found)
    records = [i for i in found if isinstance(i, Record)]
    assert [r.altered for r in records] == [
        "starts with a UTF-8 byte order mark and ends in a carriage return before its "
        "newline (CRLF)",
        "ends in a carriage return before its newline (CRLF)",
    ]
    assert records[0].raw == first_line().rstrip(b"\n")
    (plain,) = items_review(first_line())
    assert isinstance(plain, Record) and plain.altered == ""


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda lines: [b"\xef\xbb\xbf" + lines[0], *lines[1:]],
            [
                (
                    "EV109",
                    1,
                    "the line starts with a UTF-8 byte order mark, which the writer never "
                    "writes: its bytes were changed after it was sealed",
                )
            ],
        ),
        (
            lambda lines: [line.replace(b"\n", b"\r\n") for line in lines],
            [
                (
                    "EV109",
                    1,
                    "the line ends in a carriage return before its newline (CRLF), which the "
                    "writer never writes: its bytes were changed after it was sealed",
                ),
                (
                    "EV109",
                    2,
                    "10 more lines after line 1 are changed the same way: lines 2, 3, 4, 5, 6, "
                    "... 11",
                ),
            ],
        ),
        (
            lambda lines: [*lines[:3], b"\n", *lines[3:], b"\n"],
            [
                ("EV001", 4, "a blank line: the writer never writes one (a line was inserted)"),
                ("EV001", 13, "a blank line: the writer never writes one (a line was inserted)"),
            ],
        ),
    ],
    ids=["bom", "crlf", "blank"],
)
def test_verification_reports_bytes_the_writer_never_writes(
    tmp_path: Path, change: Any, expected: list[tuple[str, int, str]]
) -> None:
    path = clean_run(tmp_path / "r.jsonl")
    assert verify(path) == []
    path.write_bytes(b"".join(change(path.read_bytes().splitlines(keepends=True))))
    assert [(p.code, p.line, p.message) for p in verify(path)] == expected
    shown = [i for i in read_path(str(path)) if isinstance(i, Record)]
    assert len(shown) == 11  # read normally, every record is still there


# --- 2. --follow ----------------------------------------------------------------------------


def follow(path: Path, timeout: float = 0.3) -> list[Record | BadLine]:
    return list(follow_path(str(path), timeout=timeout, poll=0.01))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x01binary" * 100, "not an evidence file: binary data"),
        (b"x" * 3_000_000, "not an evidence file: expected JSON Lines of evidence records"),
        (b"\n# a comment\nversion: v1\n", "not an evidence file: expected JSON Lines"),
        (b'{"seq": 0}\n', 'not an evidence file: not an evidence record: no "event" field'),
        (b'{"a":', "truncated last line (5 bytes, no newline)"),
        (b"", "empty evidence file: no records within 0.3s"),
        (b"\n\n", "empty evidence file: no records within 0.3s"),
    ],
    ids=["binary", "no-newline", "yaml", "no-event", "partial", "empty", "blank"],
)
def test_follow_refuses_what_reading_refuses(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(data)
    with pytest.raises(InputError) as caught:
        follow(path)
    assert message in caught.value.describe()
    with pytest.raises(InputError) as whole:
        list(read_path(str(path)))
    assert whole.value.describe().split(": error: ")[1].startswith(message.split(" within ")[0])


def test_follow_refuses_a_line_longer_than_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(first_line() + b'{"event":"x","pad":"' + b"a" * MAX_LINE_BYTES)
    found: list[Record | BadLine] = []
    with pytest.raises(InputError) as caught:
        found.extend(follow_path(str(path), timeout=30, poll=0.01))
    assert caught.value.describe() == (
        f"{path}:2:1: error: a line longer than 16 MiB, which no evidence record is: "
        "not followed further"
    )


def test_follow_waits_for_the_first_line_of_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "live.jsonl"

    def writer() -> None:
        with EvidenceWriter(path, key=None) as out:  # created empty, written a moment later
            time.sleep(0.3)
            builder = RunBuilder(out)
            builder.event("run_started", env="staging")
            builder.summary()

    thread = threading.Thread(target=writer)
    thread.start()
    found = list(follow_path(str(path), timeout=10, poll=0.01))
    thread.join()
    assert [i.event for i in found if isinstance(i, Record)] == ["run_started", "run_summary"]


def test_follow_yields_blank_lines_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(first_line() + b"\n\n" + LINE + b"\r\n")
    found = list(follow_path(str(path), timeout=0.2, poll=0.01, blanks=True))
    assert [(i.line, getattr(i, "kind", None)) for i in found] == [
        (1, None),
        (2, LineKind.BLANK),
        (4, None),
    ]
    assert isinstance(found[2], Record)
    assert found[2].altered == "ends in a carriage return before its newline (CRLF)"


# --- 3. run summaries that contradict their events -------------------------------------------


def verify(path: Path) -> list[Problem]:
    verifier = Verifier(str(path))
    for item in read_path(str(path), blanks=True):
        verifier.feed(item)
    return verifier.finish()


def drill_file(path: Path, *faults: Fault | dict[str, Any], **options: Any) -> Path:
    """A real drill's evidence, written as `agentundo drill` writes it (unkeyed)."""
    _result, records = run(*faults, **options)
    with EvidenceWriter(path, key=None) as writer:
        for record in records:
            writer.write({k: v for k, v in record.items() if k not in ("seq", "prev_hash")})
    return path


def summary_problems(path: Path) -> list[str]:
    found = verify(path)
    assert all(p.code == "EV204" for p in found), found
    return [p.message for p in found]


def test_the_vocabulary_is_the_engines() -> None:
    assert tuple(s.value for s in RunStatus) == STATUSES
    assert tuple(v.value for v in Verdict) == VERDICTS


@pytest.mark.parametrize(
    ("faults", "options"),
    [
        ((), {}),
        (({"type": "fatal", "step": "ship"},), {}),
        (
            ({"type": "fatal", "step": "ship"}, {"type": "compensation_denied", "step": "charge"}),
            {},
        ),
        (({"type": "fatal", "step": "ship"}, {"type": "lock_held"}), {}),
        (({"type": "fatal", "step": "ship"}, {"type": "lock_expires", "after": 1}), {}),
        (({"type": "partial", "step": "charge"},), {}),
        ((), {"pol": policy(DENY_EMAIL)}),
    ],
    ids=[
        "succeeded",
        "fatal",
        "denied-compensation",
        "lock-held",
        "lock-expires",
        "partial",
        "deny",
    ],
)
def test_real_drills_agree_with_their_summaries(
    tmp_path: Path, faults: tuple[dict[str, Any], ...], options: dict[str, Any]
) -> None:
    path = drill_file(tmp_path / "r.jsonl", *faults, **options)
    assert verify(path) == []


def test_a_failed_run_rewritten_as_succeeded_is_found(tmp_path: Path) -> None:
    path = drill_file(tmp_path / "r.jsonl", {"type": "fatal", "step": "ship"})
    reseal(path, {"status": "SUCCEEDED", "verdict": "completed"})
    lines = path.read_text().splitlines()
    fatal = 1 + next(i for i, line in enumerate(lines) if '"step_failed_fatal"' in line)
    rollback = 1 + next(i for i, line in enumerate(lines) if '"rollback_triggered"' in line)
    assert summary_problems(path) == [
        f"run_summary says status='SUCCEEDED', the events give FAILED_FATAL: step_failed_fatal "
        f"(line {fatal})",
        f"run_summary says verdict='completed', but a rollback was triggered (line {rollback})",
    ]


def test_a_denied_run_rewritten_is_found(tmp_path: Path) -> None:
    path = drill_file(tmp_path / "r.jsonl", pol=policy(DENY_EMAIL))
    reseal(path, {"status": "FAILED_FATAL"})
    assert summary_problems(path)[0].startswith(
        "run_summary says status='FAILED_FATAL', the events give DENIED: step_denied (line "
    )


def test_a_succeeded_run_cannot_claim_a_failure_or_an_interruption(tmp_path: Path) -> None:
    path = drill_file(tmp_path / "r.jsonl")
    reseal(path, {"status": "interrupted", "verdict": "recovered"})
    assert summary_problems(path) == [
        "run_summary says status='interrupted', the events give SUCCEEDED: no "
        "step_failed_fatal, step_denied or run_interrupted",
        "run_summary says verdict='recovered', but the run has no rollback_triggered to "
        "recover with",
    ]
    reseal(path, {"status": "SUCCEEDED", "verdict": "interrupted"})
    assert summary_problems(path) == [
        "run_summary says verdict='interrupted', but the run has no run_interrupted record"
    ]


def test_manual_and_compensated_must_match_the_events(tmp_path: Path) -> None:
    path = drill_file(
        tmp_path / "r.jsonl",
        {"type": "fatal", "step": "ship"},
        {"type": "compensation_denied", "step": "charge"},
    )
    summary = json.loads(path.read_text().splitlines()[-1])
    assert summary["manual"] == ["notify", "charge"]  # LIFO
    assert summary["compensated"] == ["reserve"]
    reseal(path, {"manual": []})
    assert summary_problems(path) == [
        "run_summary says manual=[], the manual_followup records name [notify, charge]"
    ]
    reseal(path, {"manual": ["charge", "notify"]})  # the same steps, in another order
    assert len(summary_problems(path)) == 1
    reseal(path, {"manual": ["notify", "charge"], "compensated": ["reserve", "charge"]})
    assert summary_problems(path) == [
        "run_summary says [charge] compensated, but no compensation_succeeded names that step"
    ]
    reseal(path, {"compensated": ["reserve", "reserve"]})
    assert summary_problems(path) == ["run_summary lists [reserve] as compensated more than once"]


def test_an_interrupted_run_must_say_so(tmp_path: Path) -> None:
    from agentundo.saga.clock import VirtualClock
    from agentundo.saga.engine import drill
    from agentundo.saga.setup import DrillSetup, Stop
    from tests.saga_helpers import catalog, workflow

    stop = Stop()
    records: list[dict[str, Any]] = []

    def sink(record: dict[str, Any]) -> None:
        records.append(record)
        if record["event"] == "step_succeeded" and record["step_id"] == "charge":
            stop.request("SIGINT")  # Ctrl-C while the drill runs

    setup = DrillSetup(workflow=workflow(), catalog=catalog(), policy=policy())
    result = drill(setup, run_id="run_i", sink=sink, clock=VirtualClock(), stop=stop)
    assert result.status is RunStatus.INTERRUPTED
    path = tmp_path / "r.jsonl"
    with EvidenceWriter(path, key=None) as writer:
        for record in records:
            writer.write(record)
    assert verify(path) == []
    reseal(path, {"status": "SUCCEEDED", "verdict": "completed"})
    line = 1 + next(
        i for i, text in enumerate(path.read_text().splitlines()) if "run_interrupted" in text
    )
    assert summary_problems(path) == [
        f"run_summary says status='SUCCEEDED', the events give interrupted: run_interrupted "
        f"(line {line})",
        f"run_summary says verdict='completed', but the run was interrupted: run_interrupted "
        f"(line {line})",
    ]


def test_values_the_engine_never_writes_are_not_judged(tmp_path: Path) -> None:
    path = drill_file(tmp_path / "r.jsonl", Fault(type=FaultType.FATAL, step="ship"))
    reseal(path, {"status": "rolled_back", "verdict": "needs_followup"})
    assert verify(path) == []
