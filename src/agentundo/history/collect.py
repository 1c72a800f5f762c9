"""Every run of every evidence file, read as a stream: one :class:`RunEntry` per run.

A run starts at a new file or at a ``run_started`` record with ``seq`` 0 and another
``run_id`` (:func:`~agentundo.evidence.groups.starts_run`), so a file holding several runs
(``cat *.jsonl > all.jsonl``) gives one entry per run. Memory: the current run's
counters, and per finished run a small entry (at most :data:`MAX_NOTES` follow-ups and
problems named, the rest counted); never a record.

With ``verify``, each file goes through the :class:`~agentundo.evidence.verify.Verifier`
(and the checks across files, :class:`~agentundo.evidence.verify.AcrossFiles`) as it is
read, and each problem is given to the run whose lines hold it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from agentundo.errors import InputError
from agentundo.evidence.events import GOOD_VERDICTS, Event, FollowUp
from agentundo.evidence.groups import starts_run
from agentundo.evidence.reader import BadLine, Record, display_path, expand_paths, read_path
from agentundo.evidence.tally import RunTally
from agentundo.timeline.times import parse_ts

if TYPE_CHECKING:
    from agentundo.evidence.problems import Problem
    from agentundo.evidence.verify import AcrossFiles, Verifier

MAX_NOTES = 20
"""Follow-ups and problems named per run; more are counted, not kept."""

PLANNED_FOLLOWUPS = frozenset(str(c) for c in (FollowUp.IRREVERSIBLE, FollowUp.NO_COMPENSATION))
"""Follow-up categories the catalog declares up front (an irreversible step, a topic with
no compensation): a human was always going to act. Every other category means something
went wrong during the rollback (denied, failed, timed out, fenced, the lock held, ...),
unless a fault the drill injected caused it (``injected: true``): that was rehearsed."""

GOOD = frozenset(str(v) for v in GOOD_VERDICTS)


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    import json

    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class FollowUpNote:
    """One ``manual_followup`` of a run: the step, why, and whether it was planned."""

    step: str
    category: str
    reason: str
    injected: bool = False

    @property
    def planned(self) -> bool:
        return self.injected or self.category in PLANNED_FOLLOWUPS

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "category": self.category,
            "reason": self.reason,
            "planned": self.planned,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class RunEntry:
    """One run of the history: what its records say, and whether they verified."""

    path: str
    line: int
    """The line of the run's first record."""
    started: str
    workflow: str
    run_id: str
    env: str
    status: str
    verdict: str
    complete: bool
    """It has a ``run_summary``."""
    rollback: bool
    rollback_s: float | None
    """From ``rollback_triggered`` to ``rollback_finished`` (None: no rollback, or it did
    not finish)."""
    skipped: int | str
    manual_followups: int | str
    followups: tuple[FollowUpNote, ...] = ()
    followup_count: int = 0
    unplanned_count: int = 0
    verified: bool | None = None
    """None: not verified."""
    problems: tuple[Problem, ...] = ()
    problem_count: int = 0

    @property
    def moment(self) -> datetime | None:
        return parse_ts(self.started)

    @property
    def passed(self) -> bool:
        """A good verdict (completed, recovered) in evidence that did not fail verification."""
        return self.verdict in GOOD and self.verified is not False

    @property
    def has_problems(self) -> bool:
        return (
            self.verdict not in GOOD
            or self.skipped not in (0, "0")
            or self.manual_followups not in (0, "0")
            or self.verified is False
        )

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "path": self.path,
            "line": self.line,
            "started": self.started,
            "workflow": self.workflow,
            "run_id": self.run_id,
            "env": self.env,
            "status": self.status,
            "verdict": self.verdict,
            "passed": self.passed,
            "rollback": self.rollback,
            "rollback_s": self.rollback_s,
            "compensations_skipped": self.skipped,
            "manual_followups": self.manual_followups,
            "unplanned_followups": self.unplanned_count,
            "followups": [note.as_dict() for note in self.followups],
        }
        if self.verified is not None:
            data["verified"] = self.verified
            data["problems"] = [
                {"line": p.line, "code": p.code, "name": p.name, "message": p.message}
                for p in self.problems
            ]
            data["problem_count"] = self.problem_count
        return data


