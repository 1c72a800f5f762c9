"""The completeness checks of :mod:`agentundo.evidence.verify` (EV201-EV206).

A :class:`CompletenessChecker` follows one run's records in a :class:`RunState`: the open
dispatches, the applied and not yet settled steps, where the forward path stopped, and
the follow-ups; at the run's end it checks that every job has an outcome (EV201), every
compensation is settled (EV202) and that ``run_summary`` exists and agrees with the
events (EV204, EV205).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from agentundo.evidence.events import SUMMARY_FIELDS, Event, RunStatus, Verdict
from agentundo.evidence.groups import DISPATCHES, JOB_ENDS, STEP_SETTLING, STOPS_FORWARD, job_of
from agentundo.evidence.problems import Report, names
from agentundo.evidence.reader import Record
from agentundo.evidence.tally import RunTally
from agentundo.evidence.verify_chain import Chain

STATUSES: tuple[str, ...] = tuple(status.value for status in RunStatus)
"""The engine's run statuses (:class:`~agentundo.evidence.events.RunStatus`)."""
VERDICTS: tuple[str, ...] = tuple(verdict.value for verdict in Verdict)
"""The engine's verdicts (:class:`~agentundo.evidence.events.Verdict`). A status or verdict
outside these (any case) is not judged: it was not written by the engine, and the events
cannot say what it means."""


def names_its_rule(record: dict[str, Any]) -> bool:
    """A decision names its rule: a non-empty ``rule_id``, or null with ``default: true``."""
    if "rule_id" not in record:
        return False
    rule = record["rule_id"]
    if rule is None:
        return record.get("default") is True
    return isinstance(rule, str) and bool(rule)


def _job_key(record: Record) -> tuple[str, str]:
    return (str(record.get("job_id", "")), str(record.get("step_id", "")))


@dataclass(slots=True)
class RunState:
    """One run as the verifier follows it: its chain, its tally, and what is still open."""

    chain: Chain
    tally: RunTally = field(default_factory=RunTally)
    open_jobs: dict[str, tuple[int, str, str]] = field(default_factory=dict)
    """job -> (line of its first dispatch, kind, step_id), until its outcome."""
    applied: dict[str, int] = field(default_factory=dict)
    """Applied steps not yet settled: step_id -> line."""
    settled: set[str] = field(default_factory=set)
    rollback_line: int = 0
    pending: int | None = None
    summary_line: int = 0
    after_summary: int = 0
    first_line: int = 0
    last_line: int = 0
    stopped: tuple[str, int] | None = None
    """The first step_failed_fatal or step_denied (event, line): it ends the forward path."""
    interrupted_line: int = 0
    recovery_line: int = 0
    """A ``recovery_started``: ``agentundo recover`` finished the run's rollback, and its
    ``run_summary`` (after any earlier one) is the run's last word."""
    cut_line: int = 0
    """A step_failed_fatal with ``attempts: 0``: the step was not started, the drill
    deadline had passed (the engine then always judges the drill failed)."""
    followups: list[str] = field(default_factory=list)
    """step_id of each manual_followup, in order (the summary's ``manual``)."""
    undone: set[str] = field(default_factory=set)
    """Steps with a compensation_succeeded (the summary's ``compensated`` is among them)."""


