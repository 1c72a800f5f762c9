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
                            or ``compensated`` (see :meth:`Verifier._check_outcome`)
  EV205 no-summary          the run has no ``run_summary``, or records follow it
  EV206 mixed-runs          a record's ``run_id`` differs from its run's

A chain starts at a ``run_started`` record with ``seq`` 0 chained to GENESIS, so the
concatenation of complete files (``cat *.jsonl | agentundo timeline --verify -``) verifies.
Its first record says whether it is keyed (``"mac": "hmac-sha256"``); a keyed chain's
``hash`` values are checked as MACs under the verifier's key, and after the first record
that fails, later failures of the same run are counted into one problem (a reseal
without the key makes every later record fail). Each run's chain head (the ``hash`` of its
highest ``seq``) is kept in :attr:`Verifier.chains`, for anchoring elsewhere.
Memory: the verifier holds the open dispatches and the applied, not yet compensated steps
of the current run, never the records themselves.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from agentundo.evidence.chain import (
    GENESIS,
    HMAC_SHA256,
    MAC_FIELD,
    UNKEYED,
    hash_body,
    mac_of,
    record_hash,
    record_mac,
)
from agentundo.evidence.events import COMMON_FIELDS, SUMMARY_FIELDS, Event
from agentundo.evidence.keys import ENV_VAR
from agentundo.evidence.reader import BadLine, Item, LineKind, Record

_HASH_FIELD = len(',"hash":""')
"""What ``"hash": ...`` adds to a record's compact JSON besides the hash itself."""


@dataclass(frozen=True, slots=True)
class Rule:
    code: str
    name: str
    summary: str


RULES: dict[str, Rule] = {
    rule.code: rule
    for rule in (
        Rule("EV001", "malformed-line", "A line is not a JSON object with an event."),
        Rule("EV002", "truncated-line", "The last line was cut off mid-write."),
        Rule("EV003", "missing-field", "A record lacks a common field."),
        Rule("EV101", "hash-mismatch", "A record's content does not match its hash (edited)."),
        Rule("EV102", "chain-broken", "prev_hash does not match the previous record's hash."),
        Rule("EV103", "record-missing", "seq skips: records were deleted."),
        Rule("EV104", "out-of-order", "A record comes after one with a higher seq."),
        Rule("EV105", "duplicate-seq", "A seq appears twice: a line was inserted or repeated."),
        Rule("EV106", "bad-start", "The first record is not seq 0 chained to GENESIS."),
        Rule("EV107", "mac-unchecked", "The chain is keyed and its MACs could not be checked."),
        Rule("EV108", "not-keyed", "A key was given but the chain is not keyed."),
        Rule("EV109", "not-canonical", "A line repeats a key or is not the writer's JSON."),
        Rule("EV201", "no-outcome", "A dispatched job has no outcome."),
        Rule(
            "EV202", "not-compensated", "An applied step has no compensation outcome or follow-up."
        ),
        Rule("EV203", "decision-without-rule", "A policy decision does not name its rule."),
        Rule("EV204", "summary-mismatch", "run_summary disagrees with the events."),
        Rule("EV205", "no-summary", "The run has no run_summary, or records follow it."),
        Rule("EV206", "mixed-runs", "A record's run_id differs from its run's."),
    )
}


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """One verification failure, complete when created; sorts by position."""

    path: str
    line: int
    code: str
    message: str

    @property
    def name(self) -> str:
        return RULES[self.code].name

    def describe(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.code} {self.message} [{self.name}]"


