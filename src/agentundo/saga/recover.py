"""Finish the rollback of an interrupted run from its evidence (``agentundo recover``).

The evidence file is the run's history. Every call that may have an effect is announced
before it is made (``step_dispatched``, ``compensation_dispatched``: the intent, with the
params a compensation needs) and settled after it (the outcome). Read back, the records
say which effects landed, which may have landed (an intent without an outcome:
*unknown*), which were undone, and which are still owed, whatever killed the run.

:func:`read_plan` derives that; :func:`recover` compensates what is owed, last first,
with the run's own idempotency keys (an unknown effect is compensated too: the key makes
that safe), through the same policy gate, lock and rollback rules as the drill, and
writes the records to the sink that continues the run's evidence.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from agentundo.errors import InputError, Position
from agentundo.evidence.events import (
    CompensationOutcome,
    Event,
    FollowUp,
    RunStatus,
    StepState,
    Verdict,
)
from agentundo.evidence.reader import Record
from agentundo.evidence.redact import REDACTED
from agentundo.evidence.summary import RunSummary
from agentundo.evidence.tally import RunTally
from agentundo.model.catalog import Catalog, Topic
from agentundo.model.policy import Policy
from agentundo.model.templates import (
    ENV_REFERENCE,
    PARAMS_PREFIX,
    compensation_key,
    compensation_templates,
    template_fields,
)
from agentundo.model.workflow import Workflow
from agentundo.saga.clock import Clock, rfc3339
from agentundo.saga.context import (
    ROLLBACK_MODE,
    ForwardCall,
    ResumedJob,
    RunContext,
    Sink,
    StackEntry,
)
from agentundo.saga.executor import Executor
from agentundo.saga.gate import PolicyGate
from agentundo.saga.lock import LockStore
from agentundo.saga.rollback import Rollback
from agentundo.saga.setup import DrillSetup, Settings, Stop
from agentundo.saga.verdict import planned

_STILL_OWED = frozenset({FollowUp.INTERRUPTED, FollowUp.LOCK_HELD, FollowUp.LOCK_UNAVAILABLE})
"""Follow-ups that leave the entry owed to ``recover`` rather than settled by a human."""

_JOB_NUMBER = re.compile(r"^job_(\d+)$")

RECOVERY_SETTINGS = Settings(lock_wait_s=10.0)
"""Recovery's defaults: it waits up to 10 s for a lock another runner holds."""


@dataclass(slots=True)
class StepSeen:
    """One forward step as the evidence shows it."""

    step_id: str
    topic: str
    index: int
    job_id: str
    params: dict[str, Any] = field(default_factory=dict)
    response: dict[str, Any] | None = None
    state: str = "open"
    """open (no outcome), landed, unknown (may have landed), not_sent, denied."""
    sent: bool = False
    key: str | None = None
    attempts: int = 0


@dataclass(slots=True)
class CompensationSeen:
    """What the evidence shows of one step's compensation."""

    job_id: str | None = None
    key: str | None = None
    attempts: int = 0
    done: bool = False  # succeeded, or not needed
    settled_by: str | None = None  # a follow-up category that hands it to a human


@dataclass(slots=True)
class Owed:
    """One effect recovery must undo (or hand to a human), in stack order."""

    step: StepSeen
    state: str  # landed or unknown
    resume: ResumedJob | None
    key: str | None = None  # the compensation's idempotency key, as the run made it


@dataclass(slots=True)
class RecoveryPlan:
    """What an evidence file says is owed, and what recovery must write first."""

    path: str
    run_id: str
    workflow_id: str
    env: str
    started: dict[str, Any]
    steps: list[StepSeen]
    owed: list[Owed]
    settled: list[tuple[str, str]]
    """(step, category) of effects already handed to a human."""
    open_jobs: list[StepSeen]
    """Forward jobs dispatched without an outcome (the process died during the call)."""
    interrupted: bool
    has_rollback: bool
    summary: dict[str, Any] | None
    records: list[Record]
    next_job: int
    hidden: dict[str, list[str]] = field(default_factory=dict)
    """Owed steps whose compensation needs a param the evidence holds redacted (a secret):
    recovery cannot rebuild their call, and hands them to a human."""
    imported: bool = False
    """The run is an agent's traced run (``recover --trace``): its records say what the
    trace shows, so its end is the trace's, not a lost process."""

    @property
    def nothing_owed(self) -> bool:
        """Nothing to undo, and the run ended with its summary (a run killed after its
        last compensation still needs recovery to close it: nothing is sent then)."""
        return not self.owed and not self.open_jobs and self.summary is not None


