"""`agentundo lint` as CI runs it: real files in tmp_path, exit codes, every format, and
hostile input (each mistake is exit 2 with one clear line).

The command runs in this process (tests/cli_runner.py); start-up import checks run a
real interpreter with ``-X importtime``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import CLEAN_ENV, Result, invoke
from tests.samples import FINDINGS_CATALOG, FINDINGS_POLICY

CATALOG = FINDINGS_CATALOG
POLICY = FINDINGS_POLICY

SUMMARY = "2 files checked: 1 error, 1 warning, 0 infos"


def run(cwd: Path, *args: str, env: dict[str, str] | None = None, importtime: bool = False) -> Any:
    if not importtime:  # in this process; start-up imports need a fresh interpreter
        return invoke(*args, cwd=cwd, env={"GITHUB_ACTIONS": None, "NO_COLOR": None, **(env or {})})
    environ = {k: v for k, v in os.environ.items() if k not in ("GITHUB_ACTIONS", "NO_COLOR")}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "agentundo", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name, text in (("catalog.yaml", CATALOG), ("policy.yaml", POLICY)):
        (tmp_path / name).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return tmp_path


def codes(out: str) -> list[str]:
    return [item["code"] for item in json.loads(out)]


def test_default_text_report(project: Path) -> None:
    done = run(project, "lint")
    assert done.returncode == 1
    assert done.stdout.splitlines()[0] == "catalog.yaml"
    assert done.stdout.splitlines()[-1] == SUMMARY
    assert "\x1b[" not in done.stdout
    assert done.stderr == ""


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github", "junit", "gitlab"])
def test_every_format_from_the_command_line(project: Path, fmt: str) -> None:
    done = run(project, "lint", "--format", fmt, ".")
    assert done.returncode == 1, done.stderr
    assert "AU101" in done.stdout and "AU305" in done.stdout


def test_unknown_format_is_a_usage_error(project: Path) -> None:
    done = run(project, "lint", "--format", "xml")
    assert done.returncode == 2
    assert "unknown format 'xml'" in done.stderr


def test_output_file_and_summary_on_the_terminal(project: Path) -> None:
    done = run(project, "lint", "--format", "sarif", "--output", "out/report.sarif")
    assert done.returncode == 2  # the directory does not exist
    assert "--output out/report.sarif: cannot write" in done.stderr
    done = run(project, "lint", "--format", "sarif", "--output", "report.sarif")
    assert done.returncode == 1
    assert done.stdout == f"{SUMMARY} (report: report.sarif)\n"
    log = json.loads((project / "report.sarif").read_text(encoding="utf-8"))
    assert [r["ruleId"] for r in log["runs"][0]["results"]] == ["AU101", "AU305"]


def test_github_actions_adds_annotations_to_the_text_report(project: Path) -> None:
    done = run(project, "lint", env={"GITHUB_ACTIONS": "true"})
    lines = done.stdout.splitlines()
    assert SUMMARY in lines
    assert [line.split("::")[1] for line in lines if line.startswith("::")] == [
        "error file=catalog.yaml,line=18,col=3,title=AU101",
        "warning file=policy.yaml,line=9,col=5,title=AU305",
    ]
    asked = run(project, "lint", "--format", "json", env={"GITHUB_ACTIONS": "true"})
    assert codes(asked.stdout) == ["AU101", "AU305"]


def test_no_color_and_forced_terminal(project: Path) -> None:
    coloured = run(project, "lint", env={"FORCE_COLOR": "1", "TTY_COMPATIBLE": "1"})
    assert "\x1b[" in coloured.stdout
    plain = run(project, "lint", env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert "\x1b[1;31m" not in plain.stdout


@pytest.mark.parametrize(("level", "code"), [("error", 1), ("warning", 1), ("info", 1)])
def test_fail_on(project: Path, level: str, code: int) -> None:
    assert run(project, "lint", "--fail-on", level).returncode == code


def test_fail_on_warning_and_error_only(project: Path) -> None:
    assert run(project, "lint", "--ignore", "AU101").returncode == 0
    assert run(project, "lint", "--ignore", "AU101", "--fail-on", "warning").returncode == 1
    assert run(project, "lint", "--fail-on", "fatal").returncode == 2


def test_select_and_ignore_by_code_and_prefix(project: Path) -> None:
    assert codes(run(project, "lint", "-f", "json", "--select", "AU3").stdout) == ["AU305"]
    assert codes(run(project, "lint", "-f", "json", "--select", "au101,AU305").stdout) == [
        "AU101",
        "AU305",
    ]
    assert codes(run(project, "lint", "-f", "json", "--ignore", "AU1").stdout) == ["AU305"]
    done = run(project, "lint", "--select", "AU7")
    assert done.returncode == 2
    assert "--select AU7: no check has this code or prefix; codes start with AU1," in done.stderr
    near = run(project, "lint", "--select", "AU1011")
    assert "--select AU1011: no check has this code or prefix; did you mean AU101?" in near.stderr


def test_inline_suppression(project: Path) -> None:
    catalog = project / "catalog.yaml"
    text = catalog.read_text(encoding="utf-8")
    catalog.write_text(
        text.replace("email.send:", "email.send:  # agentundo: ignore[AU101] sent by a vendor"),
        encoding="utf-8",
    )
    done = run(project, "lint")
    assert done.stdout.splitlines()[-1] == (
        "2 files checked: 0 errors, 1 warning, 0 infos, 1 suppressed"
    )
    assert done.returncode == 0


def test_configuration_in_pyproject(project: Path) -> None:
    sub = project / "policies"
    sub.mkdir()
    for name in ("catalog.yaml", "policy.yaml"):
        (project / name).rename(sub / name)
    (project / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [tool.agentundo]
            paths = ["policies"]
            fail-on = "warning"
            ignore = ["AU101"]
            """
        ),
        encoding="utf-8",
    )
    done = run(project, "lint", "-f", "json")
    assert codes(done.stdout) == ["AU305"]
    assert done.returncode == 1  # fail-on warning
    assert run(project, "lint", "--fail-on", "error").returncode == 0  # flags override
    assert codes(run(project, "lint", "-f", "json", "--ignore", "AU3").stdout) == ["AU101"]
    nested = sub / "deeper"
    nested.mkdir()
    done = run(nested, "lint", "-f", "json")  # found by walking up; paths from its directory
    assert [Path(i["path"]).name for i in json.loads(done.stdout)] == ["policy.yaml"]


