"""Workflow checks (AU4xx): steps resolve, can run, and put the saga's pivot last."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import replace
from functools import lru_cache

from agentundo.lint.finding import Severity
from agentundo.lint.project import Problem, Project
from agentundo.lint.registry import check
from agentundo.lint.sites import Site, compensation_dispatched, compensation_sites, http_sites
from agentundo.load.files import LoadedFile
from agentundo.model.catalog import Topic
from agentundo.model.common import Decision, Rollback
from agentundo.model.templates import PARAMS_PREFIX, TemplatePlace, template_fields
from agentundo.model.workflow import Step, Workflow


def _steps(project: Project) -> Iterator[tuple[LoadedFile, Workflow, int, Step]]:
    for file in project.workflows:
        workflow: Workflow = file.model
        for index, step in enumerate(workflow.steps):
            yield file, workflow, index, step


@check("AU401", "unknown-topic", Severity.ERROR, "workflow")
def unknown_topic(project: Project) -> Iterator[Problem]:
    """A workflow step names a topic that is not in the catalog.

    The engine cannot gate, retry or roll back an action it knows nothing about.
    (Skipped when no catalog is part of the lint run.)

    Bad:
        steps:
          - {id: charge, topic: payments.charg}
    Good:
        steps:
          - {id: charge, topic: payments.charge}
    """
    if not project.has_catalog:
        return
    for file, _workflow, index, step in _steps(project):
        if step.topic not in project.topics:
            close = difflib.get_close_matches(step.topic, list(project.topics), n=1)
            yield Problem(
                file.position("steps", index, "topic"),
                f"step '{step.id}' uses unknown topic '{step.topic}'",
                f"did you mean '{close[0]}'?" if close else "declare the topic in a catalog",
            )


@check("AU402", "duplicate-step-id", Severity.ERROR, "workflow")
def duplicate_step_id(project: Project) -> Iterator[Problem]:
    """Two steps of one workflow share an `id`.

    Step ids name jobs, idempotency keys and compensations: a repeated id makes two
    steps share a key, so the second is deduplicated away.

    Bad:
        steps:
          - {id: notify, topic: slack.post}
          - {id: notify, topic: email.send}
    Good:
        steps:
          - {id: notify-slack, topic: slack.post}
          - {id: notify-email, topic: email.send}
    """
    for file in project.workflows:
        seen: dict[str, int] = {}
        for index, step in enumerate(file.model.steps):
            if step.id in seen:
                first = file.position("steps", seen[step.id])
                yield Problem(
                    file.position("steps", index, "id"),
                    f"step id '{step.id}' is already used by the step at line {first.line}",
                )
            else:
                seen[step.id] = index


@check("AU403", "step-always-denied", Severity.ERROR, "workflow")
def step_always_denied(project: Project) -> Iterator[Problem]:
    """A step is denied by the policy in the workflow's env, even with an approval.

    The workflow cannot get past this step: every run fails there and rolls back.

    Bad:
        # policy: {id: no-db-deletes, when: {topic: infra.db.delete, env: production}, decision: deny}
        env: production
        steps:
          - {id: drop, topic: infra.db.delete}
    Good:
        env: staging
        steps:
          - {id: drop, topic: infra.db.delete}
    """
    for entry in project.policies:
        for gate in project.step_gates(entry):
            if not all(o.decision is Decision.DENY for o in gate.outcomes):
                continue  # allowed, or sent to a human, without an approval
            approved = entry.outcomes(replace(gate.ctx, approval_present=True))
            if all(o.decision is Decision.DENY for o in approved):
                step, workflow = gate.step, gate.workflow
                yield Problem(
                    gate.file.position("steps", gate.index, "topic"),
                    f"step '{step.id}' ({step.topic}) is always denied in {workflow.env} "
                    f"by {entry.decided_by(approved[0].index)} of {entry.file.path}",
                    "remove the step, or change the policy or the workflow's env",
                )


def _can_fail(topic: Topic | None) -> bool:
    return topic is None or not topic.retriable


@check("AU404", "pivot-not-last", Severity.WARNING, "workflow")
def pivot_not_last(project: Project) -> Iterator[Problem]:
    """An irreversible step is followed by steps that can still fail.

    In a saga the irreversible step is the pivot: once it runs, the workflow can no
    longer be rolled back. Every step that can fail belongs before it; only steps
    marked `retriable: true` (guaranteed to succeed after retries) may follow.

    Bad:
        steps:
          - {id: notify, topic: email.send}      # irreversible
          - {id: charge, topic: payments.charge} # can still fail
    Good:
        steps:
          - {id: charge, topic: payments.charge}
          - {id: notify, topic: email.send}
    """
    if not project.has_catalog:
        return
    for file in project.workflows:
        steps: list[Step] = file.model.steps
        for index, step in enumerate(steps):
            topic = project.topic(step.topic)
            if (
                topic is None
                or not topic.side_effect
                or topic.rollback is not Rollback.IRREVERSIBLE
            ):
                continue
            later = [s.id for s in steps[index + 1 :] if _can_fail(project.topic(s.topic))]
            if later:
                yield Problem(
                    file.position("steps", index),
                    f"irreversible step '{step.id}' ({step.topic}) is followed by steps that "
                    f"can still fail: {', '.join(later)}",
                    "move the irreversible step last, or mark later topics retriable",
                )


def _param(field: str) -> str | None:
    """``NAME`` of ``params.NAME``; None for any other field."""
    return field[len(PARAMS_PREFIX) :] if field.startswith(PARAMS_PREFIX) else None


@lru_cache(maxsize=4096)
def _template_params(template: str) -> tuple[str, ...] | None:
    """The ``params.NAME`` names a template uses, in order; None when it is malformed
    (thousands of topics share a few templates)."""
    try:
        return tuple(filter(None, map(_param, template_fields(template))))
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def _site_params(site: Site) -> tuple[str, ...] | None:
    """:func:`_template_params` of a site (a URL or header value without ``${VAR}``)."""
    try:
        return tuple(filter(None, map(_param, site.fields())))
    except ValueError:
        return None


def _forward_params(topic: Topic) -> list[tuple[str, str]]:
    """``(NAME, where)`` for each ``params.NAME`` that a template of the forward call of
    ``topic`` uses, where is: its idempotency key, its ``http`` URL, header values and body
    strings. A malformed template is skipped (AU205 and AU501 report it)."""
    found: list[tuple[str, str]] = []
    if topic.idempotency_key is not None:
        names = _template_params(topic.idempotency_key)
        found.extend((name, "the idempotency key") for name in names or ())
    if topic.http is not None:
        for site in http_sites(topic.http, ("http",), TemplatePlace.HTTP):
            found.extend((name, site.where) for name in _site_params(site) or ())
    return found


@check("AU405", "template-param-missing", Severity.ERROR, "workflow")
def template_param_missing(project: Project) -> Iterator[Problem]:
    """A step lacks a parameter that its topic's idempotency key or `http` call uses.

    A key such as `{run_id}:{params.order_id}` cannot be rendered without `order_id`,
    and neither can an `http` URL, header value or body string that uses it, so the
    dispatch would fail before it starts. (AU407 checks the compensation's templates.)

    Bad:
        # catalog: payments.charge {idempotency_key: "{run_id}:{step_id}:{params.order_id}"}
        steps:
          - {id: charge, topic: payments.charge, params: {amount: 10}}
    Good:
        steps:
          - {id: charge, topic: payments.charge, params: {amount: 10, order_id: A1}}
    """
    used: dict[str, list[tuple[str, str]]] = {}  # by topic: steps share topics
    for file, _workflow, index, step in _steps(project):
        topic = project.topic(step.topic)
        if topic is None:
            continue  # the compensation's templates are AU407's
        needs = used.get(step.topic)
        if needs is None:
            needs = used[step.topic] = _forward_params(topic)
        missing: dict[str, list[str]] = {}  # name -> where it is used
        for name, where in needs:
            if name not in step.params and where not in missing.get(name, []):
                missing.setdefault(name, []).append(where)
        for name, places in missing.items():
            yield Problem(
                file.position("steps", index),
                f"step '{step.id}' has no param '{name}', which {', '.join(places)} of "
                f"'{step.topic}' uses",
                f"add '{name}' under the step's params",
            )


STEP_PARAMS_ONLY = frozenset({TemplatePlace.COMPENSATION_KEY, TemplatePlace.COMPENSATION_PARAMS})
"""Places rendered from the step's params alone: the engine fills the compensation's key
and params from the step being undone; only the call (its ``http`` block) receives the
step's params merged with the compensation's rendered params."""


def _compensation_sites(project: Project, topic: Topic) -> Iterator[tuple[Site, str]]:
    """Every template the compensation of ``topic`` renders, with how to name its place:
    its key, params and own ``http`` block, or else its topic's ``http`` block (which
    ``--executor http`` calls for a compensation without one)."""
    comp = topic.compensation
    if comp is None:
        return
    for site in compensation_sites(topic):
        yield site, site.where
    comp_topic = project.topic(comp.topic)
    if comp.http is None and comp_topic is not None and comp_topic.http is not None:
        for site in http_sites(comp_topic.http, ("http",), TemplatePlace.HTTP):
            yield site, f"{site.where} of '{comp.topic}'"


def _compensation_params(project: Project, topic: Topic) -> list[tuple[str, str, bool]]:
    """``(NAME, where, read from the step alone)`` for each ``params.NAME`` that a template
    of the compensation of ``topic`` uses (a malformed one: AU205 and AU501 report it)."""
    return [
        (name, where, site.place in STEP_PARAMS_ONLY)
        for site, where in _compensation_sites(project, topic)
        for name in _site_params(site) or ()
    ]


@check("AU407", "compensation-param-missing", Severity.ERROR, "workflow")
def compensation_param_missing(project: Project) -> Iterator[Problem]:
    """A step lacks a parameter that its topic's compensation templates use.

    A compensation is called with the step's params merged with its own `params`, so its
    `http` URL, header values and body (or, without an `http` block of its own, those of
    the compensation topic) may use `{params.NAME}` when either gives `NAME`. Its
    `idempotency_key` and `params` values are filled from the step's params alone. A
    missing param fails the compensation (or sends a template unfilled) in the middle of
    a rollback, when it matters most.

    Bad:
        # catalog: payments.charge {compensation: {topic: payments.refund,
        #   http: {method: POST, url: "http://ledger/refunds", body: {order: "{params.order_id}"}}}}
        steps:
          - {id: charge, topic: payments.charge, params: {amount: 10}}
    Good:
        steps:
          - {id: charge, topic: payments.charge, params: {amount: 10, order_id: A1}}
    """
    used: dict[str, list[tuple[str, str, bool]]] = {}  # by topic: steps share topics
    for file, _workflow, index, step in _steps(project):
        topic = project.topic(step.topic)
        if topic is None or topic.compensation is None or not compensation_dispatched(topic):
            continue
        comp_params = set(topic.compensation.params or {})
        needs = used.get(step.topic)
        if needs is None:
            needs = used[step.topic] = _compensation_params(project, topic)
        missing: dict[str, dict[str, bool]] = {}  # name -> {place: read from the step alone}
        for name, where, step_only in needs:
            if name in step.params or (name in comp_params and not step_only):
                continue
            missing.setdefault(name, {})[where] = step_only
        for name, places in missing.items():
            where = ", ".join(places)
            if not any(places.values()):
                hint = f"add '{name}' under the step's params or the compensation's params"
            elif name in comp_params:
                hint = (
                    f"add '{name}' under the step's params: the compensation's "
                    "idempotency_key and params are filled from the step's params alone"
                )
            else:
                hint = f"add '{name}' under the step's params"
            yield Problem(
                file.position("steps", index),
                f"step '{step.id}' has no param '{name}', which the compensation of "
                f"'{step.topic}' uses in {where}",
                hint,
            )


@check("AU406", "step-needs-human", Severity.INFO, "workflow")
def step_needs_human(project: Project) -> Iterator[Problem]:
    """A step will wait for a human approval in the workflow's env.

    Not a defect, but worth knowing: an unattended run stops here until someone
    approves, and is denied when nobody does within the approval timeout.

    Bad:
        # policy: require_human for risk critical in production
        steps:
          - {id: apply, topic: infra.terraform.apply}
    Good:
        # the same, with an approval planned for the run (or the step removed)
        steps:
          - {id: apply, topic: infra.terraform.apply}
    """
    for entry in project.policies:
        for gate in project.step_gates(entry):
            for outcome in gate.outcomes:
                if outcome.decision is Decision.REQUIRE_HUMAN:
                    step = gate.step
                    yield Problem(
                        gate.file.position("steps", gate.index, "topic"),
                        f"step '{step.id}' ({step.topic}) needs a human approval in "
                        f"{gate.workflow.env} ({entry.decided_by(outcome.index)}"
                        f"{entry.assuming(outcome, gate.ctx.job)})",
                    )
