"""Inputs a reviewer found accepted or crashing: each is now exit 2 with one clear line.

Every test runs the installed command in a real subprocess on real files.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.cli_runner import CLEAN_ENV, Result, invoke

CATALOG = """\
# The catalog.

version: v1
kind: catalog
topics:
  tickets.read:
    side_effect: false
  email.send:  # AGENTUNDO: IGNORE[au101, AU201] legacy, see T-12
    side_effect: true
    risk: low
"""

POLICY = """\
version: v1
kind: policy
rules:
  - id: allow-reads
    when: {side_effect: false}
    decision: allow
"""

WORKFLOW = """\
version: v1
kind: workflow
workflow: read
env: staging
steps:
  - id: read
    topic: tickets.read
"""


def run(cwd: Path, *args: str) -> Result:
    return invoke(*args, cwd=cwd, clean_env=True, env=CLEAN_ENV)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name, text in (("catalog.yaml", CATALOG), ("policy.yaml", POLICY), ("wf.yaml", WORKFLOW)):
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def test_the_project_is_clean(project: Path) -> None:
    done = run(project, "lint")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        done.stdout.splitlines()[-1]
        == "3 files checked: 0 errors, 0 warnings, 0 infos, 2 suppressed - clean"
    )


@pytest.mark.parametrize("setup", ["empty", "other"])
def test_a_directory_without_agentundo_files_is_an_input_error(tmp_path: Path, setup: str) -> None:
    target = tmp_path / "policies"
    target.mkdir()
    if setup == "other":
        (target / "ci.yml").write_text("name: ci\non: push\njobs: {}\n", encoding="utf-8")
    done = run(tmp_path, "lint", "policies")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "policies: error: no agentundo files found under policies (hint: agentundo reads "
        "*.yaml and *.yml files with a top-level 'version' or 'kind'; check the path)"
    ]


def test_a_configured_path_without_agentundo_files_is_an_input_error(project: Path) -> None:
    (project / "agentundo.toml").write_text('paths = ["polices/"]\n', encoding="utf-8")
    (project / "polices").mkdir()
    done = run(project, "lint")
    assert done.returncode == 2
    assert "polices: error: no agentundo files found under polices" in done.stderr


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("pyproject.toml", b"\x00\x01\xff", "pyproject.toml: not a UTF-8 text file"),
        ("pyproject.toml", b"[project\n", "pyproject.toml: invalid TOML"),
        ("agentundo.toml", b"\xfe\xff", "agentundo.toml: not a UTF-8 text file"),
    ],
)
def test_a_broken_configuration_file_is_an_input_error(
    project: Path, name: str, content: bytes, message: str
) -> None:
    (project / name).write_bytes(content)
    done = run(project, "lint")
    assert done.returncode == 2
    assert done.stderr.startswith(f"agentundo: error: {project / name}")
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["lint", "--env", ""], "agentundo: error: --env needs a name, not an empty string"),
        (["lint", "-e", "production", "-e", " "], "--env needs a name, not an empty string"),
        (["explain", "-p", "policy.yaml", "-t", ""], "--topic needs a name, not an empty string"),
        (["explain", "-p", "policy.yaml", "-t", "x", "-e", ""], "--env needs a name"),
        (["explain", "-p", "policy.yaml", "-t", "x", "--workflow", ""], "--workflow needs a name"),
        (["lint", "--select", ""], "--select needs a code or code prefix, not an empty value"),
        (["lint", "--output", ""], "--output needs a file name, not an empty string"),
        (["lint", "--ignore", " , "], "--ignore needs a code or code prefix, not an empty value"),
    ],
)
def test_an_empty_name_is_a_usage_error(project: Path, args: list[str], message: str) -> None:
    done = run(project, *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["explain", "-p", "catalog.yaml", "-t", "x"],
        ["drill", "catalog.yaml", "--catalog", "catalog.yaml", "--policy", "policy.yaml"],
    ],
)
def test_a_file_of_the_wrong_kind_is_reported_at_its_kind_key(
    project: Path, args: list[str]
) -> None:
    done = run(project, *args)
    assert done.returncode == 2
    wanted = "policy" if args[0] == "explain" else "workflow"
    assert done.stderr.splitlines() == [
        f"catalog.yaml:4:1: error: expected a {wanted} file, found a catalog file"
    ]


def test_a_misspelt_suppression_is_a_finding(project: Path) -> None:
    catalog = project / "catalog.yaml"
    catalog.write_text(
        CATALOG.replace("# AGENTUNDO: IGNORE[au101, AU201]", "# agentundo ignore[AU101, AU201]"),
        encoding="utf-8",
    )
    done = run(project, "lint", "--format", "github")
    assert done.returncode == 1
    assert sorted(line.split("title=")[1].split("::")[0] for line in done.stdout.splitlines()) == [
        "AU101",
        "AU201",
        "AU903",
    ]


def test_a_fifo_in_a_directory_is_an_input_error_not_a_hang(project: Path) -> None:
    os.mkfifo(project / "pipe.yaml")
    done = run(project, "lint", ".")
    assert done.returncode == 2
    assert "pipe.yaml: error: not a regular file or directory" in done.stderr


def test_a_file_name_that_is_not_utf8_is_an_input_error_in_every_format(project: Path) -> None:
    (project / "bad").mkdir()
    os.rename(project / "catalog.yaml", os.path.join(os.fsencode(project / "bad"), b"\xff.yaml"))
    for fmt in ("text", "json", "sarif", "github", "junit", "gitlab"):
        done = run(project, "lint", "bad", "--format", fmt)
        assert done.returncode == 2, (fmt, done.stderr)
        assert "Traceback" not in done.stderr
        assert "bad/\\xff.yaml: error: the file name is not valid UTF-8" in done.stderr
        assert "no agentundo files found" not in done.stderr


def test_one_file_reached_by_two_names_is_read_once(project: Path) -> None:
    (project / "alias.yaml").symlink_to(project / "catalog.yaml")
    done = run(project, "lint", ".", str(project / "catalog.yaml"), "../" + project.name)
    assert done.returncode == 0, done.stdout
    assert done.stdout.splitlines()[-1].startswith("3 files checked: 0 errors")


@pytest.mark.parametrize("via_link", [False, True])
def test_output_never_overwrites_a_file_being_linted(project: Path, via_link: bool) -> None:
    target = "catalog.yaml"
    if via_link:
        (project / "report.json").symlink_to(project / "catalog.yaml")
        target = "report.json"
    done = run(project, "lint", ".", "--format", "json", "--output", target)
    assert done.returncode == 2
    assert done.stderr == (
        f"agentundo: error: --output {target} is one of the files being linted; "
        "the report would overwrite it\n"
    )
    assert (project / "catalog.yaml").read_text(encoding="utf-8") == CATALOG