class _RunReader:
    """One run as its records stream past: the tally, the rollback's times, the follow-ups."""

    def __init__(self, path: str, line: int) -> None:
        self.path = path
        self.line = line
        self.tally = RunTally()
        self.triggered_at: datetime | None = None
        self.finished_at: datetime | None = None
        self.notes: list[FollowUpNote] = []
        self.unplanned = 0

    def feed(self, record: Record) -> None:
        self.tally.feed(record)
        event = record.event
        if event == Event.ROLLBACK_TRIGGERED and self.triggered_at is None:
            self.triggered_at = parse_ts(record.get("ts"))
        elif event == Event.ROLLBACK_FINISHED and self.finished_at is None:
            self.finished_at = parse_ts(record.get("ts"))
        elif event == Event.MANUAL_FOLLOWUP:
            note = FollowUpNote(
                step=_text(record.get("step_id", "?")),
                category=_text(record.get("category", "?")),
                reason=_text(record.get("reason", "")),
                injected=record.get("injected") is True,
            )
            self.unplanned += not note.planned
            if len(self.notes) < MAX_NOTES:
                self.notes.append(note)

    def _rollback_s(self, summary: dict[str, Any]) -> float | None:
        finished = self.finished_at or parse_ts(summary.get("rollback_finished_at"))
        if self.triggered_at is None or finished is None:
            return None
        seconds = (finished - self.triggered_at).total_seconds()
        return seconds if seconds >= 0 else None

    def entry(self) -> RunEntry:
        tally = self.tally
        summary = tally.summary or {}
        counted = tally.counts()
        rollback = summary.get("rollback_triggered", tally.rollback_triggered)
        return RunEntry(
            path=self.path,
            line=self.line,
            started=_text(summary.get("started_at") or tally.first_ts or "?"),
            workflow=tally.workflow_id or "?",
            run_id=tally.run_id or "?",
            env=_text(summary.get("env") or tally.env or "?"),
            status=_text(summary.get("status", "incomplete")),
            verdict=_text(summary.get("verdict", "?")),
            complete=tally.summary is not None,
            rollback=rollback is True,
            rollback_s=self._rollback_s(summary),
            skipped=summary.get("compensation_jobs_skipped", counted["compensation_jobs_skipped"]),
            manual_followups=summary.get("manual_followups", counted["manual_followups"]),
            followups=tuple(self.notes),
            followup_count=tally.manual_followups,
            unplanned_count=self.unplanned,
        )


def _with_problems(entries: list[RunEntry], problems: Sequence[Problem]) -> list[RunEntry]:
    """Each entry with the problems of its lines (one before the first run: the first)."""
    from bisect import bisect_right

    if not entries:
        return entries
    firsts = [entry.line for entry in entries]
    found: list[list[Problem]] = [[] for _ in entries]
    for problem in problems:
        found[max(bisect_right(firsts, problem.line) - 1, 0)].append(problem)
    return [
        replace(
            entry,
            verified=not mine,
            problems=tuple(mine[:MAX_NOTES]),
            problem_count=len(mine),
        )
        for entry, mine in zip(entries, found, strict=True)
    ]


@dataclass(frozen=True, slots=True, kw_only=True)
class Verification:
    """How to verify: the key (``AGENTUNDO_EVIDENCE_KEY``) and whether it is required."""

    key: bytes | None = None
    require_key: bool = False


@dataclass(slots=True)
class History:
    """Every run read, and what happened to the sources."""

    runs: list[RunEntry] = field(default_factory=list)
    checked: int = 0
    """Sources verified."""
    failed: int = 0
    """Sources verified with at least one problem."""
    unreadable: list[str] = field(default_factory=list)
    """Each source that could not be read as evidence, as its error message."""
    warnings: int = 0
    """Bad lines met without verification (each printed as a warning)."""


