"""`agentundo timeline`: who dispatched what, what was undone, what needs a human; and is it whole."""

from __future__ import annotations

from typing import Annotated, Any

import typer


def register(app: typer.Typer) -> None:
    app.command(name="timeline")(timeline)


def timeline(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Evidence files (.jsonl), directories of them, or - for stdin; or OTLP JSON "
            "trace files (with --catalog)."
        ),
    ],
    run: Annotated[
        list[str] | None, typer.Option("--run", help="Only runs whose run_id matches (glob).")
    ] = None,
    job: Annotated[
        list[str] | None,
        typer.Option("--job", help="Only records whose job_id or step_id matches (glob)."),
    ] = None,
    topic: Annotated[
        list[str] | None,
        typer.Option("--topic", help="Only records whose topic or for_topic matches (glob)."),
    ] = None,
    event: Annotated[
        list[str] | None,
        typer.Option("--event", help="Only these event types (glob; repeatable)."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Only records at or after this time (RFC 3339, or +90s from run start)."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            help="Only records at or before this time (RFC 3339, or +90s from run start)."
        ),
    ] = None,
    only_problems: Annotated[
        bool,
        typer.Option(
            "--only-problems",
            help="Only failures, denials, skips, timeouts, lock trouble, manual follow-ups "
            "and interruptions.",
        ),
    ] = False,
    output_format: Annotated[
        str, typer.Option("--format", "-f", help="table, json, markdown, mermaid or otlp.")
    ] = "table",
    limit: Annotated[
        int,
        typer.Option(
            min=0, help="Rows (mermaid: tasks) shown per run; 0 for all. JSON is never limited."
        ),
    ] = 1000,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Check the hash chain (its MACs with AGENTUNDO_EVIDENCE_KEY) and completeness; "
            "exit 1 on any problem.",
        ),
    ] = False,
    require_key: Annotated[
        bool,
        typer.Option(
            "--require-key",
            help="With --verify: AGENTUNDO_EVIDENCE_KEY must be set (else exit 2) and every "
            "chain keyed throughout (else exit 1); AGENTUNDO_REQUIRE_KEY=1 does the same. "
            "Recommended in CI.",
        ),
    ] = False,
    summary: Annotated[
        bool, typer.Option("--summary", help="One row per run: the drill history.")
    ] = False,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            help="Tail a file a drill is writing (for a directory: its newest run still being "
            "written); stop at run_summary or --timeout.",
        ),
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(min=0, help="With --follow: stop after this many seconds."),
    ] = None,
    quiet: Annotated[
        bool,
        typer.Option("--quiet", "-q", help="No timeline: only warnings and verification."),
    ] = False,
    catalog: Annotated[
        str | None,
        typer.Option(
            "--catalog", help="For OTLP traces: the catalog that maps tool calls to topics."
        ),
    ] = None,
    evidence_dir: Annotated[
        str | None,
        typer.Option(
            "--evidence",
            metavar="DIR",
            help="For OTLP traces: the evidence directory of `recover --trace` (shows what "
            "it undid).",
        ),
    ] = None,
) -> None:
    """Show evidence as a timeline per run, filter it, verify it, or summarise many runs;
    or show the agent runs of an OTLP trace as tool calls mapped to catalog topics."""
    import os
    import sys

    from agentundo.errors import UsageError
    from agentundo.timeline import Streams, TimelineRequest
    from agentundo.timeline import run as run_timeline
    from agentundo.timeline.formats import Format
    from agentundo.timeline.query import Query
    from agentundo.timeline.times import TimeBound

    try:
        fmt = Format(output_format)
    except ValueError:
        names = ", ".join(f.value for f in Format)
        raise UsageError(f"unknown format {output_format!r}; expected one of {names}") from None
    for option, values in (("--run", run), ("--job", job), ("--topic", topic), ("--event", event)):
        if any(not value.strip() for value in values or ()):
            raise UsageError(f"{option} needs a value, not an empty string")
    for option, text in (("--since", since), ("--until", until)):
        if text is not None and not text.strip():
            raise UsageError(f"{option} needs a time or an offset, not an empty string")
    if any(not path.strip() for path in paths):
        raise UsageError("an empty path names nothing; give a file, a directory or -")
    request = TimelineRequest(
        paths=tuple(paths),
        query=Query(
            runs=tuple(run or ()),
            jobs=tuple(job or ()),
            topics=tuple(topic or ()),
            events=tuple(event or ()),
            since=TimeBound.parse(since, "--since") if since else None,
            until=TimeBound.parse(until, "--until") if until else None,
            only_problems=only_problems,
        ),
        fmt=fmt,
        limit=limit,
        verify=verify,
        require_key=require_key,
        summary=summary,
        follow=follow,
        timeout=timeout,
        quiet=quiet,
        environ=os.environ,
        catalog=catalog,
        evidence_dir=evidence_dir,
    )
    streams = Streams(sys.stdout, sys.stdout.buffer, sys.stderr, _console)
    outcome = run_timeline(request, streams)
    if outcome.broken_pipe:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0)
    if outcome.reports_verdict:
        print(f"agentundo timeline: {outcome.verdict_line()}", file=sys.stderr)
    if outcome.unreadable:
        raise typer.Exit(2)  # each was printed as path:line:col: error: ... when it was met
    raise typer.Exit(1 if outcome.failed else 0)


def _console() -> Any:
    """A rich console on stdout; 200 columns when stdout is not a terminal and COLUMNS unset."""
    import os
    import sys

    from rich.console import Console

    width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200
    return Console(highlight=False, width=width)
