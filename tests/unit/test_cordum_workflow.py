"""Cordum workflows (DAGs): recognised by shape, ordered, conditions from inputs, job facts."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from agentundo.load.files import load_file, scan_paths
from agentundo.model.cordum_condition import evaluate_condition, parse_input
from agentundo.model.cordum_workflow import (
    KIND,
    CordumWorkflow,
    detect,
    job_of,
    lint_plan,
    order,
    plan,
    problems,
)
from agentundo.model.foreign_policy import register

FIXTURES = Path(__file__).parents[1] / "fixtures" / "cordum"
TRANSFER = FIXTURES / "mock-bank" / "workflows" / "transfer.yaml"


def _dag(steps: dict[str, Any], **top: Any) -> CordumWorkflow:
    return CordumWorkflow.model_validate({**top, "steps": steps})


def _write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def test_the_fixtures_are_cordums_files_byte_for_byte() -> None:
    table = (FIXTURES / "SOURCE.md").read_text(encoding="utf-8")
    rows = [line.split("|") for line in table.splitlines() if line.startswith("| `")]
    assert len(rows) == 8
    for row in rows:
        here, blob = row[1].strip(" `"), row[3].strip(" `")
        done = subprocess.run(
            ["git", "hash-object", str(FIXTURES / here)], capture_output=True, text=True, check=True
        )
        assert done.stdout.strip() == blob, here


def test_detected_by_shape() -> None:
    assert detect({"steps": {"a": {"type": "worker", "topic": "job.a"}}}) == KIND
    assert detect({"steps": {"a": {"depends_on": ["b"]}, "b": {"name": "B"}}}) == KIND
    assert detect({"steps": {"a": {"name": "A"}}}) is None  # nothing of a step's shape
    assert detect({"steps": [{"id": "a", "topic": "x"}]}) is None  # agentundo's list
    assert detect({"version": "v1", "steps": {"a": {"topic": "x"}}}) is None
    assert detect({"steps": {"a": "worker"}}) is None
    assert detect({"steps": {}}) is None


def test_the_real_workflow_loads_as_a_cordum_workflow() -> None:
    register()
    loaded = load_file(TRANSFER)
    assert loaded.kind == KIND
    model: CordumWorkflow = loaded.model
    assert list(model.steps) == ["validate", "execute_low", "execute_review", "execute_high"]
    assert model.steps["execute_review"].meta is not None
    assert model.steps["execute_review"].meta.risk_tags == ["finance", "transfer", "review"]
    scan = scan_paths([FIXTURES / "mock-bank"])  # found in a directory: read, not passed over
    assert sorted(f.kind for f in scan.files) == ["cordum-workflow", "foreign-policy"]
    assert [Path(p.path).name for p in scan.passed_over] == ["pack.yaml"]


def test_wrong_types_are_input_errors_at_their_position(tmp_path: Path) -> None:
    register()
    path = _write(
        tmp_path,
        "wf.yaml",
        """
        steps:
          a:
            type: worker
            topic: job.a
            depends_on: b
        """,
    )
    scan = scan_paths([tmp_path])
    assert [(e.position.line, e.position.column) for e in scan.errors] == [(5, 17)]
    assert "depends_on" in scan.errors[0].message
    assert scan.files == [] and str(path)


def test_order_is_topological_with_ties_in_file_order() -> None:
    dag = _dag(
        {
            "report": {"topic": "job.r", "depends_on": ["charge", "reserve"]},
            "reserve": {"topic": "job.s"},
            "charge": {"topic": "job.c", "depends_on": ["validate"]},
            "validate": {"type": "transform"},
            "notify": {"topic": "job.n"},
        }
    )
    # of the steps whose dependencies are done, the first in the file goes first
    assert order(dag) == (["reserve", "validate", "charge", "report", "notify"], [])


def test_problems_name_unknown_dependencies_cycles_and_missing_topics() -> None:
    dag = _dag(
        {
            "a": {"topic": "job.a", "depends_on": ["c"]},
            "b": {"topic": "job.b", "depends_on": ["a", "validat"]},
            "c": {"topic": "job.c", "depends_on": ["a"]},
            "d": {"type": "worker"},
            "validate": {"type": "transform"},
        }
    )
    found = [(p.kind, p.path, p.hint) for p in problems(dag)]
    assert found == [
        ("dependency", ("steps", "b", "depends_on", 1), "did you mean 'validate'?"),
        (
            "topic",
            ("steps", "d"),
            "add the topic, or give the step the type it runs as (e.g. transform)",
        ),
        ("cycle", ("steps", "a", "depends_on"), "remove one of the dependencies"),
    ]
    assert order(dag)[1] == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("amount", "runs"),
    [(40, ["execute_low"]), (200, ["execute_review"]), (5000, ["execute_high"])],
)
def test_plan_of_the_real_workflow_takes_one_branch(amount: int, runs: list[str]) -> None:
    register()
    model = load_file(TRANSFER).model
    found = plan(model, name="t", env="production", inputs={"amount": amount})
    assert found.workflow is not None
    assert [s.id for s in found.workflow.steps] == runs
    assert [s.topic for s in found.workflow.steps] == ["job.demo-mock-bank.transfer"]
    assert found.workflow.steps[0].params["amount"] == "${input.amount}"
    skipped = dict(found.skipped)
    assert skipped["validate"] == "a transform step runs in the engine: nothing to dispatch"
    assert len(skipped) == 3
    assert all("is false for the inputs" in why for k, why in skipped.items() if k != "validate")


def test_without_inputs_every_conditional_step_is_listed_not_rehearsed() -> None:
    register()
    model = load_file(TRANSFER).model
    found = plan(model, name="t", env="production", inputs=None)
    assert found.workflow is None
    assert [k for k, why in found.skipped if "(no --input given)" in why] == [
        "execute_low",
        "execute_review",
        "execute_high",
    ]


def test_dependents_of_steps_that_do_not_run_do_not_run() -> None:
    dag = _dag(
        {
            "check": {"topic": "job.check", "condition": "input.go == true"},
            "act": {"topic": "job.act", "depends_on": ["check"]},
            "always": {"topic": "job.always"},
        }
    )
    found = plan(dag, name="w", env="production", inputs={"go": False})
    assert found.workflow is not None
    assert [s.id for s in found.workflow.steps] == ["always"]
    assert dict(found.skipped)["act"] == "depends on check, which does not run"
    unknown = plan(dag, name="w", env="production", inputs=None)
    assert dict(unknown.skipped)["act"] == "depends on check, which is not rehearsed"
    assert plan(dag, name="w", env="production", inputs={"go": True}).keys == (
        "check",
        "act",
        "always",
    )


def test_approval_steps_dispatch_the_approval_gate_and_are_marked() -> None:
    dag = _dag({"ok": {"type": "approval"}, "go": {"topic": "job.go", "depends_on": ["ok"]}})
    found = plan(dag, name="w", env="production", inputs={})
    assert found.workflow is not None
    assert [(s.id, s.topic) for s in found.workflow.steps] == [
        ("ok", "job.cordum.approval-gate"),
        ("go", "job.go"),
    ]
    assert found.approvals == {"ok"}
    assert lint_plan(dag, name="w", env="production").keys == ("go",)


def test_job_facts_come_from_the_step_and_the_engine() -> None:
    dag = _dag(
        {
            "pay": {
                "topic": "job.pay",
                "route_labels": {"pool": "fast"},
                "meta": {
                    "capability": "bank.pay",
                    "pack_id": "bank",
                    "risk_tags": ["finance", "low"],
                    "labels": {"team": "ops"},
                },
            }
        },
        id="bank.pay",
        org_id="acme",
    )
    job = job_of(dag, "pay")
    assert job.complete
    assert dict(job.labels) == {
        "_source": "workflow",
        "step_id": "pay",
        "workflow_id": "bank.pay",
        "pool": "fast",
        "team": "ops",
    }
    assert dict(job.facts) == {
        "tenant": "acme",
        "capability": "bank.pay",
        "pack_id": "bank",
        "risk_tags": frozenset({"finance", "low"}),
        "requires": frozenset(),
    }


@pytest.mark.parametrize(
    ("expression", "inputs", "expected"),
    [
        ("input.amount < 100", {"amount": 40}, True),
        ("input.amount < 100", {"amount": "40"}, True),  # a number given as text
        ("input.amount >= 300", {"amount": 300}, True),
        ("input.amount > 300", {"amount": 300}, False),
        ("input.amount <= 1.5", {"amount": 1.5}, True),
        ("input.amount != nil && input.amount < 100", {}, False),  # nil short-circuits
        ("input.amount != nil", {"amount": None}, False),
        ("input.currency == 'USD'", {"currency": "USD"}, True),
        ('input.currency != "USD"', {"currency": "EUR"}, True),
        ("input.urgent", {"urgent": True}, True),
        ("input.urgent", {"urgent": False}, False),
        ("input.urgent", {}, False),
        ("input.urgent == true", {"urgent": True}, True),
        ("input.a.b == 2", {"a": {"b": 2}}, True),
        ("input.x < 1 || input.y == 'z'", {"x": 5, "y": "z"}, True),
        ("input.x < 1 || input.y == 'z'", {"x": 5, "y": "q"}, False),
        ("input.amount < 100", {}, None),  # ordering nil: not evaluated
        ("input.x < 1 || input.q > 2", {"x": 5}, None),
        ("input.x < 1 || input.q > 2", {"x": 0}, True),
        ("(input.amount < 100)", {"amount": 1}, None),
        ("!input.urgent", {"urgent": True}, None),
        ("steps.validate.output.ok == true", {}, None),
        ("len(input.items) > 0", {"items": []}, None),
        ("input.a &&", {"a": 1}, None),
        ("input.amount < 100", None, None),  # no inputs at all
    ],
)
def test_conditions(expression: str, inputs: dict[str, Any] | None, expected: bool | None) -> None:
    assert evaluate_condition(expression, inputs) is expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("amount=40", ("amount", 40)),
        ("amount=2.5", ("amount", 2.5)),
        ("ok=true", ("ok", True)),
        ("note=null", ("note", None)),
        ("customer=Alice", ("customer", "Alice")),
        ('tag="1"', ("tag", '"1"')),
        ("eq=a=b", ("eq", "a=b")),
        (" name = x", ("name", " x")),
    ],
)
def test_inputs(spec: str, expected: tuple[str, Any]) -> None:
    assert parse_input(spec) == expected


@pytest.mark.parametrize("spec", ["amount", "=3", ""])
def test_bad_inputs(spec: str) -> None:
    with pytest.raises(ValueError, match="--input expects KEY=VALUE"):
        parse_input(spec)


def test_a_step_that_depends_on_itself_never_starts() -> None:
    dag = _dag({"a": {"topic": "job.a", "depends_on": ["a"]}, "b": {"topic": "job.b"}})
    assert order(dag) == (["b"], ["a"])
    assert [p.message for p in problems(dag)] == ["step a never starts: it depends on itself"]
