"""`agentundo explain`: decision, winning rule, and why the others did not apply."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.cli_runner import Result, invoke

CATALOG = """
version: v1
topics:
  infra.db.delete:
    side_effect: true
    rollback: irreversible
    risk: critical
    no_rollback_reason: a dropped database is gone
  tickets.read:
    side_effect: false
"""

POLICY = """
version: v1
rules:
  - id: allow-reads
    when: {side_effect: false}
    decision: allow
  - id: deny-unrecoverable
    when: {rollback_supported: false, risk: critical, approval_present: false}
    decision: deny
    reason: nothing can undo it
  - id: human-for-prod
    when: {env: production}
    decision: require_human
"""

CONTROL_PLANE = """
default_decision: deny
rules:
  - id: reads
    match: {topics: ["tickets.*"]}
    decision: permit
  - id: db
    match: {topics: ["infra.db.*"], risk_tags: [critical], tenants: [acme]}
    decision: require-approval
"""


def run(cwd: Path, *args: str) -> Result:
    return invoke("explain", *args, cwd=cwd)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name, text in (
        ("catalog.yaml", CATALOG),
        ("policy.yaml", POLICY),
        ("cp.yaml", CONTROL_PLANE),
    ):
        (tmp_path / name).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return tmp_path


def test_text_explanation(project: Path) -> None:
    done = run(
        project, "--policy", "policy.yaml", "--catalog", "catalog.yaml",
        "--topic", "infra.db.delete", "--env", "production",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == (
        "deny: 'infra.db.delete' in production without approval is decided by rule "
        "'deny-unrecoverable'"
    )
    assert lines[3:] == [
        "rules:",
        "  x  allow-reads (line 3) -> allow",
        "       not matched: side_effect: wanted False, got True",
        "  => deny-unrecoverable (line 6) -> deny",
        "       decided: the strictest matching rule, first in file order (most_restrictive)",
        "       reason: nothing can undo it",
        "  ~  human-for-prod (line 10) -> require_human",
        "       matched, but rule 'deny-unrecoverable' decides deny, which is stricter than "
        "require_human (most_restrictive)",
    ]


def test_approval_changes_the_decision_and_json(project: Path) -> None:
    done = run(
        project, "-p", "policy.yaml", "-c", "catalog.yaml", "-t", "infra.db.delete",
        "--approval", "--format", "json",
    )  # fmt: skip
    assert done.returncode == 0
    data = json.loads(done.stdout)
    assert (data["decision"], data["rule"], data["rule_index"]) == (
        "require_human",
        "human-for-prod",
        2,
    )
    assert data["context"]["approval_present"] is True
    assert [r["status"] for r in data["rules"]] == ["not_matched", "not_matched", "decided"]
    assert data["rules"][1]["failed"] == [
        {"condition": "approval_present", "expected": ["False"], "actual": "True"}
    ]


def test_check_option(project: Path) -> None:
    base = ["-p", "policy.yaml", "-c", "catalog.yaml", "-t", "tickets.read", "-e", "staging"]
    assert run(project, *base, "--check", "allow").returncode == 0
    done = run(project, *base, "--check", "deny")
    assert done.returncode == 1
    assert "expected deny, the policy decides allow" in done.stderr
    assert run(project, *base, "--check", "maybe").returncode == 2


def test_unknown_topic_is_explained_with_a_note(project: Path) -> None:
    done = run(project, "-p", "policy.yaml", "-c", "catalog.yaml", "-t", "nope", "-e", "dev")
    assert done.returncode == 0
    assert "note: topic 'nope' is not in the catalog" in done.stdout


def test_control_plane_policy(project: Path) -> None:
    # rule 'db' matches on the job's risk tags and tenant, which are not given: it is
    # undecided (never taken as matching), so both outcomes are listed; the decision is
    # the stricter one, as a gate that must answer would take it
    base = ["-p", "cp.yaml", "-c", "catalog.yaml", "-t", "infra.db.delete", "-f", "json"]
    done = run(project, *base)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert (data["decision"], data["decided"], data["rule"], data["combining"]) == (
        "deny",
        False,
        None,
        "first_match",
    )
    assert data["depends_on"] == ["tenants", "risk_tags"]
    assert data["outcomes"] == [
        {
            "decision": "require_human",
            "rule": "db",
            "rule_index": 1,
            "assuming": "the job has tenants acme; risk_tags critical",
        },
        {
            "decision": "deny",
            "rule": None,
            "rule_index": None,
            "assuming": "rule 'db' does not match",
        },
    ]
    assert data["rules"][1]["status"] == "undecided"
    assert any("AU313 match key 'tenants'" in note for note in data["notes"])
    other = run(project, "-p", "cp.yaml", "-c", "catalog.yaml", "-t", "mail.send", "-f", "json")
    assert json.loads(other.stdout)["decision"] == "deny"  # default deny
    assert json.loads(other.stdout)["decided"] is True


def test_job_facts_decide_a_control_plane_rule(project: Path) -> None:
    base = ["-p", "cp.yaml", "-c", "catalog.yaml", "-t", "infra.db.delete"]
    given = [*base, "--risk-tag", "CRITICAL", "--fact", "tenant=acme"]
    done = run(project, *given, "-f", "json")
    data = json.loads(done.stdout)
    assert (data["decision"], data["decided"], data["rule"]) == ("require_human", True, "db")
    assert data["context"]["job"] == {"risk_tags": ["CRITICAL"], "tenant": "acme"}
    assert run(project, *given, "--check", "require-approval").returncode == 0
    other = run(project, *base, "--risk-tag", "critical", "--fact", "tenant=beta")
    assert other.returncode == 0
    assert other.stdout.splitlines()[0] == (
        "deny: 'infra.db.delete' in production without approval is decided by the default "
        "decision (no rule matches; default deny)"
    )
    assert "       not matched: tenants: wanted acme, got beta" in other.stdout.splitlines()


def test_undecided_text_lists_both_outcomes(project: Path) -> None:
    done = run(project, "-p", "cp.yaml", "-c", "catalog.yaml", "-t", "infra.db.delete")
    lines = done.stdout.splitlines()
    assert lines[0] == (
        "depends on the job's tenants, risk_tags: 'infra.db.delete' in production without "
        "approval is decided require_human by rule 'db', deny by the default decision, as "
        "the job goes"
    )
    assert lines[lines.index("rules:") :][:5] == [
        "rules:",
        "  x  reads (line 3) -> allow",
        "       not matched: topic: wanted tickets.*, got infra.db.delete",
        "  ?  db (line 6) -> require_human",
        "       undecided: matches only if the job has tenants acme; risk_tags critical "
        "(give --fact NAME=VALUE and --risk-tag TAG)",
    ]
    assert lines[lines.index("outcomes:") + 1 :][:2] == [
        "  require_human by rule 'db', if the job has tenants acme; risk_tags critical",
        "  deny by the default decision (deny), if rule 'db' does not match",
    ]
    # --check holds only when every outcome is the expected decision
    checked = run(
        project, "-p", "cp.yaml", "-c", "catalog.yaml", "-t", "infra.db.delete", "--check", "deny"
    )
    assert checked.returncode == 1
    assert checked.stderr == (
        "agentundo: check failed: expected deny, the policy decides require_human or deny, "
        "depending on the job's tenants, risk_tags\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--label", "nokey"], "--label expects KEY=VALUE, got 'nokey'"),
        (["--risk-tag", " "], "--risk-tag needs a tag, not an empty string"),
        (["--fact", "colour=red"], "--fact expects NAME=VALUE with NAME one of tenant,"),
    ],
)
def test_bad_job_facts_are_usage_errors(project: Path, args: list[str], message: str) -> None:
    done = run(project, "-p", "cp.yaml", "-t", "infra.db.delete", *args)
    assert done.returncode == 2
    assert message in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "missing.yaml", "-t", "x"], "missing.yaml: error: no such file or directory"),
        (["-p", "catalog.yaml", "-t", "x"], "expected a policy file, found a catalog file"),
        (
            ["-p", "policy.yaml", "-c", "policy.yaml", "-t", "x"],
            "policy.yaml:1:1: error: expected a catalog file, found a policy file",
        ),
        (["-p", "policy.yaml", "-c", "empty", "-t", "x"], "no agentundo files found under empty"),
    ],
)
def test_bad_input_exits_2(project: Path, args: list[str], message: str) -> None:
    (project / "empty").mkdir()
    done = run(project, *args)
    assert done.returncode == 2
    assert message in done.stderr


def test_a_catalog_directory_may_hold_other_files(project: Path) -> None:
    (project / "more").mkdir()
    (project / "more" / "policy.yaml").write_text(textwrap.dedent(POLICY), encoding="utf-8")
    (project / "more" / "catalog.yaml").write_text(textwrap.dedent(CATALOG), encoding="utf-8")
    done = run(project, "-p", "policy.yaml", "-c", "more", "-t", "infra.db.delete", "-f", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["decision"] == "deny"


@pytest.mark.parametrize("order", [("a.yaml", "b.yaml"), ("b.yaml", "a.yaml")])
def test_a_topic_two_catalogs_declare_is_an_input_error(
    project: Path, order: tuple[str, str]
) -> None:
    for name, risk in (("a.yaml", "low"), ("b.yaml", "critical")):
        text = f"version: v1\ntopics:\n  x.y: {{side_effect: true, risk: {risk}}}\n"
        (project / name).write_text(text, encoding="utf-8")
    done = run(project, "-p", "policy.yaml", "-c", order[0], "-c", order[1], "-t", "x.y")
    assert done.returncode == 2
    assert done.stderr.startswith(
        f"{order[1]}:3:3: error: topic 'x.y' is declared again (first at {order[0]}:3:3)"
    )
