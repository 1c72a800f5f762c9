"""`python -m agentundo`: the real entry point, once per command, in a real subprocess.

Everything else runs the CLI in the test process (tests/cli_runner.py); these check that
the module entry point starts, parses its arguments, prints and exits as the in-process
runner assumes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agentundo import __version__
from tests.cli_runner import CLEAN_ENV
from tests.evidence_factory import standard_run
from tests.saga_helpers import CATALOG, POLICY, WORKFLOW, write

FIXTURES = Path(__file__).parents[1] / "fixtures" / "mcp"


def agentundo(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentundo", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        env={**CLEAN_ENV, "PYTHONPATH": str(Path(__file__).parents[2] / "src")},
        check=False,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write(tmp_path, "wf.yaml", WORKFLOW)
    write(tmp_path, "catalog.yaml", CATALOG)
    write(tmp_path, "policy.yaml", POLICY)
    standard_run(tmp_path / "run-1.jsonl")
    return tmp_path


def test_version(tmp_path: Path) -> None:
    done = agentundo("--version", cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"agentundo {__version__}\n", "")


def test_lint(project: Path) -> None:
    done = agentundo("lint", "-f", "json", "catalog.yaml", "policy.yaml", "wf.yaml", cwd=project)
    assert done.returncode in (0, 1), done.stderr
    assert isinstance(json.loads(done.stdout), list)


def test_rules(tmp_path: Path) -> None:
    done = agentundo("rules", "AU101", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("AU101 rollback-tag-missing\n")


def test_explain(project: Path) -> None:
    args = ("explain", "-p", "policy.yaml", "-c", "catalog.yaml", "-t", "payments.charge")
    done = agentundo(*args, "-f", "json", cwd=project)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["decision"] == "allow"


def test_drill(project: Path) -> None:
    args = ("drill", "wf.yaml", "--catalog", "catalog.yaml", "--policy", "policy.yaml")
    done = agentundo(*args, "--fail-at", "ship", "--evidence", "ev", "-f", "json", cwd=project)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["verdict"] == "recovered"


def test_timeline(project: Path) -> None:
    done = agentundo("timeline", "--verify", "-q", "run-1.jsonl", cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verified (hash chain intact, run complete)" in done.stdout


def test_catalog_import(tmp_path: Path) -> None:
    done = agentundo(
        "catalog", "import", "--from-json", str(FIXTURES / "tools_list.json"), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("# Imported from MCP tools/list")


def test_a_usage_error_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = agentundo("lint", "--bogus", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert (
        done.stderr == "agentundo: error: No such option: --bogus (see 'agentundo lint --help')\n"
    )