_COMPENSATION_OUTCOMES = frozenset(
    {
        Event.COMPENSATION_SUCCEEDED,
        Event.COMPENSATION_FAILED,
        Event.COMPENSATION_TIMED_OUT,
        Event.COMPENSATION_REJECTED,
    }
)
_ENDS_BEFORE_DISPATCH = frozenset(
    {str(Event.COMPENSATION_TIMED_OUT), str(Event.COMPENSATION_REJECTED)}
)
_COMPENSATION_SUCCEEDED = str(Event.COMPENSATION_SUCCEEDED)
_JOB_ENDS = frozenset(
    {
        str(Event.STEP_SUCCEEDED),
        str(Event.STEP_FAILED_FATAL),
        str(Event.COMPENSATION_SUCCEEDED),
        str(Event.COMPENSATION_TIMED_OUT),
        str(Event.COMPENSATION_REJECTED),
        str(Event.MANUAL_FOLLOWUP),
        str(Event.RUN_INTERRUPTED),
    }
)
"""Outcomes of a job (by ``job_id``): step_failed and compensation_failed are attempts."""
_STEP_SETTLING = frozenset(
    {
        str(Event.COMPENSATION_SUCCEEDED),
        str(Event.COMPENSATION_TIMED_OUT),
        str(Event.COMPENSATION_REJECTED),
        str(Event.COMPENSATION_SKIPPED),
        str(Event.MANUAL_FOLLOWUP),
    }
)
"""What settles a step once a rollback runs: a compensation outcome or a follow-up."""

_COMMON = frozenset(COMMON_FIELDS)
_STEP_FAILED_FATAL = str(Event.STEP_FAILED_FATAL)
_STEP_DENIED = str(Event.STEP_DENIED)
_RUN_INTERRUPTED = str(Event.RUN_INTERRUPTED)
_STATUS_FAILED_FATAL = "FAILED_FATAL"
_STATUS_DENIED = "DENIED"
_STATUS_SUCCEEDED = "SUCCEEDED"
_STATUS_INTERRUPTED = "interrupted"
STATUSES = (_STATUS_SUCCEEDED, _STATUS_FAILED_FATAL, _STATUS_DENIED, _STATUS_INTERRUPTED)
"""The engine's ``RunStatus`` values (:mod:`agentundo.saga.engine`, not imported here)."""
VERDICTS = ("completed", "recovered", "failed", "interrupted")
"""The engine's ``Verdict`` values. A status or verdict outside these (any case) is not
judged: it was not written by the engine, and the events cannot say what it means."""
_LISTED = 5
_DISPATCHES = frozenset({str(Event.STEP_DISPATCHED), str(Event.COMPENSATION_DISPATCHED)})
_RUN_STARTED = str(Event.RUN_STARTED)
_RUN_SUMMARY = str(Event.RUN_SUMMARY)
_ROLLBACK_TRIGGERED = str(Event.ROLLBACK_TRIGGERED)
_COMPENSATION_DISPATCHED = str(Event.COMPENSATION_DISPATCHED)
_COMPENSATION_SKIPPED = str(Event.COMPENSATION_SKIPPED)
_MANUAL_FOLLOWUP = str(Event.MANUAL_FOLLOWUP)
_TALLIED = frozenset(
    {
        _RUN_STARTED,
        _RUN_SUMMARY,
        _ROLLBACK_TRIGGERED,
        _COMPENSATION_DISPATCHED,
        _COMPENSATION_SKIPPED,
        _MANUAL_FOLLOWUP,
        *(str(e) for e in _COMPENSATION_OUTCOMES),
    }
)


def names_its_rule(record: dict[str, Any]) -> bool:
    """A decision names its rule: a non-empty ``rule_id``, or null with ``default: true``."""
    if "rule_id" not in record:
        return False
    rule = record["rule_id"]
    if rule is None:
        return record.get("default") is True
    return isinstance(rule, str) and bool(rule)


def _job(data: dict[str, Any]) -> str:
    """The job a record is about: its ``job_id`` (retries share it), else its step."""
    return str(data.get("job_id") or data.get("step_id") or "")


def _job_key(record: Record) -> tuple[str, str]:
    return (str(record.get("job_id", "")), str(record.get("step_id", "")))


