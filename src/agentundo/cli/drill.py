"""`agentundo drill`: run a workflow with injected faults and check that it rolls back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from agentundo.saga.clock import Clock
    from agentundo.saga.setup import DrillSetup, Stop

SWEEP_PROGRESS_MIN = 20
"""Sweeps with at least this many runs show a progress bar (on a terminal)."""


def register(app: typer.Typer) -> None:
    app.command(name="drill")(drill)


def drill(
    workflow: Annotated[str, typer.Argument(help="The workflow file to drill.")],
    catalog: Annotated[str, typer.Option("--catalog", help="The action catalog file.")],
    policy: Annotated[str, typer.Option("--policy", help="The policy file.")],
    scenario: Annotated[
        str | None, typer.Option("--scenario", help="A scenario file (faults, expectations).")
    ] = None,
    fail_at: Annotated[
        list[str] | None,
        typer.Option("--fail-at", metavar="STEP", help="Fail STEP fatally (repeatable)."),
    ] = None,
    partial: Annotated[
        list[str] | None,
        typer.Option(
            "--partial", metavar="STEP", help="Let STEP's effect land, then fail it (repeatable)."
        ),
    ] = None,
    transient: Annotated[
        list[str] | None,
        typer.Option(
            "--transient", metavar="STEP=N", help="Fail STEP transiently N times (repeatable)."
        ),
    ] = None,
    approve: Annotated[
        list[str] | None,
        typer.Option("--approve", metavar="STEP", help="A human approval is present for STEP."),
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the backoff jitter.")] = None,
    clock: Annotated[str | None, typer.Option("--clock", help="virtual (default) or real.")] = None,
    sweep: Annotated[
        bool, typer.Option("--sweep", help="Run once with FAILED_FATAL at each step in turn.")
    ] = False,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            metavar="N",
            help="Processes for --sweep runs [default: one per CPU; 1: in this process].",
        ),
    ] = None,
    evidence: Annotated[
        str | None,
        typer.Option("--evidence", help="Evidence directory [default: ./agentundo-evidence]."),
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", "-f", help="Output: text or json.")
    ] = "text",
    policy_fail_mode: Annotated[
        str | None,
        typer.Option("--policy-fail-mode", help="closed (default) or open when policy is down."),
    ] = None,
    compensate_failed_step: Annotated[
        bool | None,
        typer.Option(
            "--compensate-failed-step/--no-compensate-failed-step",
            help="Compensate the step that failed too [default: yes].",
        ),
    ] = None,
    executor_name: Annotated[
        str,
        typer.Option(
            "--executor",
            help="simulated (default) or http: call the endpoints the catalog declares.",
        ),
    ] = "simulated",
    derive_keys: Annotated[
        bool | None,
        typer.Option(
            "--derive-keys/--no-derive-keys",
            help="Derive idempotency keys for compensations without a template [default: yes].",
        ),
    ] = None,
    deadline: Annotated[
        str | None,
        typer.Option(
            "--deadline",
            metavar="DURATION",
            help="Time the forward steps may take, retries and approval waits included "
            "[default: none; 2m with --executor http].",
        ),
    ] = None,
) -> None:
    """Drill a workflow's rollback: inject faults, run the saga, check the ledger.

    Exit 0 when it recovered as expected, 1 when an effect was left behind silently,
    undone twice, an expectation failed, an endpoint was unreachable or the deadline
    passed (with --sweep: also when a run never reached its step), 2 for bad input,
    130 when interrupted.
    """
    import signal
    import sys

    from agentundo.errors import UsageError
    from agentundo.saga.clock import clock_factory
    from agentundo.saga.drills import (
        DEFAULT_EVIDENCE_DIR,
        Options,
        check_evidence_dir,
        default_jobs,
        load_drill,
        run_with_evidence,
    )
    from agentundo.saga.setup import Stop

    if output_format not in ("text", "json"):
        raise UsageError(f"unknown format {output_format!r}; expected text or json")
    if executor_name not in ("simulated", "http"):
        raise UsageError(f"unknown executor {executor_name!r}; expected simulated or http")
    if jobs is not None and jobs < 1:
        raise UsageError(f"--jobs must be at least 1, not {jobs}")
    if executor_name == "http" and sweep:
        raise UsageError("--sweep runs the simulated executor only")
    if sweep and (fail_at or partial):
        given = "--fail-at" if fail_at else "--partial"
        raise UsageError(
            f"--sweep fails each step in turn, so it cannot be combined with {given}; "
            "drop one of them"
        )
    if evidence is not None and not evidence.strip():
        raise UsageError("--evidence needs a directory, not an empty string")
    evidence_dir = Path(evidence or DEFAULT_EVIDENCE_DIR)
    check_evidence_dir(evidence_dir)
    if executor_name == "http" and clock is None:
        clock = "real"  # real endpoints: backoff and Retry-After wait for real
    loaded = load_drill(
        workflow,
        catalog,
        policy,
        scenario,
        Options(
            fail_at=fail_at or (),
            partial=partial or (),
            transient=transient or (),
            approve=approve or (),
            seed=seed,
            clock=clock,
            compensate_failed_step=compensate_failed_step,
            derive_compensation_keys=derive_keys,
            policy_fail_mode=policy_fail_mode,
            deadline=deadline,
            executor=executor_name,
        ),
    )

    make_clock = clock_factory(loaded.clock_name)

    stop = Stop()

    def on_signal(signum: int, _frame: object) -> None:
        stop.request(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if sweep:
            workers = default_jobs() if jobs is None else jobs
            code = _sweep(loaded.setup, evidence_dir, make_clock, stop, output_format, workers)
        else:
            import contextlib

            with contextlib.ExitStack() as resources:
                executor = None
                secrets: frozenset[str] = frozenset()
                if executor_name == "http":
                    from agentundo.saga.http import HttpExecutor, check_endpoints

                    executor = resources.enter_context(
                        HttpExecutor(loaded.setup.catalog, stop=stop.event)
                    )
                    check_endpoints(executor, loaded.setup.workflow, loaded.setup.catalog)
                    secrets = executor.secrets
                result, path = run_with_evidence(
                    loaded.setup,
                    evidence_dir=evidence_dir,
                    clock=make_clock(),
                    stop=stop,
                    executor=executor,
                    secrets=secrets,
                )
            from agentundo.report import drill as report

            if output_format == "json":
                report.render_json(result, sys.stdout, str(path))
            else:
                report.render_text(result, _console(), str(path))
            code = result.verdict.exit_code
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    raise typer.Exit(code)


def _console() -> Console:
    from rich.console import Console

    return Console(highlight=False, emoji=False)


def _sweep(
    setup: DrillSetup,
    evidence_dir: Path,
    make_clock: Callable[[], Clock],
    stop: Stop,
    output_format: str,
    jobs: int,
) -> int:
    import sys

    from rich.console import Console

    from agentundo.evidence.events import Verdict
    from agentundo.report import drill as report
    from agentundo.saga.drills import sweep

    total = len(setup.workflow.steps)
    err = Console(stderr=True)
    if total >= SWEEP_PROGRESS_MIN and err.is_terminal:
        with report.progress(err, total) as update:
            rows = sweep(
                setup,
                clock_factory=make_clock,
                evidence_dir=evidence_dir,
                stop=stop,
                on_run=update,
                jobs=jobs,
            )
    else:
        rows = sweep(
            setup, clock_factory=make_clock, evidence_dir=evidence_dir, stop=stop, jobs=jobs
        )
    where = str(evidence_dir)
    if output_format == "json":
        report.render_sweep_json(rows, sys.stdout, where)
    else:
        report.render_sweep_text(rows, _console(), where)
    if stop.requested:
        return Verdict.INTERRUPTED.exit_code
    passed = (Verdict.RECOVERED.value, Verdict.COMPLETED.value)
    return 0 if all(r.verdict in passed for r in rows) else 1
