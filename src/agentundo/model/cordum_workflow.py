"""Cordum workflows: a DAG of steps, read so that lint checks them and drills rehearse them.

A Cordum workflow (a pack's ``workflows/*.yaml``) has ``steps:`` as a *mapping* from step
id to step; a step has a ``type`` (``worker`` dispatches ``topic``; ``approval`` waits for
a human; ``transform`` and others run inside the engine), ``depends_on`` (step ids), an
optional ``condition`` (an expression over ``input.*``) and ``meta`` (``risk_tags``,
``capability``, ``pack_id``, ``labels``, ...) that the control plane's policy matches on.

:func:`plan` orders the steps topologically (of the steps ready, the first in the
file first), evaluates conditions
from the run's inputs where it can (:mod:`agentundo.model.cordum_condition`), and gives the
linear step list the drill engine runs, the job facts of each step (for the policy gate),
the approval steps (``require_human`` at the gate) and what is not rehearsed, and why.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from agentundo.model.cordum_condition import Inputs, evaluate_condition
from agentundo.model.workflow import Step, Workflow
from agentundo.policy.conditions import Job

KIND = "cordum-workflow"

APPROVAL_TOPIC = "job.cordum.approval-gate"
"""The topic Cordum's workflow engine dispatches for an ``approval`` step."""

DISPATCHING = frozenset({"worker", "approval"})
"""Step types the drill rehearses: a worker dispatches its topic, an approval waits."""

IN_ENGINE = frozenset({"transform", "condition", "switch", "delay", "notify", "storage", "input"})
"""Step types that run inside Cordum's engine and dispatch nothing."""


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class StepMeta(_Open):
    pack_id: str | None = None
    capability: str | None = None
    risk_tags: list[str] | None = None
    requires: list[str] | None = None
    labels: dict[str, str] | None = None
    actor_id: str | None = None
    actor_type: str | None = None


class CordumStep(_Open):
    id: str | None = None
    name: str | None = None
    type: str | None = None
    topic: str | None = None
    depends_on: list[str] | None = None
    condition: str | None = None
    input: dict[str, Any] | None = None
    meta: StepMeta | None = None
    route_labels: dict[str, str] | None = None

    @property
    def kind(self) -> str:
        """The step's type; Cordum's default is ``worker``."""
        return (self.type or "worker").strip().lower()


class CordumWorkflow(_Open):
    """A Cordum workflow definition as written (open: unknown keys are kept)."""

    id: str | None = None
    name: str | None = None
    org_id: str | None = None
    steps: dict[str, CordumStep]


def detect(data: dict[str, Any]) -> str | None:
    """Claim a document whose ``steps:`` is a mapping of step mappings (Cordum's DAG).

    agentundo's own workflows have a ``steps:`` *list*; a mapping whose steps carry a
    ``type``, ``topic`` or ``depends_on`` is Cordum's shape.
    """
    steps = data.get("steps")
    if data.get("version") == "v1" or not isinstance(steps, dict):
        return None
    if not steps or not all(isinstance(s, dict) for s in steps.values()):
        return None
    shaped = any({"type", "topic", "depends_on"} & s.keys() for s in steps.values())
    return KIND if shaped else None


def _build(data: Any) -> CordumWorkflow:
    return CordumWorkflow.model_validate(data)


def register() -> None:
    """Teach the loader this format (idempotent)."""
    from agentundo.load.files import KINDS, Kind, register_kind

    if KIND not in KINDS:
        register_kind(Kind(KIND, KIND, _build, frozenset({"steps", "depends_on"})), detect)


@dataclass(frozen=True, slots=True)
class DagProblem:
    """Something that keeps the DAG from being ordered or run: which kind (``dependency``,
    ``cycle``, ``topic``), where, what, and what to do."""

    kind: str
    path: tuple[str | int, ...]
    message: str
    hint: str | None = None