def test_per_file_ignores_and_explicit_config(project: Path) -> None:
    (project / "ci.toml").write_text(
        '[per-file-ignores]\n"catalog.yaml" = ["AU1"]\n', encoding="utf-8"
    )
    done = run(project, "lint", "-f", "json", "--config", "ci.toml")
    assert codes(done.stdout) == ["AU305"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('fail_on = "loud"\n', "agentundo.toml: 'fail-on' is 'loud'"),
        (
            'ignores = ["AU1"]\n',
            "agentundo.toml: unknown key 'ignores' in the file (did you mean 'ignore'?)",
        ),
        ('select = ["AU8"]\n', "agentundo.toml: 'select' AU8: no check has this code or prefix"),
    ],
)
def test_bad_configuration_exits_2(project: Path, text: str, message: str) -> None:
    (project / "agentundo.toml").write_text(text, encoding="utf-8")
    done = run(project, "lint")
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stdout == ""


def test_input_errors_exit_2_and_appear_in_the_report(project: Path) -> None:
    # agentundo's by its shape (version: v1, topics:), broken by a repeated key
    (project / "broken.yaml").write_text("version: v1\nversion: v1\ntopics: {}\n", encoding="utf-8")
    done = run(project, "lint", "-f", "json")
    assert done.returncode == 2
    assert codes(done.stdout) == ["AU101", "AU305", "AU000"]
    assert done.stderr.startswith("broken.yaml:2:1: error: duplicate key 'version'")