def read_plan(path: str, records: list[Record], catalog: Catalog) -> RecoveryPlan:
    """What is owed, from the records of one run (in order)."""
    if not records or records[0].event != Event.RUN_STARTED:
        raise InputError(
            Position(path), "not the evidence of a run: it does not start with run_started"
        )
    started = records[0].data
    run_ids = {str(r.get("run_id")) for r in records}
    if len(run_ids) != 1:
        raise InputError(
            Position(path),
            f"holds {len(run_ids)} runs ({', '.join(sorted(run_ids))}): recover one run's file",
        )
    steps: dict[str, StepSeen] = {}
    comps: dict[str, CompensationSeen] = {}
    jobs = 0
    for record in records:
        jobs = max(jobs, _job_number(record.get("job_id")))
        _follow(record, steps, comps)
    ordered = sorted(steps.values(), key=lambda s: s.index)
    owed: list[Owed] = []
    settled: list[tuple[str, str]] = []
    for step in ordered:
        spec = catalog.topics.get(step.topic)
        if spec is not None and not spec.side_effect:
            continue
        if step.state not in ("landed", "unknown", "open"):
            continue
        comp = comps.get(step.step_id, CompensationSeen())
        if comp.done:
            continue
        if comp.settled_by is not None:
            settled.append((step.step_id, comp.settled_by))
            continue
        resume = None
        if comp.job_id is not None:
            resume = ResumedJob(comp.job_id, comp.key, comp.attempts)
        state = "landed" if step.state == "landed" else "unknown"
        key = resume.idempotency_key if resume else _compensation_key(started, step, spec)
        owed.append(Owed(step, state, resume, key))
    events = {r.event for r in records}
    return RecoveryPlan(
        path=path,
        run_id=str(started.get("run_id")),
        workflow_id=str(started.get("workflow_id")),
        env=str(started.get("env")),
        started=started,
        steps=ordered,
        owed=owed,
        settled=settled,
        open_jobs=[s for s in ordered if s.state == "open"],
        interrupted=Event.RUN_INTERRUPTED in events,
        has_rollback=Event.ROLLBACK_TRIGGERED in events,
        summary=next((r.data for r in reversed(records) if r.event == Event.RUN_SUMMARY), None),
        records=records,
        next_job=jobs + 1,
        imported=started.get("source") == "trace",
    )


def _compensation_key(started: dict[str, Any], step: StepSeen, spec: Topic | None) -> str | None:
    """The key the run gives the compensation of ``step`` (the same whoever sends it)."""
    comp = spec.compensation if spec is not None else None
    if comp is None:
        return None
    fields = {
        "run_id": started.get("run_id"),
        "workflow_id": started.get("workflow_id"),
        "step_id": step.step_id,
        "step_index": step.index,
        "topic": comp.topic,
        "env": started.get("env"),
        "job_id": "",
        "params": step.params,
        "response": step.response,
    }
    derive = settings_of(started, RECOVERY_SETTINGS).derive_compensation_keys
    try:
        return compensation_key(comp.idempotency_key, fields, derive=derive)
    except (KeyError, ValueError, IndexError):
        return None


def _redacted_params(params: dict[str, Any], spec: Topic | None) -> list[str]:
    """The params a topic's compensation uses whose value the evidence redacted."""
    if spec is None or spec.compensation is None:
        return []
    used: set[str] = set()
    for _place, text in compensation_templates(spec):
        try:
            names = template_fields(ENV_REFERENCE.sub("", text))
        except ValueError:
            continue
        used.update(n.removeprefix(PARAMS_PREFIX) for n in names if n.startswith(PARAMS_PREFIX))
    return sorted(n for n in used if REDACTED in str(params.get(n, "")))