def problems(workflow: CordumWorkflow) -> list[DagProblem]:
    """Unknown dependencies, cycles, and dispatching steps without a topic."""
    found: list[DagProblem] = []
    for key, step in workflow.steps.items():
        for i, dep in enumerate(step.depends_on or ()):
            if dep not in workflow.steps:
                close = difflib.get_close_matches(dep, list(workflow.steps), n=1)
                found.append(
                    DagProblem(
                        "dependency",
                        ("steps", key, "depends_on", i),
                        f"step '{key}' depends on '{dep}', which is not a step of this workflow",
                        f"did you mean '{close[0]}'?" if close else None,
                    )
                )
        if step.kind == "worker" and not (step.topic or "").strip():
            found.append(
                DagProblem(
                    "topic",
                    ("steps", key),
                    f"worker step '{key}' has no topic to dispatch",
                    "add the topic, or give the step the type it runs as (e.g. transform)",
                )
            )
    _ordered, cyclic = order(workflow)
    if cyclic:
        first = cyclic[0]
        found.append(
            DagProblem(
                "cycle",
                ("steps", first, "depends_on"),
                (
                    f"step {first} never starts: it depends on itself"
                    if len(cyclic) == 1
                    else f"steps {', '.join(cyclic)} never start: they depend on each other "
                    "in a cycle (or on a step that does)"
                ),
                "remove one of the dependencies",
            )
        )
    return found


def order(workflow: CordumWorkflow) -> tuple[list[str], list[str]]:
    """Step ids in a topological order, and those that never start (a cycle).

    Stable: of the steps whose dependencies are all done, the first in the file goes
    first.

    Dependencies on steps that do not exist are ignored here (:func:`problems` names them).
    """
    steps = workflow.steps
    position = {key: i for i, key in enumerate(steps)}
    waiting = {k: {d for d in s.depends_on or () if d in steps} for k, s in steps.items()}
    done: list[str] = []
    ready = sorted((k for k, deps in waiting.items() if not deps), key=position.__getitem__)
    while ready:
        key = ready.pop(0)
        done.append(key)
        for other, deps in waiting.items():
            if key in deps:
                deps.discard(key)
                if not deps and other not in done and other not in ready:
                    ready.append(other)
                    ready.sort(key=position.__getitem__)
    return done, [k for k in steps if k not in done]


def job_of(workflow: CordumWorkflow, key: str) -> Job:
    """The facts the control plane's policy sees for the job of step ``key``.

    Cordum's engine labels each job with the workflow, the step and ``_source: workflow``,
    adds the step's ``route_labels`` and ``meta.labels``, and carries ``meta``'s risk tags,
    capability, pack, requirements and actor. The run's tenant is the workflow's
    ``org_id``. Everything is known (``complete``): a label not set is absent.
    """
    step = workflow.steps[key]
    meta = step.meta or StepMeta()
    labels = {"_source": "workflow", "step_id": key}
    if workflow.id:
        labels["workflow_id"] = workflow.id
    labels.update(step.route_labels or {})
    labels.update(meta.labels or {})
    single = {
        "tenant": workflow.org_id,
        "capability": meta.capability,
        "pack_id": meta.pack_id,
        "actor_id": meta.actor_id,
        "actor_type": meta.actor_type,
    }
    facts: dict[str, str | frozenset[str]] = {k: v for k, v in single.items() if v}
    facts["risk_tags"] = frozenset(meta.risk_tags or ())
    facts["requires"] = frozenset(meta.requires or ())
    return Job(facts=facts, labels=labels, complete=True)


def topic_of(step: CordumStep) -> str | None:
    """The topic a step dispatches: its own, Cordum's approval gate, or none."""
    if step.kind == "approval":
        return (step.topic or "").strip() or APPROVAL_TOPIC
    if step.kind == "worker":
        return (step.topic or "").strip() or None
    return None


@dataclass(frozen=True, slots=True)
class Plan:
    """A Cordum workflow as the drill engine runs it.

    ``workflow``: the linear steps (topological order); ``keys[i]`` the file's step id of
    ``workflow.steps[i]``; ``jobs``: job facts by step id; ``approvals``: approval step ids
    (``require_human`` at the gate); ``skipped``: (step id, why) for every step not run.
    """

    workflow: Workflow | None
    keys: tuple[str, ...]
    jobs: Mapping[str, Job]
    approvals: frozenset[str]
    skipped: tuple[tuple[str, str], ...]


