"""Cordum's real files (tests/fixtures/cordum, copied verbatim): its safety policy and a
pack's policy fragment read faithfully, its workflows (DAGs) linted and drilled."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest

from agentundo.evidence.chain import genesis_of, record_hash
from tests.cli_runner import Result, invoke

FIXTURES = Path(__file__).parents[1] / "fixtures" / "cordum"
CATALOG = "agentundo/catalog.yaml"
SAFETY = "config/safety.yaml"
FRAGMENT = "mock-bank/overlays/policy.fragment.yaml"
TRANSFER = "mock-bank/workflows/transfer.yaml"
TOPIC = "job.demo-mock-bank.transfer"


@pytest.fixture
def cordum(tmp_path: Path) -> Path:
    """A copy of the fixtures (commands run in it, evidence goes there)."""
    root = tmp_path / "cordum"
    shutil.copytree(FIXTURES, root)
    return root


def run(cwd: Path, *args: str) -> Result:
    return invoke(*args, cwd=cwd)


def _findings(done: Result) -> list[tuple[str, str, int, int]]:
    return [(f["path"], f["code"], f["line"], f["column"]) for f in json.loads(done.stdout)]


def _records(path: Path) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    prev = genesis_of(records[0])
    for record in records:  # the chain holds
        assert record["prev_hash"] == prev and record["hash"] == record_hash(record)
        prev = record["hash"]
    return records


def test_lint_the_safety_policy_reports_what_is_not_modelled(cordum: Path) -> None:
    done = run(cordum, "lint", "-f", "json", SAFETY)
    assert done.returncode == 0, done.stderr  # warnings and infos only
    assert [(c, line) for _, c, line, _ in _findings(done)] == [
        ("AU313", 73),  # validators-internal-allow: labels._source
        ("AU313", 112),  # b2b-internal-allow
        ("AU313", 124),  # b2b-pack-allow
        ("AU315", 187),  # input_rules
        ("AU315", 363),  # output_rules
        ("AU316", 427),  # tenants.default.allow_topics, not consulted next to rules
        ("AU316", 429),  # tenants.default.deny_topics
    ]
    # the issue: b2b-api-review was said never to decide (AU305); it decides for API callers
    assert "AU305" not in done.stdout


def test_lint_the_mock_bank_pack_with_its_catalog(cordum: Path) -> None:
    done = run(cordum, "lint", "-f", "json", "-e", "production", CATALOG, "mock-bank")
    assert done.returncode == 1
    assert _findings(done) == [
        (FRAGMENT, "AU302", 1, 1),  # nothing allows the reversal: the default denies it
        (FRAGMENT, "AU312", 6, 7),
        (FRAGMENT, "AU312", 15, 7),
        (FRAGMENT, "AU312", 24, 7),
        (TRANSFER, "AU406", 46, 12),  # execute_review (risk tag review) waits for a human
        (TRANSFER, "AU403", 68, 12),  # execute_high (risk tag blocked) is always denied
    ]
    messages = {f["line"]: f["message"] for f in json.loads(done.stdout) if f["path"] == TRANSFER}
    assert messages[68] == (
        "step 'execute_high' (job.demo-mock-bank.transfer) is always denied in production by "
        f"rule 'bank-transfer-blocked' of {FRAGMENT}"
    )
    assert messages[46] == (
        "step 'execute_review' (job.demo-mock-bank.transfer) needs a human approval in "
        "production (rule 'bank-transfer-review')"
    )


def test_a_typo_in_a_real_workflow_topic_is_reported(cordum: Path) -> None:
    path = cordum / TRANSFER
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("topic: job.demo-mock-bank.transfer", "topic: job.demo-mock-bank.transfr", 1),
        encoding="utf-8",
    )
    done = run(cordum, "lint", "-f", "json", "--select", "AU401", CATALOG, "mock-bank")
    assert done.returncode == 1
    found = json.loads(done.stdout)
    assert [(f["path"], f["line"], f["column"]) for f in found] == [(TRANSFER, 24, 12)]
    assert (
        found[0]["message"] == "step 'execute_low' uses unknown topic 'job.demo-mock-bank.transfr'"
    )
    assert found[0]["hint"] == "did you mean 'job.demo-mock-bank.transfer'?"


def test_a_broken_dag_is_reported_at_its_position(cordum: Path) -> None:
    (cordum / "mock-bank" / "workflows" / "broken.yaml").write_text(
        textwrap.dedent(
            """\
            id: broken
            steps:
              a: {type: worker, topic: job.demo-mock-bank.transfer, depends_on: [c]}
              b: {type: worker, depends_on: [validat]}
              c: {type: worker, topic: job.demo-mock-bank.transfer, depends_on: [a]}
              validate: {type: transform}
            """
        ),
        encoding="utf-8",
    )
    done = run(cordum, "lint", "-f", "json", "--select", "AU42", CATALOG, "mock-bank")
    broken = "mock-bank/workflows/broken.yaml"
    assert _findings(done) == [
        (broken, "AU421", 3, 69),  # a and c wait for each other
        (broken, "AU422", 4, 6),  # b has no topic
        (broken, "AU420", 4, 34),  # validat
    ]
    drilled = run(
        cordum, "drill", broken, "--catalog", CATALOG, "--policy", FRAGMENT, "--input", "x=1"
    )
    assert drilled.returncode == 2
    assert f"{broken}:4:34: error: step 'b' depends on 'validat'" in drilled.stderr


def _explain(cordum: Path, policy: str, topic: str, *args: str) -> dict[str, Any]:
    done = run(cordum, "explain", "-p", policy, "-c", CATALOG, "-t", topic, "-f", "json", *args)
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


@pytest.mark.parametrize(
    ("tags", "decision", "rule"),
    [
        (["finance", "transfer", "low"], "allow", "bank-transfer-allow"),
        (["finance", "transfer", "review"], "require_human", "bank-transfer-review"),
        (["finance", "transfer", "blocked"], "deny", "bank-transfer-blocked"),
        (["finance"], "deny", None),
    ],
)
def test_explain_decides_the_mock_bank_rules_from_risk_tags(
    cordum: Path, tags: list[str], decision: str, rule: str | None
) -> None:
    args = [a for tag in tags for a in ("--risk-tag", tag)]
    data = _explain(cordum, FRAGMENT, TOPIC, *args)
    assert (data["decision"], data["rule"], data["decided"]) == (decision, rule, True)


def test_explain_without_risk_tags_shows_every_outcome(cordum: Path) -> None:
    data = _explain(cordum, FRAGMENT, TOPIC)
    assert (data["decided"], data["depends_on"]) == (False, ["risk_tags"])
    assert [(o["decision"], o["rule"]) for o in data["outcomes"]] == [
        ("deny", "bank-transfer-blocked"),
        ("require_human", "bank-transfer-review"),
        ("allow", "bank-transfer-allow"),
        ("deny", None),
    ]
    assert [r["status"] for r in data["rules"]] == ["undecided"] * 3
    checked = run(cordum, "explain", "-p", FRAGMENT, "-c", CATALOG, "-t", TOPIC, "--check", "allow")
    assert checked.returncode == 1


@pytest.mark.parametrize(
    ("labels", "decision", "rule"),
    [
        (["_source=workflow"], "allow", "b2b-internal-allow"),
        (["_source=pack"], "allow", "b2b-pack-allow"),
        (["_source=api"], "require_human", "b2b-api-review"),
        ([], None, None),
    ],
)
def test_explain_decides_the_safety_labels_from_label_options(
    cordum: Path, labels: list[str], decision: str | None, rule: str | None
) -> None:
    args = [a for label in labels for a in ("--label", label)]
    data = _explain(cordum, SAFETY, "job.b2b.orchestrate", *args)
    if decision is None:
        assert (data["decided"], data["depends_on"]) == (False, ["labels"])
        assert [(o["decision"], o["rule"]) for o in data["outcomes"]] == [
            ("allow", "b2b-internal-allow"),
            ("allow", "b2b-pack-allow"),
            ("require_human", "b2b-api-review"),
        ]
        return
    assert (data["decision"], data["rule"], data["decided"]) == (decision, rule, True)


def _drill(cordum: Path, workflow: str, policy: str, *args: str) -> Result:
    return run(
        cordum, "drill", workflow, "--catalog", CATALOG, "--policy", policy,
        "--evidence", "evidence", "--lock", "memory", "-f", "json", *args,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("amount", "extra", "step", "verdict", "status", "decision", "rule", "state"),
    [
        ("40", [], "execute_low", "completed", "SUCCEEDED", "allow", "bank-transfer-allow", "succeeded"),
        ("200", [], "execute_review", "recovered", "DENIED", "require_human", "bank-transfer-review", "denied"),
        (
            "200", ["--approve", "execute_review"], "execute_review", "completed", "SUCCEEDED",
            "require_human", "bank-transfer-review", "succeeded",
        ),
        ("5000", [], "execute_high", "recovered", "DENIED", "deny", "bank-transfer-blocked", "denied"),
    ],
)  # fmt: skip
def test_drill_the_real_transfer_workflow(
    cordum: Path,
    amount: str,
    extra: list[str],
    step: str,
    verdict: str,
    status: str,
    decision: str,
    rule: str,
    state: str,
) -> None:
    done = _drill(cordum, TRANSFER, FRAGMENT, "--input", f"amount={amount}", *extra)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["verdict"], out["summary"]["status"]) == (verdict, status)
    assert [(s["step_id"], s["rule_id"], s["state"]) for s in out["steps"]] == [(step, rule, state)]
    not_run = {"execute_low", "execute_review", "execute_high"} - {step}
    assert done.stderr.splitlines() == [
        "agentundo: not rehearsed: step 'validate': a transform step runs in the engine: "
        "nothing to dispatch",
        *(
            line
            for line in done.stderr.splitlines()
            if any(f"step '{k}': condition" in line for k in sorted(not_run))
        ),
    ]
    assert len(done.stderr.splitlines()) == 3
    records = _records(cordum / out["evidence"])
    started = records[0]
    assert (started["event"], started["workflow_id"]) == ("run_started", "demo-mock-bank.transfer")
    decisions = [r for r in records if r["event"] == "policy_decision"]
    assert [(r["step_id"], r["decision"], r["rule_id"]) for r in decisions] == [
        (step, decision, rule)
    ]
    assert records[-1]["event"] == "run_summary"


def test_drill_without_inputs_says_nothing_can_be_rehearsed(cordum: Path) -> None:
    done = _drill(cordum, TRANSFER, FRAGMENT)
    assert done.returncode == 2
    assert done.stderr.startswith(
        f"{TRANSFER}:5:3: error: no step of Cordum workflow 'demo-mock-bank.transfer' can be "
        "rehearsed (validate: a transform step runs in the engine"
    )
    assert "not rehearsed (no --input given)" in done.stderr
    assert "hint: give the run's inputs with --input KEY=VALUE" in done.stderr
    assert _drill(cordum, TRANSFER, FRAGMENT, "--input", "amount").returncode == 2


def test_drill_under_the_base_safety_policy_is_denied_by_its_default(cordum: Path) -> None:
    # the mock-bank rules live in the pack's fragment: the base policy alone denies
    done = _drill(cordum, TRANSFER, SAFETY, "--input", "amount=40")
    out = json.loads(done.stdout)
    assert [(s["rule_id"], s["state"]) for s in out["steps"]] == [(None, "denied")]
    records = _records(cordum / out["evidence"])
    assert records[0]["settings"]["policy_fail_mode"] == "closed"  # input_policy.fail_mode


APPROVAL_FLOW = """\
id: payout
org_id: default
steps:
  review:
    type: approval
  pay:
    type: worker
    topic: job.demo-mock-bank.transfer
    depends_on: [review]
    meta:
      risk_tags: [low]