def _read_source(
    path: str,
    *,
    verifier: Verifier | None,
    stderr: TextIO,
    history: History,
) -> list[RunEntry]:
    """The runs of one source; bad lines go to the verifier, or are warnings."""
    name = display_path(path)
    entries: list[RunEntry] = []
    current: _RunReader | None = None
    for item in read_path(path, blanks=verifier is not None):
        if verifier is not None:
            verifier.feed(item)
        if isinstance(item, BadLine):
            if verifier is None:
                history.warnings += 1
                print(
                    f"{item.path}:{item.line}:{item.column}: warning: {item.message}", file=stderr
                )
            continue
        if current is not None and starts_run(item.data, current.tally.run_id, chained=False):
            entries.append(current.entry())
            current = None
        if current is None:
            current = _RunReader(name, item.line)
        current.feed(item)
    if current is not None:
        entries.append(current.entry())
    return entries


def collect(
    paths: Iterable[str],
    *,
    verification: Verification | None,
    stderr: TextIO,
    chains: bool = True,
) -> History:
    """Read every run of every file (directories searched for evidence files).

    An input error for a path given (missing, not a directory of evidence) is raised;
    a file that cannot be read as evidence is printed to ``stderr`` and listed in
    :attr:`History.unreadable`, and the others are read. With ``verification``, each
    file's problems and chain heads are printed to ``stderr`` too, and each entry says
    whether its run verified (``chains``: print each run's chain head too).
    """
    from agentundo.timeline.feed import print_problems

    history = History()
    across = None
    if verification is not None:
        from agentundo.evidence.verify import AcrossFiles

        across = AcrossFiles()
    for path in expand_paths(paths):
        verifier = _verifier(path, verification, across)
        try:
            entries = _read_source(path, verifier=verifier, stderr=stderr, history=history)
        except InputError as error:
            print(error.describe(), file=stderr)
            history.unreadable.append(error.describe())
            if across is not None:
                across.end_source(passed=False)
            continue
        if verifier is not None and across is not None:
            problems = verifier.finish()
            history.checked += 1
            history.failed += bool(problems)
            across.end_source(passed=not problems)
            heads = verifier.chains if chains else ()
            print_problems(display_path(path), problems, heads, stderr)
            entries = _with_problems(entries, problems)
        history.runs.extend(entries)
    if across is not None:
        _late_problems(across, history, stderr)
    history.runs.sort(key=lambda r: (r.started, r.path, r.line))
    return history


def _verifier(
    path: str, verification: Verification | None, across: AcrossFiles | None
) -> Verifier | None:
    if verification is None or across is None:
        return None
    from agentundo.evidence.verify import Verifier

    across.begin_source()
    return Verifier(
        display_path(path),
        key=verification.key,
        require_key=verification.require_key,
        across=across,
    )


def _late_problems(across: AcrossFiles, history: History, stderr: TextIO) -> None:
    """Problems known once every file was read (EV302 for the first file of a repeated
    run id): printed, counted, and given to the runs they are about."""
    from agentundo.timeline.feed import print_problems

    late: dict[str, list[Problem]] = {}
    for problem, passed in across.finish():
        if problem.path not in late:
            history.failed += passed
        late.setdefault(problem.path, []).append(problem)
    for path, problems in late.items():
        print_problems(path, problems, (), stderr)
        mine = [r for r in history.runs if r.path == path]
        others = [r for r in history.runs if r.path != path]
        merged = _with_more_problems(mine, problems)
        history.runs = others + merged


def _with_more_problems(entries: list[RunEntry], problems: Sequence[Problem]) -> list[RunEntry]:
    """Entries of one file with late problems added to those they had."""
    if not entries:
        return entries
    added = _with_problems(entries, problems)
    return [
        replace(
            new,
            verified=bool(old.verified) and not new.problem_count,
            problems=(*old.problems, *new.problems)[:MAX_NOTES],
            problem_count=old.problem_count + new.problem_count,
        )
        for old, new in zip(entries, added, strict=True)
    ]