def plan(workflow: CordumWorkflow, *, name: str, env: str, inputs: Inputs | None = None) -> Plan:
    """The steps to rehearse, in order. ``inputs`` (``--input``): evaluate conditions;
    without them every conditional step (and what depends on it) is not rehearsed."""
    ordered, _cyclic = order(workflow)
    keys: list[str] = []
    skipped: list[tuple[str, str]] = []
    state: dict[str, str] = {}  # step id -> "ran", "engine", "false", "unknown"
    for key in ordered:
        step = workflow.steps[key]
        blocked = [d for d in step.depends_on or () if state.get(d) in ("false", "unknown")]
        if blocked:
            unknown = any(state[d] == "unknown" for d in blocked)
            state[key] = "unknown" if unknown else "false"
            how = "is not rehearsed" if unknown else "does not run"
            skipped.append((key, f"depends on {', '.join(blocked)}, which {how}"))
            continue
        if step.condition is not None and step.condition.strip():
            verdict = evaluate_condition(step.condition, inputs)
            if verdict is None:
                state[key] = "unknown"
                why = "no --input given" if inputs is None else "it cannot be evaluated"
                skipped.append((key, f"condition `{step.condition}` not rehearsed ({why})"))
                continue
            if not verdict:
                state[key] = "false"
                skipped.append((key, f"condition `{step.condition}` is false for the inputs"))
                continue
        topic = topic_of(step)
        if topic is None:
            state[key] = "engine"
            what = "runs in the engine" if step.kind in IN_ENGINE else "is not rehearsed"
            skipped.append((key, f"a {step.kind} step {what}: nothing to dispatch"))
            continue
        state[key] = "ran"
        keys.append(key)
    return _plan_of(workflow, keys, name=name, env=env, skipped=tuple(skipped))


def lint_plan(workflow: CordumWorkflow, *, name: str, env: str) -> Plan:
    """Every worker step with a topic, conditions aside (lint checks every branch).

    Approval steps are left out: they dispatch Cordum's own approval gate, not an action
    of the catalog."""
    ordered, cyclic = order(workflow)
    keys = [
        k
        for k in [*ordered, *cyclic]
        if workflow.steps[k].kind == "worker" and topic_of(workflow.steps[k]) is not None
    ]
    return _plan_of(workflow, keys, name=name, env=env, skipped=())


def _plan_of(
    workflow: CordumWorkflow,
    keys: list[str],
    *,
    name: str,
    env: str,
    skipped: tuple[tuple[str, str], ...],
) -> Plan:
    """The native view of the steps ``keys`` (each has a topic), in that order."""
    steps = [
        Step(
            id=k,
            topic=topic_of(workflow.steps[k]) or "",
            params=dict(workflow.steps[k].input or {}),
            description=workflow.steps[k].name,
        )
        for k in keys
    ]
    native = Workflow(version="v1", workflow=name, env=env, steps=steps) if steps else None
    return Plan(
        workflow=native,
        keys=tuple(keys),
        jobs={k: job_of(workflow, k) for k in keys},
        approvals=frozenset(k for k in keys if workflow.steps[k].kind == "approval"),
        skipped=skipped,
    )


def native_file(file: Any, native: Plan) -> Any:
    """A :class:`~agentundo.load.files.LoadedFile` of ``native.workflow`` whose positions
    are those of the Cordum file: ``steps[i]`` is the step ``native.keys[i]`` (its
    ``input`` read as ``params``), so every workflow check points at the file's own lines."""
    from agentundo.load.files import LoadedFile
    from agentundo.load.yamlpos import Document

    doc: Document = file.doc
    index = {key: i for i, key in enumerate(native.keys)}

    def moved(table: dict[tuple[str | int, ...], tuple[int, int]]) -> dict[Any, tuple[int, int]]:
        out: dict[Any, tuple[int, int]] = dict(table)
        for path, where in table.items():
            if len(path) >= 2 and path[0] == "steps" and path[1] in index:
                rest = path[2:]
                if rest[:1] == ("input",):
                    rest = ("params", *rest[1:])
                out[("steps", index[str(path[1])], *rest)] = where
        return out

    values = moved(doc.values)
    for key, i in index.items():
        found = doc.keys.get(("steps", key))
        if found is not None:
            values[("steps", i, "id")] = found
    view = Document(doc.path, doc.data, values, moved(doc.keys), doc.comments)
    return LoadedFile(path=file.path, kind=file.kind, doc=view, model=native.workflow)
