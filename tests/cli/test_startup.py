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


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """``python -X importtime -m agentundo ARGS`` (the lint cache: this test's own)."""
    environ = {k: v for k, v in os.environ.items() if k not in ("GITHUB_ACTIONS", "FORCE_COLOR")}
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "agentundo", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def names(done: subprocess.CompletedProcess[str]) -> set[str]:
    assert "Traceback" not in done.stderr
    return {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}


def imported(*args: str, cwd: Path = ROOT) -> set[str]:
    return names(run(*args, cwd=cwd))


@pytest.mark.parametrize("args", [["rules"], ["rules", "AU101"], ["lint", "--help"], ["--help"]])
def test_commands_that_validate_no_file_do_not_import_pydantic(args: list[str]) -> None:
    found = imported(*args)
    assert "typer" in found
    assert "pydantic" not in found
    assert "pydantic_core" not in found


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name, text in (("catalog.yaml", FINDINGS_CATALOG), ("policy.yaml", FINDINGS_POLICY)):
        (tmp_path / name).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return tmp_path


def test_text_lint_into_a_pipe_imports_no_rich(project: Path) -> None:
    found = imported("lint", "--no-cache", cwd=project)
    assert "agentundo.report.text" in found
    assert "rich" not in found


def test_foreign_policy_model_only_when_a_foreign_policy_is_loaded(project: Path) -> None:
    assert "agentundo.model.foreign_policy" not in imported("lint", "-f", "json", cwd=project)
    (project / "guard.yaml").write_text(
        "rules:\n  - id: r1\n    match: {topics: 'email.*'}\n    decision: throttle\n",
        encoding="utf-8",
    )
    assert "agentundo.model.foreign_policy" in imported("lint", "-f", "json", cwd=project)


def _report(done: subprocess.CompletedProcess[str]) -> tuple[int, str]:
    return done.returncode, done.stdout


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_a_warm_lint_replays_its_report_without_the_parser_or_models(
    project: Path, fmt: str
) -> None:
    cold = run("lint", "-f", fmt, cwd=project)
    assert {"yaml", "pydantic", "agentundo.lint.project"} <= names(cold)
    warm = run("lint", "-f", fmt, cwd=project)
    assert names(warm).isdisjoint({"yaml", "pydantic", "rich", "agentundo.lint.project"})
    assert _report(warm) == _report(cold)
    assert cold.returncode == 1
    bypass = run("lint", "-f", fmt, "--no-cache", cwd=project)
    assert "yaml" in names(bypass)
    assert _report(bypass) == _report(cold)


def test_an_edit_between_runs_is_linted(project: Path) -> None:
    assert run("lint", "-f", "json", cwd=project).returncode == 1
    policy = project / "policy.yaml"
    policy.write_text(policy.read_text(encoding="utf-8") + "  - {id: bad\n", encoding="utf-8")
    done = run("lint", "-f", "json", cwd=project)
    assert "yaml" in names(done)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if not line.startswith("import time")]
    assert errors and errors[0].startswith("policy.yaml:") and ": error: YAML syntax" in errors[0]


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github", "junit", "gitlab"])
def test_every_format_reads_the_same_from_a_replayed_result(
    project: Path, fmt: str, tmp_path: Path
) -> None:
    from tests.cli_runner import invoke

    (project / "broken.yaml").write_text("version: v1\nversion: v1\ntopics: {}\n", "utf-8")
    (project / "compose.yaml").write_text("services: {web: {image: nginx}}\n", "utf-8")
    args = ("lint", "-f", fmt, "-v", "--fail-on", "warning")
    cold = invoke(*args, "--no-cache", cwd=project)
    first = invoke(*args, cwd=project)
    warm = invoke(*args, cwd=project)
    assert cold.returncode == first.returncode == warm.returncode == 2
    assert cold.stdout == first.stdout == warm.stdout
    assert cold.stderr == first.stderr == warm.stderr
    assert "compose.yaml: passed over" in warm.stderr
    written = invoke(*args, "-o", str(tmp_path / "report"), cwd=project)
    assert written.returncode == 2
    assert invoke(*args, "-o", "catalog.yaml", cwd=project).returncode == 2  # never overwritten
    assert (project / "catalog.yaml").read_text("utf-8").startswith("version: v1")


def test_a_command_builds_only_its_own_module_and_help_lists_them_all() -> None:
    from agentundo.cli.main import COMMANDS

    script = (
        "import sys\n"
        "from agentundo.cli.main import main\n"
        "try:\n    main(['lint', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(' '.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert "Usage: agentundo lint" in done.stdout
    modules = {f"agentundo.cli.{name}" for name in COMMANDS}
    assert set(done.stderr.split()) & modules == {"agentundo.cli.lint"}
    listed = run("--help")
    assert listed.returncode == 0
    for name in ("lint", "rules", "explain", "drill", "recover", "timeline", "catalog"):
        assert f" {name} " in listed.stdout
