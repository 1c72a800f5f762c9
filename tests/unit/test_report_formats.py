"""Every lint report format on a real run: SARIF against its schema, JUnit parsed back,
GitHub workflow commands matched exactly, GitLab Code Quality and JSON shapes."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from rich.console import Console

from agentundo.lint.engine import LintResult, lint_paths
from agentundo.lint.registry import all_checks
from agentundo.report import Format, reporter
from agentundo.report import text as text_report
from agentundo.report.github import escape_data, escape_property
from tests.samples import FINDINGS_CATALOG, FINDINGS_POLICY

SARIF_SCHEMA = Path(__file__).parents[2] / ".." / "shared" / "schemas" / "sarif-schema-2.1.0.json"

CATALOG = FINDINGS_CATALOG
POLICY = FINDINGS_POLICY


def _write(directory: Path, name: str, text: str) -> None:
    (directory / name).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


@pytest.fixture
def result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LintResult:
    """A run with one error (AU101), one warning (AU305) and one broken file (AU000)."""
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "catalog.yaml", CATALOG)
    _write(tmp_path, "policy.yaml", POLICY)
    _write(tmp_path, "broken.yaml", "version: v1\nversion: v1\ntopics: {}\n")  # ours, broken
    return lint_paths(["."])


def _render(fmt: Format, result: LintResult) -> str:
    stream = io.StringIO()
    reporter(fmt)(result, stream)
    return stream.getvalue()


@pytest.mark.parametrize("fmt", list(Format))
def test_every_format_renders_every_finding(fmt: Format, result: LintResult) -> None:
    out = _render(fmt, result)
    for code in ("AU101", "AU305", "AU000"):
        assert code in out, (fmt, out)


def test_text_is_grouped_by_file_without_colour_off_a_terminal(result: LintResult) -> None:
    out = _render(Format.TEXT, result)
    assert "\x1b[" not in out
    assert out.splitlines() == [
        "broken.yaml",
        "  2:1  error  AU000  duplicate key 'version' (first defined at line 1)",
        "      hint: YAML keeps only the last value of a repeated key; remove one",
        "catalog.yaml",
        "  18:3  error  AU101  topic 'email.send' has side effects but no rollback tag",
        "      hint: add 'rollback: reversible', 'compensatable' or 'irreversible'",
        "policy.yaml",
        "  9:5  warning  AU305  rule 'human-for-email-send' can never decide: rule "
        "'human-for-email' (line 6) matches everything it matches and wins",
        "      hint: narrow the other rule, or delete this one",
        "3 files checked: 1 error, 1 warning, 0 infos, 1 input error",
    ]


def test_text_on_a_console_with_colour_and_fixed_width(result: LintResult) -> None:
    stream = io.StringIO()
    console = Console(file=stream, width=60, force_terminal=True, color_system="standard")
    text_report.render(result, console)
    assert "\x1b[" in stream.getvalue()
    plain = io.StringIO()
    text_report.render(result, Console(file=plain, width=60, no_color=True, highlight=False))
    assert "\x1b[31m" not in plain.getvalue()


def test_json_keeps_the_foundation_shape(result: LintResult) -> None:
    items = json.loads(_render(Format.JSON, result))
    assert [set(i) for i in items] == [
        {"code", "severity", "message", "path", "line", "column", "hint"}
    ] * len(items)
    assert [(i["code"], i["path"], i["line"], i["column"]) for i in items] == [
        ("AU101", "catalog.yaml", 18, 3),
        ("AU305", "policy.yaml", 9, 5),
        ("AU000", "broken.yaml", 2, 1),
    ]


def test_github_workflow_commands_exactly(result: LintResult) -> None:
    assert _render(Format.GITHUB, result).splitlines() == [
        "::error file=catalog.yaml,line=18,col=3,title=AU101::topic 'email.send' has side "
        "effects but no rollback tag%0Ahint: add 'rollback: reversible', 'compensatable' or "
        "'irreversible'",
        "::warning file=policy.yaml,line=9,col=5,title=AU305::rule 'human-for-email-send' can "
        "never decide: rule 'human-for-email' (line 6) matches everything it matches and "
        "wins%0Ahint: narrow the other rule, or delete this one",
        "::error file=broken.yaml,line=2,col=1,title=AU000::duplicate key 'version' (first "
        "defined at line 1)%0Ahint: YAML keeps only the last value of a repeated key; remove one",
    ]


def test_github_escaping() -> None:
    assert escape_data("50% done\r\nnext") == "50%25 done%0D%0Anext"
    assert escape_property("a:b,c") == "a%3Ab%2Cc"


def test_sarif_rule_table_and_results(result: LintResult) -> None:
    log = json.loads(_render(Format.SARIF, result))
    assert log["version"] == "2.1.0"
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == ["AU000", *all_checks()]
    au101 = rules[[r["id"] for r in rules].index("AU101")]
    assert au101["name"] == "rollback-tag-missing"
    assert au101["shortDescription"]["text"] == "A side-effecting topic has no `rollback` tag."
    assert "Every action that changes the world" in au101["fullDescription"]["text"]
    assert "Bad:" in au101["help"]["text"] and "```yaml" in au101["help"]["markdown"]
    located = [
        (
            r["ruleId"],
            r["level"],
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            r["locations"][0]["physicalLocation"]["region"]["startLine"],
            r["locations"][0]["physicalLocation"]["region"]["startColumn"],
        )
        for r in run["results"]
    ]
    assert located == [
        ("AU101", "error", "catalog.yaml", 18, 3),
        ("AU305", "warning", "policy.yaml", 9, 5),
        ("AU000", "error", "broken.yaml", 2, 1),
    ]
    for item in run["results"]:
        assert rules[item["ruleIndex"]]["id"] == item["ruleId"]


def _schema_errors(log: object) -> list[str]:
    from jsonschema import FormatChecker
    from jsonschema.validators import validator_for

    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    validator = validator_for(schema)(schema, format_checker=FormatChecker())
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.path))
    return [f"{list(e.path)}: {e.message}" for e in errors]


def test_sarif_is_valid_against_the_official_schema(result: LintResult) -> None:
    if not SARIF_SCHEMA.is_file():
        pytest.skip(f"SARIF schema not found at {SARIF_SCHEMA}")
    assert _schema_errors(json.loads(_render(Format.SARIF, result))) == []


def test_sarif_uris_are_percent_encoded_and_fingerprints_tell_results_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "c:50% #1?.yaml", CATALOG)
    _write(tmp_path, "policy.yaml", POLICY)
    _write(
        tmp_path,
        "wf.yaml",
        "version: v1\nworkflow: w\nenv: production\nsteps:\n"
        + "".join(f"  - {{id: s{i}, topic: nope}}\n" for i in range(3)),
    )
    outside = tmp_path.parent / f"{tmp_path.name}-outside dir"
    outside.mkdir()
    _write(outside, "broken.yaml", "version: v1\nversion: v1\n")
    log = json.loads(_render(Format.SARIF, lint_paths([".", str(outside / "broken.yaml")])))
    results = log["runs"][0]["results"]
    artifacts = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]: r["locations"][0][
            "physicalLocation"
        ]["artifactLocation"].get("uriBaseId")
        for r in results
    }
    assert artifacts == {
        "c%3A50%25%20%231%3F.yaml": "%SRCROOT%",
        "policy.yaml": "%SRCROOT%",
        "wf.yaml": "%SRCROOT%",
        (outside / "broken.yaml").as_uri(): None,
    }
    assert "%20dir/broken.yaml" in (outside / "broken.yaml").as_uri()
    unknown = [r for r in results if r["ruleId"] == "AU401"]
    assert [r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in unknown] == [
        5,
        6,
        7,
    ]
    fingerprints = [r["partialFingerprints"]["agentundo/v1"] for r in results]
    assert len(set(fingerprints)) == len(fingerprints)
    if SARIF_SCHEMA.is_file():
        assert _schema_errors(log) == []


def test_junit_parses_back_one_case_per_file_and_check(result: LintResult) -> None:
    root = ET.fromstring(_render(Format.JUNIT, result))
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    checks = len(result.checks)
    assert len(cases) == 2 * checks + 1
    assert suite.get("tests") == str(len(cases))
    assert (suite.get("failures"), suite.get("errors")) == ("2", "1")
    failed = {
        (c.get("classname"), c.get("name")): c.find("failure")
        for c in cases
        if c.find("failure") is not None
    }
    assert set(failed) == {
        ("catalog.yaml", "AU101 rollback-tag-missing"),
        ("policy.yaml", "AU305 shadowed-rule"),
    }
    failure = failed[("catalog.yaml", "AU101 rollback-tag-missing")]
    assert failure is not None
    assert failure.get("type") == "AU101"
    assert failure.get("message") == "topic 'email.send' has side effects but no rollback tag"
    assert (failure.text or "").startswith("catalog.yaml:18:3: error AU101 ")
    broken = [c for c in cases if c.get("classname") == "broken.yaml"]
    assert [c.get("name") for c in broken] == ["AU000 input-error"]
    assert broken[0].find("error") is not None


def test_junit_escapes_markup_and_control_characters(tmp_path: Path) -> None:
    from agentundo.lint.finding import Finding, Severity

    finding = Finding("a<b>.yaml", 1, 1, "AU101", Severity.ERROR, 'x & "y" <z>\x07')
    out = io.StringIO()
    reporter(Format.JUNIT)(LintResult(files=[], findings=[finding], checks=("AU101",)), out)
    failure = ET.fromstring(out.getvalue()).find("testsuite/testcase/failure")
    assert failure is not None
    assert failure.get("message") == 'x & "y" <z>\ufffd'


def test_gitlab_code_quality(result: LintResult) -> None:
    issues = json.loads(_render(Format.GITLAB, result))
    assert [
        (i["check_name"], i["severity"], i["location"]["path"], i["location"]["lines"]["begin"])
        for i in issues
    ] == [
        ("AU101", "major", "catalog.yaml", 18),
        ("AU305", "minor", "policy.yaml", 9),
        ("AU000", "blocker", "broken.yaml", 2),
    ]
    assert len({i["fingerprint"] for i in issues}) == len(issues)
    assert all(i["description"].startswith(i["check_name"] + " ") for i in issues)
