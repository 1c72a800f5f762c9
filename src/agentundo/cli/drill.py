"""`agentundo drill`: run a workflow with injected faults and check that it rolls back."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console

    from agentundo.report.progress import DrillProgress
    from agentundo.saga.drills import Options
    from agentundo.saga.result import DrillResult
    from agentundo.saga.setup import DrillSetup, Stop
    from agentundo.saga.sweep import EvidenceLevel, SweepRow

EVIDENCE_INCOMPLETE = 3
"""Exit code when the evidence could not be written in full (the run and its rollback went
on regardless; what it did is printed on stderr instead)."""

SWEEP_PROGRESS_MIN = 20
"""Sweeps with at least this many runs show a progress bar (on a terminal)."""


def register(app: typer.Typer) -> None:
    app.command(name="drill")(drill)


def drill(
    ctx: typer.Context,
    workflow: Annotated[
        str | None,
        typer.Argument(
            help="The workflow file to drill, or a directory of scenarios to run "
            "[default: the configured scenarios].",
            show_default=False,
        ),
    ] = None,
    catalog: Annotated[
        str | None,
        typer.Option("--catalog", help="The action catalog file [default: configured]."),
    ] = None,
    policy: Annotated[
        str | None, typer.Option("--policy", help="The policy file [default: configured].")
    ] = None,
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
    run_input: Annotated[
        list[str] | None,
        typer.Option(
            "--input",
            metavar="KEY=VALUE",
            help="An input of a Cordum workflow's run (repeatable): its step conditions "
            "are evaluated from these.",
        ),
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
    evidence_level: Annotated[
        str,
        typer.Option(
            "--evidence-level",
            help="--sweep runs whose evidence is kept: all, failures or none [default: all].",
            show_default=False,
        ),
    ] = "all",
    yes: Annotated[
        bool,
        typer.Option("--yes", help="Run a --sweep even when its estimate is over the budget."),
    ] = False,
    output_format: Annotated[
        str, typer.Option("--format", "-f", help="Output: text, json or junit.")
    ] = "text",
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write the report to FILE."),
    ] = None,
    workflows: Annotated[
        list[str] | None,
        typer.Option(
            "--workflows",
            metavar="DIR",
            help="Where the scenarios' workflows are found by id, after the scenario's own "
            "directory (repeatable) [default: configured].",
        ),
    ] = None,
    config: Annotated[
        str | None,
        typer.Option(
            "--config",
            help="pyproject.toml or agentundo.toml to read [drill] from [default: found].",
        ),
    ] = None,
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
        str | None,
        typer.Option(
            "--executor",
            help="simulated (default) or http: call the endpoints the catalog declares.",
        ),
    ] = None,
    derive_keys: Annotated[
        bool | None,
        typer.Option(
            "--derive-keys/--no-derive-keys",
            help="Derive idempotency keys for compensations without a template [default: yes].",
        ),
    ] = None,
    lock: Annotated[
        str | None,
        typer.Option(
            "--lock",
            help="The run's rollback lock: file (default, under the evidence directory), "
            "memory, or redis://HOST:PORT/DB (shared by every runner).",
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
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            help="Show each step, retry, decision, compensation and lock event on stderr "
            "as it happens [default: with a real clock].",
        ),
    ] = None,
) -> None:
    """Drill a workflow's rollback: inject faults, run the saga, check the ledger.

    With a directory, or no workflow at all (the scenarios of [drill] in pyproject.toml or
    agentundo.toml), run every scenario found, one drill each, with the workflow it names.
    Options on the command line win over the configuration.

    Exit 0 when it recovered as expected, 1 when an effect was left behind silently or
    undone twice, a compensation failed, timed out, was denied or fenced out for real,
    an expectation failed, an endpoint was unreachable or the deadline passed (with
    --sweep: also when a run never reached its step), 2 for bad input, 130 when
    interrupted. Several drills: 1 if any failed, else 2 if any input was bad, else 3,
    130, 0 in that order.
    """
    from pathlib import Path

    from agentundo.errors import UsageError
    from agentundo.lint.config import discover_drill
    from agentundo.saga.drills import Options, check_output, load_drill

    settings = discover_drill(config)
    catalog = catalog or settings.catalog
    policy = policy or settings.policy
    if catalog is None or policy is None:
        # as Click says it of a missing option, when nothing is configured either
        usage: Any = {c.__name__: c for c in typer.BadParameter.__mro__}["UsageError"]
        missing = "--catalog" if catalog is None else "--policy"
        raise usage(f"Missing option '{missing}'.", ctx=ctx)
    lock = lock or settings.lock or "file"
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
        executor=executor_name or settings.executor or "simulated",
        sweep=sweep,
        jobs=jobs,
        evidence=evidence if evidence is not None else settings.evidence,
        output_format=output_format,
        lock=lock,
        output=output,
        inputs=run_input,
        evidence_level=evidence_level,
        yes=yes,
    )
    options.check()
    recover = ["--catalog", catalog, "--policy", policy, "--lock", lock]
    if options.executor == "http":
        recover += ["--executor", "http"]
    inputs: list[str | Path] = [catalog, policy]
    if settings.source is not None:
        inputs.append(settings.source)
    if workflow is None or Path(workflow).is_dir():
        if scenario is not None:
            raise UsageError(
                "--scenario drills one workflow file; with a directory or the configured "
                "scenarios, each scenario names its workflow"
            )
        paths = [workflow] if workflow is not None else list(settings.scenarios)
        if not paths:
            raise UsageError(
                "no workflow given and no scenarios configured: give a workflow file or a "
                "directory of scenarios, or set 'scenarios' in [drill] of the configuration"
            )
        where = list(workflows) if workflows else list(settings.workflows)
        code = _many(paths, where, catalog, policy, options, inputs, recover, progress)
        raise typer.Exit(code)
    inputs += [workflow, *([scenario] if scenario else [])]
    check_output(options.output, inputs)
    loaded = load_drill(workflow, catalog, policy, scenario, options)
    for step, why in loaded.skipped:
        typer.echo(f"agentundo: not rehearsed: step '{step}': {why}", err=True)
    with _stop_on_signals() as stop:
        if options.sweep:
            code = _sweep(loaded.setup, options, stop)
        else:
            code = _single(loaded.setup, options, stop, recover, progress)
    raise typer.Exit(code)


PRIORITY = (1, 2, EVIDENCE_INCOMPLETE, 130)
"""The exit code of several drills: the first of these that any drill had, else 0."""


def _combined(codes: list[int]) -> int:
    return next((code for code in PRIORITY if code in codes), 0)


@contextlib.contextmanager
def _report_stream(options: Options) -> Iterator[TextIO]:
    """Where the report goes: ``-o FILE`` (written in full at the end) or stdout."""
    import io
    import sys

    if options.output is None:
        yield sys.stdout
        return
    buffer = io.StringIO()
    yield buffer
    from pathlib import Path

    Path(options.output).write_text(buffer.getvalue(), encoding="utf-8")


def _many(
    paths: list[str],
    workflow_dirs: list[str],
    catalog: str,
    policy: str,
    options: Options,
    inputs: list[str | Path],
    recover: list[str],
    progress: bool | None,
) -> int:
    """One drill per scenario found under ``paths``; the combined exit code."""
    import sys

    from agentundo.errors import InputError, InputErrors
    from agentundo.report import drill as report
    from agentundo.saga.drill_jobs import find_jobs
    from agentundo.saga.drills import check_output, load_drill

    found = find_jobs(paths, workflow_dirs)
    check_output(
        options.output,
        [
            *inputs,
            *(j.scenario for j in found.jobs),
            *(j.workflow for j in found.jobs if j.workflow),
        ],
    )
    codes: list[int] = []
    cases: list[report.DrillCase] = []
    docs: list[dict[str, object]] = []
    lines: list[report.DrillCase] = []

    def bad(scenario: str, name: str, workflow_id: str, errors: list[InputError]) -> None:
        for error in errors:
            print(f"agentundo: {error}", file=sys.stderr)
        codes.append(2)
        case = report.DrillCase(
            workflow_id or scenario, name, report.ERROR, tuple(str(e) for e in errors)
        )
        cases.append(case)
        lines.append(case)
        docs.append({"scenario_file": scenario, "errors": [str(e) for e in errors], "exit_code": 2})

    for error in found.errors:
        bad(error.position.path, error.position.path, "", [error])
    with _stop_on_signals() as stop:
        for job in found.jobs:
            if stop.requested:
                break
            if job.errors or job.workflow is None:
                bad(job.scenario, job.name, job.workflow_id, job.errors)
                continue
            try:
                loaded = load_drill(job.workflow, catalog, policy, job.scenario, options)
            except InputErrors as exc:
                bad(job.scenario, job.name, job.workflow_id, exc.errors)
                continue
            except InputError as exc:
                bad(job.scenario, job.name, job.workflow_id, [exc])
                continue
            files = {"scenario_file": job.scenario, "workflow_file": job.workflow}
            if options.sweep:
                rows, code = _sweep_rows(loaded.setup, options, stop)
                codes.append(code)
                these = report.cases_of_sweep(rows, job.workflow_id, f"{job.name}: ")
                cases.extend(these)
                failed = [c for c in these if c.verdict not in ("completed", "recovered")]
                lines.append(
                    report.DrillCase(
                        job.workflow_id,
                        job.name,
                        "recovered" if code == 0 else "failed" if code == 1 else str(code),
                        tuple(f"{c.name}: {c.verdict}" for c in failed)
                        or (f"sweep of {len(rows)} runs",),
                        str(options.evidence_dir),
                    )
                )
                docs.append(
                    {
                        **files,
                        **report.sweep_dict(rows, str(options.evidence_dir)),
                        "exit_code": code,
                    }
                )
                continue
            result, path, lost = _execute(loaded.setup, options, stop, progress)
            _warn_owed(result, path, recover)
            code = EVIDENCE_INCOMPLETE if lost is not None else result.verdict.exit_code
            if lost is not None:
                _report_evidence_lost(lost, result)
            codes.append(code)
            case = report.case_of(result, job.name, str(path), lost)
            cases.append(case)
            lines.append(case)
            docs.append({**files, **report.as_dict(result, str(path))})
    with _report_stream(options) as stream:
        if options.output_format == "junit":
            report.render_junit(cases, stream)
        elif options.output_format == "json":
            import json

            json.dump(docs, stream, indent=2)
            stream.write("\n")
        else:
            console = _console(stream)
            for line in lines:
                report.render_case_line(line, console)
    return _combined(codes)


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


def _single(
    setup: DrillSetup, options: Options, stop: Stop, recover: list[str], progress: bool | None
) -> int:
    """One run with its evidence file, reported; the verdict's exit code. When a halted
    run leaves something owed, stderr says what and how to finish it (``recover``: the
    options that ``agentundo recover`` needs besides the evidence file)."""
    from agentundo.report import drill as report

    result, path, lost = _execute(setup, options, stop, progress)
    with _report_stream(options) as stream:
        if options.output_format == "json":
            report.render_json(result, stream, str(path))
        elif options.output_format == "junit":
            name = setup.scenario or "drill"
            report.render_junit([report.case_of(result, name, str(path), lost)], stream)
        else:
            report.render_text(result, _console(stream), str(path))
    _warn_owed(result, path, recover)
    if lost is not None:
        _report_evidence_lost(lost, result)
        return EVIDENCE_INCOMPLETE
    return result.verdict.exit_code


def _execute(
    setup: DrillSetup, options: Options, stop: Stop, progress: bool | None = None
) -> tuple[DrillResult, Path, str | None]:
    """One run with its evidence file: the result, the file, why the evidence is lost.

    With ``progress`` (None: when the clock is real) each record is shown on stderr as
    it is written, after a first line naming the run and its evidence file."""
    import sys

    from agentundo.saga.clock import clock_factory
    from agentundo.saga.drills import new_run_id, run_with_evidence, secret_param_values

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
        run_id = new_run_id()
        live = setup.clock_name == "real" if progress is None else progress
        if live or setup.clock_name == "real":  # a run that takes time: say where to watch it
            where = options.evidence_dir / f"{run_id}.jsonl"
            print(
                f"agentundo: drill {run_id} started; evidence: {where} "
                f"(watch it: agentundo timeline --follow {options.evidence_dir})",
                file=sys.stderr,
                flush=True,
            )
        return run_with_evidence(
            setup,
            run_id=run_id,
            evidence_dir=options.evidence_dir,
            clock=clock_factory(setup.clock_name)(),
            stop=stop,
            executor=executor,
            secrets=secrets,
            on_evidence_failure=_warn_evidence_lost,
            locks=functools.partial(options.lock_store, setup.plan),
            observe=_progress() if live else None,
        )


def _progress() -> DrillProgress:
    """Live progress on stderr: styled on a terminal, plain flushed lines elsewhere."""
    import sys

    from rich.console import Console

    from agentundo.report.progress import DrillProgress

    console = Console(stderr=True, highlight=False, emoji=False)
    return DrillProgress(sys.stderr, console=console if console.is_terminal else None)


def _warn_owed(result: DrillResult, path: Path, recover: list[str]) -> None:
    """When a halted run leaves something owed: what, and how to finish it (stderr)."""
    import sys

    owed = result.summary.get("owed") or []
    if owed:
        import shlex

        command = shlex.join(["agentundo", "recover", str(path), *recover])
        print(f"agentundo: still owed: {', '.join(owed)}", file=sys.stderr)
        print(f"agentundo: finish the rollback with: {command}", file=sys.stderr)


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


def _console(stream: TextIO | None = None) -> Console:
    import sys

    from rich.console import Console

    if stream is None or stream is sys.stdout:
        return Console(highlight=False, emoji=False)
    return Console(file=stream, highlight=False, emoji=False, width=200, no_color=True)


def _sweep(setup: DrillSetup, options: Options, stop: Stop) -> int:
    """One run per step, reported; 0 when every run passed."""
    from agentundo.report import drill as report

    rows, code = _sweep_rows(setup, options, stop)
    where = str(options.evidence_dir)
    with _report_stream(options) as stream:
        if options.output_format == "json":
            report.render_sweep_json(rows, stream, where)
        elif options.output_format == "junit":
            report.render_junit(report.cases_of_sweep(rows, setup.workflow.workflow), stream)
        else:
            report.render_sweep_text(rows, _console(stream), where)
    return code


def _sweep_budget(total: int, jobs: int, options: Options) -> EvidenceLevel:
    """The sweep's evidence level, once its estimate is within the budget or ``--yes``."""
    import sys

    from agentundo.errors import UsageError
    from agentundo.saga.sweep import EVIDENCE_LEVELS, estimate

    level = next(v for v in EVIDENCE_LEVELS if v == options.evidence_level)
    cost = estimate(total, jobs=jobs, evidence_level=level)
    if cost.over_budget:
        if not options.yes:
            raise UsageError(
                f"{cost.describe()}: over the budget (1 GB of evidence or 10 minutes); pass "
                "--yes to run it, or --evidence-level failures or none to write less"
            )
        print(f"agentundo: {cost.describe()} (--yes)", file=sys.stderr)
    return level


