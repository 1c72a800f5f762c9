"""The installed command: version, exit codes, and bad input as path:line:col with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentundo import __version__
from tests.cli_runner import CLEAN_ENV, Result, invoke
from tests.lint_helpers import write
from tests.unit.test_lint_checks import CLEAN_CATALOG, CLEAN_POLICY, CLEAN_WORKFLOW


def run(*args: str, cwd: Path | None = None) -> Result:
    return invoke(*args, cwd=cwd, clean_env=True, env=dict(CLEAN_ENV))


def test_version() -> None:
    done = run("--version")
    assert (done.returncode, done.stdout) == (0, f"agentundo {__version__}\n")


def test_clean_project_exits_0(tmp_path: Path) -> None:
    write(tmp_path, "catalog.yaml", CLEAN_CATALOG)
    write(tmp_path, "policy.yaml", CLEAN_POLICY)
    write(tmp_path, "wf.yaml", CLEAN_WORKFLOW)
    done = run("lint", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 files checked: 0 errors, 0 warnings, 0 infos" in done.stdout


def test_findings_exit_1_and_json_shape(tmp_path: Path) -> None:
    write(tmp_path, "catalog.yaml", "version: v1\ntopics:\n  a.b:\n    side_effect: true\n")
    done = run("lint", "--format", "json", str(tmp_path))
    assert done.returncode == 1
    findings = json.loads(done.stdout)
    assert {f["code"] for f in findings} == {"AU101", "AU201"}
    first = findings[0]
    assert set(first) >= {"code", "severity", "message", "path", "line", "column"}
    assert (first["line"], first["column"], first["severity"]) == (3, 3, "error")


def test_warnings_alone_exit_0(tmp_path: Path) -> None:
    write(tmp_path, "catalog.yaml", CLEAN_CATALOG)
    write(
        tmp_path,
        "policy.yaml",
        "version: v1\nrules:\n  - {id: r, when: {topic: 'nope.*'}, decision: allow}\n",
    )
    done = run("lint", str(tmp_path))
    assert done.returncode == 0, done.stdout
    assert "AU306" in done.stdout


BAD_INPUTS = [
    ("dup.yaml", "version: v1\ntopics: {}\ntopics: {}\n", ":3:1: error: duplicate key 'topics'"),
    (
        "unknown.yaml",
        "version: v1\ntopic: {}\n",
        ":2:1: error: unknown key 'topic': cannot tell what this file is (hint: did you mean 'topics'?)",
    ),
    ("type.yaml", "version: v1\ntopics: []\n", ":2:9: error: topics must be object, not a list"),
    (
        "bool.yaml",
        "version: v1\ntopics:\n  a: {side_effect: yes}\n",
        ":3:20: error: ambiguous value 'yes'",
    ),
    ("syntax.yaml", "version: v1\ntopics: {\n", ":3:1: error: YAML syntax error"),
    ("empty.yaml", "", ":1:1: error: file is empty"),
    ("binary.yaml", b"\x00\x01\x02", ":1:1: error: file looks binary"),
    ("latin1.yaml", b"version: v1\nworkflow: caf\xe9\n", ":2:14: error: file is not valid UTF-8"),
]


@pytest.mark.parametrize(
    ("name", "content", "expected"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS]
)
def test_bad_input_exits_2_with_position(
    tmp_path: Path, name: str, content: str | bytes, expected: str
) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    done = run("lint", str(path))
    assert done.returncode == 2
    assert f"{path}{expected}" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_missing_path_exits_2(tmp_path: Path) -> None:
    done = run("lint", str(tmp_path / "absent"))
    assert done.returncode == 2
    assert f"{tmp_path / 'absent'}: error: no such file or directory" in done.stderr


def test_unknown_option_is_a_usage_error() -> None:
    done = run("lint", "--no-such-flag")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["drill", "w.yaml", "--catalog", "c.yaml", "--policy", "p.yaml", "--seed", "abc"],
            "agentundo: error: Invalid value for '--seed': 'abc' is not a valid int. "
            "(see 'agentundo drill --help')",
        ),
        (
            ["lint", "--bogus"],
            "agentundo: error: No such option: --bogus (see 'agentundo lint --help')",
        ),
        (
            ["drill", "w.yaml"],
            "agentundo: error: Missing option '--catalog'. (see 'agentundo drill --help')",
        ),
    ],
)
def test_command_line_mistakes_are_one_line_and_exit_2(args: list[str], line: str) -> None:
    done = run(*args)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", line + "\n")


def test_no_command_prints_the_help_and_exits_2() -> None:
    done = run()
    assert done.returncode == 2
    assert done.stdout.startswith("Usage: agentundo [OPTIONS] COMMAND [ARGS]...")


@pytest.mark.parametrize("command", [["lint", "."], ["drill", "wf.yaml"], ["timeline", "ev"]])
def test_a_deleted_working_directory_is_a_usage_error(tmp_path: Path, command: list[str]) -> None:
    """A real process whose working directory was removed under it exits 2 with one line,
    not a FileNotFoundError traceback from os.getcwd()."""
    import subprocess
    import sys

    gone = tmp_path / "gone"
    gone.mkdir()
    script = (
        "import os, sys; os.chdir(sys.argv[1]); os.rmdir(sys.argv[1]); "
        "from agentundo.cli.main import main; sys.exit(main(sys.argv[2:]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(gone), *command],
        capture_output=True,
        text=True,
        timeout=60,
        env=CLEAN_ENV,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "the working directory cannot be read" in done.stderr