class CompletenessChecker:
    """The completeness checks of one source; problems go to ``report(line, code, message)``."""

    def __init__(self, report: Report) -> None:
        self._add = report

    def check(self, run: RunState, record: Record) -> None:
        """Follow one record of the run: what it opens, ends, settles or stops."""
        data = record.data
        event = record.event
        line = record.line
        if event == Event.RECOVERY_STARTED:
            run.recovery_line = run.recovery_line or line
            run.summary_line = run.after_summary = 0  # the recovery writes the last summary
        if run.summary_line:
            run.after_summary += 1
            if run.after_summary == 1:
                self._add(line, "EV205", f"a record follows run_summary (line {run.summary_line})")
        if event in DISPATCHES:
            job = job_of(data)
            if job not in run.open_jobs:
                kind = "step" if event == Event.STEP_DISPATCHED else "compensation"
                run.open_jobs[job] = (line, kind, str(data.get("step_id", "")))
        elif event in JOB_ENDS:
            job = job_of(data)
            run.open_jobs.pop(job, None)
            if event == Event.STEP_SUCCEEDED or (
                event == Event.STEP_FAILED_FATAL and data.get("partial") is True
            ):
                run.applied.setdefault(str(data.get("step_id", "")), line)
        if event in STOPS_FORWARD:
            run.stopped = run.stopped or (event, line)
            if event == Event.STEP_FAILED_FATAL and data.get("attempts") == 0:
                run.cut_line = run.cut_line or line
        elif event == Event.RUN_INTERRUPTED:
            run.interrupted_line = run.interrupted_line or line
        elif event == Event.MANUAL_FOLLOWUP:
            run.followups.append(str(data.get("step_id", "")))
        elif event == Event.COMPENSATION_SUCCEEDED:
            run.undone.add(str(data.get("step_id", "")))
        if event in STEP_SETTLING and run.rollback_line:
            step_id = str(data.get("step_id", ""))
            run.settled.add(step_id)
            run.applied.pop(step_id, None)
        if event == Event.ROLLBACK_TRIGGERED and not run.rollback_line:
            run.rollback_line = line
            pending = data.get("pending")
            if isinstance(pending, int) and not isinstance(pending, bool):
                run.pending = pending
        if event == Event.POLICY_DECISION and not names_its_rule(data):
            job_id, step_id = _job_key(record)
            if "rule_id" not in data:
                why = "has no rule_id"
            elif data["rule_id"] is None:
                why = "has rule_id null without default: true"
            else:
                why = f"has an invalid rule_id {data['rule_id']!r}"
            self._add(line, "EV203", f"policy decision for {step_id or job_id or '?'} {why}")
        if event == Event.RUN_SUMMARY:
            run.summary_line = line

    def _check_rollback(self, run: RunState) -> None:
        """Every entry of the compensation stack is settled (compensated or followed up).

        Read-only steps succeed without entering the stack and the evidence does not mark
        them, so when ``rollback_triggered`` states ``pending`` (the stack's size) the rule
        counts: fewer settled steps than pending entries is a problem, and the applied steps
        left unsettled are named as the candidates. Without ``pending`` every applied step
        must be settled.
        """
        unsettled = run.applied
        if run.pending is None:
            for step_id, line in unsettled.items():
                self._add(
                    line,
                    "EV202",
                    f"step {step_id} was applied and rolled back without a "
                    "compensation outcome or a manual follow-up",
                )
            return
        missing = run.pending - len(run.settled)
        if missing > 0:
            steps = ", ".join(unsettled) or "none of the applied steps is unsettled"
            self._add(
                run.rollback_line,
                "EV202",
                f"{missing} of {run.pending} pending compensations have neither an outcome "
                f"nor a manual follow-up (unsettled applied steps: {steps})",
            )

    def _check_summary(self, run: RunState, summary: dict[str, Any]) -> None:
        line = run.summary_line
        missing = [f for f in SUMMARY_FIELDS if f not in summary]
        if missing:
            self._add(line, "EV204", f"run_summary lacks {', '.join(missing)}")
        for name, counted in run.tally.counts().items():
            if name in summary and summary[name] != counted:
                self._add(
                    line,
                    "EV204",
                    f"run_summary says {name}={summary[name]!r}, the events give {counted}",
                )
        stated = summary.get("rollback_triggered")
        if isinstance(stated, bool) and stated != run.tally.rollback_triggered:
            seen = "has" if run.tally.rollback_triggered else "has no"
            self._add(
                line,
                "EV204",
                f"run_summary says rollback_triggered={str(stated).lower()}, the run {seen} "
                "rollback_triggered event",
            )
        for message in self._check_outcome(run, summary):
            self._add(line, "EV204", message)

    def _check_outcome(self, run: RunState, summary: dict[str, Any]) -> list[str]:
        """What the summary says happened against what the events show (engine.py's rules).

        ``status``: ``interrupted`` when a run_interrupted record exists, else FAILED_FATAL
        or DENIED after a step_failed_fatal or step_denied (the forward path stops at the
        first; a step not started because the drill deadline passed is a step_failed_fatal
        too), else SUCCEEDED. ``verdict``: ``interrupted`` exactly when the status is;
        ``completed`` only without a rollback; ``recovered`` only with one; ``failed`` when
        a step was cut off by the deadline. ``manual`` is the step of every manual_followup,
        in order; every ``compensated`` step has a compensation_succeeded, and is listed once.
        """
        expected, why = _status(run)
        found: list[str] = []
        status = summary.get("status")
        if _judged(status, STATUSES) and str(status).casefold() != expected.casefold():
            found.append(f"run_summary says status={status!r}, the events give {expected}: {why}")
        verdict = summary.get("verdict")
        if _judged(verdict, VERDICTS):
            said = f"run_summary says verdict={verdict!r}"
            wrong = _wrong_verdict(run, Verdict(str(verdict).casefold()), expected, why)
            if wrong:
                found.append(f"{said}, {wrong}")
        found.extend(_wrong_lists(run, summary))
        return found

    def end_run(self, run: RunState, *, truncated_at: int) -> None:
        """The end-of-run checks: outcomes (EV201), compensations (EV202), the summary."""
        for job, (line, kind, step_id) in run.open_jobs.items():
            self._add(
                line,
                "EV201",
                f"{kind} job {job or '?'} (step {step_id or '?'}) was dispatched "
                "and has no outcome",
            )
        if run.rollback_line:
            self._check_rollback(run)
        summary = run.tally.summary
        if summary is None:
            end = run.last_line
            why = (
                f"the last line ({truncated_at}) is truncated"
                if truncated_at > end
                else "the evidence ends before it"
            )
            self._add(end, "EV205", f"run {run.chain.run_id!r} has no run_summary: {why}")
        else:
            self._check_summary(run, summary)


