"""The rollback: take the workflow's lock, compensate the stack in LIFO order, release.

The rollback holds ``saga:<workflow_id>:lock`` (a fencing epoch comes with it), runs
within the rollback window, and sends anything it cannot undo to a human. Each entry
leaves the stack only with its recorded outcome, so an interruption loses nothing.
"""

from __future__ import annotations

from typing import Any, Protocol

from agentundo.evidence.events import (
    CompensationOutcome,
    Event,
    FollowUp,
    RollbackOutcome,
    RunStatus,
)
from agentundo.saga.clock import rfc3339
from agentundo.saga.compensate import Compensator
from agentundo.saga.context import ROLLBACK_MODE, RunContext
from agentundo.saga.executor import Executor
from agentundo.saga.faults import OTHER_RUNNER
from agentundo.saga.gate import Gate
from agentundo.saga.lock import Acquisition, LockStore, LockStoreError, holds, lock_key
from agentundo.saga.result import CompensationReport

_CAUSES = {
    RunStatus.DENIED: "step_denied",
    RunStatus.FAILED_FATAL: "step_failed_fatal",
    RunStatus.INTERRUPTED: "run_interrupted",
}


class EntryHook(Protocol):
    """Called before each stack entry (a fault's hook at the rollback's seam)."""

    fired: bool
    """Whether the hook took the lock away (a fault): a fenced-out compensation is planned."""

    def before_entry(self, key: str, owner: str, done: int, now: float) -> None: ...