def _job_number(value: object) -> int:
    match = _JOB_NUMBER.match(value) if isinstance(value, str) else None
    return int(match.group(1)) if match else 0


def _follow(record: Record, steps: dict[str, StepSeen], comps: dict[str, CompensationSeen]) -> None:
    """Update what is known of each step and its compensation with one record."""
    data, event = record.data, record.event
    step_id = str(data.get("step_id", ""))
    step = steps.get(step_id)
    if event == Event.STEP_DISPATCHED:
        if step is None or step.job_id != data.get("job_id"):
            step = StepSeen(
                step_id,
                str(data.get("topic")),
                int(data.get("step_index", len(steps))),
                str(data.get("job_id")),
            )
            steps[step_id] = step
        params = data.get("params")
        if isinstance(params, dict):
            step.params = params
        step.key = data.get("idempotency_key")
        attempt = data.get("attempt")
        step.attempts = attempt if isinstance(attempt, int) else step.attempts + 1
        step.state = "open"
        return
    if step is not None and event in _FORWARD_OUTCOMES:
        _forward_outcome(step, event, data)
        return
    if event == Event.RUN_INTERRUPTED and step is not None and step.state == "open":
        step.state = "unknown" if step.sent else "not_sent"
        return
    comp = comps.setdefault(step_id, CompensationSeen()) if step_id else None
    if comp is None:
        return
    if event == Event.COMPENSATION_DISPATCHED:
        comp.job_id = str(data.get("job_id"))
        comp.key = data.get("idempotency_key")
        attempt = data.get("attempt")
        comp.attempts = attempt if isinstance(attempt, int) else comp.attempts + 1
    elif event in (Event.COMPENSATION_SUCCEEDED, Event.COMPENSATION_NOT_NEEDED):
        comp.done = True
    elif event == Event.MANUAL_FOLLOWUP:
        category = str(data.get("category"))
        comp.settled_by = None if category in _STILL_OWED else category


_FORWARD_OUTCOMES = frozenset(
    {
        Event.STEP_FAILED,
        Event.STEP_SUCCEEDED,
        Event.STEP_FAILED_FATAL,
        Event.STEP_OUTCOME_UNKNOWN,
        Event.STEP_DENIED,
    }
)


def _forward_outcome(step: StepSeen, event: str, data: dict[str, Any]) -> None:
    response = data.get("response")
    if isinstance(response, dict):
        step.response = response
    if event == Event.STEP_FAILED:
        step.sent = step.sent or data.get("sent", True) is True
    elif event == Event.STEP_SUCCEEDED:
        step.state, step.sent = "landed", True
    elif event == Event.STEP_FAILED_FATAL:
        sent = data.get("sent", True) is True  # evidence from before `sent`: may have landed
        step.state = "unknown" if sent or step.sent else "not_sent"
    elif event == Event.STEP_OUTCOME_UNKNOWN:
        step.state, step.sent = "unknown", True
    else:
        step.state = "denied"


@dataclass(slots=True)
class RecoveryResult:
    """What recovery did: the summary it wrote, and what is still owed after it."""

    verdict: Verdict
    owed: list[str]
    compensated: list[str]
    manual: list[tuple[str, str, str]]
    """(step, category, reason) of the follow-ups recovery wrote."""
    summary: dict[str, Any]
    lock_held: bool = False


def settings_of(started: dict[str, Any], base: Settings) -> Settings:
    """``base`` with the run's own timings and retry counts, as its ``run_started``
    recorded them (as strings); the lock wait stays recovery's own."""
    recorded = started.get("settings")
    if not isinstance(recorded, dict):
        return base
    changes: dict[str, Any] = {}
    for name, default in base.as_dict().items():
        text = recorded.get(name)
        if name == "lock_wait_s" or not isinstance(text, str):
            continue
        if name == "derive_compensation_keys" and text in ("True", "False"):
            changes[name] = text == "True"  # the keys must be the run's own
            continue
        numeric = isinstance(default, int | float) and not isinstance(default, bool)
        if not numeric:
            continue
        try:
            value = float(text)
        except ValueError:
            continue
        changes[name] = int(value) if isinstance(default, int) else value
    return replace(base, **changes).bounded()


