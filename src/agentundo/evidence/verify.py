"""Verify evidence: is the record whole, untouched and complete?

Every rule has a code that keeps its meaning forever, a name and a one-line summary in
:data:`RULES`; a :class:`Problem` names the rule, the file and the line. Rules:

Lines
  EV001 malformed-line      a line is not a JSON object with an ``event`` (a blank line,
                            which the writer never writes, included)
  EV002 truncated-line      the last line was cut off mid-write (the run was killed)
  EV003 missing-field       a record lacks a common field (seq, ts, event, run_id, ...)
Hash chain (see :mod:`agentundo.evidence.chain`)
  EV101 hash-mismatch       a record's content does not match its ``hash``: it was edited
  EV102 chain-broken        ``prev_hash`` does not match the previous record's ``hash``:
                            that record was edited and resealed, or this one was inserted
  EV103 record-missing      ``seq`` skips: records were deleted
  EV104 out-of-order        a record comes after one with a higher ``seq``: lines reordered
  EV105 duplicate-seq       a ``seq`` appears twice: a line was inserted or repeated
  EV106 bad-start           the first record is not ``seq`` 0: the chain's head was deleted
  EV107 mac-unchecked       the chain is keyed and its MACs could not be checked: no key
                            was given (``AGENTUNDO_EVIDENCE_KEY``), or the scheme is unknown
  EV108 not-keyed           a key was given but the chain is not keyed: anyone could have
                            resealed it, so it cannot be authenticated
  EV109 not-canonical       a line is not the compact JSON the writer writes: a key is
                            repeated (JSON readers disagree on which value counts, and
                            the hash covers only one of them) or the line was re-encoded
                            (a byte order mark or a carriage return included)
  EV110 key-required        ``--require-key`` (or ``AGENTUNDO_REQUIRE_KEY``): the chain is
                            not keyed, or a record of a keyed chain is sealed with plain
                            SHA-256 (keyed only in part: resealed without the key)
  EV111 wrong-genesis       ``seq`` 0 does not chain to its run's genesis
                            (:func:`~agentundo.evidence.chain.genesis` of its ``run_id`` and
                            ``ts``): spliced from another run, or its run_id or ts changed;
                            or a keyed chain starts from the legacy GENESIS, which only
                            unkeyed chains (written before run-specific geneses) may
Completeness
  EV201 no-outcome          a dispatched job (by ``job_id``; retries share it) has no
                            outcome: step_succeeded, step_failed_fatal, a compensation's
                            succeeded/timed_out/rejected, a manual_followup or
                            run_interrupted naming the job
  EV202 not-compensated     after ``rollback_triggered``, fewer steps are settled (by a
                            compensation outcome, a skip or a manual follow-up) than the
                            ``pending`` entries it announced; without ``pending``, an
                            applied step is not settled
  EV203 decision-without-rule  a ``policy_decision`` does not name its rule (``rule_id``, or
                            ``rule_id: null`` with ``default: true``)
  EV204 summary-mismatch    ``run_summary`` disagrees with the events: its counts,
                            ``rollback_triggered``, ``status``, ``verdict``, ``manual``
                            or ``compensated`` (see :mod:`agentundo.evidence.verify_complete`)
  EV205 no-summary          the run has no ``run_summary``, or records follow it
  EV206 mixed-runs          a record's ``run_id`` differs from its run's
Across files (:class:`AcrossFiles`, when given)
  EV301 name-mismatch       a file named ``run_*.jsonl`` (or ``run_*.jsonl.gz``) holds a run
                            whose ``run_id`` is not its name without ``.jsonl`` (a copy or a
                            rename of another run's file); files named otherwise, and
                            standard input, are not judged
  EV302 duplicate-run       one ``run_id`` in more than one file (or twice in one): each
                            later file names where it was first seen, and that first file
                            gets one more problem at the end naming the others

A chain starts at a ``run_started`` record with ``seq`` 0 chained to its run's genesis (or
the legacy GENESIS), so the concatenation of complete files
(``cat *.jsonl | agentundo timeline --verify -``) verifies.
Its first record says whether it is keyed (``"mac": "hmac-sha256"``); a keyed chain's
``hash`` values are checked as MACs under the verifier's key, and after the first record
that fails, later failures of the same run are counted into one problem (a reseal
without the key makes every later record fail). Each run's chain head (the ``hash`` of its
highest ``seq``) is kept in :attr:`Verifier.chains`, for anchoring elsewhere.
The checks live beside this module: the rule table in :mod:`agentundo.evidence.problems`,
the chain checks in :mod:`agentundo.evidence.verify_chain`, the completeness checks in
:mod:`agentundo.evidence.verify_complete`; :class:`Verifier` runs them over one source.
Memory: the verifier holds the open dispatches and the applied, not yet compensated steps
of the current run, never the records themselves; :class:`AcrossFiles` holds one entry per
distinct run id (where it was first seen, and the first few files that repeat it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from agentundo.evidence.chain import starts_chain
from agentundo.evidence.events import COMMON_FIELDS
from agentundo.evidence.groups import starts_run
from agentundo.evidence.problems import LISTED, Problem, Report, plural
from agentundo.evidence.reader import BadLine, Item, LineKind, Record
from agentundo.evidence.verify_chain import Chain, ChainChecker, ChainHead
from agentundo.evidence.verify_complete import (
    CompletenessChecker,
    RunState,
)

_COMMON = frozenset(COMMON_FIELDS)
RUN_FILE_PREFIX = "run_"
RUN_FILE_SUFFIX = ".jsonl"
COMPRESSED_RUN_FILE_SUFFIX = ".jsonl.gz"


def named_run(path: str) -> str | None:
    """The run id a file's name promises: ``run_9c2a41f0`` for ``…/run_9c2a41f0.jsonl``
    (the drill names each file ``<run_id>.jsonl``, a sweep ``<run_id>.jsonl.gz``), or
    None for a file named otherwise."""
    name = os.path.basename(path)
    if not name.startswith(RUN_FILE_PREFIX):
        return None
    for suffix in (RUN_FILE_SUFFIX, COMPRESSED_RUN_FILE_SUFFIX):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return None


@dataclass(slots=True)
class _Seen:
    """Where a run id was first seen, and the other files that hold it too."""

    path: str
    source: int
    line: int
    others: int = 0
    listed: list[str] = field(default_factory=list)
    """The first few other files, for the first file's problem; the rest are counted."""
    passed: bool = False
    """The first file verified without a problem (a late problem fails it)."""