class Rollback:
    """One run's rollback; :meth:`run` once, :meth:`abandon` when the run is interrupted."""

    def __init__(
        self,
        ctx: RunContext,
        *,
        gate: Gate,
        executor: Executor,
        locks: LockStore,
        hook: EntryHook | None = None,
    ) -> None:
        self.ctx = ctx
        self.locks = locks
        self.hook = hook
        self.key = lock_key(ctx.workflow_id, ctx.run_id)
        self.epoch = 0
        self.deadline = 0.0
        self.expired_reported = False
        self.store_error: str | None = None
        """Why the lock store failed during this rollback (it is not asked again)."""
        self.finished_at: str | None = None
        self.done = 0
        self.injected_delay = False
        """An injected compensation fault used up window time (later time-outs are planned)."""
        self.compensator = Compensator(ctx, gate=gate, executor=executor, rollback=self)

    @property
    def lock_fault_fired(self) -> bool:
        return self.hook is not None and self.hook.fired

    @property
    def holding(self) -> bool:
        """Whether this rollback took the lock (and so must release it)."""
        return self.epoch > 0

    def run(self, status: RunStatus) -> None:
        """Announce the rollback (``rollback_triggered``), then :meth:`unwind` the stack."""
        ctx = self.ctx
        failed = next((s for s in ctx.steps if s.stopped), None)
        self.announce(
            _CAUSES[status],
            job_id=failed.job_id if failed else None,
            step_id=failed.step_id if failed else None,
            topic=failed.topic if failed else None,
        )
        self.unwind()

    def announce(self, cause: str, **ids: Any) -> None:
        self.ctx.emit(
            Event.ROLLBACK_TRIGGERED,
            self.ctx.rollback_actor,
            cause=cause,
            **ids,
            pending=len(self.ctx.stack),
        )

    def unwind(self) -> None:
        """Take the lock and compensate the stack, last entry first; release the lock."""
        ctx = self.ctx
        try:
            got = self._acquire()
        except LockStoreError as error:
            self._unavailable(error)
            return
        now = ctx.clock.now()
        if not got.acquired:
            self._busy(got)
            return
        self._took(got, now)
        while ctx.stack:
            if self.hook is not None:
                self.hook.before_entry(self.key, ctx.owner, self.done, ctx.clock.now())
            ctx.check_stop()
            entry = ctx.stack[-1]  # peek: an entry leaves the stack only with its outcome
            try:
                self.compensator.compensate(entry)
            finally:
                if ctx.comps and ctx.comps[-1].step_id == entry.step.id:
                    ctx.stack.pop()  # its outcome is recorded, even when interrupted
            self.done += 1
        self.release()
        outcome = RollbackOutcome.ESCALATED if ctx.followups else RollbackOutcome.COMPLETE
        self.finish(outcome)

    def _acquire(self) -> Acquisition:
        """Take the lock, waiting up to ``lock_wait_s`` while another runner holds it."""
        ctx = self.ctx
        give_up = ctx.clock.now() + ctx.settings.lock_wait_s
        while True:
            now = ctx.clock.now()
            got = self.locks.acquire(self.key, ctx.owner, ctx.settings.lock_ttl_s, now)
            if got.acquired or now >= give_up:
                return got
            ctx.sleep(min(0.5, give_up - now), {"lock_key": self.key})

    def _busy(self, got: Acquisition) -> None:
        """Another runner holds the lock: every entry goes to a human, nothing is undone."""
        ctx = self.ctx
        ctx.emit(
            Event.LOCK_BUSY,
            ctx.rollback_actor,
            lock_key=self.key,
            holder=got.holder,
            epoch=got.epoch,
        )
        self.escalate_rest(
            FollowUp.LOCK_HELD,
            f"rollback already in progress: lock {self.key} is held by {got.holder}",
            injected=got.holder == OTHER_RUNNER,
        )
        self.finish(RollbackOutcome.LOCK_HELD)

    def _store_failed(self, operation: str, error: LockStoreError) -> None:
        """Record the lock store's failure once; the rollback no longer trusts the lock."""
        if self.store_error is not None:
            return
        self.store_error = str(error)
        self.ctx.emit(
            Event.LOCK_STORE_FAILED,
            self.ctx.rollback_actor,
            lock_key=self.key,
            operation=operation,
            error=self.store_error,
        )

    def _unavailable(self, error: LockStoreError) -> None:
        """The lock could not be taken: nothing is compensated, everything stays owed."""
        self._store_failed("acquire", error)
        self.escalate_rest(
            FollowUp.LOCK_UNAVAILABLE,
            f"the rollback lock {self.key} could not be taken ({self.store_error}); "
            "nothing was compensated without it: finish with agentundo recover",
        )
        self.finish(RollbackOutcome.LOCK_UNAVAILABLE)

    def _took(self, got: Acquisition, now: float) -> None:
        ctx = self.ctx
        self.epoch = got.epoch
        self.deadline = now + ctx.settings.rollback_window_s
        fields: dict[str, Any] = {"lock_key": self.key, "owner": ctx.owner}
        if got.previous_owner is not None:
            event = Event.LOCK_TAKEN_OVER
            fields["previous_owner"] = got.previous_owner
        else:
            event = Event.LOCK_ACQUIRED
        ctx.emit(
            event, ctx.rollback_actor, **fields, epoch=got.epoch, ttl_s=ctx.settings.lock_ttl_s
        )

    def release(self) -> None:
        ctx = self.ctx
        fields: dict[str, Any] = {}
        try:
            released = self.locks.release(self.key, ctx.owner)
            state = None if released else self.locks.state(self.key)
        except LockStoreError as error:
            self._store_failed("release", error)
            released = False
            fields["reason"] = f"the lock store failed: {self.store_error}"
        else:
            if not released:
                holder = state.owner if state is not None else None
                fields["reason"] = (
                    f"lock is held by {holder}; only its owner may release it"
                    if holder
                    else "lock no longer exists"
                )
        ctx.emit(
            Event.LOCK_RELEASED,
            ctx.rollback_actor,
            lock_key=self.key,
            owner=ctx.owner,
            epoch=self.epoch,
            released=released,
            **fields,
        )

    def finish(self, outcome: RollbackOutcome) -> None:
        ctx = self.ctx
        self.finished_at = rfc3339(ctx.clock.now())
        ctx.emit(
            Event.ROLLBACK_FINISHED,
            ctx.rollback_actor,
            outcome=outcome.value,
            rollback_mode=ROLLBACK_MODE,
            compensated=sum(1 for c in ctx.comps if c.outcome is CompensationOutcome.SUCCEEDED),
            manual_followups=len(ctx.followups),
        )

    def abandon(self) -> None:
        """The run was interrupted: release the lock if it was taken, and say so."""
        if self.holding:
            self.release()
            self.finish(RollbackOutcome.INTERRUPTED)

    def escalate_rest(self, category: FollowUp, reason: str, *, injected: bool = False) -> None:
        """Send every entry still on the stack to manual follow-up (nothing is dropped)."""
        ctx = self.ctx
        while ctx.stack:
            entry = ctx.stack[-1]
            comp = entry.spec.compensation if entry.spec is not None else None
            ctx.comps.append(
                CompensationReport(
                    step_id=entry.step.id,
                    for_topic=entry.step.topic,
                    topic=comp.topic if comp is not None else None,
                    job_id=None,
                    idempotency_key=None,
                    outcome=CompensationOutcome.MANUAL,
                )
            )
            mitigation = entry.spec.mitigation if entry.spec is not None else None
            ctx.followup(
                entry.step, entry.step.topic, category, reason, mitigation, injected=injected
            )
            ctx.stack.pop()

    def fenced(self, ids: dict[str, Any]) -> bool:
        """Whether this rollback still holds its lock; reports the loss once."""
        ctx = self.ctx
        now = ctx.clock.now()
        if self.store_error is not None:
            return False
        try:
            if holds(self.locks, self.key, ctx.owner, self.epoch, now):
                return True
        except LockStoreError as error:
            self._store_failed("check", error)
            return False
        if not self.expired_reported:
            self.expired_reported = True
            state = self.locks.state(self.key)
            ctx.emit(
                Event.LOCK_EXPIRED,
                ctx.rollback_actor,
                lock_key=self.key,
                owner=ctx.owner,
                epoch=self.epoch,
                holder=None if state is None else state.owner,
                holder_epoch=None if state is None else state.epoch,
                job_id=ids.get("job_id"),
            )
        return False
