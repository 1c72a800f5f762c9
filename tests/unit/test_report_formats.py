"""Every lint report format on a real run: SARIF against its schema, JUnit parsed back,
GitHub workflow commands matched exactly, GitLab Code Quality and JSON shapes."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from rich.console import Console

from agentundo.lint.engine import LintResult, lint_paths
from agentundo.lint.finding import Severity
from agentundo.lint.registry import all_checks
from agentundo.report import Format, reporter
from agentundo.report import text as text_report
from agentundo.report.github import escape_data, escape_property
from tests.samples import FINDINGS_CATALOG, FINDINGS_POLICY

ROOT = Path(__file__).parents[2]
SARIF_SCHEMA = ROOT / ".." / "shared" / "schemas" / "sarif-schema-2.1.0.json"
JUNIT_SCHEMA = ROOT / "tests" / "fixtures" / "junit" / "junit-10.xsd"
"""Jenkins xunit plugin's JUnit schema (MIT; source in tests/fixtures/junit/README.md)."""

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


def _checks_for(result: LintResult, *families: str) -> set[str]:
    registry = all_checks()
    return {code for code in result.checks if registry[code].family in families}


def test_junit_parses_back_one_case_per_file_and_applicable_check(result: LintResult) -> None:
    root = ET.fromstring(_render(Format.JUNIT, result))
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    by_file: dict[str | None, set[str]] = {}
    for case in cases:
        by_file.setdefault(case.get("classname"), set()).add((case.get("name") or "").split()[0])
    # a catalog gets no policy checks, a policy no catalog checks; suppressions apply to both
    assert by_file == {
        "catalog.yaml": _checks_for(result, "catalog", "idempotency", "http", "suppression"),
        "policy.yaml": _checks_for(result, "policy", "suppression"),
        "broken.yaml": {"AU000"},
    }
    assert suite.get("tests") == str(len(cases))
    # --fail-on error (the default): the AU305 warning is no failure, only output
    assert (suite.get("failures"), suite.get("errors")) == ("1", "1")
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == (
        suite.get("tests"),
        "1",
        "1",
    )
    named = {(c.get("classname"), c.get("name")): c for c in cases}
    failure = named[("catalog.yaml", "AU101 rollback-tag-missing")].find("failure")
    assert failure is not None
    assert failure.get("type") == "AU101"
    assert failure.get("message") == "topic 'email.send' has side effects but no rollback tag"
    assert (failure.text or "").startswith("catalog.yaml:18:3: error AU101 ")
    shadowed = named[("policy.yaml", "AU305 shadowed-rule")]
    assert shadowed.find("failure") is None
    out = shadowed.find("system-out")
    assert out is not None and (out.text or "").startswith("policy.yaml:9:5: warning AU305 ")
    broken = named[("broken.yaml", "AU000 input-error")]
    assert broken.find("error") is not None


@pytest.mark.parametrize(("level", "failures"), [("error", 1), ("warning", 2), ("info", 2)])
def test_junit_failures_are_the_findings_at_or_above_fail_on(
    result: LintResult, level: str, failures: int
) -> None:
    result.fail_on = Severity(level)
    root = ET.fromstring(_render(Format.JUNIT, result))
    assert root.get("failures") == str(failures)
    failed = [c.get("name") for c in root.iter("testcase") if c.find("failure") is not None]
    assert len(failed) == failures
    assert len(list(root.iter("system-out"))) == 2 - failures  # AU305 below --fail-on error


def test_junit_of_the_clean_samples_has_no_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = lint_paths(["sample-policies"])
    assert result.exit_code() == 0 and result.count(Severity.INFO) == 5
    root = ET.fromstring(_render(Format.JUNIT, result))
    assert (root.get("failures"), root.get("errors")) == ("0", "0")
    assert len(list(root.iter("system-out"))) == 3  # the AU406 infos, by file
    names: dict[str, set[str]] = {}
    for case in root.iter("testcase"):
        names.setdefault((case.get("classname") or "").split("/")[-1], set())
        names[(case.get("classname") or "").split("/")[-1]].add(case.get("name") or "")
    assert not any(n.startswith(("AU1", "AU2", "AU4")) for n in names["policy.yaml"])
    assert not any(n.startswith(("AU3", "AU4")) for n in names["catalog.yaml"])
    assert {n.split()[0] for n in names["weekly-refund-dispute.yaml"]} == {
        "AU901",
        "AU902",
        "AU903",
    }


