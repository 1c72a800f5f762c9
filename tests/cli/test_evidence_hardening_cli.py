"""Hostile input and keyed evidence, as a user meets them: exit codes, text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentundo.evidence.chain import GENESIS, seal
from tests.cli_runner import CLEAN_ENV, Result, invoke
from tests.evidence_factory import START, clean_run, standard_run
from tests.saga_helpers import CATALOG, POLICY, WORKFLOW, write

ROOT = Path(__file__).resolve().parents[2]
KEY = "cli-test-evidence-key-9f8e7d6c5b4a"
OTHER_KEY = "a-different-key-of-enough-length"


def agentundo(*args: str, cwd: Path, key: str | None = None, timeout: float = 120) -> Result:
    env = {**CLEAN_ENV, "AGENTUNDO_EVIDENCE_KEY": key}
    return invoke(*args, cwd=cwd, timeout=timeout, clean_env=True, env=env)


def no_traceback(done: Result) -> None:
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "Error:" not in done.stderr.replace("error:", ""), done.stderr[-3000:]


# --- 1. deeply nested JSON --------------------------------------------------------------

DEEP_LINES = {
    "brackets": "[" * 100_000,
    "objects": '{"a":' * 100_000 + "1" + "}" * 100_000,
}
MODES = [(), ("--verify",), ("--summary",), ("--summary", "--verify"), ("-f", "json", "--verify")]


@pytest.mark.parametrize("mode", MODES, ids=" ".join)
@pytest.mark.parametrize("name", DEEP_LINES)
def test_a_file_of_one_deep_line_is_not_evidence(tmp_path: Path, name: str, mode: Any) -> None:
    (tmp_path / "deep.jsonl").write_text(DEEP_LINES[name] + "\n")
    done = agentundo("timeline", *mode, "deep.jsonl", cwd=tmp_path)
    no_traceback(done)
    assert done.returncode == 2
    assert "deep.jsonl:1:1: error: not an evidence file" in done.stderr


@pytest.mark.parametrize("name", DEEP_LINES)
def test_a_deep_line_inside_evidence_is_a_malformed_line(tmp_path: Path, name: str) -> None:
    path = standard_run(tmp_path / "run-1.jsonl")
    lines = path.read_text().splitlines(keepends=True)
    lines.insert(5, DEEP_LINES[name] + "\n")
    path.write_text("".join(lines))
    message = "malformed line: arrays or objects nested more than 500 levels deep"
    shown = agentundo("timeline", "run-1.jsonl", cwd=tmp_path)
    no_traceback(shown)
    assert shown.returncode == 0
    assert f"run-1.jsonl:6:1: warning: {message}" in shown.stderr
    for mode in (("--verify",), ("--summary", "--verify")):
        verified = agentundo("timeline", *mode, "run-1.jsonl", cwd=tmp_path)
        no_traceback(verified)
        assert verified.returncode == 1
        assert f"run-1.jsonl:6: EV001 {message} [malformed-line]" in (
            verified.stdout + verified.stderr
        )


def test_catalog_import_of_deeply_nested_json_is_an_input_error(tmp_path: Path) -> None:
    for name, text in {**DEEP_LINES, "tools": '{"tools":' + "[" * 100_000}.items():
        (tmp_path / f"{name}.json").write_text(text)
        done = agentundo("catalog", "import", "--from-json", f"{name}.json", cwd=tmp_path)
        no_traceback(done)
        assert (done.returncode, done.stdout) == (2, "")
        assert (
            f"{name}.json: error: not usable JSON: arrays or objects nested too deeply to read"
            in done.stderr
        )


# --- 2. huge --since / --until offsets --------------------------------------------------


def test_a_huge_offset_is_a_usage_error(tmp_path: Path) -> None:
    standard_run(tmp_path / "run-1.jsonl")
    for option in ("--since", "--until"):
        for value in ("+99999999999999999999h", "+99999999h", "+" + "9" * 400):
            done = agentundo("timeline", option, value, "run-1.jsonl", cwd=tmp_path)
            no_traceback(done)
            assert done.returncode == 2
            assert "offset too large; an offset from the run's start is at most +876000h" in (
                done.stderr
            )


def test_an_offset_from_a_run_at_the_end_of_time_does_not_overflow(tmp_path: Path) -> None:
    late = START.replace(year=9999, month=12, day=31)
    clean_run(tmp_path / "late.jsonl", start=late)
    done = agentundo("timeline", "-f", "json", "--until", "+876000h", "late.jsonl", cwd=tmp_path)
    no_traceback(done)
    assert done.returncode == 0
    assert len(done.stdout.splitlines()) == 11
    since = agentundo("timeline", "-f", "json", "--since", "+876000h", "late.jsonl", cwd=tmp_path)
    assert (since.returncode, since.stdout) == (0, "")


# --- 3. --verify on input that is not evidence ------------------------------------------


def test_verify_of_no_evidence_does_not_claim_verification(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "policy.yaml").write_text("version: v1\nrules: []\n")
    for files in (("empty.jsonl",), ("policy.yaml",), ("empty.jsonl", "policy.yaml")):
        done = agentundo("timeline", "--verify", *files, cwd=tmp_path)
        no_traceback(done)
        assert done.returncode == 2
        assert "verified" not in done.stdout
        last = done.stderr.splitlines()[-1]
        count = f"{len(files)} file{'s' if len(files) > 1 else ''}"
        assert last == (
            f"agentundo timeline: nothing verified: {count} could not be read as evidence "
            "(see above)"
        )
    assert "empty.jsonl: error: empty evidence file: no records" in done.stderr
    assert "policy.yaml:1:1: error: not an evidence file" in done.stderr


def test_verify_of_evidence_and_non_evidence_says_which_was_verified(tmp_path: Path) -> None:
    clean_run(tmp_path / "ok.jsonl")
    (tmp_path / "empty.jsonl").write_text("")
    done = agentundo("timeline", "--verify", "-q", "ok.jsonl", "empty.jsonl", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout.startswith("✓ ok.jsonl: verified")
    assert done.stderr.splitlines()[-1] == (
        "agentundo timeline: 1 file checked, all verified; 1 more could not be read as "
        "evidence and was not verified"
    )


# --- 4. keyed sealing, end to end with a real drill -------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write(tmp_path, "wf.yaml", WORKFLOW)
    write(tmp_path, "catalog.yaml", CATALOG)
    write(tmp_path, "policy.yaml", POLICY)
    return tmp_path


DRILL = ("drill", "wf.yaml", "--catalog", "catalog.yaml", "--policy", "policy.yaml")


def keyed_drill(project: Path) -> Path:
    done = agentundo(*DRILL, "--fail-at", "ship", "--evidence", "ev", cwd=project, key=KEY)
    assert done.returncode == 0, done.stderr
    assert KEY not in done.stdout + done.stderr
    (path,) = (project / "ev").glob("*.jsonl")
    return path


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def forge(path: Path, index: int, change: dict[str, Any]) -> None:
    """Edit record ``index`` and recompute every later hash, as a forger without the key."""
    records = rows(path)
    prev = records[index - 1]["hash"] if index else GENESIS
    for at in range(index, len(records)):
        body = {k: v for k, v in records[at].items() if k not in ("hash", "prev_hash")}
        if at == index:
            body.update(change)
            body = {k: v for k, v in body.items() if v is not None}
        records[at] = seal(body, prev)
        prev = records[at]["hash"]
    path.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records))


def verify(project: Path, path: Path, key: str | None) -> Result:
    done = agentundo(
        "timeline", "--verify", "-q", str(path.relative_to(project)), cwd=project, key=key
    )
    no_traceback(done)
    if key is not None:
        assert key not in done.stdout + done.stderr
    return done


def test_a_keyed_drill_verifies_with_its_key_and_prints_its_head(project: Path) -> None:
    path = keyed_drill(project)
    assert KEY not in path.read_text()
    records = rows(path)
    assert records[0]["mac"] == "hmac-sha256"
    done = verify(project, path, KEY)
    assert done.returncode == 0, done.stdout + done.stderr
    name = path.relative_to(project)
    assert done.stdout == (
        f"✓ {name}: verified (hash chain intact, run complete)\n"
        f"  chain {records[0]['run_id']}: head {records[-1]['hash']} (seq {records[-1]['seq']}; "
        "hmac-sha256, keyed: MACs checked with AGENTUNDO_EVIDENCE_KEY)\n"
    )
    assert done.stderr == "agentundo timeline: 1 file checked, all verified\n"
    as_json = agentundo("timeline", "--verify", "-f", "json", str(name), cwd=project, key=KEY)
    assert as_json.returncode == 0
    assert f"{name}: chain {records[0]['run_id']}: head {records[-1]['hash']}" in as_json.stderr


def test_a_resealed_forgery_fails_with_the_key(project: Path) -> None:
    path = keyed_drill(project)
    forge(path, 2, {"actor": "agent:someone-else"})
    name = path.relative_to(project)
    done = verify(project, path, KEY)
    assert done.returncode == 1
    assert (
        f"{name}:3: EV101 MAC (hmac-sha256) does not match: the first bad record of this run; "
        "it was edited, or sealed without this key [hash-mismatch]"
    ) in done.stdout
    assert f"{name}:4: EV101 " in done.stdout
    assert "1 of 1 failed verification" in done.stderr
    wrong = verify(project, path, OTHER_KEY)
    assert wrong.returncode == 1
    assert "every record of this run fails its MAC" in wrong.stdout


def test_a_keyed_file_without_the_key_is_not_verified(project: Path) -> None:
    path = keyed_drill(project)
    done = verify(project, path, None)
    assert done.returncode == 1
    assert (
        "EV107 the chain is keyed (hmac-sha256); AGENTUNDO_EVIDENCE_KEY is not set, so its "
        "records' MACs were not checked (only their order, links and completeness) "
        "[mac-unchecked]"
    ) in done.stdout
    assert "MACs NOT checked (AGENTUNDO_EVIDENCE_KEY not set)" in done.stdout
    assert "verified (hash chain intact" not in done.stdout


def test_an_unkeyed_file_says_what_its_chain_cannot_prove(project: Path) -> None:
    done = agentundo(*DRILL, "--evidence", "ev", cwd=project)
    assert done.returncode == 0, done.stderr
    (path,) = (project / "ev").glob("*.jsonl")
    assert "mac" not in rows(path)[0]
    plain = verify(project, path, None)
    assert plain.returncode == 0
    assert (
        "sha256, unkeyed: detects corruption and truncation, not a deliberate reseal"
        in plain.stdout
    )
    forge(path, 2, {"actor": "agent:someone-else"})  # the limitation, stated and shown
    assert verify(project, path, None).returncode == 0
    keyed = verify(project, path, KEY)
    assert keyed.returncode == 1
    assert "EV108 AGENTUNDO_EVIDENCE_KEY is set but this chain is not keyed" in keyed.stdout


def test_a_downgraded_keyed_file_fails_with_the_key(project: Path) -> None:
    path = keyed_drill(project)
    forge(path, 0, {"mac": None})
    done = verify(project, path, KEY)
    assert done.returncode == 1
    assert ":1: EV108 " in done.stdout


@pytest.mark.parametrize("value", ["", "too-short"])
def test_an_unusable_key_is_a_usage_error_that_does_not_echo_it(project: Path, value: str) -> None:
    clean_run(project / "ok.jsonl")
    for args in (
        (*DRILL, "--evidence", "ev"),
        ("timeline", "--verify", "ok.jsonl"),
        ("timeline", "--summary", "--verify", "ok.jsonl"),
    ):
        done = agentundo(*args, cwd=project, key=value)
        no_traceback(done)
        assert done.returncode == 2, args
        assert done.stderr.startswith("agentundo: error: AGENTUNDO_EVIDENCE_KEY is ")
        assert not value or value not in done.stderr
    assert not (project / "ev").exists()


def test_a_repeated_key_cannot_change_a_keyed_record_unseen(project: Path) -> None:
    # readers that keep the first of two keys see the forged verdict; json.loads keeps
    # the last (the original), so the MAC alone would still match
    path = keyed_drill(project)
    lines = path.read_bytes().splitlines(keepends=True)
    assert b'"event":"run_summary"' in lines[-1]
    lines[-1] = b'{"verdict":"failed",' + lines[-1][1:]
    path.write_bytes(b"".join(lines))
    done = verify(project, path, KEY)
    assert done.returncode == 1
    name = path.relative_to(project)
    assert f"{name}:{len(lines)}: EV109 the line is not the compact JSON" in done.stdout
    assert "EV101" not in done.stdout