"""

OPEN_POLICY = """\
default_decision: allow
input_policy:
  fail_mode: open
rules:
  - id: tagged-low
    match: {topics: ["job.demo-mock-bank.*"], risk_tags: [low]}
    decision: allow
"""


def test_an_approval_step_requires_a_human_at_the_gate(cordum: Path) -> None:
    (cordum / "flow.yaml").write_text(APPROVAL_FLOW, encoding="utf-8")
    (cordum / "open.yaml").write_text(OPEN_POLICY, encoding="utf-8")
    waiting = _drill(cordum, "flow.yaml", "open.yaml", "--input", "x=1")
    out = json.loads(waiting.stdout)
    assert [(s["step_id"], s["state"]) for s in out["steps"]] == [
        ("review", "denied"),
        ("pay", "not_run"),
    ]
    records = _records(cordum / out["evidence"])
    decision = next(r for r in records if r["event"] == "policy_decision")
    assert (decision["decision"], decision["rule_id"]) == ("require_human", None)
    assert decision["reason"].startswith("approval step 'review' waits for a human")
    assert records[0]["settings"]["policy_fail_mode"] == "open"  # the policy's fail mode
    approved = _drill(cordum, "flow.yaml", "open.yaml", "--input", "x=1", "--approve", "review")
    out = json.loads(approved.stdout)
    assert out["verdict"] == "completed"
    assert [(s["step_id"], s["rule_id"]) for s in out["steps"]] == [
        ("review", None),
        ("pay", "tagged-low"),
    ]
    # the command line wins over the policy's fail mode
    closed = _drill(
        cordum, "flow.yaml", "open.yaml", "--input", "x=1", "--policy-fail-mode", "closed"
    )
    first = _records(cordum / json.loads(closed.stdout)["evidence"])[0]
    assert first["settings"]["policy_fail_mode"] == "closed"
