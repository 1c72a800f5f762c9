"""`agentundo timeline`: who dispatched what, what was undone, what needs a human; and is it whole."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

import typer


def register(app: typer.Typer) -> None:
    app.command(name="timeline")(timeline)


def timeline(
    paths: Annotated[
        list[str],
        typer.Argument(help="Evidence files (.jsonl), directories of them, or - for stdin."),
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
        str, typer.Option("--format", "-f", help="table, json, markdown or mermaid.")
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
    summary: Annotated[
        bool, typer.Option("--summary", help="One row per run: the drill history.")
    ] = False,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow", help="Tail a file a drill is writing; stop at run_summary or --timeout."
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
) -> None:
    """Show evidence as a timeline per run, filter it, verify it, or summarise many runs."""
    from agentundo.errors import UsageError
    from agentundo.report.timeline import Format, Query, TimeBound

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
    query = Query(
        runs=tuple(run or ()),
        jobs=tuple(job or ()),
        topics=tuple(topic or ()),
        events=tuple(event or ()),
        since=TimeBound.parse(since, "--since") if since else None,
        until=TimeBound.parse(until, "--until") if until else None,
        only_problems=only_problems,
    )
    if timeout is not None and not follow:
        raise UsageError("--timeout only applies with --follow")
    if summary:
        if follow:
            raise UsageError("--summary and --follow do not go together")
        code = _summary(paths, query, fmt, verify=verify)
    else:
        if follow and len(paths) != 1:
            raise UsageError(f"--follow takes exactly one file, not {len(paths)}")
        if follow and paths[0] == "-":
            raise UsageError(
                "--follow tails a file and cannot follow standard input; "
                "pipe into `agentundo timeline -` to read it whole"
            )
        code = _timeline(
            paths,
            query,
            fmt,
            limit=limit,
            verify=verify,
            follow=follow,
            timeout=timeout,
            quiet=quiet,
        )
    raise typer.Exit(code)


def _console() -> Any:
    """A rich console on stdout; 200 columns when stdout is not a terminal and COLUMNS unset."""
    import os
    import sys

    from rich.console import Console

    width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200
    return Console(highlight=False, width=width)


def _feed(items: Iterable[Any], view: Any, verifier: Any) -> None:
    """Stream one source into the view, and into the verifier when verifying.

    Bad lines go to the verifier (which reports them) or, without one, to a warning.
    """
    from agentundo.evidence.reader import BadLine

    for item in items:
        if verifier is not None:
            verifier.feed(item)
        if isinstance(item, BadLine):
            if verifier is None:
                _warn(item)
            continue
        view.feed(item)


def _key(verify: bool) -> bytes | None:
    """The evidence key when verifying (a UsageError when it is set but unusable)."""
    import os

    from agentundo.evidence.keys import evidence_key

    return evidence_key(os.environ) if verify else None


def _files(count: int) -> str:
    return f"{count} file{'' if count == 1 else 's'}"


def _verdict_line(checked: int, failed: int, unreadable: int) -> str:
    """The last line of ``--verify``: what was verified, never more than that."""
    if not checked:
        return f"nothing verified: {_files(unreadable)} could not be read as evidence (see above)"
    verdict = f"{failed} of {checked} failed verification" if failed else "all verified"
    line = f"{_files(checked)} checked, {verdict}"
    if unreadable:
        line += (
            f"; {unreadable} more could not be read as evidence and "
            f"{'was' if unreadable == 1 else 'were'} not verified"
        )
    return line


def _warn(item: Any) -> None:
    import sys

    print(f"{item.path}:{item.line}:{item.column}: warning: {item.message}", file=sys.stderr)


def _timeline(
    paths: list[str],
    query: Any,
    fmt: Any,
    *,
    limit: int,
    verify: bool,
    follow: bool,
    timeout: float | None,
    quiet: bool,
) -> int:
    import sys

    from agentundo.errors import InputError
    from agentundo.evidence.reader import (
        display_path,
        expand_paths,
        follow_path,
        read_path,
    )
    from agentundo.evidence.verify import Verifier
    from agentundo.report.timeline import Format, TableRenderer, Timeline, renderer

    sources = paths if follow else expand_paths(paths)
    if quiet:
        out: Any = TableRenderer(_console(), limit=limit, quiet=True)
    else:
        out = renderer(
            fmt,
            text=sys.stdout,
            binary=sys.stdout.buffer,
            console=_console,
            limit=limit,
            follow=follow,
        )
    keep = query.prefilter() if fmt is Format.JSON and not verify else None
    key = _key(verify)
    view = Timeline(query, out)
    errors: list[InputError] = []
    failed = 0
    checked = 0
    try:
        for path in sources:
            name = display_path(path)
            verifier = Verifier(name, key=key) if verify else None
            view.begin_source(name)
            items = (
                follow_path(path, timeout=timeout, blanks=verify)
                if follow
                else read_path(path, keep=keep, blanks=verify)
            )
            try:
                _feed(items, view, verifier)
            except InputError as error:
                print(error.describe(), file=sys.stderr)
                errors.append(error)
                view.end_run()
                continue
            view.end_run()
            if verifier is not None:
                checked += 1
                problems = verifier.finish()
                failed += bool(problems)
                if fmt in (Format.JSON, Format.MERMAID) and not quiet:  # stdout is data
                    for problem in problems:
                        print(problem.describe(), file=sys.stderr)
                    for chain in verifier.chains:
                        print(f"{name}: {chain.describe()}", file=sys.stderr)
                out.problems(name, problems, verified=True, chains=verifier.chains)
        out.close()
    except BrokenPipeError:
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    if verify:
        print(f"agentundo timeline: {_verdict_line(checked, failed, len(errors))}", file=sys.stderr)
    if errors:
        return 2  # each was printed as path:line:col: error: ... when it was met
    return 1 if failed else 0


def _summary(paths: list[str], query: Any, fmt: Any, *, verify: bool) -> int:
    import sys

    from agentundo.errors import InputError, UsageError
    from agentundo.evidence.reader import (
        expand_paths,
        first_record,
        last_record,
        read_path,
    )
    from agentundo.evidence.verify import RunTally, Verifier
    from agentundo.report.timeline import (
        Query,
        Run,
        SummaryRow,
        Timeline,
        parse_ts,
        render_summary,
        summary_row,
    )

    if query.jobs or query.topics or query.events:
        raise UsageError("--job, --topic and --event filter records, not runs; not with --summary")
    if any(b is not None and b.offset is not None for b in (query.since, query.until)):
        raise UsageError("--summary takes --since/--until as times, not offsets from a run's start")
    rows: list[SummaryRow] = []
    errors = 0
    failed = 0
    key = _key(verify)

    class _Collect:
        def __init__(self) -> None:
            self.runs: list[Run] = []

        def record(self, run: Run, record: Any) -> None:
            pass

        def end_run(self, run: Run) -> None:
            self.runs.append(run)

        def problems(
            self, path: str, problems: list[Any], *, verified: bool, chains: Any = ()
        ) -> None:
            pass

        def close(self) -> None:
            pass

    for path in expand_paths(paths):
        first = None if verify else first_record(path)
        last = None if verify else last_record(path)
        if first is not None and last is not None and last.event == "run_summary":
            tally = RunTally()
            tally.feed(first)
            tally.feed(last)
            rows.append(summary_row(path, tally))
            continue
        collect = _Collect()
        view = Timeline(Query(), collect)
        verifier = Verifier(path, key=key) if verify else None
        view.begin_source(path)
        try:
            _feed(read_path(path, blanks=verify), view, verifier)
        except InputError as error:
            print(error.describe(), file=sys.stderr)
            errors += 1
            continue
        view.end_run()
        ok = None
        if verifier is not None:
            problems = verifier.finish()
            ok = not problems
            failed += not ok
            for problem in problems:
                print(problem.describe(), file=sys.stderr)
            for chain in verifier.chains:
                print(f"{path}: {chain.describe()}", file=sys.stderr)
        rows.extend(summary_row(path, run.tally, verified=ok) for run in collect.runs)

    def wanted(row: SummaryRow) -> bool:
        if not query.wants_run(row.run_id):
            return False
        if query.only_problems and not row.has_problems:
            return False
        moment = parse_ts(row.started)
        since = query.since.at if query.since is not None else None
        until = query.until.at if query.until is not None else None
        if (since or until) and moment is None:
            return False
        if since is not None and moment is not None and moment < since:
            return False
        return not (until is not None and moment is not None and moment > until)

    shown = sorted((r for r in rows if wanted(r)), key=lambda r: (r.started, r.path))
    render_summary(shown, fmt, text=sys.stdout, console=_console)
    if errors:
        return 2
    return 1 if failed else 0
