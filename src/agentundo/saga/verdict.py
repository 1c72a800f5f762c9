"""The verdict: the ledger of effects, the expectations, the faults reached, the summary.

A drill recovers only when every effect that landed was undone once or sent to a human,
no fault it planned went unreached, the run was not cut short and the scenario's
expectations hold; see ``docs/drill.md``.
"""

from __future__ import annotations

from agentundo.evidence.events import (
    CompensationOutcome,
    Event,
    FollowUp,
    LedgerState,
    RunStatus,
    StepState,
    Verdict,
)
from agentundo.evidence.summary import RunSummary
from agentundo.model.scenario import FAULT_SPECS, Phase, Reached
from agentundo.saga.clock import rfc3339
from agentundo.saga.context import ROLLBACK_MODE, RunContext
from agentundo.saga.result import DrillResult, FollowUpReport, LedgerRow, StepReport
from agentundo.saga.simulate import SimulatedWorld


def ledger(ctx: RunContext, world: SimulatedWorld | None, rollback: bool) -> list[LedgerRow]:
    """Each dispatched step's effect: from the simulated world, else from outcomes."""
    escalated = {f.step_id for f in ctx.followups}
    outcomes = {c.step_id: c for c in ctx.comps}
    rows: list[LedgerRow] = []
    for report in ctx.steps:
        if report.attempts == 0:
            continue
        spec = ctx.catalog.topics.get(report.topic)
        if spec is not None and not spec.side_effect:
            rows.append(LedgerRow(report.step_id, report.topic, 0, 0, LedgerState.READ))
            continue
        if world is not None:
            effect = world.effect(report.step_id)
            applied = effect.applied if effect else 0
            undone = effect.undone if effect else 0
        else:
            comp = outcomes.get(report.step_id)
            done = comp is not None and comp.outcome is CompensationOutcome.SUCCEEDED
            undone = int(done and comp is not None and comp.applied is not False)
            if undone and comp is not None and comp.applied_twice:
                undone = 2  # the service applied a second delivery again
            # A real service that undid something for a failed step (a partial failure)
            # shows that its effect had landed: only the service can know.
            landed = (
                report.state is StepState.SUCCEEDED
                or report.landed
                or (undone == 1 and comp is not None and comp.applied is True)
            )
            applied = int(landed)
        state = _state(applied, undone, rollback, report.step_id in escalated)
        rows.append(LedgerRow(report.step_id, report.topic, applied, undone, state))
    return rows


def _state(applied: int, undone: int, rollback: bool, escalated: bool) -> LedgerState:
    if applied == 0 and undone == 0:
        return LedgerState.NONE
    if undone > applied:
        return LedgerState.UNDONE_TWICE
    if undone == applied:
        return LedgerState.UNDONE
    if not rollback and not escalated:
        return LedgerState.KEPT
    if escalated:
        return LedgerState.ESCALATED
    return LedgerState.LEFT_BEHIND


def _reached(fault_phase: Phase, reached: Reached, report: StepReport) -> bool:
    """Whether the run got far enough at ``report``'s step for the fault to act."""
    if reached is Reached.GATE and fault_phase is not Phase.COMPENSATION:
        return report.decision is not None or report.attempts > 0
    return report.attempts > 0


def unreached_faults(ctx: RunContext) -> list[str]:
    """Injected faults aimed at a step the run never got to: nothing was rehearsed.

    What "got to" means is the fault's :class:`~agentundo.model.scenario.Reached`: a
    forward or compensation fault needs its step dispatched (a step that never ran has
    nothing to compensate); a gate fault on the forward gate needs the step to reach its
    gate. Whether a dispatched step's compensation then runs is the rollback's own
    outcome (no rollback, a held lock, the window, ...), recorded in the evidence, and
    is not checked here. Lock faults name no step and are not checked.
    """
    steps = {s.step_id: s for s in ctx.steps}
    stopped = ctx.stopped_step()
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()
    for fault in ctx.setup.faults_to_reach:
        spec = FAULT_SPECS[fault.type]
        if fault.step is None or fault.step not in steps or spec.reached is Reached.ROLLBACK:
            continue
        if _reached(fault.phase, spec.reached, steps[fault.step]):
            continue
        if (fault.type.value, fault.step) in seen:
            continue
        seen.add((fault.type.value, fault.step))
        if stopped is None:
            where = "the run stopped before it"
        elif stopped.step_id == fault.step:
            how = "denied" if stopped.state is StepState.DENIED else "stopped"
            where = f"the step was {how} before it was dispatched"
        else:
            where = f"the run stopped at '{stopped.step_id}'"
        problems.append(
            f"{fault.type.value} fault at '{fault.step}' was never reached ({where}): "
            "the drill did not rehearse it"
        )
    return problems


