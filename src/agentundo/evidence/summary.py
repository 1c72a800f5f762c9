"""The ``run_summary`` record: one typed object, the last record of every complete run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

_REQUIRED = {"required": True}


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSummary:
    """What a run ended with. Fields marked required are the card's record plus counts and
    the verdict (:data:`SUMMARY_FIELDS`); the rest say which steps ended how."""

    run_id: str = field(metadata=_REQUIRED)
    job_id: str | None = field(metadata=_REQUIRED)
    status: str = field(metadata=_REQUIRED)
    matched_policy_id: str | None = field(metadata=_REQUIRED)
    rollback_triggered: bool = field(metadata=_REQUIRED)
    rollback_mode: str = field(metadata=_REQUIRED)
    compensation_jobs_dispatched: int = field(metadata=_REQUIRED)
    compensation_jobs_skipped: int = field(metadata=_REQUIRED)
    compensation_jobs_failed: int = field(metadata=_REQUIRED)
    manual_followups: int = field(metadata=_REQUIRED)
    rollback_finished_at: str | None = field(metadata=_REQUIRED)
    started_at: str = field(metadata=_REQUIRED)
    finished_at: str = field(metadata=_REQUIRED)
    env: str = field(metadata=_REQUIRED)
    verdict: str = field(metadata=_REQUIRED)
    scenario: str | None
    step_id: str | None
    steps_total: int
    steps_succeeded: int
    compensated: list[str]
    manual: list[str]
    left_behind: list[str]
    read: list[str]
    owed: list[str]
    undone_twice: list[str]
    lock_expired: bool
    problems: list[str]

    def to_record(self) -> dict[str, Any]:
        """The record's fields (without the common ones), in this order."""
        return asdict(self)


SUMMARY_FIELDS = tuple(f.name for f in fields(RunSummary) if f.metadata.get("required"))
"""Fields every ``run_summary`` carries: the card's record plus counts and the verdict."""

ALL_SUMMARY_FIELDS = tuple(f.name for f in fields(RunSummary))
"""Every field the engine writes into ``run_summary``."""