def test_json_lint_does_not_import_rich(project: Path) -> None:
    done = run(project, "lint", "-f", "json", importtime=True)
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "rich" not in imported
    assert "agentundo.report.json_" in imported


def test_version_imports_nothing_heavy(tmp_path: Path) -> None:
    done = run(tmp_path, "--version", importtime=True)
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert imported.isdisjoint({"rich", "jsonschema", "pydantic", "httpx", "typer", "yaml"})


def test_help_lists_the_controls_and_completion(tmp_path: Path) -> None:
    root = run(tmp_path, "--help")
    assert "--install-completion" in root.stdout
    assert "rules" in root.stdout and "explain" in root.stdout
    lint = run(tmp_path, "lint", "--help", env={"COLUMNS": "200"})
    for option in ("--format", "--output", "--fail-on", "--select", "--ignore", "--config"):
        assert option in lint.stdout


def test_pre_commit_hook_definition() -> None:
    import yaml

    hooks = yaml.safe_load((Path(__file__).parents[2] / ".pre-commit-hooks.yaml").read_text())
    assert [(h["id"], h["entry"], h["pass_filenames"]) for h in hooks] == [
        ("agentundo-lint", "agentundo lint", False)
    ]


CATALOG_CLEAN = """\
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

POLICY_CLEAN = """\
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


def run_clean(cwd: Path, *args: str) -> Result:
    return invoke(*args, cwd=cwd, clean_env=True, env=CLEAN_ENV)


@pytest.fixture
def project_clean(tmp_path: Path) -> Path:
    for name, text in (
        ("catalog.yaml", CATALOG_CLEAN),
        ("policy.yaml", POLICY_CLEAN),
        ("wf.yaml", WORKFLOW),
    ):
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def test_the_project_is_clean(project_clean: Path) -> None:
    done = run_clean(project_clean, "lint")
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
    done = run_clean(tmp_path, "lint", "policies")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "policies: error: no agentundo files found under policies (hint: agentundo reads "
        "*.yaml and *.yml files that have a kind: of agentundo's, or 'version: v1' and a "
        "kind's keys; check the path)"
    ]


def test_a_configured_path_without_agentundo_files_is_an_input_error(project_clean: Path) -> None:
    (project_clean / "agentundo.toml").write_text('paths = ["polices/"]\n', encoding="utf-8")
    (project_clean / "polices").mkdir()
    done = run_clean(project_clean, "lint")
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
    project_clean: Path, name: str, content: bytes, message: str
) -> None:
    (project_clean / name).write_bytes(content)
    done = run_clean(project_clean, "lint")
    assert done.returncode == 2
    assert done.stderr.startswith(f"agentundo: error: {project_clean / name}")
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
def test_an_empty_name_is_a_usage_error(project_clean: Path, args: list[str], message: str) -> None:
    done = run_clean(project_clean, *args)
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
    project_clean: Path, args: list[str]
) -> None:
    done = run_clean(project_clean, *args)
    assert done.returncode == 2
    wanted = "policy" if args[0] == "explain" else "workflow"
    assert done.stderr.splitlines() == [
        f"catalog.yaml:4:1: error: expected a {wanted} file, found a catalog file"
    ]


def test_a_misspelt_suppression_is_a_finding(project_clean: Path) -> None:
    catalog = project_clean / "catalog.yaml"
    catalog.write_text(
        CATALOG_CLEAN.replace(
            "# AGENTUNDO: IGNORE[au101, AU201]", "# agentundo ignore[AU101, AU201]"
        ),
        encoding="utf-8",
    )
    done = run_clean(project_clean, "lint", "--format", "github")
    assert done.returncode == 1
    assert sorted(line.split("title=")[1].split("::")[0] for line in done.stdout.splitlines()) == [
        "AU101",
        "AU201",
        "AU903",
    ]


