"""Groupings of the evidence vocabulary that more than one reader needs, and where a run starts.

:mod:`agentundo.evidence.events` names the events; this module says which of them end a
job, settle a step, are tallied for a run's header, or are failures, once, for the
verifier (:mod:`agentundo.evidence.verify`), the tally (:mod:`agentundo.evidence.tally`)
and the timeline (:mod:`agentundo.timeline`). The sets hold plain strings: records carry
their event as ``str``, and a set of exact strings is the fastest lookup for them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from agentundo.evidence.chain import starts_chain
from agentundo.evidence.events import Event


def _names(events: Iterable[Event]) -> frozenset[str]:
    return frozenset(str(event) for event in events)


KNOWN_EVENTS = _names(Event)
"""Every event type this version writes; others are shown, not judged."""

DISPATCHES = _names({Event.STEP_DISPATCHED, Event.COMPENSATION_DISPATCHED})
"""Records that open a job (by ``job_id``; retries share it)."""

COMPENSATION_OUTCOMES = _names(
    {
        Event.COMPENSATION_SUCCEEDED,
        Event.COMPENSATION_FAILED,
        Event.COMPENSATION_TIMED_OUT,
        Event.COMPENSATION_REJECTED,
    }
)
"""What one compensation attempt can end in."""

ENDS_BEFORE_DISPATCH = _names({Event.COMPENSATION_TIMED_OUT, Event.COMPENSATION_REJECTED})
"""Compensation outcomes that may come without any dispatch (counted as skipped then)."""

JOB_ENDS = _names(
    {
        Event.STEP_SUCCEEDED,
        Event.STEP_OUTCOME_UNKNOWN,
        Event.COMPENSATION_NOT_NEEDED,
        Event.STEP_FAILED_FATAL,
        Event.COMPENSATION_SUCCEEDED,
        Event.COMPENSATION_TIMED_OUT,
        Event.COMPENSATION_REJECTED,
        Event.MANUAL_FOLLOWUP,
        Event.RUN_INTERRUPTED,
    }
)
"""Outcomes of a job (by ``job_id``): step_failed and compensation_failed are attempts."""

STEP_SETTLING = _names(
    {
        Event.COMPENSATION_SUCCEEDED,
        Event.COMPENSATION_NOT_NEEDED,
        Event.COMPENSATION_TIMED_OUT,
        Event.COMPENSATION_REJECTED,
        Event.COMPENSATION_SKIPPED,
        Event.MANUAL_FOLLOWUP,
    }
)
"""What settles a step once a rollback runs: a compensation outcome or a follow-up."""

STOPS_FORWARD = _names({Event.STEP_FAILED_FATAL, Event.STEP_DENIED})
"""Records that end the forward path (the first one sets the run's status)."""

TALLIED = (
    _names(
        {
            Event.RUN_STARTED,
            Event.RUN_SUMMARY,
            Event.ROLLBACK_TRIGGERED,
            Event.COMPENSATION_DISPATCHED,
            Event.COMPENSATION_SKIPPED,
            Event.MANUAL_FOLLOWUP,
        }
    )
    | COMPENSATION_OUTCOMES
)
"""Records a :class:`~agentundo.evidence.tally.RunTally` looks into (it counts them all)."""

FAILURES = _names(
    {
        Event.STEP_FAILED,
        Event.STEP_OUTCOME_UNKNOWN,
        Event.STEP_FAILED_FATAL,
        Event.STEP_DENIED,
        Event.APPROVAL_TIMEOUT,
        Event.POLICY_UNAVAILABLE,
        Event.LOCK_BUSY,
        Event.LOCK_EXPIRED,
        Event.LOCK_STORE_FAILED,
        Event.COMPENSATION_FAILED,
        Event.COMPENSATION_TIMED_OUT,
        Event.COMPENSATION_REJECTED,
        Event.RUN_INTERRUPTED,
    }
)
"""Records that show something went wrong (the timeline marks them as failures)."""

PROBLEMS = FAILURES | _names({Event.COMPENSATION_SKIPPED, Event.MANUAL_FOLLOWUP})
"""Records ``--only-problems`` shows: failures, and everything that needs a human."""

SUCCESSES = _names({Event.STEP_SUCCEEDED, Event.COMPENSATION_SUCCEEDED})
"""Records that show a step or its compensation took effect."""


def job_of(data: dict[str, Any]) -> str:
    """The job a record is about: its ``job_id`` (retries share it), else its step."""
    return str(data.get("job_id") or data.get("step_id") or "")


def starts_run(data: dict[str, Any], run_id: str | None, *, chained: bool = True) -> bool:
    """Whether a record begins a new run after the run ``run_id`` (None: no run yet).

    A run starts at a ``run_started`` record with ``seq`` 0 whose ``run_id`` differs from
    the current run's, so that concatenated files (``cat *.jsonl``) split into their runs.
    ``chained`` also requires ``prev_hash`` to be a genesis (:func:`starts_chain`): a seq-0 record
    that does not start a chain is a problem of the current run, not a new one. The
    timeline (``chained=False``) splits at any seq-0 ``run_started``; a new file starts a
    run too, which the callers handle.
    """
    return (
        data.get("seq") == 0
        and data.get("event") == Event.RUN_STARTED
        and (not chained or starts_chain(data))
        and data.get("run_id") != run_id
    )
