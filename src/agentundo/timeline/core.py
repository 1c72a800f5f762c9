"""Read, verify and render evidence as a timeline: the core of ``agentundo timeline``.

:func:`run` takes a :class:`TimelineRequest` (what to read and how to show it) and the
:class:`Streams` to write to, and returns a :class:`TimelineOutcome` (what was read and
verified). Each source's input errors, warnings and, where stdout is data, verification
problems are written to ``stderr`` as they are met; the verdict line and the exit code
are the caller's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, TextIO

from agentundo.errors import InputError, UsageError
from agentundo.timeline.formats import Format
from agentundo.timeline.query import Query

if TYPE_CHECKING:
    from rich.console import Console

    from agentundo.evidence.problems import Problem
    from agentundo.evidence.reader import Keep
    from agentundo.evidence.verify import AcrossFiles
    from agentundo.timeline.runs import Renderer, Timeline


@dataclass(frozen=True, slots=True)
class Streams:
    """Where a timeline goes: stdout as text and as bytes, stderr, and a console factory."""

    stdout: TextIO
    stdout_bytes: IO[bytes]
    stderr: TextIO
    console: Callable[[], Console]
    """Builds the rich console on stdout; called only when a table is drawn."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TimelineRequest:
    """What ``agentundo timeline`` was asked: the sources, the filters, the view."""

    paths: tuple[str, ...]
    query: Query = field(default_factory=Query)
    fmt: Format = Format.TABLE
    limit: int = 1000
    """Rows (mermaid: tasks) shown per run; 0 for all."""
    verify: bool = False
    require_key: bool = False
    """``--require-key``: verifying needs ``AGENTUNDO_EVIDENCE_KEY`` and every chain keyed
    throughout (``AGENTUNDO_REQUIRE_KEY`` in :attr:`environ` asks for it too)."""
    summary: bool = False
    """One row per run (the run history) instead of the timeline."""
    follow: bool = False
    timeout: float | None = None
    """With ``follow``: stop after this many seconds."""
    quiet: bool = False
    """No timeline: only warnings and verification."""
    environ: Mapping[str, str] = field(default_factory=dict)
    """Where the evidence key (``AGENTUNDO_EVIDENCE_KEY``) and ``AGENTUNDO_REQUIRE_KEY``
    are read when verifying."""
    catalog: str | None = None
    """For OTLP traces: the catalog their tool calls are mapped to topics with."""
    evidence_dir: str | None = None
    """For OTLP traces: where ``recover --trace`` wrote its evidence (what it undid)."""

    def check(self) -> None:
        """A UsageError for options that do not go together."""
        if self.require_key and not self.verify:
            raise UsageError("--require-key only applies with --verify")
        if self.timeout is not None and not self.follow:
            raise UsageError("--timeout only applies with --follow")
        if self.summary:
            if self.follow:
                raise UsageError("--summary and --follow do not go together")
            query = self.query
            if query.jobs or query.topics or query.events:
                raise UsageError(
                    "--job, --topic and --event filter records, not runs; not with --summary"
                )
            if any(b is not None and b.offset is not None for b in (query.since, query.until)):
                raise UsageError(
                    "--summary takes --since/--until as times, not offsets from a run's start"
                )
            return
        if self.follow and len(self.paths) != 1:
            raise UsageError(f"--follow takes exactly one file, not {len(self.paths)}")
        if self.follow and self.paths[0] == "-":
            raise UsageError(
                "--follow tails a file and cannot follow standard input; "
                "pipe into `agentundo timeline -` to read it whole"
            )

    def key(self) -> tuple[bytes | None, bool]:
        """The evidence key when verifying, and whether it is required (``--require-key``
        or ``AGENTUNDO_REQUIRE_KEY``). A UsageError when the key is set but unusable, or
        required and not set."""
        if not self.verify:
            return None, False
        from agentundo.evidence.keys import required_key

        return required_key(self.environ, option=self.require_key)


@dataclass(frozen=True, slots=True, kw_only=True)
class TimelineOutcome:
    """What a timeline read: sources verified, failed, unreadable; or a closed stdout."""

    checked: int = 0
    """Sources verified."""
    failed: int = 0
    """Sources verified with at least one problem."""
    unreadable: int = 0
    """Sources that could not be read as evidence (each reported when met)."""
    reports_verdict: bool = False
    """Whether :meth:`verdict_line` applies: the sources were verified one by one (with
    ``--summary`` each row says whether its run verified instead)."""
    broken_pipe: bool = False
    """Stdout was closed by its reader (``| head``): output stopped early, not an error."""

    def verdict_line(self) -> str:
        """The last line of ``--verify``: what was verified, never more than that."""
        checked, failed, unreadable = self.checked, self.failed, self.unreadable
        if not checked:
            return (
                f"nothing verified: {_files(unreadable)} could not be read as evidence (see above)"
            )
        verdict = f"{failed} of {checked} failed verification" if failed else "all verified"
        line = f"{_files(checked)} checked, {verdict}"
        if unreadable:
            line += (
                f"; {unreadable} more could not be read as evidence and "
                f"{'was' if unreadable == 1 else 'were'} not verified"
            )
        return line


def _files(count: int) -> str:
    return f"{count} file{'' if count == 1 else 's'}"


def run(request: TimelineRequest, streams: Streams) -> TimelineOutcome:
    """Read the request's sources and write their timeline, or their run history.

    OTLP JSON traces (recognised by content) are shown by :mod:`agentundo.trace.view`.
    """
    traces = _traces(request.paths)
    if traces:
        from agentundo.trace.view import show

        show(request, streams)
        return TimelineOutcome()
    if request.catalog is not None or request.evidence_dir is not None:
        raise UsageError("--catalog and --evidence apply to OTLP traces, not to evidence")
    request.check()
    if request.summary:
        from agentundo.timeline.summary import run_history

        key, required = request.key()
        return run_history(
            request.paths,
            request.query,
            request.fmt,
            streams,
            verify=request.verify,
            key=key,
            require_key=required,
        )
    return _timeline(request, streams)


