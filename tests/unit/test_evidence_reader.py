"""The streaming reader: records with line numbers, bad lines named, non-evidence refused."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import pytest

from agentundo.errors import InputError
from agentundo.evidence.reader import (
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
from agentundo.evidence.writer import EvidenceWriter
from tests.evidence_factory import RunBuilder, clean_run, standard_run


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