def recover(
    plan: RecoveryPlan,
    *,
    catalog: Catalog,
    policy: Policy,
    executor: Executor,
    lock_store: LockStore,
    sink: Sink,
    clock: Clock,
    stop: Stop | None = None,
    settings: Settings = RECOVERY_SETTINGS,
) -> RecoveryResult:
    """Compensate what ``plan`` says is owed, writing the records to ``sink``."""
    written: list[dict[str, Any]] = []

    def write(record: dict[str, Any]) -> object:
        written.append(record)
        return sink(record)

    ctx = _context(plan, catalog, policy, settings, write, clock, stop or Stop())
    ctx.emit(
        Event.RECOVERY_STARTED,
        "agentundo",
        owed=[o.step.step_id for o in plan.owed],
        unknown=[o.step.step_id for o in plan.owed if o.state == "unknown"],
        manual=[step for step, _category in plan.settled],
    )
    for step in plan.open_jobs:
        ctx.emit(
            Event.STEP_OUTCOME_UNKNOWN,
            ctx.agent,
            job_id=step.job_id,
            step_id=step.step_id,
            topic=step.topic,
            reason="the run ended during the call (no outcome was written): it may have landed",
        )
    if not plan.interrupted and plan.summary is None and not plan.imported:
        ctx.emit(
            Event.RUN_INTERRUPTED,
            "agentundo",
            signal="lost",
            reason="the run ended without a run_summary (killed, or the machine went away)",
        )
    for step_id, names in plan.hidden.items():
        hidden_step = next(s for s in ctx.setup.workflow.steps if s.id == step_id)
        ctx.followup(
            hidden_step,
            hidden_step.topic,
            FollowUp.NO_COMPENSATION,
            f"its compensation needs the secret param(s) {', '.join(names)}, which the "
            "evidence holds redacted: recovery cannot rebuild the call, a human must undo it",
            None,
        )
    rollback = Rollback(ctx, gate=PolicyGate(ctx), executor=executor, locks=lock_store)
    ctx.in_rollback = True
    if plan.has_rollback:
        rollback.unwind()
    else:
        rollback.announce("recovery")
        rollback.unwind()
    owed = [f.step_id for f in ctx.followups if f.category in _STILL_OWED or not planned(ctx, f)]
    verdict = Verdict.FAILED if owed else Verdict.RECOVERED
    ctx.emit(
        Event.RECOVERY_FINISHED,
        "agentundo",
        outcome="complete" if not owed else "owed",
        owed=owed,
    )
    summary = _summary(plan, ctx, written, verdict, owed, rollback.finished_at)
    ctx.emit(Event.RUN_SUMMARY, "agentundo", **summary)
    return RecoveryResult(
        verdict=verdict,
        owed=owed,
        compensated=[c.step_id for c in ctx.comps if c.outcome is CompensationOutcome.SUCCEEDED],
        manual=[(f.step_id, f.category.value, f.reason) for f in ctx.followups],
        summary=summary,
        lock_held=any(f.category is FollowUp.LOCK_HELD for f in ctx.followups),
    )


