"""What each command imports at start-up, read from a real interpreter's ``-X importtime``.

The figures are in docs/performance.md ("Start-up"); these tests hold the causes: no
pydantic where no file is validated, no rich unless a terminal gets the text report, no
foreign-policy model unless a foreign policy is loaded.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.samples import FINDINGS_CATALOG, FINDINGS_POLICY

ROOT = Path(__file__).parents[2]


def imported(*args: str, cwd: Path = ROOT) -> set[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("GITHUB_ACTIONS", "FORCE_COLOR")}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "agentundo", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in done.stderr
    return {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}


@pytest.mark.parametrize("args", [["rules"], ["rules", "AU101"], ["lint", "--help"], ["--help"]])
def test_commands_that_validate_no_file_do_not_import_pydantic(args: list[str]) -> None:
    names = imported(*args)
    assert "typer" in names
    assert "pydantic" not in names
    assert "pydantic_core" not in names


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name, text in (("catalog.yaml", FINDINGS_CATALOG), ("policy.yaml", FINDINGS_POLICY)):
        (tmp_path / name).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return tmp_path


def test_text_lint_into_a_pipe_imports_no_rich(project: Path) -> None:
    names = imported("lint", cwd=project)
    assert "agentundo.report.text" in names
    assert "rich" not in names


def test_foreign_policy_model_only_when_a_foreign_policy_is_loaded(project: Path) -> None:
    assert "agentundo.model.foreign_policy" not in imported("lint", "-f", "json", cwd=project)
    (project / "guard.yaml").write_text(
        "rules:\n  - id: r1\n    match: {topics: 'email.*'}\n    decision: throttle\n",
        encoding="utf-8",
    )
    assert "agentundo.model.foreign_policy" in imported("lint", "-f", "json", cwd=project)