@dataclass(slots=True)
class RunTally:
    """What a run's events say, counted as they stream past (the summary's counterpart)."""

    run_id: str = ""
    workflow_id: str = ""
    actor: str = ""
    env: str | None = None
    first_ts: str | None = None
    last_ts: str | None = None
    started: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    events: int = 0
    rollback_triggered: bool = False
    compensations_dispatched: int = 0
    compensations_succeeded: int = 0
    ended_undispatched: int = 0
    open_compensations: set[str] = field(default_factory=set)
    """Compensation jobs dispatched and not yet ended: a handful, whatever the run's size."""
    skipped: int = 0
    manual_followups: int = 0
    problems: int = 0

    def feed(self, record: Record) -> None:
        data = record.data
        event = record.event
        self.events += 1
        ts = data.get("ts")
        if isinstance(ts, str):
            if self.first_ts is None:
                self.first_ts = ts
            self.last_ts = ts
        if not self.run_id:
            self.run_id = str(data.get("run_id", ""))
            self.workflow_id = str(data.get("workflow_id", ""))
            self.actor = str(data.get("actor", ""))
        if event not in _TALLIED:
            return
        if event == _RUN_STARTED:
            self.started = data
            env = data.get("env")
            self.env = str(env) if env is not None else self.env
        elif event == _RUN_SUMMARY:
            self.summary = data
        elif event == _ROLLBACK_TRIGGERED:
            self.rollback_triggered = True
        elif event == _COMPENSATION_DISPATCHED:
            job = _job(data)
            if job not in self.open_compensations:
                self.open_compensations.add(job)
                attempt = data.get("attempt", 1)
                if attempt == 1 or not isinstance(attempt, int):
                    self.compensations_dispatched += 1
        elif event == _COMPENSATION_SKIPPED:
            self.skipped += 1
        elif event == _MANUAL_FOLLOWUP:
            self.manual_followups += 1
            self.open_compensations.discard(_job(data))
        elif event == _COMPENSATION_SUCCEEDED:
            self.compensations_succeeded += 1
            self.open_compensations.discard(_job(data))
        elif event in _ENDS_BEFORE_DISPATCH:
            job = _job(data)
            if job in self.open_compensations:
                self.open_compensations.discard(job)
            else:
                self.ended_undispatched += 1

    def counts(self) -> dict[str, int]:
        """The summary's counts as the events give them (docs/evidence.md, run_summary).

        Dispatched: distinct compensation jobs with a ``compensation_dispatched``. Skipped:
        jobs never dispatched (``compensation_skipped``, or timed out or rejected before a
        dispatch). Failed: dispatched jobs that did not succeed.
        """
        return {
            "compensation_jobs_dispatched": self.compensations_dispatched,
            "compensation_jobs_skipped": self.skipped + self.ended_undispatched,
            "compensation_jobs_failed": self.compensations_dispatched
            - self.compensations_succeeded,
            "manual_followups": self.manual_followups,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainHead:
    """Where one run's chain ended, and how far its links could be trusted.

    ``head`` is the ``hash`` of the record with the highest ``seq``: write it down
    somewhere else (a ticket, a log, a commit) and a later copy of the file can be
    checked against it.
    """

    path: str
    run_id: str
    seq: int
    head: str
    scheme: str
    """:data:`~agentundo.evidence.chain.UNKEYED`, ``hmac-sha256``, or an unknown name."""
    authenticated: bool
    """The MACs were checked with the key (always False for an unkeyed chain)."""

    @property
    def keyed(self) -> bool:
        return self.scheme != UNKEYED

    def strength(self) -> str:
        """What the chain can prove, in a few words."""
        if not self.keyed:
            return "sha256, unkeyed: detects corruption and truncation, not a deliberate reseal"
        if self.authenticated:
            return f"{self.scheme}, keyed: MACs checked with {ENV_VAR}"
        if self.scheme != HMAC_SHA256:
            return f"mac {self.scheme!r}: unknown scheme, MACs NOT checked"
        return f"{self.scheme}, keyed: MACs NOT checked ({ENV_VAR} not set)"

    def describe(self) -> str:
        return f"chain {self.run_id or '?'}: head {self.head} (seq {self.seq}; {self.strength()})"


@dataclass(slots=True)
class _Chain:
    """The hash chain of one run: the state to check the next record against."""

    run_id: str
    scheme: str = UNKEYED
    checked: bool = True
    """Each record's ``hash`` is checked against its content (False: keyed, no key)."""
    mac_key: bytes | None = None
    """The key its MACs are checked with (None: unkeyed, or not checked)."""
    first_bad_mac: int = 0
    """Line of the run's first record whose MAC fails (0: none yet)."""
    later_bad_macs: int = 0
    """How many records after it fail too; the first few lines are kept to name them."""
    later_bad_mac_lines: list[int] = field(default_factory=list)
    last_bad_mac: int = 0
    max_seq: int = -1
    hash_at_max: str = GENESIS
    line_at_max: int = 0
    gaps: list[tuple[int, int, int]] = field(default_factory=list)
    """Missing seq ranges (first, last, line where noticed), until they turn up or the end."""
    recent: dict[int, int] = field(default_factory=dict)
    """seq -> line of recent records, bounded, to tell a duplicate from a reordered line."""


_RECENT = 4096


@dataclass(slots=True)
class _Run:
    chain: _Chain
    tally: RunTally = field(default_factory=RunTally)
    open_jobs: dict[str, tuple[int, str, str]] = field(default_factory=dict)
    """job -> (line of its first dispatch, kind, step_id), until its outcome."""
    applied: dict[str, int] = field(default_factory=dict)
    """Applied steps not yet settled: step_id -> line."""
    settled: set[str] = field(default_factory=set)
    rollback_line: int = 0
    pending: int | None = None
    summary_line: int = 0
    after_summary: int = 0
    first_line: int = 0
    last_line: int = 0
    stopped: tuple[str, int] | None = None
    """The first step_failed_fatal or step_denied (event, line): it ends the forward path."""
    interrupted_line: int = 0
    cut_line: int = 0
    """A step_failed_fatal with ``attempts: 0``: the step was not started, the drill
    deadline had passed (the engine then always judges the drill failed)."""
    followups: list[str] = field(default_factory=list)
    """step_id of each manual_followup, in order (the summary's ``manual``)."""
    undone: set[str] = field(default_factory=set)
    """Steps with a compensation_succeeded (the summary's ``compensated`` is among them)."""


_LISTED_BAD_MACS = 5


@dataclass(slots=True)
class _Repeated:
    """A problem reported at its first line; later lines with it counted, the first few named."""

    first: int
    count: int = 0
    listed: list[int] = field(default_factory=list)
    last: int = 0

    def add(self, line: int) -> None:
        self.count += 1
        if len(self.listed) < _LISTED:
            self.listed.append(line)
        self.last = line

    def named(self) -> str:
        lines = ", ".join(map(str, self.listed))
        return f"{lines}, ... {self.last}" if self.count > len(self.listed) else lines


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
        self._run: _Run | None = None
        self._truncated_at = 0
        self._key = key
        self._altered: dict[str, _Repeated] = {}
        """What the reader stripped (a BOM, a CR) -> where: the first line is reported, later
        ones are counted into one problem at the end (a CRLF file has one on every line)."""

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
            record.event == Event.RUN_STARTED
            and data.get("seq") == 0
            and data.get("prev_hash") == GENESIS
            and (self._run is None or self._run.chain.run_id != data.get("run_id"))
        ):
            self._end_run()
        if self._run is None:
            self._run = _Run(_Chain(str(data.get("run_id", ""))), first_line=record.line)
            self._check_start(self._run.chain, record)
        run = self._run
        run.last_line = record.line
        if data.get("run_id") != run.chain.run_id:
            self._add(
                record.line,
                "EV206",
                f"run_id {data.get('run_id')!r} in the evidence of run {run.chain.run_id!r}",
            )
        self._check_chain(run.chain, record)
        self._check_completeness(run, record)
        run.tally.feed(record)

    # --- the hash chain -------------------------------------------------------------

    def _check_start(self, chain: _Chain, record: Record) -> None:
        data = record.data
        starts = data.get("seq") == 0 and data.get("prev_hash") == GENESIS
        if not starts:
            self._add(
                record.line,
                "EV106",
                f"the first record has seq {data.get('seq')!r} and does not chain to GENESIS: "
                "records before it were deleted",
            )
        if MAC_FIELD in data:
            scheme: object = data[MAC_FIELD]
        elif starts:
            scheme = None
        else:
            scheme = self._guess_scheme(data)
        if scheme is None:
            if self._key is not None:
                self._add(
                    record.line,
                    "EV108",
                    f"{ENV_VAR} is set but this chain is not keyed (plain SHA-256, no "
                    f'"{MAC_FIELD}"): anyone could have resealed it, so it cannot be '
                    "authenticated",
                )
            return
        chain.scheme = scheme if isinstance(scheme, str) else repr(scheme)
        if scheme != HMAC_SHA256:
            chain.checked = False
            self._add(
                record.line,
                "EV107",
                f"the chain names an unknown MAC scheme {scheme!r}: its records' MACs were "
                "not checked",
            )
        elif self._key is not None:
            chain.mac_key = self._key
        else:
            chain.checked = False
            why = (
                f"is keyed ({HMAC_SHA256})"
                if MAC_FIELD in data
                else "has lost its first record and this one's hash is not a plain SHA-256: "
                "it is keyed, or this record was edited"
            )
            self._add(
                record.line,
                "EV107",
                f"the chain {why}; {ENV_VAR} is not set, so its records' MACs were not checked "
                "(only their order, links and completeness)",
            )

    def _guess_scheme(self, data: dict[str, Any]) -> str | None:
        """A chain whose head was deleted: keyed unless its first record is a plain hash."""
        stored = data.get("hash")
        key = self._key
        if key is not None and stored == record_mac(data, key):
            return HMAC_SHA256
        if stored == record_hash(data):
            return None
        return HMAC_SHA256

    def _check_chain(self, chain: _Chain, record: Record) -> None:
        data = record.data
        line = record.line
        stored = data.get("hash")
        body = hash_body(data)
        if record.altered:
            self._check_altered(record)
        elif isinstance(stored, str) and len(record.raw) != len(body) + len(stored) + _HASH_FIELD:
            self._add(
                line,
                "EV109",
                "the line is not the compact JSON the writer writes: a key is repeated "
                "(readers disagree on which value counts) or the line was re-encoded",
            )
        if chain.mac_key is not None:
            if stored != mac_of(body, chain.mac_key):
                self._bad_mac(chain, line)
        elif not chain.checked:
            pass
        elif not isinstance(stored, str) or stored != hashlib.sha256(body).hexdigest():
            self._add(line, "EV101", "content does not match its hash: the line was edited")
        seq = data.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool):
            return
        prev_hash = data.get("prev_hash")
        if seq == chain.max_seq + 1:
            if prev_hash != chain.hash_at_max and chain.max_seq >= 0:
                self._add(
                    line,
                    "EV102",
                    f"prev_hash does not match the hash of seq {chain.max_seq} (line "
                    f"{chain.line_at_max}): that record was edited and resealed, or this one "
                    "was inserted",
                )
        elif seq > chain.max_seq + 1:
            if chain.max_seq >= 0:
                chain.gaps.append((chain.max_seq + 1, seq - 1, line))
        else:
            self._check_late(chain, seq, line)
            return
        chain.max_seq = seq
        chain.hash_at_max = stored if isinstance(stored, str) else ""
        chain.line_at_max = line
        chain.recent[seq] = line
        if len(chain.recent) > 2 * _RECENT:  # keep the newest; pruning in batches is cheap
            chain.recent = dict(list(chain.recent.items())[-_RECENT:])

    def _check_altered(self, record: Record) -> None:
        """EV109 for a line with bytes the writer never writes; later ones of a kind counted."""
        what = record.altered
        repeated = self._altered.get(what)
        if repeated is not None:
            repeated.add(record.line)
            return
        self._altered[what] = _Repeated(record.line)
        self._add(
            record.line,
            "EV109",
            f"the line {what}, which the writer never writes: its bytes were changed after it "
            "was sealed",
        )

    def _bad_mac(self, chain: _Chain, line: int) -> None:
        """Report the run's first MAC failure; count the later ones (see :meth:`_end_run`)."""
        if not chain.first_bad_mac:
            chain.first_bad_mac = line
            self._add(
                line,
                "EV101",
                f"MAC ({HMAC_SHA256}) does not match: the first bad record of this run; it was "
                "edited, or sealed without this key",
            )
            return
        chain.later_bad_macs += 1
        if len(chain.later_bad_mac_lines) < _LISTED_BAD_MACS:
            chain.later_bad_mac_lines.append(line)
        chain.last_bad_mac = line

    def _later_bad_macs(self, run: _Run) -> Problem:
        """One problem for every MAC failure after the run's first one."""
        chain = run.chain
        count = chain.later_bad_macs
        lines = chain.later_bad_mac_lines
        if chain.first_bad_mac == run.first_line and count == run.tally.events - 1:
            message = (
                f"every record of this run fails its MAC ({count + 1} records): it was sealed "
                "with a different key, or forged"
            )
        else:
            named = ", ".join(map(str, lines))
            if count > len(lines):
                named += f", ... {chain.last_bad_mac}"
            message = (
                f"{count} more record{'' if count == 1 else 's'} after line "
                f"{chain.first_bad_mac} {'fails its' if count == 1 else 'fail their'} MAC too "
                f"(line{'' if count == 1 else 's'} {named}): resealed without this key, or edited"
            )
        return Problem(self.path, lines[0], "EV101", message)

    def _check_late(self, chain: _Chain, seq: int, line: int) -> None:
        """A seq at or below the highest seen: a reordered line or a repeated one."""
        for index, (first, last, noticed) in enumerate(chain.gaps):
            if first <= seq <= last:
                self._add(
                    line,
                    "EV104",
                    f"seq {seq} comes after seq {chain.max_seq}: lines were reordered "
                    f"(it belongs before line {noticed})",
                )
                pieces = [(first, seq - 1, noticed), (seq + 1, last, noticed)]
                chain.gaps[index : index + 1] = [p for p in pieces if p[0] <= p[1]]
                return
        earlier = chain.recent.get(seq)
        where = f" (already at line {earlier})" if earlier else ""
        self._add(line, "EV105", f"seq {seq} appears again{where}: a line was inserted or repeated")

    # --- completeness ---------------------------------------------------------------

    def _check_completeness(self, run: _Run, record: Record) -> None:
        data = record.data
        event = record.event
        line = record.line
        if run.summary_line:
            run.after_summary += 1
            if run.after_summary == 1:
                self._add(line, "EV205", f"a record follows run_summary (line {run.summary_line})")
        if event in _DISPATCHES:
            job = str(data.get("job_id") or data.get("step_id") or "")
            if job not in run.open_jobs:
                kind = "step" if event == Event.STEP_DISPATCHED else "compensation"
                run.open_jobs[job] = (line, kind, str(data.get("step_id", "")))
        elif event in _JOB_ENDS:
            job = str(data.get("job_id") or data.get("step_id") or "")
            run.open_jobs.pop(job, None)
            if event == Event.STEP_SUCCEEDED or (
                event == Event.STEP_FAILED_FATAL and data.get("partial") is True
            ):
                run.applied.setdefault(str(data.get("step_id", "")), line)
        if event in (_STEP_FAILED_FATAL, _STEP_DENIED):
            run.stopped = run.stopped or (event, line)
            if event == _STEP_FAILED_FATAL and data.get("attempts") == 0:
                run.cut_line = run.cut_line or line
        elif event == _RUN_INTERRUPTED:
            run.interrupted_line = run.interrupted_line or line
        elif event == _MANUAL_FOLLOWUP:
            run.followups.append(str(data.get("step_id", "")))
        elif event == _COMPENSATION_SUCCEEDED:
            run.undone.add(str(data.get("step_id", "")))
        if event in _STEP_SETTLING and run.rollback_line:
            step_id = str(data.get("step_id", ""))
            run.settled.add(step_id)
            run.applied.pop(step_id, None)
        if event == Event.ROLLBACK_TRIGGERED and not run.rollback_line:
            run.rollback_line = line
            pending = data.get("pending")
            if isinstance(pending, int) and not isinstance(pending, bool):
                run.pending = pending
        if event == Event.POLICY_DECISION and not names_its_rule(data):
            job_id, step_id = _job_key(record)
            if "rule_id" not in data:
                why = "has no rule_id"
            elif data["rule_id"] is None:
                why = "has rule_id null without default: true"
            else:
                why = f"has an invalid rule_id {data['rule_id']!r}"
            self._add(line, "EV203", f"policy decision for {step_id or job_id or '?'} {why}")
        if event == Event.RUN_SUMMARY:
            run.summary_line = line

    def _end_run(self) -> None:
        run = self._run
        if run is None:
            return
        self._run = None
        end = run.last_line
        chain = run.chain
        if chain.later_bad_macs:
            self.problems.append(self._later_bad_macs(run))
        if chain.max_seq >= 0:
            self.chains.append(
                ChainHead(
                    path=self.path,
                    run_id=chain.run_id,
                    seq=chain.max_seq,
                    head=chain.hash_at_max,
                    scheme=chain.scheme,
                    authenticated=chain.mac_key is not None,
                )
            )
        for first, last, noticed in run.chain.gaps:
            span = f"seq {first}" if first == last else f"seq {first}-{last}"
            count = last - first + 1
            self.problems.append(
                Problem(
                    self.path,
                    noticed,
                    "EV103",
                    f"{span} missing before this line: {count} record"
                    f"{'' if count == 1 else 's'} deleted",
                )
            )
        for job, (line, kind, step_id) in run.open_jobs.items():
            self.problems.append(
                Problem(
                    self.path,
                    line,
                    "EV201",
                    f"{kind} job {job or '?'} (step {step_id or '?'}) was dispatched "
                    "and has no outcome",
                )
            )
        if run.rollback_line:
            self._check_rollback(run)
        summary = run.tally.summary
        if summary is None:
            why = (
                f"the last line ({self._truncated_at}) is truncated"
                if self._truncated_at > end
                else "the evidence ends before it"
            )
            self.problems.append(
                Problem(
                    self.path,
                    end,
                    "EV205",
                    f"run {run.chain.run_id!r} has no run_summary: {why}",
                )
            )
        else:
            self._check_summary(run, summary)

    def _check_rollback(self, run: _Run) -> None:
        """Every entry of the compensation stack is settled (compensated or followed up).

        Read-only steps succeed without entering the stack and the evidence does not mark
        them, so when ``rollback_triggered`` states ``pending`` (the stack's size) the rule
        counts: fewer settled steps than pending entries is a problem, and the applied steps
        left unsettled are named as the candidates. Without ``pending`` every applied step
        must be settled.
        """
        unsettled = run.applied
        if run.pending is None:
            for step_id, line in unsettled.items():
                self.problems.append(
                    Problem(
                        self.path,
                        line,
                        "EV202",
                        f"step {step_id} was applied and rolled back without a "
                        "compensation outcome or a manual follow-up",
                    )
                )
            return
        missing = run.pending - len(run.settled)
        if missing > 0:
            names = ", ".join(unsettled) or "none of the applied steps is unsettled"
            self.problems.append(
                Problem(
                    self.path,
                    run.rollback_line,
                    "EV202",
                    f"{missing} of {run.pending} pending compensations have neither an outcome "
                    f"nor a manual follow-up (unsettled applied steps: {names})",
                )
            )

    def _check_summary(self, run: _Run, summary: dict[str, Any]) -> None:
        line = run.summary_line
        missing = [f for f in SUMMARY_FIELDS if f not in summary]
        if missing:
            self.problems.append(
                Problem(self.path, line, "EV204", f"run_summary lacks {', '.join(missing)}")
            )
        for name, counted in run.tally.counts().items():
            if name in summary and summary[name] != counted:
                self.problems.append(
                    Problem(
                        self.path,
                        line,
                        "EV204",
                        f"run_summary says {name}={summary[name]!r}, the events give {counted}",
                    )
                )
        stated = summary.get("rollback_triggered")
        if isinstance(stated, bool) and stated != run.tally.rollback_triggered:
            seen = "has" if run.tally.rollback_triggered else "has no"
            self.problems.append(
                Problem(
                    self.path,
                    line,
                    "EV204",
                    f"run_summary says rollback_triggered={str(stated).lower()}, the run {seen} "
                    "rollback_triggered event",
                )
            )
        for message in self._check_outcome(run, summary):
            self.problems.append(Problem(self.path, line, "EV204", message))

    def _check_outcome(self, run: _Run, summary: dict[str, Any]) -> list[str]:
        """What the summary says happened against what the events show (engine.py's rules).

        ``status``: ``interrupted`` when a run_interrupted record exists, else FAILED_FATAL
        or DENIED after a step_failed_fatal or step_denied (the forward path stops at the
        first; a step not started because the drill deadline passed is a step_failed_fatal
        too), else SUCCEEDED. ``verdict``: ``interrupted`` exactly when the status is;
        ``completed`` only without a rollback; ``recovered`` only with one; ``failed`` when
        a step was cut off by the deadline. ``manual`` is the step of every manual_followup,
        in order; every ``compensated`` step has a compensation_succeeded, and is listed once.
        """
        found: list[str] = []
        if run.interrupted_line:
            expected, why = _STATUS_INTERRUPTED, f"run_interrupted (line {run.interrupted_line})"
        elif run.stopped is not None:
            event, at = run.stopped
            expected = _STATUS_FAILED_FATAL if event == _STEP_FAILED_FATAL else _STATUS_DENIED
            why = f"{event} (line {at})"
        else:
            expected, why = (
                _STATUS_SUCCEEDED,
                "no step_failed_fatal, step_denied or run_interrupted",
            )
        status = summary.get("status")
        if _judged(status, STATUSES) and str(status).casefold() != expected.casefold():
            found.append(f"run_summary says status={status!r}, the events give {expected}: {why}")
        verdict = summary.get("verdict")
        if _judged(verdict, VERDICTS):
            said = f"run_summary says verdict={verdict!r}"
            verdict = str(verdict).casefold()
            rollback = run.rollback_line
            if verdict == "interrupted" and not run.interrupted_line:
                found.append(f"{said}, but the run has no run_interrupted record")
            elif verdict != "interrupted" and run.interrupted_line:
                found.append(f"{said}, but the run was interrupted: {why}")
            elif verdict == "completed" and rollback:
                found.append(f"{said}, but a rollback was triggered (line {rollback})")
            elif verdict == "completed" and expected != _STATUS_SUCCEEDED:
                found.append(f"{said}, but the run stopped: {why}")
            elif verdict == "recovered" and not rollback:
                found.append(f"{said}, but the run has no rollback_triggered to recover with")
            elif verdict != "failed" and run.cut_line:
                found.append(
                    f"{said}, but a step was not started because the drill deadline had passed "
                    f"(step_failed_fatal with attempts 0, line {run.cut_line}): the drill failed"
                )
        manual = summary.get("manual", run.followups)
        if manual != run.followups:
            found.append(
                f"run_summary says manual={_names(manual)}, the manual_followup records name "
                f"{_names(run.followups)}"
            )
        compensated = summary.get("compensated", [])
        if not isinstance(compensated, list):
            found.append(f"run_summary says compensated={_names(compensated)}, not a list")
            compensated = []
        unknown = [s for s in compensated if not isinstance(s, str) or s not in run.undone]
        if unknown:
            found.append(
                f"run_summary says {_names(unknown)} compensated, but no compensation_succeeded "
                f"names {'that step' if len(unknown) == 1 else 'those steps'}"
            )
        listed = Counter(s for s in compensated if isinstance(s, str))
        twice = [step for step, times in listed.items() if times > 1]
        if twice:
            found.append(f"run_summary lists {_names(twice)} as compensated more than once")
        return found

    def finish(self) -> list[Problem]:
        """End the source: run the end-of-run checks; the problems, sorted by line."""
        self._end_run()
        for repeated in self._altered.values():
            if repeated.count:
                count = repeated.count
                self.problems.append(
                    Problem(
                        self.path,
                        repeated.listed[0],
                        "EV109",
                        f"{count} more line{'' if count == 1 else 's'} after line "
                        f"{repeated.first} {'is' if count == 1 else 'are'} changed the same way: "
                        f"line{'' if count == 1 else 's'} {repeated.named()}",
                    )
                )
        self.problems.sort(key=lambda p: (p.line, p.code))
        return self.problems


def _judged(value: object, known: tuple[str, ...]) -> bool:
    """Whether ``value`` is one of the engine's values (any case), so the events can judge it."""
    return isinstance(value, str) and value.casefold() in {k.casefold() for k in known}


def _names(value: object) -> str:
    """A list of names for a message: the first few, then how many in all."""
    if not isinstance(value, list):
        return repr(value)
    shown = ", ".join(repr(v) if not isinstance(v, str) else v for v in value[:_LISTED])
    more = f", ... {len(value)} in all" if len(value) > _LISTED else ""
    return f"[{shown}{more}]"


def verify_items(path: str, items: list[Item], *, key: bytes | None = None) -> list[Problem]:
    """Verify a source given as a list (tests and small inputs)."""
    verifier = Verifier(path, key=key)
    for item in items:
        verifier.feed(item)
    return verifier.finish()