def _context(
    plan: RecoveryPlan,
    catalog: Catalog,
    policy: Policy,
    settings: Settings,
    sink: Sink,
    clock: Clock,
    stop: Stop,
) -> RunContext:
    """A run context for the original run: its ids, its steps, and the owed stack."""
    workflow = Workflow.model_validate(
        {
            "version": "v1",
            "workflow": plan.workflow_id,
            "env": plan.env,
            "steps": [{"id": s.step_id, "topic": s.topic, "params": s.params} for s in plan.steps],
        }
    )
    approvals = plan.started.get("approvals")
    setup = DrillSetup(
        workflow=workflow,
        catalog=catalog,
        policy=policy,
        approvals=frozenset(a for a in approvals or () if isinstance(a, str)),
        settings=settings_of(plan.started, settings),
        scenario=plan.started.get("scenario"),
        seed=int(plan.started.get("seed") or 0),
    )
    ctx = RunContext(setup, plan.run_id, sink, clock, stop)
    ctx.owner = f"owner:{plan.run_id}:recover:{os.getpid()}"  # not the drill's own token
    ctx.rollback_actor = f"rollback:{ctx.owner}"
    ctx._jobs = plan.next_job - 1
    by_id = {s.step_id: s for s in plan.steps}
    for report in ctx.steps:
        seen = by_id[report.step_id]
        report.job_id = seen.job_id
        report.attempts = 1
        report.state = StepState.SUCCEEDED if seen.state == "landed" else StepState.INTERRUPTED
    for owed in plan.owed:
        index = next(i for i, s in enumerate(plan.steps) if s is owed.step)
        step = workflow.steps[index]
        hidden = _redacted_params(step.params, catalog.topics.get(step.topic))
        if hidden:
            plan.hidden[step.id] = hidden
            continue
        ctx.stack.append(
            StackEntry(
                step,
                owed.step.index,
                catalog.topics.get(step.topic),
                failed=owed.state != "landed",
                sent=True,
                response=owed.step.response,
                resume=owed.resume,
                forward=ForwardCall(
                    owed.step.job_id, owed.step.key, owed.step.attempts, owed.state == "landed"
                ),
            )
        )
    return ctx


def _summary(
    plan: RecoveryPlan,
    ctx: RunContext,
    written: Iterable[dict[str, Any]],
    verdict: Verdict,
    owed: list[str],
    finished_at: str | None,
) -> dict[str, Any]:
    """The run's final ``run_summary``: its counts over the whole run, original and recovery."""
    tally = RunTally()
    all_records = [r.data for r in plan.records] + list(written)
    for number, data in enumerate(all_records, 1):
        tally.feed(Record(plan.path, number, data, b"", str(data.get("event"))))
    undone = list(
        dict.fromkeys(
            str(d.get("step_id"))
            for d in all_records
            if d.get("event") == Event.COMPENSATION_SUCCEEDED
        )
    )
    manual = [str(d.get("step_id")) for d in all_records if d.get("event") == Event.MANUAL_FOLLOWUP]
    previous = plan.summary or {}
    stopped = next((s for s in plan.steps if s.state != "landed"), None)
    status = previous.get("status") if plan.summary and not plan.interrupted else None
    if plan.imported and status is None:  # the traced run stopped where its first call failed
        failed = any(r.event == Event.STEP_FAILED_FATAL for r in plan.records)
        status = RunStatus.FAILED_FATAL.value if failed else RunStatus.SUCCEEDED.value
    summary = RunSummary(
        run_id=plan.run_id,
        job_id=stopped.job_id if stopped else None,
        status=str(status or RunStatus.INTERRUPTED.value),
        matched_policy_id=previous.get("matched_policy_id"),
        rollback_triggered=True,
        rollback_mode=ROLLBACK_MODE,
        **tally.counts(),
        rollback_finished_at=finished_at,
        started_at=str(plan.started.get("ts")),
        finished_at=rfc3339(ctx.clock.now()),
        env=plan.env,
        verdict=verdict.value,
        scenario=plan.started.get("scenario"),
        step_id=stopped.step_id if stopped else None,
        steps_total=int(plan.started.get("steps") or len(plan.steps)),
        steps_succeeded=sum(1 for s in plan.steps if s.state == "landed"),
        compensated=undone,
        manual=manual,
        left_behind=[],
        undone_twice=[],
        read=[s.step_id for s in plan.steps if _read_only(ctx, s.topic)],
        owed=owed,
        lock_expired=False,
        problems=[f"step '{step}' is still owed" for step in owed],
    )
    return summary.to_record()


def _read_only(ctx: RunContext, topic: str) -> bool:
    spec = ctx.catalog.topics.get(topic)
    return spec is not None and not spec.side_effect
