"""`agentundo recover`: finish the rollback of an interrupted run from its evidence, or
undo a traced agent run that failed (``--trace``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from agentundo.saga.recover import RecoveryResult
    from agentundo.saga.recover_file import RecoverOutcome
    from agentundo.saga.setup import Stop

EVIDENCE_INCOMPLETE = 3
"""Exit code when the evidence could not be written in full (the undo ran regardless)."""


def register(app: typer.Typer) -> None:
    app.command(name="recover")(recover)


def recover(
    catalog: Annotated[str, typer.Option("--catalog", help="The action catalog file.")],
    policy: Annotated[str, typer.Option("--policy", help="The policy file.")],
    evidence: Annotated[
        str | None,
        typer.Argument(
            metavar="EVIDENCE_FILE",
            help="The interrupted run's evidence file (not with --trace).",
            show_default=False,
        ),
    ] = None,
    trace: Annotated[
        str | None,
        typer.Option(
            "--trace",
            metavar="TRACE",
            help="Undo a failed agent run from its OTLP JSON trace instead of evidence.",
        ),
    ] = None,
    run_id: Annotated[
        str | None,
        typer.Option(
            "--run",
            metavar="TRACE_ID",
            help="With --trace: the run (trace id, a unique prefix or a glob) to recover.",
        ),
    ] = None,
    env: Annotated[
        str | None,
        typer.Option(
            "--env",
            help="With --trace: the env the policy gate judges the compensations in "
            "[default: the trace's deployment.environment, else production].",
        ),
    ] = None,
    executor: Annotated[
        str, typer.Option("--executor", help="simulated (default) or http: call the endpoints.")
    ] = "simulated",
    evidence_dir: Annotated[
        str | None,
        typer.Option(
            "--evidence",
            metavar="DIR",
            help="Evidence directory whose .locks/ holds the run's lock [default: the file's]; "
            "with --trace, where its evidence is written [default: ./agentundo-evidence].",
        ),
    ] = None,
    lock: Annotated[
        str,
        typer.Option(
            "--lock", help="The run's lock: file (default), memory or redis://HOST:PORT/DB."
        ),
    ] = "file",
    lock_wait: Annotated[
        str,
        typer.Option(
            "--lock-wait",
            metavar="DURATION",
            help="How long to wait for another runner's lock on the run [default: 10s].",
        ),
    ] = "10s",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; call nothing, write nothing.")
    ] = False,
    output_format: Annotated[
        str, typer.Option("--format", "-f", help="Output: text or json.")
    ] = "text",
) -> None:
    """Finish an interrupted run's rollback: compensate what is owed, last first, with the
    run's own idempotency keys, under its lock, continuing its evidence. With --trace,
    undo the landed effects of a failed agent run read from its trace the same way.

    Exit 0 when nothing is owed afterwards (planned manual follow-ups aside), 1 when
    something is still owed (or another runner holds the lock), 2 for bad input (with
    --trace: also a call whose undo needs content the trace lacks), 3 when the evidence
    could not be written in full.
    """
    import signal

    from agentundo.errors import UsageError
    from agentundo.saga.recover_file import NothingRecorded, RecoverRequest, run
    from agentundo.saga.setup import Stop

    if output_format not in ("text", "json"):
        raise UsageError(f"unknown format {output_format!r}; expected text or json")
    if executor not in ("simulated", "http"):
        raise UsageError(f"unknown executor {executor!r}; expected simulated or http")
    wait = _duration("--lock-wait", lock_wait)
    if trace is not None:
        if evidence is not None:
            raise UsageError("give an evidence file or --trace, not both")
        _recover_trace(
            trace,
            catalog=catalog,
            policy=policy,
            run_id=run_id,
            env=env,
            executor=executor,
            evidence_dir=evidence_dir,
            lock=lock,
            lock_wait=wait,
            dry_run=dry_run,
            output_format=output_format,
        )
    if evidence is None:
        raise UsageError("give the evidence file of the run to recover, or --trace TRACE")
    for option, value in (("--run", run_id), ("--env", env)):
        if value is not None:
            raise UsageError(f"{option} only applies with --trace")
    request = RecoverRequest(
        evidence=Path(evidence),
        catalog=catalog,
        policy=policy,
        executor=executor,
        lock=lock,
        lock_dir=Path(evidence_dir) / ".locks" if evidence_dir else None,
        lock_wait_s=wait,
        dry_run=dry_run,
    )
    stop = Stop()
    previous = _handle_signals(stop)
    try:
        outcome = run(request, stop=stop)
    except NothingRecorded as nothing:
        typer.echo(
            f"nothing to recover in {nothing.path}: the run was stopped before its first "
            "record, and every call is recorded before it is made, so it made none"
        )
        raise typer.Exit(0) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _report(outcome, output_format, dry_run=dry_run)
    raise typer.Exit(_exit_code(outcome))


def _handle_signals(stop: Stop) -> dict[int, Any]:
    """SIGINT, SIGTERM and SIGHUP halt the recovery (it is all rollback); the handlers
    they had, to restore."""
    import signal

    def on_signal(signum: int, _frame: object) -> None:
        stop.request(signal.Signals(signum).name)
        stop.request(signal.Signals(signum).name)

    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    return {sig: signal.signal(sig, on_signal) for sig in handled}


def _recover_trace(
    trace: str,
    *,
    catalog: str,
    policy: str,
    run_id: str | None,
    env: str | None,
    executor: str,
    evidence_dir: str | None,
    lock: str,
    lock_wait: float,
    dry_run: bool,
    output_format: str,
) -> None:
    """``recover --trace``: plan (and run) the undo of a failed traced run; exits."""
    import signal

    from agentundo.saga.setup import Stop
    from agentundo.trace.recover import TraceRecoverRequest
    from agentundo.trace.recover import run as run_trace

    request = TraceRecoverRequest(
        trace=trace,
        catalog=catalog,
        policy=policy,
        run=run_id,
        evidence_dir=Path(evidence_dir or "agentundo-evidence"),
        executor=executor,
        lock=lock,
        lock_wait_s=lock_wait,
        dry_run=dry_run,
        env=env,
    )
    stop = Stop()
    previous = _handle_signals(stop)
    try:
        outcome = run_trace(request, stop=stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    from agentundo.cli.recover_trace import exit_code, report

    report(outcome, output_format, dry_run=dry_run)
    raise typer.Exit(exit_code(outcome))


def _duration(flag: str, value: str) -> float:
    import re

    from agentundo.errors import UsageError
    from agentundo.model.common import DURATION_PATTERN, MAX_WAIT_S, seconds

    if re.fullmatch(DURATION_PATTERN, value) is None or seconds(value) > MAX_WAIT_S:
        raise UsageError(f"{flag} expects a duration such as 0s, 30s or 2m, got {value!r}")
    return seconds(value)


def _exit_code(outcome: RecoverOutcome) -> int:
    if outcome.evidence_failure:
        return EVIDENCE_INCOMPLETE
    if outcome.result is None:
        return 0
    return 1 if outcome.result.owed or outcome.result.lock_held else 0


def _as_dict(outcome: RecoverOutcome, *, dry_run: bool) -> dict[str, Any]:
    plan, result = outcome.plan, outcome.result
    return {
        "run_id": plan.run_id,
        "workflow_id": plan.workflow_id,
        "evidence": plan.path,
        "dry_run": dry_run,
        "owed": [
            {
                "step_id": o.step.step_id,
                "topic": o.step.topic,
                "state": o.state,
                "job_id": o.resume.job_id if o.resume else None,
                "idempotency_key": o.key,
                "response": o.step.response,
            }
            for o in reversed(plan.owed)  # the order they are compensated in
        ],
        "unknown": [s.step_id for s in plan.open_jobs],
        "manual": [{"step_id": step, "category": category} for step, category in plan.settled],
        "result": None if result is None else result_dict(result, "step_id"),
        "evidence_failure": outcome.evidence_failure,
    }


def _report(outcome: RecoverOutcome, output_format: str, *, dry_run: bool) -> None:
    import json
    import sys

    data = _as_dict(outcome, dry_run=dry_run)
    if output_format == "json":
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    out = sys.stdout.write
    out(f"recover {data['workflow_id']} run {data['run_id']} ({data['evidence']})\n")
    if not data["owed"]:
        out("nothing is owed: every effect that landed was undone or handed to a human\n")
    for item in data["owed"]:
        key = item["idempotency_key"] or "(none)"
        ids = f" ids {json.dumps(item['response'])}" if item["response"] else ""
        out(f"  owed {item['step_id']} ({item['topic']}, {item['state']}): key {key}{ids}\n")
    for item in data["manual"]:
        out(f"  manual {item['step_id']}: {item['category']} (already with a human)\n")
    result = data["result"]
    if dry_run:
        out("dry run: nothing was called, locked or written\n")
    elif result is not None:
        write_result(out, result, "step_id")
    if outcome.evidence_failure:
        print(f"agentundo: evidence incomplete: {outcome.evidence_failure}", file=sys.stderr)


def result_dict(result: RecoveryResult, id_field: str) -> dict[str, Any]:
    """What a recovery did, for ``--format json``; ``id_field`` names what identifies an
    entry (``step_id``, or a trace's ``call_id``)."""
    return {
        "verdict": result.verdict.value,
        "compensated": result.compensated,
        "still_owed": result.owed,
        "lock_held": result.lock_held,
        "followups": [{id_field: s, "category": c, "reason": r} for s, c, r in result.manual],
    }


def write_result(out: Any, result: dict[str, Any], id_field: str) -> None:
    """What a recovery did (the ``result`` of its JSON): undone, follow-ups, the verdict;
    ``id_field`` names what identifies an entry (``step_id``, or a trace's ``call_id``)."""
    for step in result["compensated"]:
        out(f"  undone {step}\n")
    for followup in result["followups"]:
        out(f"  follow-up {followup[id_field]}: {followup['category']}: {followup['reason']}\n")
    still = ", ".join(result["still_owed"]) or "nothing"
    out(f"verdict: {result['verdict']}; still owed: {still}\n")
