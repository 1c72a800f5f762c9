"""The saga engine: run one workflow against a catalog and a policy, roll back on failure.

Pure: the clock, the executor, the lock store and the evidence sink are passed in (the
random generator is seeded from the setup). Nothing here prints or imports terminal
code. ``Engine(setup, ...).run()`` is the one entry point; the parts it assembles each
have a module: :mod:`~agentundo.saga.context` (the run's shared state),
:mod:`~agentundo.saga.forward`, :mod:`~agentundo.saga.gate`,
:mod:`~agentundo.saga.rollback` and :mod:`~agentundo.saga.compensate`,
:mod:`~agentundo.saga.verdict`, with faults wrapped around them by
:mod:`~agentundo.saga.faults`. The semantics (and their defaults) are documented in
``docs/drill.md``; the evidence vocabulary in ``docs/evidence.md``.
"""

from __future__ import annotations

from agentundo.evidence.events import Event, FollowUp, RunStatus
from agentundo.saga.clock import Clock, rfc3339
from agentundo.saga.context import ROLLBACK_MODE, Interrupted, RunContext, Sink
from agentundo.saga.executor import Executor
from agentundo.saga.faults import wrap
from agentundo.saga.forward import Forward
from agentundo.saga.gate import PolicyGate
from agentundo.saga.lock import LockStore, MemoryLockStore
from agentundo.saga.result import DrillResult
from agentundo.saga.rollback import Rollback
from agentundo.saga.setup import DrillSetup, Stop
from agentundo.saga.simulate import SimulatedExecutor, SimulatedWorld
from agentundo.saga.verdict import finish


class Engine:
    """Runs one workflow run of ``setup``; create one per run, then :meth:`run`.

    Without an ``executor`` the run acts on a fresh simulated world (whose ledger then
    judges the run); without a ``lock_store``, on an in-process lock.
    """

    def __init__(
        self,
        setup: DrillSetup,
        *,
        run_id: str,
        sink: Sink,
        clock: Clock,
        stop: Stop | None = None,
        executor: Executor | None = None,
        lock_store: LockStore | None = None,
    ) -> None:
        self.ctx = RunContext(setup, run_id, sink, clock, stop or Stop())
        self.world: SimulatedWorld | None = None
        if executor is None:
            simulated = SimulatedExecutor(setup.catalog)
            self.world = simulated.world
            executor = simulated
        parts = wrap(
            setup.plan, self.ctx, executor, PolicyGate(self.ctx), lock_store or MemoryLockStore()
        )
        self.forward = Forward(self.ctx, parts.gate, parts.executor)
        self.rollback = Rollback(
            self.ctx,
            gate=parts.gate,
            executor=parts.executor,
            locks=parts.locks,
            hook=parts.faulty_locks,
        )

    def run(self) -> DrillResult:
        ctx = self.ctx
        settings = ctx.settings
        if settings.deadline_s is not None:
            ctx.deadline_at = ctx.clock.now() + settings.deadline_s
        started = rfc3339(ctx.clock.now())
        ctx.emit(
            Event.RUN_STARTED,
            "agentundo",
            env=ctx.env,
            scenario=ctx.setup.scenario,
            seed=ctx.setup.seed,
            clock=ctx.setup.clock_name,
            rollback_mode=ROLLBACK_MODE,
            steps=len(ctx.steps),
            approvals=sorted(ctx.setup.approvals),
            faults=[
                f.model_dump(mode="json", exclude_defaults=True) for f in ctx.setup.plan.faults
            ],
            settings={k: str(v) for k, v in settings.as_dict().items()},
        )
        status = RunStatus.SUCCEEDED
        try:
            status = self.forward.run()
        except Interrupted:
            status = RunStatus.INTERRUPTED
        rollback = status is not RunStatus.SUCCEEDED and (
            status is not RunStatus.INTERRUPTED or bool(ctx.stack)
        )
        if rollback:
            ctx.in_rollback = True
            try:
                self.rollback.run(status)
            except Interrupted:
                status = RunStatus.INTERRUPTED
                self.rollback.escalate_rest(FollowUp.INTERRUPTED, "the drill was halted")
                self.rollback.abandon()
        return finish(
            ctx,
            status=status,
            rollback=rollback,
            started=started,
            world=self.world,
            rollback_finished_at=self.rollback.finished_at,
            lock_expired=self.rollback.expired_reported,
        )


def drill(
    setup: DrillSetup,
    *,
    run_id: str,
    sink: Sink,
    clock: Clock,
    stop: Stop | None = None,
    executor: Executor | None = None,
    lock_store: LockStore | None = None,
) -> DrillResult:
    """Run one drill: ``Engine(setup, ...).run()``."""
    engine = Engine(
        setup,
        run_id=run_id,
        sink=sink,
        clock=clock,
        stop=stop,
        executor=executor,
        lock_store=lock_store,
    )
    return engine.run()