def _sweep_rows(setup: DrillSetup, options: Options, stop: Stop) -> tuple[list[SweepRow], int]:
    """One run per step: the rows and the sweep's exit code (0 when every run passed)."""
    import sys

    from rich.console import Console

    from agentundo.evidence.events import Verdict
    from agentundo.report import drill as report
    from agentundo.saga.clock import clock_factory
    from agentundo.saga.sweep import default_jobs, sweep

    total = len(setup.workflow.steps)
    jobs = default_jobs() if options.jobs is None else options.jobs
    level = _sweep_budget(total, jobs, options)
    run = functools.partial(
        sweep,
        setup,
        clock_factory=clock_factory(setup.clock_name),
        evidence_dir=options.evidence_dir,
        stop=stop,
        jobs=jobs,
        evidence_level=level,
    )
    err = Console(stderr=True)
    if total >= SWEEP_PROGRESS_MIN and err.is_terminal:
        with report.progress(err, total) as update:
            rows = list(run(on_run=update))
    else:
        rows = list(run())
    lost = next((r.evidence_failure for r in rows if r.evidence_failure), None)
    if lost is not None:
        print(
            f"agentundo: evidence incomplete (exit {EVIDENCE_INCOMPLETE}): {lost}; the sweep "
            f"stopped after {len(rows)} of {total} runs",
            file=sys.stderr,
        )
        return rows, EVIDENCE_INCOMPLETE
    if stop.requested:
        return rows, Verdict.INTERRUPTED.exit_code
    good = all(r.verdict in (Verdict.RECOVERED, Verdict.COMPLETED) for r in rows)
    return rows, 0 if good else 1
