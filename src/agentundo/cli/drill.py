"""`agentundo drill`: run a workflow with injected faults and check that it rolls back."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from agentundo.saga.drills import Options
    from agentundo.saga.result import DrillResult
    from agentundo.saga.setup import DrillSetup, Stop

EVIDENCE_INCOMPLETE = 3
"""Exit code when the evidence could not be written in full (the run and its rollback went
on regardless; what it did is printed on stderr instead)."""

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
            help="Compensate the step that failed too [default: when its call reached the service].",
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
    lock: Annotated[
        str,
        typer.Option(
            "--lock",
            help="The run's rollback lock: file (default, under the evidence directory), "
            "memory, or redis://HOST:PORT/DB (shared by every runner).",
        ),
    ] = "file",
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

    Exit 0 when it recovered as expected, 1 when an effect was left behind silently or
    undone twice, a compensation failed, timed out, was denied or fenced out for real,
    an expectation failed, an endpoint was unreachable or the deadline passed (with
    --sweep: also when a run never reached its step), 2 for bad input, 130 when
    interrupted.
    """
    from agentundo.saga.drills import Options, load_drill

    options = Options(
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
        sweep=sweep,
        jobs=jobs,
        evidence=evidence,
        output_format=output_format,
        lock=lock,
    )
    options.check()
    loaded = load_drill(workflow, catalog, policy, scenario, options)
    with _stop_on_signals() as stop:
        if options.sweep:
            code = _sweep(loaded.setup, options, stop)
        else:
            recover = ["--catalog", catalog, "--policy", policy, "--lock", lock]
            if options.executor == "http":
                recover += ["--executor", "http"]
            code = _single(loaded.setup, options, stop, recover)
    raise typer.Exit(code)


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[Stop]:
    """A stop request that SIGINT, SIGTERM and SIGHUP set: the first stops forward work
    (the rollback still runs), a second halts everything."""
    import signal

    from agentundo.saga.setup import Stop

    stop = Stop()

    def on_signal(signum: int, _frame: object) -> None:
        stop.request(signal.Signals(signum).name)

    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, on_signal) for sig in signals}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _single(setup: DrillSetup, options: Options, stop: Stop, recover: list[str]) -> int:
    """One run with its evidence file, reported; the verdict's exit code. When a halted
    run leaves something owed, stderr says what and how to finish it (``recover``: the
    options that ``agentundo recover`` needs besides the evidence file)."""
    import sys

    from agentundo.report import drill as report
    from agentundo.saga.clock import clock_factory
    from agentundo.saga.drills import run_with_evidence, secret_param_values

    with contextlib.ExitStack() as resources:
        executor = None
        secrets = secret_param_values(setup.workflow, setup.catalog)
        if options.executor == "http":
            from agentundo.saga.http import HttpExecutor, check_endpoints

            executor = resources.enter_context(
                HttpExecutor(setup.catalog, stop=stop.event, halt=stop.halt)
            )
            check_endpoints(executor, setup.workflow, setup.catalog)
            secrets |= executor.secrets
        result, path, lost = run_with_evidence(
            setup,
            evidence_dir=options.evidence_dir,
            clock=clock_factory(setup.clock_name)(),
            stop=stop,
            executor=executor,
            secrets=secrets,
            on_evidence_failure=_warn_evidence_lost,
            locks=functools.partial(options.lock_store, setup.plan),
        )
    if options.output_format == "json":
        report.render_json(result, sys.stdout, str(path))
    else:
        report.render_text(result, _console(), str(path))
    owed = result.summary.get("owed") or []
    if owed:
        import shlex

        command = shlex.join(["agentundo", "recover", str(path), *recover])
        print(f"agentundo: still owed: {', '.join(owed)}", file=sys.stderr)
        print(f"agentundo: finish the rollback with: {command}", file=sys.stderr)
    if lost is not None:
        _report_evidence_lost(lost, result)
        return EVIDENCE_INCOMPLETE
    return result.verdict.exit_code


def _warn_evidence_lost(message: str) -> None:
    import sys

    print(
        f"agentundo: evidence incomplete: {message}; the run goes on, and its rollback",
        file=sys.stderr,
        flush=True,
    )


def _report_evidence_lost(message: str, result: DrillResult) -> None:
    """What the evidence cannot tell any more: the outcome of each effect, on stderr."""
    import sys

    print(
        f"agentundo: evidence incomplete (exit {EVIDENCE_INCOMPLETE}): {message}", file=sys.stderr
    )
    for row in result.ledger:
        print(f"agentundo:   {row.step_id} ({row.topic}): {row.state.value}", file=sys.stderr)
    for followup in result.followups:
        print(
            f"agentundo:   follow-up {followup.step_id}: {followup.category.value}: "
            f"{followup.reason}",
            file=sys.stderr,
        )


def _console() -> Console:
    from rich.console import Console

    return Console(highlight=False, emoji=False)


def _sweep(setup: DrillSetup, options: Options, stop: Stop) -> int:
    """One run per step; 0 when every run passed."""
    import sys

    from rich.console import Console

    from agentundo.evidence.events import Verdict
    from agentundo.report import drill as report
    from agentundo.saga.clock import clock_factory
    from agentundo.saga.sweep import default_jobs, sweep

    total = len(setup.workflow.steps)
    jobs = default_jobs() if options.jobs is None else options.jobs
    run = functools.partial(
        sweep,
        setup,
        clock_factory=clock_factory(setup.clock_name),
        evidence_dir=options.evidence_dir,
        stop=stop,
        jobs=jobs,
    )
    err = Console(stderr=True)
    if total >= SWEEP_PROGRESS_MIN and err.is_terminal:
        with report.progress(err, total) as update:
            rows = run(on_run=update)
    else:
        rows = run()
    where = str(options.evidence_dir)
    if options.output_format == "json":
        report.render_sweep_json(rows, sys.stdout, where)
    else:
        report.render_sweep_text(rows, _console(), where)
    lost = next((r.evidence_failure for r in rows if r.evidence_failure), None)
    if lost is not None:
        print(
            f"agentundo: evidence incomplete (exit {EVIDENCE_INCOMPLETE}): {lost}; the sweep "
            f"stopped after {len(rows)} of {total} runs",
            file=sys.stderr,
        )
        return EVIDENCE_INCOMPLETE
    if stop.requested:
        return Verdict.INTERRUPTED.exit_code
    return 0 if all(r.verdict in (Verdict.RECOVERED, Verdict.COMPLETED) for r in rows) else 1
