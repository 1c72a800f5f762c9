"""The evidence vocabulary: every event type a run writes, and the fields it must carry.

Every record has the common fields ``seq``, ``ts`` (RFC 3339 UTC, ``Z``), ``event``,
``run_id``, ``workflow_id`` and ``actor``, plus ``prev_hash`` and ``hash`` (see
:mod:`agentundo.evidence.chain`). Records about one dispatch also carry ``job_id``,
``topic`` and, where one exists, ``idempotency_key``. The last record of a complete
run is ``run_summary``. Readers must show unknown event types and unknown fields, not
drop them: newer versions may add both.
"""

from __future__ import annotations

from enum import StrEnum

# the summary's fields are part of the vocabulary: re-exported here
from agentundo.evidence.summary import SUMMARY_FIELDS as SUMMARY_FIELDS

COMMON_FIELDS = ("seq", "ts", "event", "run_id", "workflow_id", "actor", "prev_hash", "hash")


class Event(StrEnum):
    """Event types, grouped by what they record."""

    # the run
    RUN_STARTED = "run_started"  # env, scenario, seed, clock, settings
    RUN_INTERRUPTED = "run_interrupted"  # signal
    RUN_SUMMARY = "run_summary"  # see evidence/summary.py; always the last record
    # the forward path
    POLICY_DECISION = (
        "policy_decision"  # job_id, step_id, topic, decision, rule_id, is_compensation
    )
    POLICY_UNAVAILABLE = "policy_unavailable"  # job_id, step_id, topic, fail_mode
    APPROVAL_WAITING = "approval_waiting"  # job_id, step_id, topic, timeout_s
    APPROVAL_GRANTED = "approval_granted"  # job_id, step_id, topic, approver
    APPROVAL_TIMEOUT = "approval_timeout"  # job_id, step_id, topic
    STEP_DISPATCHED = "step_dispatched"  # job_id, step_id, topic, attempt, idempotency_key
    STEP_SUCCEEDED = "step_succeeded"  # job_id, step_id, topic, attempt
    STEP_FAILED = "step_failed"  # job_id, step_id, topic, attempt, transient, error
    RETRY_SCHEDULED = "retry_scheduled"  # job_id, step_id, topic, attempt, delay_s
    STEP_FAILED_FATAL = "step_failed_fatal"  # job_id, step_id, topic, attempts, error
    STEP_DENIED = "step_denied"  # job_id, step_id, topic, rule_id, reason
    STEP_OUTCOME_UNKNOWN = "step_outcome_unknown"  # job_id, step_id, topic, reason: may have landed
    # the rollback
    ROLLBACK_TRIGGERED = "rollback_triggered"  # cause, job_id, step_id
    LOCK_ACQUIRED = "lock_acquired"  # lock_key, owner, epoch, ttl_s
    LOCK_BUSY = "lock_busy"  # lock_key, holder
    LOCK_TAKEN_OVER = "lock_taken_over"  # lock_key, owner, previous_owner, epoch
    LOCK_EXPIRED = "lock_expired"  # lock_key, owner, epoch
    LOCK_RELEASED = "lock_released"  # lock_key, owner, released (bool)
    LOCK_STORE_FAILED = "lock_store_failed"  # lock_key, operation, error
    COMPENSATION_DISPATCHED = "compensation_dispatched"  # job_id, step_id, topic, for_topic, attempt, idempotency_key, epoch
    COMPENSATION_SUCCEEDED = "compensation_succeeded"  # job_id, step_id, topic, applied (bool)
    COMPENSATION_FAILED = "compensation_failed"  # job_id, step_id, topic, attempt, transient, error
    COMPENSATION_RETRY_SCHEDULED = "compensation_retry_scheduled"  # job_id, step_id, topic, delay_s
    COMPENSATION_SKIPPED = "compensation_skipped"  # job_id, step_id, topic, reason, rule_id
    COMPENSATION_TIMED_OUT = "compensation_timed_out"  # job_id, step_id, topic
    COMPENSATION_REJECTED = "compensation_rejected"  # job_id, step_id, topic, reason (fencing)
    COMPENSATION_NOT_NEEDED = "compensation_not_needed"  # job_id, step_id, topic, reason
    MANUAL_FOLLOWUP = "manual_followup"  # step_id, topic, category, reason, mitigation
    ROLLBACK_FINISHED = "rollback_finished"  # outcome
    # recovery (agentundo recover), appended to the run it finishes
    RECOVERY_STARTED = "recovery_started"  # owed, unknown, manual
    RECOVERY_FINISHED = "recovery_finished"  # outcome, owed