def _junit_schema() -> Any:
    xmlschema = pytest.importorskip("xmlschema")
    return xmlschema.XMLSchema(str(JUNIT_SCHEMA))


def test_junit_is_valid_against_the_jenkins_xunit_schema(
    result: LintResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema = _junit_schema()
    for level in Severity:
        result.fail_on = level
        schema.validate(io.StringIO(_render(Format.JUNIT, result)))
    monkeypatch.chdir(ROOT)
    clean = lint_paths(["sample-policies"])
    schema.validate(io.StringIO(_render(Format.JUNIT, clean)))
    schema.validate(io.StringIO(_render(Format.JUNIT, LintResult(files=[]))))


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


def codes_of(items: list[dict[str, Any]]) -> list[str]:
    return [item["code"] for item in items]


def _sarif_results(result: LintResult) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = json.loads(_render(Format.SARIF, result))["runs"][0]["results"]
    return results


def _region(item: dict[str, Any]) -> tuple[int, int, int, int]:
    region = item["locations"][0]["physicalLocation"]["region"]
    return (region["startLine"], region["startColumn"], region["endLine"], region["endColumn"])


def test_sarif_regions_span_what_the_finding_points_at(result: LintResult) -> None:
    regions = {item["ruleId"]: _region(item) for item in _sarif_results(result)}
    assert regions == {
        "AU101": (18, 3, 18, 13),  # the topic's key, 'email.send'
        "AU305": (9, 5, 11, 28),  # the whole rule, '- id: ...' to its last line
        "AU000": (2, 1, 2, 8),  # the repeated key 'version'
    }


def test_sarif_regions_fall_back_to_the_line_and_end_block_scalars_on_their_last_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentundo.lint.finding import Finding

    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text(
        "# a comment, then a catalog   \n"
        "version: v1\n"
        "description: |\n"
        "  two\n"
        "  lines here\n"
        "topics: {}\n",
        encoding="utf-8",
    )

    def at(line: int, column: int) -> Finding:
        return Finding("c.yaml", line, column, "AU101", Severity.ERROR, "m")

    findings = [at(1, 1), at(1, 3), at(3, 14), at(6, 9), at(40, 2), at(0, 0)]
    results = _sarif_results(LintResult(files=[], findings=findings))
    locations = [r["locations"][0]["physicalLocation"] for r in results]
    regions = {
        (loc.get("region") or {}).get("startLine", 0): loc.get("region")
        and _region({"locations": [{"physicalLocation": loc}]})
        for loc in locations
    }
    assert len(regions) == 5  # two findings on line 1
    assert [
        loc.get("region") and _region({"locations": [{"physicalLocation": loc}]})
        for loc in locations
    ] == [
        None,  # no position: no region (sorted first)
        (1, 1, 1, 28),  # a comment: no node starts there, the line (without trailing blanks)
        (1, 3, 1, 28),
        (3, 14, 5, 13),  # a block scalar ends on its last line, not at the next one's start
        (6, 9, 6, 11),  # a flow mapping, '{}'
        (40, 2, 40, 2),  # past the end of the file: an empty region on the line
    ]


def test_sarif_reports_suppressed_findings_as_suppressed_in_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "policy.yaml", POLICY)
    _write(tmp_path, "catalog.yaml", CATALOG)
    before = {r["ruleId"]: r for r in _sarif_results(lint_paths(["."]))}
    text = (tmp_path / "catalog.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "  email.send:\n",
        "  email.send:  # agentundo: ignore[AU101] legacy topic, tracked in OPS-142\n",
    )
    text = text.replace(
        "  payments.refund:\n", "  # agentundo: ignore[AU101]\n  payments.refund:\n"
    )
    (tmp_path / "catalog.yaml").write_text(text, encoding="utf-8")
    result = lint_paths(["."])
    assert result.suppressed == 1 and [f.code for f in result.findings] == [
        "AU901",
        "AU902",
        "AU305",
    ]
    results = _sarif_results(result)
    suppressed = [r for r in results if "suppressions" in r]
    assert [(r["ruleId"], r["suppressions"]) for r in suppressed] == [
        ("AU101", [{"kind": "inSource", "justification": "legacy topic, tracked in OPS-142"}])
    ]
    # the same alert: code scanning dismisses it instead of closing it and opening another
    assert suppressed[0]["partialFingerprints"] == before["AU101"]["partialFingerprints"]
    assert _region(before["AU101"]) == (18, 3, 18, 13)
    assert _region(suppressed[0]) == (19, 3, 19, 13)  # a line was added above it
    others = [r["ruleId"] for r in results if "suppressions" not in r]
    assert others == ["AU901", "AU902", "AU305"]
    # other formats still leave suppressed findings out
    assert "AU101" not in codes_of(json.loads(_render(Format.JSON, result)))
    if SARIF_SCHEMA.is_file():
        assert _schema_errors(json.loads(_render(Format.SARIF, result))) == []


