"""The verifier's rule table and its problems: what each code means, and where it was found.

Every rule has a code that keeps its meaning forever, a name and a one-line summary in
:data:`RULES` (the rules are described in full in :mod:`agentundo.evidence.verify`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


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
        Rule("EV106", "bad-start", "The first record is not seq 0: the chain's head was deleted."),
        Rule("EV107", "mac-unchecked", "The chain is keyed and its MACs could not be checked."),
        Rule("EV108", "not-keyed", "A key was given but the chain is not keyed."),
        Rule("EV109", "not-canonical", "A line repeats a key or is not the writer's JSON."),
        Rule(
            "EV110", "key-required", "--require-key: a chain is not keyed, or keyed only in part."
        ),
        Rule(
            "EV111",
            "wrong-genesis",
            "seq 0 does not chain to its run's genesis (nor, unkeyed, to the legacy GENESIS).",
        ),
        Rule("EV201", "no-outcome", "A dispatched job has no outcome."),
        Rule(
            "EV202", "not-compensated", "An applied step has no compensation outcome or follow-up."
        ),
        Rule("EV203", "decision-without-rule", "A policy decision does not name its rule."),
        Rule("EV204", "summary-mismatch", "run_summary disagrees with the events."),
        Rule("EV205", "no-summary", "The run has no run_summary, or records follow it."),
        Rule("EV206", "mixed-runs", "A record's run_id differs from its run's."),
        Rule("EV301", "name-mismatch", "A file named run_*.jsonl holds a run of another id."),
        Rule("EV302", "duplicate-run", "One run id appears in more than one file."),
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


Report = Callable[[int, str, str], None]
"""How a check reports a problem of its source: ``report(line, code, message)``."""

LISTED = 5
"""How many lines or names a message lists before it says how many there are in all."""


@dataclass(slots=True)
class Repeated:
    """A problem reported at its first line; later lines with it counted, the first few named."""

    first: int
    count: int = 0
    listed: list[int] = field(default_factory=list)
    last: int = 0

    def add(self, line: int) -> None:
        self.count += 1
        if len(self.listed) < LISTED:
            self.listed.append(line)
        self.last = line

    def named(self) -> str:
        lines = ", ".join(map(str, self.listed))
        return f"{lines}, ... {self.last}" if self.count > len(self.listed) else lines


def plural(count: int, word: str) -> str:
    """``1 record``, ``2 records``."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def names(value: object) -> str:
    """A list of names for a message: the first few, then how many in all."""
    if not isinstance(value, list):
        return repr(value)
    shown = ", ".join(repr(v) if not isinstance(v, str) else v for v in value[:LISTED])
    more = f", ... {len(value)} in all" if len(value) > LISTED else ""
    return f"[{shown}{more}]"
