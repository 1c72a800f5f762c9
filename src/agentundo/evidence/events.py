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

COMMON_FIELDS = ("seq", "ts", "event", "run_id", "workflow_id", "actor", "prev_hash", "hash")


class Event(StrEnum):
    """Event types, grouped by what they record."""

    # the run
    RUN_STARTED = "run_started"  # env, scenario, seed, clock, settings
    RUN_INTERRUPTED = "run_interrupted"  # signal
    RUN_SUMMARY = "run_summary"  # see SUMMARY_FIELDS; always the last record
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
    # the rollback
    ROLLBACK_TRIGGERED = "rollback_triggered"  # cause, job_id, step_id
    LOCK_ACQUIRED = "lock_acquired"  # lock_key, owner, epoch, ttl_s
    LOCK_BUSY = "lock_busy"  # lock_key, holder
    LOCK_TAKEN_OVER = "lock_taken_over"  # lock_key, owner, previous_owner, epoch
    LOCK_EXPIRED = "lock_expired"  # lock_key, owner, epoch
    LOCK_RELEASED = "lock_released"  # lock_key, owner, released (bool)
    COMPENSATION_DISPATCHED = "compensation_dispatched"  # job_id, step_id, topic, for_topic, attempt, idempotency_key, epoch
    COMPENSATION_SUCCEEDED = "compensation_succeeded"  # job_id, step_id, topic, applied (bool)
    COMPENSATION_FAILED = "compensation_failed"  # job_id, step_id, topic, attempt, transient, error
    COMPENSATION_RETRY_SCHEDULED = "compensation_retry_scheduled"  # job_id, step_id, topic, delay_s
    COMPENSATION_SKIPPED = "compensation_skipped"  # job_id, step_id, topic, reason, rule_id
    COMPENSATION_TIMED_OUT = "compensation_timed_out"  # job_id, step_id, topic
    COMPENSATION_REJECTED = "compensation_rejected"  # job_id, step_id, topic, reason (fencing)
    MANUAL_FOLLOWUP = "manual_followup"  # step_id, topic, category, reason, mitigation
    ROLLBACK_FINISHED = "rollback_finished"  # outcome


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
    INTERRUPTED = "interrupted"


SUMMARY_FIELDS = (
    "run_id",
    "job_id",
    "status",
    "matched_policy_id",
    "rollback_triggered",
    "rollback_mode",
    "compensation_jobs_dispatched",
    "compensation_jobs_skipped",
    "compensation_jobs_failed",
    "manual_followups",
    "rollback_finished_at",
    "started_at",
    "finished_at",
    "env",
    "verdict",
)
"""Fields of ``run_summary``: the card's record plus counts and the verdict."""

PROBLEM_EVENTS = frozenset(
    {
        Event.STEP_FAILED,
        Event.STEP_FAILED_FATAL,
        Event.STEP_DENIED,
        Event.APPROVAL_TIMEOUT,
        Event.POLICY_UNAVAILABLE,
        Event.LOCK_BUSY,
        Event.LOCK_EXPIRED,
        Event.COMPENSATION_FAILED,
        Event.COMPENSATION_SKIPPED,
        Event.COMPENSATION_TIMED_OUT,
        Event.COMPENSATION_REJECTED,
        Event.MANUAL_FOLLOWUP,
        Event.RUN_INTERRUPTED,
    }
)