class FollowUp(StrEnum):
    """Why a human must act (``category`` of ``manual_followup``)."""

    COMPENSATION_DENIED = "compensation_denied"
    COMPENSATION_TIMEOUT = "compensation_timeout"
    COMPENSATION_FAILED = "compensation_failed"
    COMPENSATION_REJECTED = "compensation_rejected"
    POLICY_UNAVAILABLE = "policy_unavailable"
    IRREVERSIBLE = "irreversible"
    NO_COMPENSATION = "no_compensation"
    LOCK_HELD = "lock_held"
    LOCK_UNAVAILABLE = "lock_unavailable"  # the lock store failed: still owed to recover
    INTERRUPTED = "interrupted"


class RunStatus(StrEnum):
    """How a run ended (``status`` of ``run_summary``); the card's job statuses."""

    SUCCEEDED = "SUCCEEDED"
    FAILED_FATAL = "FAILED_FATAL"
    DENIED = "DENIED"
    INTERRUPTED = "interrupted"


class Verdict(StrEnum):
    """The drill's answer (``verdict`` of ``run_summary``), and its exit code."""

    COMPLETED = "completed"  # the run succeeded: nothing to roll back
    RECOVERED = "recovered"  # every applied effect undone once, or escalated with a reason
    FAILED = "failed"  # an effect left behind silently, applied twice, or an expectation failed
    INTERRUPTED = "interrupted"  # stopped by a signal; the lock was released

    @property
    def exit_code(self) -> int:
        return _EXIT_CODES[self]

    @property
    def good(self) -> bool:
        """Whether this verdict passes a drill (a clean run or a full recovery)."""
        return self in GOOD_VERDICTS


_EXIT_CODES = {
    Verdict.COMPLETED: 0,
    Verdict.RECOVERED: 0,
    Verdict.FAILED: 1,
    Verdict.INTERRUPTED: 130,
}

GOOD_VERDICTS = frozenset({Verdict.COMPLETED, Verdict.RECOVERED})
"""The verdicts that pass a drill."""


class StepState(StrEnum):
    """Where one forward step ended."""

    NOT_RUN = "not_run"
    SUCCEEDED = "succeeded"
    FAILED_FATAL = "FAILED_FATAL"
    DENIED = "denied"
    INTERRUPTED = "interrupted"


class LedgerState(StrEnum):
    """How one dispatched step's effect ended (the drill's ledger)."""

    NONE = "none"  # nothing landed, nothing undone
    READ = "read"  # a read-only step: no effect to undo
    UNDONE = "undone"  # landed and undone exactly once
    UNDONE_TWICE = "undone_twice"  # undone more often than it landed
    KEPT = "kept"  # landed and kept: the run succeeded
    ESCALATED = "escalated"  # landed and sent to a human
    LEFT_BEHIND = "left_behind"  # landed, not undone, nobody told


BAD_LEDGER_STATES = frozenset({LedgerState.LEFT_BEHIND, LedgerState.UNDONE_TWICE})
"""Ledger states that fail a drill whatever else happened."""


class CompensationOutcome(StrEnum):
    """The final outcome of one compensation-stack entry (exactly one per entry)."""

    PENDING = "pending"  # dispatching; never the final outcome of a finished run
    SUCCEEDED = "succeeded"
    NOT_NEEDED = "not_needed"  # the forward call never reached the service: nothing to undo
    SKIPPED = "skipped"  # the policy gate did not let it run
    FAILED = "failed"
    TIMED_OUT = "timed_out"  # the rollback window ran out
    REJECTED = "rejected"  # fencing: the lock was lost or the resource refused the epoch
    MANUAL = "manual"  # nothing to dispatch: sent straight to a human


class RollbackOutcome(StrEnum):
    """How a rollback ended (``outcome`` of ``rollback_finished``)."""

    COMPLETE = "complete"
    ESCALATED = "escalated"  # finished, with manual follow-ups
    LOCK_HELD = "lock_held"  # another runner held the lock: nothing was compensated
    LOCK_UNAVAILABLE = "lock_unavailable"  # the lock store failed before the lock was taken
    INTERRUPTED = "interrupted"
