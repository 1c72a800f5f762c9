"""Cordum workflow checks (AU42x): the DAG can be ordered and every worker dispatches.

A Cordum workflow's steps are a mapping ordered by ``depends_on``
(:mod:`agentundo.model.cordum_workflow`). Its worker steps are also checked as a
workflow (AU401-AU407) in topological order; these checks cover what only a DAG has.
"""

from __future__ import annotations

from collections.abc import Iterator

from agentundo.lint.finding import Severity
from agentundo.lint.project import Problem, Project
from agentundo.lint.registry import check
from agentundo.model.cordum_workflow import problems


def _problems(project: Project, kind: str) -> Iterator[Problem]:
    for file in project.dags:
        for problem in problems(file.model):
            if problem.kind == kind:
                yield Problem(file.position(*problem.path), problem.message, problem.hint)


@check("AU420", "dag-dependency-unknown", Severity.ERROR, "workflow")
def dag_dependency_unknown(project: Project) -> Iterator[Problem]:
    """A Cordum workflow step depends on a step the workflow does not have.

    The engine would wait for it for ever (or refuse the workflow): usually a typo or a
    renamed step.

    Bad:
        steps:
          validate: {type: transform}
          execute: {type: worker, topic: job.bank.transfer, depends_on: [validat]}
    Good:
        steps:
          validate: {type: transform}
          execute: {type: worker, topic: job.bank.transfer, depends_on: [validate]}
    """
    yield from _problems(project, "dependency")


@check("AU421", "dag-cycle", Severity.ERROR, "workflow")
def dag_cycle(project: Project) -> Iterator[Problem]:
    """Steps of a Cordum workflow depend on each other in a cycle: none of them can start.

    Cordum starts a step when every step it depends on has finished; steps in a cycle
    (and the steps after them) wait for ever. Reported at the first step of the cycle in
    file order.

    Bad:
        steps:
          a: {topic: job.a, depends_on: [b]}
          b: {topic: job.b, depends_on: [a]}
    Good:
        steps:
          a: {topic: job.a}
          b: {topic: job.b, depends_on: [a]}
    """
    yield from _problems(project, "cycle")


@check("AU422", "dag-worker-without-topic", Severity.ERROR, "workflow")
def dag_worker_without_topic(project: Project) -> Iterator[Problem]:
    """A worker step of a Cordum workflow has no `topic`: there is nothing to dispatch.

    (`type` defaults to `worker`; steps that run inside the engine, such as
    `transform`, need no topic.)

    Bad:
        steps:
          charge: {type: worker, input: {amount: "${input.amount}"}}
    Good:
        steps:
          charge: {type: worker, topic: job.ledger.charge, input: {amount: "${input.amount}"}}
    """
    yield from _problems(project, "topic")
