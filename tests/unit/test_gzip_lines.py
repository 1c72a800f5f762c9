"""Reading gzip-compressed evidence: agentundo.evidence.gzip_lines and the reader on top."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

from agentundo.evidence.gzip_lines import Gunzip
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
)
from agentundo.evidence.writer import EvidenceWriter


def lines_of(data: bytes, limit: int = -1) -> tuple[list[bytes], Gunzip]:
    reader = Gunzip(io.BytesIO(data))
    lines = []
    while line := reader.readline(limit):
        lines.append(line)
    return lines, reader


def test_lines_come_back_as_written_across_members() -> None:
    text = b"".join(b'{"n":%d}\n' % n for n in range(50_000))
    lines, reader = lines_of(gzip.compress(text[:300_000]) + gzip.compress(text[300_000:]))
    assert b"".join(lines) == text
    assert len(lines) == 50_000 and reader.problem is None


def test_a_last_line_without_a_newline_is_kept_unfinished() -> None:
    lines, reader = lines_of(gzip.compress(b"a\nb"))
    assert lines == [b"a\n", b"b"] and reader.problem is None


def test_a_cut_off_stream_drops_the_unfinished_line_and_says_so() -> None:
    data = gzip.compress(b"".join(b"line %d\n" % n for n in range(20_000)), compresslevel=1)
    lines, reader = lines_of(data[: len(data) // 2])
    assert lines and all(line.endswith(b"\n") for line in lines)
    assert reader.problem is not None and reader.problem.truncated
    assert reader.problem.message.startswith(
        "the compressed stream is cut off (member 1 has no end) after "
    )


def test_bytes_after_a_member_that_are_not_gzip_are_corrupt() -> None:
    lines, reader = lines_of(gzip.compress(b"a\n") + b"junk")
    assert lines == [b"a\n"]
    assert reader.problem is not None and not reader.problem.truncated
    assert (
        reader.problem.message == "the data after member 1 is not gzip data after 2 bytes of lines"
    )


def test_a_line_longer_than_the_cap_is_handed_on_unfinished() -> None:
    huge = b"x" * (MAX_LINE_BYTES + 10) + b"\nnext\n"
    reader = Gunzip(io.BytesIO(gzip.compress(huge, compresslevel=1)))
    first = reader.readline(MAX_LINE_BYTES + 1)
    assert len(first) == MAX_LINE_BYTES + 1 and not first.endswith(b"\n")
    rest = reader.readline()
    assert rest == b"x" * 9 + b"\n"
    assert reader.readline() == b"next\n"


def test_peek_and_read_see_the_inflated_bytes() -> None:
    reader = Gunzip(io.BytesIO(gzip.compress(b"abc\ndef\n")))
    assert reader.peek(5) == b"abc\nd"
    assert reader.read(2) == b"ab"
    assert reader.readline() == b"c\n"
    assert reader.read() == b"def\n"


def _run(path: Path) -> list[bytes]:
    """Write a small run with the live writer; its lines."""
    plain = path.with_suffix("")
    with EvidenceWriter(plain, key=None, sync="never") as writer:
        writer.write({"ts": "t0", "event": "run_started", "run_id": "run_1", "workflow_id": "w"})
        writer.write({"ts": "t1", "event": "run_summary", "run_id": "run_1", "workflow_id": "w"})
    data = plain.read_bytes()
    path.write_bytes(gzip.compress(data))
    plain.unlink()
    return data.splitlines()


def test_the_readers_functions_read_a_compressed_file(tmp_path: Path) -> None:
    path = tmp_path / "run_1.jsonl.gz"
    lines = _run(path)
    items = list(read_path(str(path)))
    assert [i.raw for i in items if isinstance(i, Record)] == lines
    first, last = first_record(str(path)), last_record(str(path))
    assert first is not None and first.event == "run_started"
    assert last is not None and last.event == "run_summary"
    followed = list(follow_path(str(path), timeout=1))
    assert [i.event for i in followed if isinstance(i, Record)] == ["run_started", "run_summary"]
    assert expand_paths([str(tmp_path)]) == [str(path)]


def test_a_cut_off_compressed_file_reads_to_the_cut(tmp_path: Path) -> None:
    path = tmp_path / "cut.jsonl.gz"
    _run(path)
    data = path.read_bytes()
    path.write_bytes(data[:-8])  # the trailer: CRC and size
    items = list(read_path(str(path)))
    assert [type(i).__name__ for i in items] == ["Record", "Record", "BadLine"]
    bad = items[-1]
    assert isinstance(bad, BadLine) and bad.kind is LineKind.TRUNCATED and bad.line == 3
    assert last_record(str(path)) is None