def test_sarif_a_suppression_without_a_reason_has_no_justification(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "policy.yaml", POLICY)
    text = textwrap.dedent(CATALOG).lstrip("\n")
    (tmp_path / "catalog.yaml").write_text(
        text.replace("  email.send:\n", "  email.send:  # agentundo: ignore[AU101]\n"),
        encoding="utf-8",
    )
    result = lint_paths(["."])
    suppressed = [r for r in _sarif_results(result) if "suppressions" in r]
    assert [r["suppressions"] for r in suppressed] == [[{"kind": "inSource"}]]
    assert "AU901" in [f.code for f in result.findings]


def test_sarif_every_rule_has_a_help_uri_into_the_rule_reference(result: LintResult) -> None:
    from agentundo.lint.registry import RULES_DOC_URL

    rules = json.loads(_render(Format.SARIF, result))["runs"][0]["tool"]["driver"]["rules"]
    assert RULES_DOC_URL == "https://github.com/agentundo/agentundo/blob/main/docs/rules.md"
    assert {r["id"]: r["helpUri"] for r in rules} == {
        "AU000": f"{RULES_DOC_URL}#lint-rules",
        **{code: f"{RULES_DOC_URL}#{code.lower()}" for code in all_checks()},
    }
    headings = {
        line.lstrip("#").strip().lower().replace(" ", "-")
        for line in (ROOT / "docs" / "rules.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    }
    assert {r["helpUri"].split("#")[1] for r in rules} <= headings  # every anchor exists


def test_reports_never_give_a_parent_relative_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    other = tmp_path / "other"
    other.mkdir()
    _write(repo, "policy.yaml", POLICY)
    _write(other, "catalog.yaml", CATALOG)
    monkeypatch.chdir(repo)
    # the catalog outside the repository by a ../ path; the policy inside it by one too
    result = lint_paths(["../other/catalog.yaml", "../repo/policy.yaml"])
    outside = (other / "catalog.yaml").as_uri()
    log = json.loads(_render(Format.SARIF, result))
    artifacts = [
        r["locations"][0]["physicalLocation"]["artifactLocation"] for r in log["runs"][0]["results"]
    ]
    assert artifacts == [{"uri": outside}, {"uri": "policy.yaml", "uriBaseId": "%SRCROOT%"}]
    gitlab = [i["location"]["path"] for i in json.loads(_render(Format.GITLAB, result))]
    assert gitlab == [outside, "policy.yaml"]
    junit = _render(Format.JUNIT, result)
    assert "../" not in junit and f'classname="{(other / "catalog.yaml").as_posix()}"' in junit
    if SARIF_SCHEMA.is_file():
        assert _schema_errors(log) == []