def expectation_failures(
    ctx: RunContext, status: RunStatus, rollback: bool, rows: list[LedgerRow]
) -> list[str]:
    """What the scenario's ``expect`` asked for and the run did not do."""
    expect = ctx.setup.expect
    if expect is None:
        return []
    failures: list[str] = []
    if expect.status is not None and expect.status != status.value:
        failures.append(f"expected status {expect.status}, got {status.value}")
    if expect.rollback_triggered is not None and expect.rollback_triggered != rollback:
        failures.append(f"expected rollback_triggered {expect.rollback_triggered}, got {rollback}")
    if expect.compensated is not None:
        got = {r.step_id for r in rows if r.state is LedgerState.UNDONE}
        failures.extend(_set_diff("compensated", set(expect.compensated), got))
    if expect.manual is not None:
        got = {f.step_id for f in ctx.followups}
        failures.extend(_set_diff("sent to manual follow-up", set(expect.manual), got))
    return failures


def _set_diff(what: str, wanted: set[str], got: set[str]) -> list[str]:
    out: list[str] = []
    if wanted - got:
        out.append(f"expected {what} but was not: {', '.join(sorted(wanted - got))}")
    if got - wanted:
        out.append(f"{what} but not expected: {', '.join(sorted(got - wanted))}")
    return out


def problems_of(
    ctx: RunContext, status: RunStatus, rollback: bool, rows: list[LedgerRow]
) -> list[str]:
    """Every reason the drill fails (none: it passes)."""
    problems = list(ctx.cut_short)  # an outage or the deadline: no rehearsal
    problems.extend(
        f"step '{row.step_id}': effect of {row.topic} left behind with no compensation "
        "and no manual follow-up"
        for row in rows
        if row.state is LedgerState.LEFT_BEHIND
    )
    problems.extend(
        f"step '{row.step_id}': compensation applied twice: {row.undone} times for "
        f"{row.applied} effect(s) (the service did not deduplicate it; no idempotency key?)"
        for row in rows
        if row.state is LedgerState.UNDONE_TWICE
    )
    problems.extend(unplanned_followups(ctx, rows))
    if status is not RunStatus.INTERRUPTED:
        if ctx.setup.faults_to_reach:
            problems.extend(unreached_faults(ctx))
        problems.extend(expectation_failures(ctx, status, rollback, rows))
    return problems


_BROKEN_UNDO = frozenset(
    {
        FollowUp.COMPENSATION_DENIED,
        FollowUp.COMPENSATION_TIMEOUT,
        FollowUp.COMPENSATION_FAILED,
        FollowUp.COMPENSATION_REJECTED,
    }
)
"""Follow-ups of a compensation that ran into trouble: unplanned, each fails the drill."""

_STILL_OWED = frozenset({FollowUp.INTERRUPTED, FollowUp.LOCK_UNAVAILABLE})
"""Follow-ups whose entry is left for ``agentundo recover`` to finish (``owed``)."""

_OWED = frozenset({LedgerState.ESCALATED, LedgerState.LEFT_BEHIND})
"""Ledger states of an effect that landed and was not undone."""


def planned(ctx: RunContext, followup: FollowUpReport) -> bool:
    """Whether a follow-up was part of the rehearsal: an injected fault caused it, the
    scenario expects it (``expect.manual``), or the topic is irreversible with a reason."""
    if followup.injected or followup.category is FollowUp.INTERRUPTED:
        return True
    expect = ctx.setup.expect
    if expect is not None and expect.manual is not None and followup.step_id in expect.manual:
        return True
    if followup.category is FollowUp.IRREVERSIBLE:  # its topic is the step's own
        spec = ctx.catalog.topics.get(followup.topic)
        return spec is not None and bool((spec.no_rollback_reason or "").strip())
    return False


