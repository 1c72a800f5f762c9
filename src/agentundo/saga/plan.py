"""Checks before a run: problems that would make a drill meaningless (exit 2, nothing runs)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from agentundo.model.catalog import Catalog
from agentundo.model.scenario import WORKFLOW_FAULTS
from agentundo.model.templates import TemplatePlace, render_key, sample_fields
from agentundo.model.workflow import Workflow
from agentundo.saga.faults import FaultPlan


@dataclass(frozen=True, slots=True)
class PlanProblem:
    """A reason the run cannot start: where (step index, or a fault) and what."""

    message: str
    step_index: int | None = None
    fault_index: int | None = None
    usage: bool = False  # the command line's doing (exit 2 as a usage error)


def check_plan(
    workflow: Workflow,
    catalog: Catalog,
    plan: FaultPlan,
    approvals: Iterable[str] = (),
) -> list[PlanProblem]:
    """Problems that would make a drill meaningless: unknown steps, unrenderable keys."""
    problems: list[PlanProblem] = []
    ids = [s.id for s in workflow.steps]
    known = set(ids)
    if len(known) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        problems.append(PlanProblem(f"step ids must be unique; repeated: {', '.join(dup)}"))
    for index, fault in enumerate(plan.faults):
        if fault.type in WORKFLOW_FAULTS and fault.step is not None:
            problems.append(
                PlanProblem(
                    f"a {fault.type} fault is about the workflow's rollback lock, not a step; "
                    f"remove 'step: {fault.step}'",
                    fault_index=index,
                )
            )
        elif fault.step is not None and fault.step not in known:
            problems.append(
                PlanProblem(
                    f"{fault.type} fault names step '{fault.step}', which is not in "
                    f"workflow '{workflow.workflow}'",
                    fault_index=index,
                )
            )
    problems.extend(
        PlanProblem(f"--approve names step '{name}', which is not in the workflow", usage=True)
        for name in approvals
        if name not in known
    )
    for index, step in enumerate(workflow.steps):
        spec = catalog.topics.get(step.topic)
        if spec is None:
            continue
        templates = [(TemplatePlace.IDEMPOTENCY_KEY, spec.idempotency_key)]
        if spec.compensation is not None:
            templates.append((TemplatePlace.COMPENSATION_KEY, spec.compensation.idempotency_key))
        for where, template in templates:
            if not template:
                continue
            try:
                render_key(template, sample_fields(workflow, index, where))
            except (KeyError, ValueError, IndexError) as exc:
                problems.append(
                    PlanProblem(
                        f"cannot render {where} {template!r} of topic '{step.topic}' for "
                        f"step '{step.id}': missing {exc}",
                        step_index=index,
                    )
                )
    return problems