def test_a_fifo_in_a_directory_is_an_input_error_not_a_hang(project_clean: Path) -> None:
    os.mkfifo(project_clean / "pipe.yaml")
    done = run_clean(project_clean, "lint", ".")
    assert done.returncode == 2
    assert "pipe.yaml: error: not a regular file or directory" in done.stderr


def test_a_file_name_that_is_not_utf8_is_an_input_error_in_every_format(
    project_clean: Path,
) -> None:
    (project_clean / "bad").mkdir()
    os.rename(
        project_clean / "catalog.yaml",
        os.path.join(os.fsencode(project_clean / "bad"), b"\xff.yaml"),
    )
    for fmt in ("text", "json", "sarif", "github", "junit", "gitlab"):
        done = run_clean(project_clean, "lint", "bad", "--format", fmt)
        assert done.returncode == 2, (fmt, done.stderr)
        assert "Traceback" not in done.stderr
        assert "bad/\\xff.yaml: error: the file name is not valid UTF-8" in done.stderr
        assert "no agentundo files found" not in done.stderr


def test_one_file_reached_by_two_names_is_read_once(project_clean: Path) -> None:
    (project_clean / "alias.yaml").symlink_to(project_clean / "catalog.yaml")
    done = run_clean(
        project_clean, "lint", ".", str(project_clean / "catalog.yaml"), "../" + project_clean.name
    )
    assert done.returncode == 0, done.stdout
    assert done.stdout.splitlines()[-1].startswith("3 files checked: 0 errors")


@pytest.mark.parametrize("via_link", [False, True])
def test_output_never_overwrites_a_file_being_linted(project_clean: Path, via_link: bool) -> None:
    target = "catalog.yaml"
    if via_link:
        (project_clean / "report.json").symlink_to(project_clean / "catalog.yaml")
        target = "report.json"
    done = run_clean(project_clean, "lint", ".", "--format", "json", "--output", target)
    assert done.returncode == 2
    assert done.stderr == (
        f"agentundo: error: --output {target} is one of the files being linted; "
        "the report would overwrite it\n"
    )
    assert (project_clean / "catalog.yaml").read_text(encoding="utf-8") == CATALOG_CLEAN


ROOT = Path(__file__).parents[2]
FOREIGN = ROOT / "tests" / "fixtures" / "foreign"


def test_a_repository_with_foreign_yaml_lints_like_the_samples_alone(tmp_path: Path) -> None:
    import shutil

    alone = tmp_path / "alone"
    shutil.copytree(ROOT / "sample-policies", alone / "sample-policies")
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "sample-policies", repo / "sample-policies")
    shutil.copytree(FOREIGN, repo / "deploy")
    shutil.copytree(FOREIGN / "github-workflows", repo / ".github" / "workflows")
    expected = run_clean(alone, "lint", "-f", "json", ".")
    assert expected.returncode == 0, expected.stderr
    # the pack's Cordum workflow is read (a DAG), so its topic is checked: the rest is
    # passed over and the report is the samples' own
    (repo / "deploy" / "pack" / "workflows" / "charge.yaml").unlink()
    done = run_clean(repo, "lint", "-f", "json", ".")
    assert (done.returncode, done.stderr) == (0, "")
    assert json.loads(done.stdout) == json.loads(expected.stdout)
    # a directory named on its own that holds only foreign YAML is still a wrong path
    done = run_clean(repo, "lint", "sample-policies", "deploy")
    assert done.returncode == 2
    assert done.stderr.startswith("deploy: error: no agentundo files found under deploy")
    text = run_clean(repo, "lint", ".")
    assert text.stdout == run_clean(alone, "lint", ".").stdout
    assert text.stdout.splitlines()[-1] == "6 files checked: 0 errors, 0 warnings, 5 infos"


