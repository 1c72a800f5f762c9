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
  EV106 bad-start           the first record is not ``seq`` 0 chained to GENESIS
  EV107 mac-unchecked       the chain is keyed and its MACs could not be checked: no key
                            was given (``AGENTUNDO_EVIDENCE_KEY``), or the scheme is unknown
  EV108 not-keyed           a key was given but the chain is not keyed: anyone could have
                            resealed it, so it cannot be authenticated
  EV109 not-canonical       a line is not the compact JSON the writer writes: a key is
                            repeated (JSON readers disagree on which value counts, and
                            the hash covers only one of them) or the line was re-encoded
                            (a byte order mark or a carriage return included)
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

A chain starts at a ``run_started`` record with ``seq`` 0 chained to GENESIS, so the
concatenation of complete files (``cat *.jsonl | agentundo timeline --verify -``) verifies.
Its first record says whether it is keyed (``"mac": "hmac-sha256"``); a keyed chain's
``hash`` values are checked as MACs under the verifier's key, and after the first record
that fails, later failures of the same run are counted into one problem (a reseal
without the key makes every later record fail). Each run's chain head (the ``hash`` of its
highest ``seq``) is kept in :attr:`Verifier.chains`, for anchoring elsewhere.
The checks live beside this module: the rule table in :mod:`agentundo.evidence.problems`,
the chain checks in :mod:`agentundo.evidence.verify_chain`, the completeness checks in
:mod:`agentundo.evidence.verify_complete`; :class:`Verifier` runs them over one source.
Memory: the verifier holds the open dispatches and the applied, not yet compensated steps
of the current run, never the records themselves.
"""

from __future__ import annotations

from agentundo.evidence.events import COMMON_FIELDS
from agentundo.evidence.groups import starts_run
from agentundo.evidence.problems import Problem
from agentundo.evidence.reader import BadLine, Item, LineKind, Record
from agentundo.evidence.verify_chain import Chain, ChainChecker, ChainHead
from agentundo.evidence.verify_complete import (
    CompletenessChecker,
    RunState,
)

_COMMON = frozenset(COMMON_FIELDS)


class Verifier:
    """Feed every item of one source in order, then :meth:`finish`; read :attr:`problems`.

    ``key`` is the evidence key (``AGENTUNDO_EVIDENCE_KEY``): with it, keyed chains are
    authenticated and unkeyed ones are a problem (EV108); without it, keyed chains are
    checked for everything but their MACs and reported as unchecked (EV107).
    :attr:`chains` holds each run's :class:`ChainHead` once the run has ended.
    """

    def __init__(self, path: str, *, key: bytes | None = None) -> None:
        self.path = path
        self.problems: list[Problem] = []
        self.chains: list[ChainHead] = []
        self._run: RunState | None = None
        self._truncated_at = 0
        self._chain = ChainChecker(self._add, key=key)
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
        if self._run is not None and starts_run(data, self._run.chain.run_id):
            self._end_run()
        if self._run is None:
            self._run = RunState(Chain(str(data.get("run_id", ""))), first_line=record.line)
            self._chain.start(self._run.chain, record)
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
