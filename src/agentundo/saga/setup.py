"""What a drill is given: engine settings, the drill's setup, and the stop request.

A :class:`DrillSetup` holds everything a run needs besides its run id, clock, evidence
sink, executor and lock store; one setup is shared by every run of a sweep.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from agentundo.model.catalog import Catalog
from agentundo.model.common import ROLLBACK_WINDOW_S
from agentundo.model.policy import Policy
from agentundo.model.scenario import Expect, FailMode, Fault
from agentundo.model.workflow import Workflow
from agentundo.policy.compiled import CompiledPolicy
from agentundo.policy.conditions import Job
from agentundo.saga.clock import bounded_wait
from agentundo.saga.faults import FaultPlan

NO_FAULTS = FaultPlan()


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Engine semantics; the defaults are those of the production runtimes we mimic."""

    max_retries: int = 50
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 30.0
    approval_timeout_s: float = 300.0
    lock_ttl_s: float = 120.0
    rollback_window_s: float = ROLLBACK_WINDOW_S
    compensation_timeout_s: float = 10.0
    compensation_max_retries: int = 5
    compensation_backoff_max_s: float = 8.0
    compensate_failed_step: bool | None = None
    """Compensate the step that failed too: always (True), never (False), or (None) when
    its effect may have landed: one of its calls reached the service."""
    derive_compensation_keys: bool = True
    policy_fail_mode: FailMode = FailMode.CLOSED
    lock_wait_s: float = 0.0
    """How long a rollback waits for a lock another runner holds before it gives up."""
    deadline_s: float | None = None
    """Time the forward steps may take, waits included (None: no limit); see ``docs/drill.md``."""

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def bounded(self) -> Settings:
        """These settings with every duration a wait a clock can perform (0 to a week).

        A drill's loader refuses longer durations with their position; this keeps the
        engine itself from overflowing the time whatever it is given.
        """
        changes: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            numeric = f.name.endswith("_s") and isinstance(value, int | float)
            if numeric and bounded_wait(value) != value:
                changes[f.name] = bounded_wait(value)
        return replace(self, **changes) if changes else self


class Stop:
    """A request to stop (set from a signal handler), in two steps.

    The first request stops forward work at the next safe point; the rollback of what
    landed (or may have landed) still runs, within its window. A second request halts
    everything at once: what is still owed is recorded for ``agentundo recover``.
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self.halt = threading.Event()
        self.reason: str | None = None

    def request(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        if self.event.is_set():
            self.halt.set()
        self.event.set()

    @property
    def requested(self) -> bool:
        return self.event.is_set()

    @property
    def halted(self) -> bool:
        return self.halt.is_set()


@dataclass(slots=True)
class DrillSetup:
    """Everything a drill needs besides the per-run state; shared by a sweep's runs."""

    workflow: Workflow
    catalog: Catalog
    policy: Policy
    plan: FaultPlan = NO_FAULTS
    approvals: frozenset[str] = frozenset()
    settings: Settings = Settings()
    expect: Expect | None = None
    scenario: str | None = None
    seed: int = 0
    clock_name: str = "virtual"
    compiled: CompiledPolicy | None = field(default=None)
    jobs: Mapping[str, Job] = field(default_factory=dict)
    """What the policy sees of each step's job beyond its topic (a Cordum workflow's step
    labels, risk tags, ...), by step id; a step not here is unknown."""
    approval_steps: frozenset[str] = frozenset()
    """Steps that wait for a human whatever the policy allows (Cordum's approval steps)."""
    must_reach: tuple[Fault, ...] | None = None
    """The faults whose step the run must get to, or the drill fails: None for every
    fault of the plan. A sweep names only the failure it injects into each run: the
    scenario's other faults apply to every run and lie behind the failure in early ones."""

    def __post_init__(self) -> None:
        if self.compiled is None:
            self.compiled = CompiledPolicy(self.policy)

    @property
    def policy_index(self) -> CompiledPolicy:
        """The compiled policy (always set after construction)."""
        assert self.compiled is not None
        return self.compiled

    @property
    def faults_to_reach(self) -> tuple[Fault, ...]:
        return self.plan.faults if self.must_reach is None else self.must_reach
