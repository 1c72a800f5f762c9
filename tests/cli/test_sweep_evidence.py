"""A sweep's compact evidence: one ``<run_id>.jsonl.gz`` per run, read like plain files.

Real sweeps through the CLI, real gzip files on disk, real ``timeline`` runs: the compressed
runs give the same answers as the same runs inflated into plain files; a tampered member,
a cut-off or corrupt stream are found and named, never a crash; ``--evidence-level`` keeps
what it says; a sweep over the budget asks for ``--yes``.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest

from agentundo.errors import UsageError
from agentundo.evidence.buffered import BufferedEvidence
from agentundo.evidence.writer import EvidenceWriter
from agentundo.saga.drills import Options
from agentundo.saga.sweep import estimate
from tests.cli_runner import Result, invoke
from tests.saga_helpers import CATALOG, DENY_EMAIL, POLICY, WORKFLOW, write


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write(tmp_path, "wf.yaml", WORKFLOW)
    write(tmp_path, "catalog.yaml", CATALOG)
    write(tmp_path, "policy.yaml", POLICY)
    write(tmp_path, "deny.yaml", DENY_EMAIL)
    return tmp_path


def sweep(project: Path, *args: str, policy: str = "policy.yaml") -> Result:
    return invoke(
        "drill", project / "wf.yaml", "--catalog", project / "catalog.yaml",
        "--policy", project / policy, "--sweep", "-f", "json", *args,
    )  # fmt: skip


def timeline(*args: str | Path) -> Result:
    return invoke("timeline", *args, env={"COLUMNS": "1000"})  # long paths stay on one line


def inflate_all(source: Path, target: Path) -> list[Path]:
    """Each ``<run>.jsonl.gz`` of ``source`` as a plain ``<run>.jsonl`` in ``target``."""
    target.mkdir()
    plain = []
    for path in sorted(source.glob("*.jsonl.gz")):
        out = target / path.name.removesuffix(".gz")
        out.write_bytes(gzip.decompress(path.read_bytes()))
        plain.append(out)
    return plain


def test_a_sweep_writes_one_compressed_file_per_run(project: Path) -> None:
    done = sweep(project, "--evidence", project / "ev")
    assert done.returncode == 0, done.stderr
    runs = json.loads(done.stdout)["runs"]
    files = sorted((project / "ev").glob("*"))
    assert [f.name for f in files] == sorted(f"{r['run_id']}.jsonl.gz" for r in runs)
    assert [r["evidence"] for r in runs] == [
        str(project / "ev" / f"{r['run_id']}.jsonl.gz") for r in runs
    ]
    for path in files:
        data = path.read_bytes()
        assert data[:2] == b"\x1f\x8b"
        assert len(data) * 3 < len(gzip.decompress(data)), "compressed at least 3x"


def test_timeline_verify_and_summary_answer_as_on_plain_files(project: Path) -> None:
    assert sweep(project, "--evidence", project / "ev").returncode == 0
    inflate_all(project / "ev", project / "plain")
    for args in (
        ("--verify", "-q"),
        ("--summary", "-f", "json"),
        ("--summary", "--verify", "-f", "json"),
        ("-f", "json"),
        ("-f", "json", "--event", "compensation_succeeded"),
        ("--only-problems",),
    ):
        compact = timeline(*args, project / "ev")
        plain = timeline(*args, project / "plain")
        assert compact.returncode == plain.returncode == 0, compact.stderr
        assert compact.stdout.replace(".jsonl.gz", ".jsonl") == plain.stdout.replace(
            str(project / "plain"), str(project / "ev")
        ), args
    verified = timeline("--verify", "-q", project / "ev")
    assert "5 files checked, all verified" in verified.stderr + verified.stdout


def test_a_compressed_run_given_by_name_or_on_stdin_is_read(project: Path) -> None:
    assert sweep(project, "--evidence", project / "ev").returncode == 0
    first = sorted((project / "ev").glob("*.jsonl.gz"))[0]
    by_name = timeline("--verify", "-q", first)
    assert by_name.returncode == 0, by_name.stdout + by_name.stderr
    piped = subprocess.run(
        [sys.executable, "-m", "agentundo", "timeline", "--verify", "-f", "json", "-"],
        input=first.read_bytes(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert piped.returncode == 0, piped.stderr
    assert len(piped.stdout.splitlines()) == len(gzip.decompress(first.read_bytes()).splitlines())


def _records(path: Path) -> list[bytes]:
    return gzip.decompress(path.read_bytes()).splitlines(keepends=True)


def test_an_edited_record_in_a_compressed_run_is_found(project: Path) -> None:
    assert sweep(project, "--evidence", project / "ev").returncode == 0
    path = sorted((project / "ev").glob("*.jsonl.gz"))[-1]
    lines = _records(path)
    edited = json.loads(lines[3])
    edited["actor"] = "agent:someone-else"
    lines[3] = json.dumps(edited, separators=(",", ":"), sort_keys=True).encode() + b"\n"
    path.write_bytes(gzip.compress(b"".join(lines)))  # recompressed: gzip's CRC is fine
    done = timeline("--verify", "-q", path)
    assert done.returncode == 1
    assert f"{path}:4: EV101" in done.stdout


def test_a_member_replaced_by_another_runs_member_is_found(project: Path) -> None:
    assert sweep(project, "--evidence", project / "ev").returncode == 0
    first, second = sorted((project / "ev").glob("*.jsonl.gz"))[:2]
    # a delta made of another run's records: chained, but to another run's genesis
    first.write_bytes(first.read_bytes() + second.read_bytes())
    done = timeline("--verify", "-q", first)
    assert done.returncode == 1
    assert "EV301" in done.stdout  # the second member holds another run than the name says
    second_start = len(_records(first)) + 1 - len(_records(second))
    assert f"{first}:{second_start}: EV301" in done.stdout


def test_a_cut_off_compressed_run_is_a_clear_problem(project: Path) -> None:
    assert sweep(project, "--evidence", project / "ev").returncode == 0
    path = sorted((project / "ev").glob("*.jsonl.gz"))[-1]
    data = path.read_bytes()
    whole = len(_records(path))
    path.write_bytes(data[: len(data) // 2])
    done = timeline("--verify", "-q", path)
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    assert "EV002 compressed evidence: the compressed stream is cut off" in done.stdout
    assert "EV205" in done.stdout  # and the run has no summary: the cut is named twice
    shown = timeline("-f", "json", path)
    assert shown.returncode == 0
    assert 0 < len(shown.stdout.splitlines()) < whole
    assert "warning: compressed evidence: the compressed stream is cut off" in shown.stderr


def test_corrupt_compressed_data_is_a_clear_problem(project: Path) -> None:
    assert sweep(project, "--evidence", project / "ev").returncode == 0
    path = sorted((project / "ev").glob("*.jsonl.gz"))[-1]
    data = bytearray(path.read_bytes())
    data[-6] ^= 0xFF  # the CRC of the member
    path.write_bytes(bytes(data))
    done = timeline("--verify", "-q", path)
    # a small member is inflated in one piece: its failed CRC leaves no line to read
    assert done.returncode == 2
    assert "Traceback" not in done.stdout + done.stderr
    assert done.stderr.startswith(
        f"{path}:1:1: error: compressed evidence: the compressed data is corrupt (Error -3 "
        "while decompressing data: incorrect data check) after 0 bytes of lines"
    )
    # a good member, then the corrupt one: the good lines are read, the rest is a problem
    good = sorted((project / "ev").glob("*.jsonl.gz"))[0]
    mixed = project / "mixed.jsonl.gz"
    mixed.write_bytes(good.read_bytes() + bytes(data))
    done = timeline("--verify", "-q", mixed)
    assert done.returncode == 1
    after = len(_records(good)) + 1
    assert f"{mixed}:{after}: EV001 compressed evidence: the compressed data is corrupt" in (
        done.stdout
    )


def test_gzip_of_something_else_is_not_evidence(tmp_path: Path) -> None:
    junk = tmp_path / "junk.jsonl.gz"
    junk.write_bytes(gzip.compress(bytes(range(256)) * 10))
    done = timeline("--verify", junk)
    assert done.returncode == 2
    assert done.stderr.startswith(f"{junk}:1:1: error: not an evidence file: binary data")
    empty = tmp_path / "empty.jsonl.gz"
    empty.write_bytes(gzip.compress(b""))
    assert "empty evidence file: no records" in timeline(empty).stderr
    half = tmp_path / "half.jsonl.gz"
    half.write_bytes(gzip.compress(b'{"event":"run_started"')[:12])
    cut = timeline("--verify", half)
    assert cut.returncode == 2 and "Traceback" not in cut.stderr
    assert "the compressed stream is cut off" in cut.stderr


# -- --evidence-level -----------------------------------------------------------------------


def test_evidence_level_failures_keeps_only_the_runs_that_did_not_pass(project: Path) -> None:
    done = sweep(
        project, "--evidence", project / "ev", "--evidence-level", "failures", policy="deny.yaml"
    )
    assert done.returncode == 1, done.stderr
    runs = json.loads(done.stdout)["runs"]
    kept = [r for r in runs if r["evidence"] is not None]
    assert [r["verdict"] for r in kept] == ["not_reached", "not_reached"]
    assert all(r["evidence"] is None for r in runs if r["verdict"] == "recovered")
    assert sorted(p.name for p in (project / "ev").iterdir()) == sorted(
        f"{r['run_id']}.jsonl.gz" for r in kept
    )
    assert timeline("--verify", "-q", project / "ev").returncode == 0


def test_evidence_level_none_writes_nothing(project: Path) -> None:
    done = sweep(project, "--evidence", project / "ev", "--evidence-level", "none")
    assert done.returncode == 0, done.stderr
    assert all(r["evidence"] is None for r in json.loads(done.stdout)["runs"])
    assert not (project / "ev").exists() or not list((project / "ev").iterdir())


def test_evidence_level_and_yes_need_a_sweep_and_a_known_level(project: Path) -> None:
    base = ("drill", project / "wf.yaml", "--catalog", project / "catalog.yaml")
    base += ("--policy", project / "policy.yaml", "--evidence", project / "ev")
    for args, message in (
        (("--evidence-level", "none"), "--evidence-level only applies with --sweep"),
        (("--yes",), "--yes only applies with --sweep"),
        (("--sweep", "--evidence-level", "some"), "unknown evidence level 'some'"),
    ):
        done = invoke(*base, *args)
        assert done.returncode == 2, args
        assert message in done.stderr
        assert "Traceback" not in done.stderr
    assert not (project / "ev").exists()


# -- the budget ------------------------------------------------------------------------------


def test_a_sweep_over_the_budget_asks_for_yes_before_it_starts(tmp_path: Path) -> None:
    steps = "\n".join(f"  - {{id: s{i}, topic: orders.lookup}}" for i in range(5000))
    write(tmp_path, "big.yaml", f"version: v1\nworkflow: big\nenv: staging\nsteps:\n{steps}\n")
    write(tmp_path, "catalog.yaml", CATALOG)
    write(tmp_path, "policy.yaml", POLICY)
    done = invoke(
        "drill", tmp_path / "big.yaml", "--catalog", tmp_path / "catalog.yaml",
        "--policy", tmp_path / "policy.yaml", "--evidence", tmp_path / "ev", "--sweep",
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "a sweep of 5000 steps runs 5000 drills: about 62,550,000 evidence records" in (
        done.stderr
    )
    assert "over the budget (1 GB of evidence or 10 minutes); pass --yes to run it" in done.stderr
    assert not (tmp_path / "ev").exists()


def test_the_estimate_grows_with_the_square_of_the_steps() -> None:
    small, large = (estimate(n, jobs=1, evidence_level="all") for n in (200, 3000))
    assert 200 < large.records / small.records < 225
    assert not small.over_budget and large.over_budget
    assert large.evidence_bytes > 1 << 30 and large.seconds > 600
    assert estimate(2000, jobs=8, evidence_level="all").evidence_bytes < 1 << 30
    assert estimate(5000, jobs=1, evidence_level="none").evidence_bytes == 0


def test_yes_states_the_estimate_and_goes_on(capsys: pytest.CaptureFixture[str]) -> None:
    from agentundo.cli.drill import _sweep_budget

    options = Options(sweep=True, yes=True, evidence_level="failures")
    assert _sweep_budget(5000, 2, options) == "failures"
    err = capsys.readouterr().err
    assert err.startswith("agentundo: a sweep of 5000 steps runs 5000 drills: about ")
    assert err.rstrip().endswith("(--yes)")
    with pytest.raises(UsageError, match="pass --yes to run it"):
        _sweep_budget(5000, 2, Options(sweep=True))
    assert _sweep_budget(100, 2, Options(sweep=True)) == "all"


# -- the buffered writer ---------------------------------------------------------------------

RECORDS: list[dict[str, Any]] = [
    {
        "ts": "2026-01-01T00:00:00.000Z",
        "event": "run_started",
        "run_id": "run_1",
        "token": "x" * 40,
    },
    {"ts": "2026-01-01T00:00:01.000Z", "event": "step_dispatched", "run_id": "run_1", "n": 1.5},
    {"ts": "2026-01-01T00:00:02.000Z", "event": "run_summary", "run_id": "run_1", "é": "ü"},
]


@pytest.mark.parametrize("key", [None, b"k" * 32])
def test_buffered_lines_are_the_live_writers_lines(tmp_path: Path, key: bytes | None) -> None:
    with EvidenceWriter(tmp_path / "live.jsonl", key=key, sync="never") as live:
        for record in RECORDS:
            live.write(record)
    with BufferedEvidence(tmp_path / "run.jsonl.gz", key=key) as buffered:
        for record in RECORDS:
            buffered.write(record)
    assert buffered.failure is None and buffered.path == tmp_path / "run.jsonl.gz"
    inflated = gzip.decompress((tmp_path / "run.jsonl.gz").read_bytes())
    assert inflated == (tmp_path / "live.jsonl").read_bytes()
    assert b"x" * 40 not in inflated  # redacted before it was sealed


def test_buffered_evidence_never_overwrites_and_drops_what_it_need_not_keep(tmp_path: Path) -> None:
    (tmp_path / "run.jsonl.gz").write_bytes(b"old")
    with pytest.raises(UsageError, match="exists; it is never overwritten"):
        BufferedEvidence(tmp_path / "run.jsonl.gz", key=None)
    assert (tmp_path / "run.jsonl.gz").read_bytes() == b"old"
    dropped = BufferedEvidence(tmp_path / "passed.jsonl.gz", key=None, keep=lambda: False)
    dropped.write(RECORDS[0])
    dropped.close()
    assert dropped.path is None and not (tmp_path / "passed.jsonl.gz").exists()
    with pytest.raises(ValueError, match="closed"):
        dropped.write(RECORDS[1])


def test_a_compressed_run_is_never_continued(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl.gz"
    with BufferedEvidence(path, key=None) as buffered:
        buffered.write(RECORDS[0])
    with pytest.raises(UsageError, match="a compressed sweep run is a finished rehearsal"):
        EvidenceWriter.resume(path, seq=1, prev_hash="0" * 64)
    assert zlib.decompress(path.read_bytes(), 31).count(b"\n") == 1