def _status(run: RunState) -> tuple[RunStatus, str]:
    """The status the events give the run, and why."""
    if run.interrupted_line:
        return RunStatus.INTERRUPTED, f"run_interrupted (line {run.interrupted_line})"
    if run.stopped is not None:
        event, at = run.stopped
        status = RunStatus.FAILED_FATAL if event == Event.STEP_FAILED_FATAL else RunStatus.DENIED
        return status, f"{event} (line {at})"
    return RunStatus.SUCCEEDED, "no step_failed_fatal, step_denied or run_interrupted"


def _wrong_verdict(run: RunState, verdict: Verdict, expected: RunStatus, why: str) -> str:
    """Why the summary's verdict disagrees with the events ("" when it does not)."""
    rollback = run.rollback_line
    if verdict is Verdict.INTERRUPTED and not run.interrupted_line:
        return "but the run has no run_interrupted record"
    recovered = run.recovery_line and verdict in (Verdict.RECOVERED, Verdict.FAILED)
    if verdict is not Verdict.INTERRUPTED and run.interrupted_line and not recovered:
        return f"but the run was interrupted: {why}"
    if verdict is Verdict.COMPLETED and rollback:
        return f"but a rollback was triggered (line {rollback})"
    if verdict is Verdict.COMPLETED and expected is not RunStatus.SUCCEEDED:
        return f"but the run stopped: {why}"
    if verdict is Verdict.RECOVERED and not rollback:
        return "but the run has no rollback_triggered to recover with"
    if verdict is not Verdict.FAILED and run.cut_line:
        return (
            "but a step was not started because the drill deadline had passed "
            f"(step_failed_fatal with attempts 0, line {run.cut_line}): the drill failed"
        )
    return ""


def _wrong_lists(run: RunState, summary: dict[str, Any]) -> list[str]:
    """Where the summary's ``manual`` and ``compensated`` disagree with the events."""
    found: list[str] = []
    manual = summary.get("manual", run.followups)
    if manual != run.followups:
        found.append(
            f"run_summary says manual={names(manual)}, the manual_followup records name "
            f"{names(run.followups)}"
        )
    compensated = summary.get("compensated", [])
    if not isinstance(compensated, list):
        found.append(f"run_summary says compensated={names(compensated)}, not a list")
        compensated = []
    unknown = [s for s in compensated if not isinstance(s, str) or s not in run.undone]
    if unknown:
        found.append(
            f"run_summary says {names(unknown)} compensated, but no compensation_succeeded "
            f"names {'that step' if len(unknown) == 1 else 'those steps'}"
        )
    listed = Counter(s for s in compensated if isinstance(s, str))
    twice = [step for step, times in listed.items() if times > 1]
    if twice:
        found.append(f"run_summary lists {names(twice)} as compensated more than once")
    return found


def _judged(value: object, known: tuple[str, ...]) -> bool:
    """Whether ``value`` is one of the engine's values (any case), so the events can judge it."""
    return isinstance(value, str) and value.casefold() in {k.casefold() for k in known}