_WHAT = {
    FollowUp.COMPENSATION_DENIED: "was not run",
    FollowUp.COMPENSATION_TIMEOUT: "was left pending by the rollback window",
    FollowUp.COMPENSATION_FAILED: "failed",
    FollowUp.COMPENSATION_REJECTED: "was rejected",
}


def unplanned_followups(ctx: RunContext, rows: list[LedgerRow]) -> list[str]:
    """A problem for every follow-up the drill did not plan: a compensation in trouble
    for real, or an effect that landed and cannot be undone without a reason."""
    states = {row.step_id: row.state for row in rows}
    problems: list[str] = []
    for followup in ctx.followups:
        if planned(ctx, followup):
            continue
        if followup.category in _BROKEN_UNDO:
            what = f"compensation {followup.topic} {_WHAT[followup.category]}"
        elif states.get(followup.step_id) in _OWED:
            what = f"the effect of {followup.topic} was not undone"
        else:
            continue
        problems.append(
            f"step '{followup.step_id}': {what} ({followup.reason}): the undo path is broken "
            "and nothing planned this follow-up (no injected fault caused it, expect.manual "
            "does not list the step)"
        )
    return problems


def verdict_of(status: RunStatus, rollback: bool, problems: list[str]) -> Verdict:
    if status is RunStatus.INTERRUPTED:
        return Verdict.INTERRUPTED
    if problems:
        return Verdict.FAILED
    return Verdict.RECOVERED if rollback else Verdict.COMPLETED


def _in(rows: list[LedgerRow], state: LedgerState) -> list[str]:
    return [r.step_id for r in rows if r.state is state]


def finish(
    ctx: RunContext,
    *,
    status: RunStatus,
    rollback: bool,
    started: str,
    world: SimulatedWorld | None,
    rollback_finished_at: str | None,
    lock_expired: bool,
) -> DrillResult:
    """Judge the run, write its ``run_summary`` and return its result."""
    rows = ledger(ctx, world, rollback)
    problems = problems_of(ctx, status, rollback, rows)
    verdict = verdict_of(status, rollback, problems)
    stopped = ctx.stopped_step()
    summary = RunSummary(
        run_id=ctx.run_id,
        job_id=stopped.job_id if stopped else ctx.trigger.job,
        status=status.value,
        matched_policy_id=stopped.rule_id if stopped else ctx.trigger.last_rule,
        rollback_triggered=rollback,
        rollback_mode=ROLLBACK_MODE,
        compensation_jobs_dispatched=ctx.counts.dispatched,
        compensation_jobs_skipped=ctx.counts.skipped,
        compensation_jobs_failed=ctx.counts.failed,
        manual_followups=ctx.counts.followups,
        rollback_finished_at=rollback_finished_at,
        started_at=started,
        finished_at=rfc3339(ctx.clock.now()),
        env=ctx.env,
        verdict=verdict.value,
        scenario=ctx.setup.scenario,
        step_id=stopped.step_id if stopped else None,
        steps_total=len(ctx.steps),
        steps_succeeded=sum(1 for s in ctx.steps if s.state is StepState.SUCCEEDED),
        compensated=_in(rows, LedgerState.UNDONE),
        manual=[f.step_id for f in ctx.followups],
        left_behind=_in(rows, LedgerState.LEFT_BEHIND),
        read=_in(rows, LedgerState.READ),
        owed=[f.step_id for f in ctx.followups if f.category in _STILL_OWED],
        undone_twice=_in(rows, LedgerState.UNDONE_TWICE),
        lock_expired=lock_expired,
        problems=problems,
    )
    record = summary.to_record()
    ctx.emit(Event.RUN_SUMMARY, "agentundo", **record)
    return DrillResult(
        run_id=ctx.run_id,
        workflow_id=ctx.workflow_id,
        env=ctx.env,
        status=status,
        verdict=verdict,
        rollback_triggered=rollback,
        steps=ctx.steps,
        compensations=ctx.comps,
        followups=ctx.followups,
        ledger=rows,
        problems=problems,
        summary=record,
        events=ctx.events,
        lock_expired=lock_expired,
    )
