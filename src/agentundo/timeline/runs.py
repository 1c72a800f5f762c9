"""Runs as they stream past, and the :class:`Timeline` that groups records into them.

Records stream through :class:`Timeline`, which groups them into runs (a run starts at a
``run_started`` record with ``seq`` 0, or at a new file; see
:func:`~agentundo.evidence.groups.starts_run`), counts every record into the run's
:class:`~agentundo.evidence.tally.RunTally` for the header, and hands the records that
pass the :class:`~agentundo.timeline.query.Query` to a :class:`Renderer`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from agentundo.evidence.events import Event
from agentundo.evidence.groups import starts_run
from agentundo.evidence.reader import Record
from agentundo.evidence.tally import RunTally
from agentundo.timeline.entries import value_text
from agentundo.timeline.query import Query
from agentundo.timeline.times import format_duration, parse_ts

if TYPE_CHECKING:
    from agentundo.evidence.problems import Problem
    from agentundo.evidence.verify_chain import ChainHead


@dataclass(slots=True)
class Run:
    """A run as it streams past: its tally (every record), and what the renderer kept."""

    path: str
    tally: RunTally = field(default_factory=RunTally)
    start: datetime | None = None
    matched: int = 0

    def header(self) -> list[tuple[str, str]]:
        """(label, value) pairs of the header: from run_summary, or counted when it is missing."""
        tally = self.tally
        summary = tally.summary or {}
        counted = tally.counts()

        def count(name: str) -> str:
            value = summary.get(name, counted[name])
            return value_text(value)

        started = summary.get("started_at") or tally.first_ts or ""
        finished = summary.get("finished_at") or tally.last_ts
        start_at = parse_ts(started)
        finish_at = parse_ts(finished)
        duration = (
            format_duration((finish_at - start_at).total_seconds())
            if start_at is not None and finish_at is not None
            else "?"
        )
        rollback = summary.get("rollback_triggered", tally.rollback_triggered)
        status = (
            value_text(summary["status"]) if "status" in summary else "incomplete (no run_summary)"
        )
        env = summary.get("env") or tally.env or "?"
        return [
            ("workflow", tally.workflow_id or "?"),
            ("run", tally.run_id or "?"),
            ("env", value_text(env)),
            ("actor", tally.actor or "?"),
            ("status", status),
            ("verdict", value_text(summary.get("verdict", "?"))),
            ("rollback", "yes" if rollback is True else "no"),
            (
                "compensations",
                f"{count('compensation_jobs_dispatched')} dispatched, "
                f"{count('compensation_jobs_skipped')} skipped, "
                f"{count('compensation_jobs_failed')} failed",
            ),
            ("manual follow-ups", count("manual_followups")),
            ("started", value_text(started)),
            ("duration", duration),
            ("evidence", f"{self.path} ({tally.events} records)"),
        ]


class Renderer(Protocol):
    """Receives the matching records of each run, then the run's end, then the problems.

    ``problems(..., across=True)`` comes after every source: problems of a source found
    only by comparing it with the sources read after it (EV302, for the first file of a run
    id that later files repeat).

    ``writes_data``: what it writes to stdout is data for another program (JSON lines, a
    mermaid chart), so verification problems and chain heads must go to stderr instead;
    a renderer for people (table, markdown) shows them itself.
    """

    writes_data: bool

    def record(self, run: Run, record: Record) -> None: ...

    def end_run(self, run: Run) -> None: ...

    def problems(
        self,
        path: str,
        problems: list[Problem],
        *,
        verified: bool,
        chains: Sequence[ChainHead] = (),
        across: bool = False,
    ) -> None: ...

    def close(self) -> None: ...


class ShowsNoProblems:
    """For a renderer that shows no verification problems: its stdout is data for another
    program (the CLI writes the problems to stderr) or it shows nothing at all."""

    def problems(
        self,
        path: str,
        problems: list[Problem],
        *,
        verified: bool,
        chains: Sequence[ChainHead] = (),
        across: bool = False,
    ) -> None:
        del path, problems, verified, chains, across


class Timeline:
    """Group records into runs, tally them, pass the matching ones to ``renderer``."""

    def __init__(self, query: Query, renderer: Renderer) -> None:
        self.query = query
        self.renderer = renderer
        self._run: Run | None = None
        self.runs = 0

    def begin_source(self, path: str) -> None:
        self.end_run()
        self._path = path

    def feed(self, record: Record) -> None:
        data = record.data
        run = self._run
        if run is not None and starts_run(data, run.tally.run_id, chained=False):
            self.end_run()
            run = None
        if run is None:
            run = self._run = Run(record.path)
            run.start = parse_ts(data.get("ts"))
        if record.event == Event.RUN_STARTED and run.tally.events == 0:
            run.start = parse_ts(data.get("ts")) or run.start
        run.tally.feed(record)
        if self.query.matches(data, run.start):
            run.matched += 1
            self.renderer.record(run, record)

    def end_run(self) -> None:
        run = self._run
        if run is None:
            return
        self._run = None
        if self.query.wants_run(run.tally.run_id):
            self.runs += 1
            self.renderer.end_run(run)