def _traces(paths: tuple[str, ...]) -> list[str]:
    """The paths that hold OTLP traces; a UsageError when traces and evidence are mixed."""
    from agentundo.trace.otlp import looks_like_otlp

    traces = [p for p in paths if looks_like_otlp(p)]
    if traces and len(traces) != len(paths):
        other = next(p for p in paths if p not in traces)
        raise UsageError(
            f"{traces[0]} is an OTLP trace and {other} is not: show traces and evidence "
            "in separate calls"
        )
    return traces


def _renderer(request: TimelineRequest, streams: Streams) -> Renderer:
    if request.quiet:
        from agentundo.timeline.render_table import TableRenderer

        return TableRenderer(streams.console(), limit=request.limit, quiet=True)
    from agentundo.timeline.formats import renderer

    return renderer(
        request.fmt,
        text=streams.stdout,
        binary=streams.stdout_bytes,
        console=streams.console,
        limit=request.limit,
        follow=request.follow,
    )


@dataclass(slots=True)
class _Counts:
    checked: int = 0
    failed: int = 0
    unreadable: int = 0


def _timeline(request: TimelineRequest, streams: Streams) -> TimelineOutcome:
    from agentundo.evidence.reader import expand_paths
    from agentundo.evidence.verify import AcrossFiles
    from agentundo.timeline.runs import Timeline

    if request.follow:
        sources = [_followed(request.paths[0], request.timeout)]
    else:
        sources = expand_paths(request.paths)
    out = _renderer(request, streams)
    keep = request.query.prefilter() if request.fmt is Format.JSON and not request.verify else None
    key, required = request.key()
    check = _Check(key, required, AcrossFiles()) if request.verify else None
    view = Timeline(request.query, out)
    counts = _Counts()
    try:
        for path in sources:
            _source(path, request, streams, view, check=check, keep=keep, counts=counts)
        if check is not None:
            _late_problems(check.across, view, streams, counts)
        out.close()
    except BrokenPipeError:
        return TimelineOutcome(broken_pipe=True)
    return TimelineOutcome(
        checked=counts.checked,
        failed=counts.failed,
        unreadable=counts.unreadable,
        reports_verdict=request.verify,
    )


def _followed(path: str, timeout: float | None) -> str:
    """What ``--follow PATH`` tails: the file, or in a directory the newest run still being
    written (no ``run_summary`` yet), waiting for one to appear (up to ``timeout``)."""
    import time
    from pathlib import Path

    from agentundo.evidence.events import Event
    from agentundo.evidence.reader import last_record

    folder = Path(path)
    if not folder.is_dir():
        return path
    give_up = None if timeout is None else time.monotonic() + timeout
    while True:
        runs = sorted(folder.glob("*.jsonl"), key=lambda p: p.stat().st_mtime, reverse=True)
        for run_file in runs:
            last = last_record(str(run_file))
            if last is None or last.event != Event.RUN_SUMMARY:
                return str(run_file)
        if give_up is not None and time.monotonic() >= give_up:
            raise UsageError(
                f"--follow {path}: no run is being written there (every run in it has ended)"
            )
        time.sleep(0.1)


@dataclass(frozen=True, slots=True)
class _Check:
    """How to verify: the key, whether it is required, the checks across sources."""

    key: bytes | None
    require_key: bool
    across: AcrossFiles


def _source(
    path: str,
    request: TimelineRequest,
    streams: Streams,
    view: Timeline,
    *,
    check: _Check | None,
    keep: Keep | None,
    counts: _Counts,
) -> None:
    """Show one source; verify it when asked. An input error is reported and counted."""
    from agentundo.evidence.reader import display_path, follow_path, read_path
    from agentundo.evidence.verify import Verifier
    from agentundo.timeline.feed import feed, print_problems

    name = display_path(path)
    verifier = None
    if check is not None:
        check.across.begin_source()
        verifier = Verifier(name, key=check.key, require_key=check.require_key, across=check.across)
    view.begin_source(name)
    items = (
        follow_path(path, timeout=request.timeout, blanks=request.verify)
        if request.follow
        else read_path(path, keep=keep, blanks=request.verify)
    )
    try:
        feed(items, view, verifier, stderr=streams.stderr)
    except InputError as error:
        print(error.describe(), file=streams.stderr)
        counts.unreadable += 1
        view.end_run()
        if check is not None:
            check.across.end_source(passed=False)
        return
    view.end_run()
    if check is None or verifier is None:
        return
    counts.checked += 1
    problems = verifier.finish()
    counts.failed += bool(problems)
    check.across.end_source(passed=not problems)
    out = view.renderer
    if out.writes_data:
        print_problems(name, problems, verifier.chains, streams.stderr)
    out.problems(name, problems, verified=True, chains=verifier.chains)


def _late_problems(across: AcrossFiles, view: Timeline, streams: Streams, counts: _Counts) -> None:
    """The problems known only once every source was read (the first file of a run id
    that later files repeat), shown after the others; each such file counts as failed."""
    from agentundo.timeline.feed import print_problems

    late: dict[str, list[Problem]] = {}
    for problem, passed in across.finish():
        if problem.path not in late:
            counts.failed += passed
        late.setdefault(problem.path, []).append(problem)
    out = view.renderer
    for name, problems in late.items():
        if out.writes_data:
            print_problems(name, problems, (), streams.stderr)
        out.problems(name, problems, verified=True, across=True)