class AcrossFiles:
    """The checks that look past one source, for one ``--verify`` over many.

    A file's name against the runs it holds (EV301), and one run id in more than one
    file (EV302). Each source is begun (:meth:`begin_source`) and ended
    (:meth:`end_source`, with whether it passed); the same path given twice is one file,
    not a copy. Memory: one small entry per distinct run id (its first file, line, how
    many files repeat it and the first few of their names), never a record.
    :meth:`finish` gives the problems only known at the end: one for the first file of
    each repeated run id, naming the files that repeat it.
    """

    def __init__(self) -> None:
        self._seen: dict[str, _Seen] = {}
        self._source = 0
        self._new: list[_Seen] = []

    def begin_source(self) -> None:
        self._source += 1
        self._new = []

    def end_source(self, *, passed: bool) -> None:
        """The source begun last has been verified: ``passed`` without a problem (False
        also for a source that could not be read: it is not counted either way)."""
        for seen in self._new:
            seen.passed = passed
        self._new = []

    def run(self, path: str, run_id: str, line: int, report: Report) -> None:
        """A run of ``path`` (the source begun last) starts at ``line``."""
        expected = named_run(path)
        if expected is not None and run_id != expected:
            report(
                line,
                "EV301",
                f"the file is named for run {expected!r} but holds run {run_id!r}: a copy or "
                "a rename of another run's evidence",
            )
        if not run_id:
            return  # a record without run_id: EV003 already
        seen = self._seen.get(run_id)
        if seen is None:
            seen = self._seen[run_id] = _Seen(path, self._source, line)
            self._new.append(seen)
            return
        if seen.source == self._source:
            report(
                line,
                "EV302",
                f"run {run_id!r} appears again in this file (first at line {seen.line}): "
                "one run id for two runs",
            )
            return
        if seen.path == path:
            return  # the same file given twice
        seen.others += 1
        if len(seen.listed) < LISTED:
            seen.listed.append(path)
        report(
            line,
            "EV302",
            f"run {run_id!r} is also in {seen.path} (line {seen.line}): a copy of its "
            "evidence, or two runs with one id",
        )

    def finish(self) -> list[tuple[Problem, bool]]:
        """A problem for the first file of each run id that other files repeat, and
        whether that file had passed (so that it now counts as failed)."""
        found = []
        for run_id, seen in self._seen.items():
            if not seen.others:
                continue
            named = ", ".join(seen.listed)
            if seen.others > len(seen.listed):
                named += f", ... ({seen.others} in all)"
            message = f"run {run_id!r} is also in {plural(seen.others, 'more file')}: {named}"
            found.append((Problem(seen.path, seen.line, "EV302", message), seen.passed))
        return found