def test_a_cordum_workflow_among_foreign_yaml_is_linted(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(ROOT / "sample-policies", tmp_path / "sample-policies")
    shutil.copytree(FOREIGN, tmp_path / "deploy")
    done = run_clean(tmp_path, "lint", "-f", "json", ".")
    assert done.returncode == 1, done.stderr
    found = [
        (f["code"], f["line"], f["column"])
        for f in json.loads(done.stdout)
        if f["path"] == "deploy/pack/workflows/charge.yaml"
    ]
    # job.ledger.charge is in no catalog; the sample policy sends prod writes to a human
    assert found == [("AU401", 10, 12), ("AU406", 10, 12)]


def test_show_passed_over_lists_each_file_and_why(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(FOREIGN, tmp_path / "deploy")
    (tmp_path / "deploy" / "pack" / "workflows" / "charge.yaml").unlink()  # read, not passed over
    (tmp_path / "catalog.yaml").write_text(CATALOG_CLEAN, encoding="utf-8")
    for flag in ("-v", "--show-passed-over"):
        done = run_clean(tmp_path, "lint", flag, "-f", "json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == []  # the report itself is unchanged
        lines = done.stderr.splitlines()
        assert (
            "deploy/docker-compose.yml: passed over: version '3.8' is not agentundo's 'v1', and it has no kind:"
            in lines
        )
        assert (
            "deploy/k8s/ledger.yaml: passed over: it holds 3 YAML documents (---); none is agentundo's"
            in lines
        )
        assert (
            "deploy/pack/pack.yaml: passed over: kind 'Pack' is not one of agentundo's "
            "(catalog, cordum-workflow, foreign-policy, policy, scenario, workflow)"
        ) in lines
        assert {line.split(": passed over: ")[0] for line in lines} == {
            f"deploy/{p.relative_to(FOREIGN).as_posix()}"
            for p in FOREIGN.rglob("*")
            if p.suffix in (".yml", ".yaml") and p.name != "charge.yaml"  # a Cordum workflow
        }
    assert run_clean(tmp_path, "lint", "-f", "json").stderr == ""  # quiet without -v


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("docker-compose.yml", "cannot tell what this file is"),
        ("chart/Chart.yaml", "cannot tell what this file is"),
        ("chart/templates/deployment.yaml", "YAML syntax error"),
        ("k8s/ledger.yaml", "expected a single document, but found another one (---)"),
        ("github-workflows/ci.yml", "cannot tell what this file is"),
        ("pack/pack.yaml", "unknown kind 'Pack'"),
    ],
)
def test_a_foreign_file_named_on_the_command_line_is_an_input_error(
    name: str, message: str
) -> None:
    done = run_clean(FOREIGN, "lint", name)
    assert done.returncode == 2
    assert done.stderr.startswith(f"{name}:") and message in done.stderr, done.stderr


def test_a_broken_agentundo_file_among_foreign_yaml_is_still_an_error(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(FOREIGN, tmp_path / "deploy")
    (tmp_path / "catalog.yaml").write_text(
        "version: v1\ntopics:\n  a.b: {side_effect: maybe}\n", encoding="utf-8"
    )
    done = run_clean(tmp_path, "lint", ".")
    assert done.returncode == 2
    assert done.stderr.startswith(
        "catalog.yaml:3:22: error: topics.a.b.side_effect must be boolean"
    )
    assert "passed over" not in done.stderr


def test_junit_follows_fail_on(tmp_path: Path) -> None:
    import shutil
    from xml.etree import ElementTree as ET

    shutil.copytree(ROOT / "sample-policies", tmp_path / "sample-policies")
    for level, failures, code in (("error", "0", 0), ("warning", "0", 0), ("info", "3", 1)):
        done = run_clean(tmp_path, "lint", "-f", "junit", "--fail-on", level, "sample-policies")
        assert done.returncode == code
        root = ET.fromstring(done.stdout)
        assert (root.get("failures"), root.get("errors")) == (failures, "0")
        outs = root.findall("testsuite/testcase/system-out")
        assert len(outs) == (0 if failures == "3" else 3)