class Verifier:
    """Feed every item of one source in order, then :meth:`finish`; read :attr:`problems`.

    ``key`` is the evidence key (``AGENTUNDO_EVIDENCE_KEY``): with it, keyed chains are
    authenticated and unkeyed ones are a problem (EV108); without it, keyed chains are
    checked for everything but their MACs and reported as unchecked (EV107).
    ``require_key`` (``--require-key``; needs ``key``): chains not keyed throughout are
    EV110. ``across`` checks the source's name and run ids against the other sources
    (EV301, EV302); the caller begins the source there first.
    :attr:`chains` holds each run's :class:`ChainHead` once the run has ended.
    """

    def __init__(
        self,
        path: str,
        *,
        key: bytes | None = None,
        require_key: bool = False,
        across: AcrossFiles | None = None,
    ) -> None:
        if require_key and key is None:
            raise ValueError("require_key needs the key")
        self.path = path
        self.problems: list[Problem] = []
        self.chains: list[ChainHead] = []
        self._run: RunState | None = None
        self._truncated_at = 0
        self._across = across
        self._chain = ChainChecker(self._add, key=key, require_key=require_key)
        self._completeness = CompletenessChecker(self._add)

    def _add(self, line: int, code: str, message: str) -> None:
        self.problems.append(Problem(self.path, line, code, message))
        if self._run is not None:
            self._run.tally.problems += 1

    def feed(self, item: Item) -> None:
        if isinstance(item, BadLine):
            if item.kind is LineKind.TRUNCATED:
                self._truncated_at = item.line
                self._add(item.line, "EV002", item.message)
            else:
                self._add(item.line, "EV001", item.message)
            return
        self._feed_record(item)

    def _feed_record(self, record: Record) -> None:
        data = record.data
        if not data.keys() >= _COMMON:
            missing = [f for f in COMMON_FIELDS if f not in data]
            self._add(record.line, "EV003", f"record lacks {', '.join(missing)}")
        if (
            self._run is not None
            and starts_run(data, self._run.chain.run_id, chained=False)
            and starts_chain(data)
        ):
            self._end_run()
        if self._run is None:
            self._run = RunState(Chain(str(data.get("run_id", ""))), first_line=record.line)
            self._chain.start(self._run.chain, record)
            if self._across is not None:
                self._across.run(self.path, self._run.chain.run_id, record.line, self._add)
        run = self._run
        run.last_line = record.line
        if data.get("run_id") != run.chain.run_id:
            self._add(
                record.line,
                "EV206",
                f"run_id {data.get('run_id')!r} in the evidence of run {run.chain.run_id!r}",
            )
        self._chain.check(run.chain, record)
        self._completeness.check(run, record)
        run.tally.feed(record)

    def _end_run(self) -> None:
        run = self._run
        if run is None:
            return
        self._run = None
        head = self._chain.end_run(
            run.chain, path=self.path, first_line=run.first_line, events=run.tally.events
        )
        if head is not None:
            self.chains.append(head)
        self._completeness.end_run(run, truncated_at=self._truncated_at)

    def finish(self) -> list[Problem]:
        """End the source: run the end-of-run checks; the problems, sorted by line."""
        self._end_run()
        self._chain.finish()
        self.problems.sort(key=lambda p: (p.line, p.code))
        return self.problems


def verify_items(path: str, items: list[Item], *, key: bytes | None = None) -> list[Problem]:
    """Verify a source given as a list (tests and small inputs)."""
    verifier = Verifier(path, key=key)
    for item in items:
        verifier.feed(item)
    return verifier.finish()
