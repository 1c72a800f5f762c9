"""The hash-chain checks of :mod:`agentundo.evidence.verify` (EV101-EV111), and chain heads.

A :class:`ChainChecker` checks one source's records against the :class:`Chain` of their
run: the first record's start, genesis and scheme (EV106-EV108, EV110, EV111), each
record's hash or MAC (EV101; EV110 for plain SHA-256 in a keyed chain under ``--require-key``),
its bytes (EV109), its link to the previous record (EV102) and its ``seq`` (EV103-EV105).
At a run's end it reports what it counted (missing records, later bad MACs) and gives the
run's :class:`ChainHead`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from agentundo.evidence.chain import (
    CANONICAL,
    GENESIS,
    HMAC_SHA256,
    MAC_FIELD,
    UNKEYED,
    genesis_of,
    hash_body,
    mac_of,
    record_hash,
    record_mac,
)
from agentundo.evidence.keys import ENV_VAR, REQUIRE_OPTION
from agentundo.evidence.problems import LISTED, Repeated, Report, plural
from agentundo.evidence.reader import Record

_HASH_FIELD = len(',"hash":""')
"""What ``"hash": ...`` adds to a record's compact JSON besides the hash itself."""
_RECENT = 4096


def _size(data: dict[str, Any], own: bytes | None, stored: str) -> int:
    """The bytes of the line the writer would write for ``data`` (its canonical body with
    ``"hash"`` appended): one encoding of the parsed record, ``hash`` included (its pair
    takes the same bytes wherever the sorted keys put it), when the line ends with the
    hash as written; otherwise measured from the body without ``hash``, as before."""
    if own is None:
        return len(hash_body(data)) + len(stored) + _HASH_FIELD
    text = CANONICAL(data)
    return len(text) if text.isascii() else len(text.encode())


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
class Chain:
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
    plain: Repeated | None = None
    """``--require-key``: records of this keyed chain sealed with plain SHA-256 (EV110)."""
    max_seq: int = -1
    hash_at_max: str = GENESIS
    line_at_max: int = 0
    gaps: list[tuple[int, int, int]] = field(default_factory=list)
    """Missing seq ranges (first, last, line where noticed), until they turn up or the end."""
    recent: dict[int, int] = field(default_factory=dict)
    """seq -> line of recent records, bounded, to tell a duplicate from a reordered line."""


class ChainChecker:
    """The chain checks of one source; problems go to ``report(line, code, message)``.

    ``key`` is the evidence key: with it keyed chains are authenticated, without it their
    MACs are reported as unchecked (EV107). ``require_key`` (``--require-key``, always with
    a key): a chain that is not keyed, or a record of a keyed chain sealed with plain
    SHA-256 (keyed only in part), is EV110 instead of EV108 or EV101.
    """

    def __init__(self, report: Report, *, key: bytes | None, require_key: bool = False) -> None:
        self._add = report
        self._key = key
        self._require = require_key
        self._altered: dict[str, Repeated] = {}
        """What the reader stripped (a BOM, a CR) -> where: the first line is reported, later
        ones are counted into one problem at the end (a CRLF file has one on every line)."""

    def start(self, chain: Chain, record: Record) -> None:
        """Check a run's first record: seq 0 chained to its run's genesis, and the scheme."""
        data = record.data
        seq = data.get("seq")
        prev_hash = data.get("prev_hash")
        legacy = prev_hash == GENESIS
        starts = seq == 0 and (legacy or prev_hash == genesis_of(data))
        if seq != 0:
            self._add(
                record.line,
                "EV106",
                f"the first record has seq {seq!r}, not 0: records before it were deleted",
            )
        elif not starts:
            self._add(
                record.line,
                "EV111",
                "seq 0 does not chain to its run's genesis (of its run_id and ts): spliced "
                "from another run's chain, or its run_id or ts changed",
            )
        if MAC_FIELD in data:
            scheme: object = data[MAC_FIELD]
        elif starts:
            scheme = None
        else:
            scheme = self._guess_scheme(data)
        if scheme is None:
            if self._require:
                self._add(
                    record.line,
                    "EV110",
                    f'{REQUIRE_OPTION}: the chain is not keyed (plain SHA-256, no "{MAC_FIELD}"): '
                    f'anyone could have resealed it, or stripped its "{MAC_FIELD}"',
                )
            elif self._key is not None:
                self._add(
                    record.line,
                    "EV108",
                    f"{ENV_VAR} is set but this chain is not keyed (plain SHA-256, no "
                    f'"{MAC_FIELD}"): anyone could have resealed it, so it cannot be '
                    "authenticated",
                )
            return
        chain.scheme = scheme if isinstance(scheme, str) else repr(scheme)
        if seq == 0 and legacy:
            self._add(
                record.line,
                "EV111",
                "a keyed chain from the legacy GENESIS (64 zeros), not its run's genesis: only "
                "unkeyed chains may start there (an older agentundo wrote it, or it was moved)",
            )
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

    def check(self, chain: Chain, record: Record) -> None:
        """Check one record of the run against its chain, and extend the chain."""
        data = record.data
        line = record.line
        stored = data.get("hash")
        raw = record.raw
        # The writer's line is the canonical body with the hash appended last, so the body
        # it hashed is the line's own bytes without that ending: hash those, not a
        # re-encoding. Only a line whose own bytes fail goes the long way (below).
        own: bytes | None = None
        if isinstance(stored, str) and stored.isascii():
            ending = b',"hash":"' + stored.encode() + b'"}'
            if raw.endswith(ending) and len(raw) > len(ending) + 1:
                own = raw[: -len(ending)] + b"}"
        if record.altered:
            self._check_altered(record)
        elif isinstance(stored, str) and _size(data, own, stored) != len(raw):
            self._add(
                line,
                "EV109",
                "the line is not the compact JSON the writer writes: a key is repeated "
                "(readers disagree on which value counts) or the line was re-encoded",
            )
        if chain.mac_key is not None:
            key = chain.mac_key
            if own is None or stored != mac_of(own, key):
                body = hash_body(data)
                if stored == mac_of(body, key):
                    pass
                elif self._require and stored == hashlib.sha256(body).hexdigest():
                    self._plain(chain, line)
                else:
                    self._bad_mac(chain, line)
        elif not chain.checked:
            pass
        elif not isinstance(stored, str):
            self._add(line, "EV101", "content does not match its hash: the line was edited")
        elif own is not None and stored == hashlib.sha256(own).hexdigest():
            pass
        elif stored != hashlib.sha256(hash_body(data)).hexdigest():
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
        self._altered[what] = Repeated(record.line)
        self._add(
            record.line,
            "EV109",
            f"the line {what}, which the writer never writes: its bytes were changed after it "
            "was sealed",
        )

    def _bad_mac(self, chain: Chain, line: int) -> None:
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
        if len(chain.later_bad_mac_lines) < LISTED:
            chain.later_bad_mac_lines.append(line)
        chain.last_bad_mac = line

    def _plain(self, chain: Chain, line: int) -> None:
        """``--require-key``: a record of a keyed chain sealed with plain SHA-256 (EV110 at the
        first of the run; later ones counted into one more at the end of the run)."""
        if chain.plain is not None:
            chain.plain.add(line)
            return
        chain.plain = Repeated(line)
        self._add(
            line,
            "EV110",
            f"{REQUIRE_OPTION}: sealed with plain SHA-256, not the key: the chain is keyed "
            "only in part (resealed or appended without the key)",
        )

    def _later_bad_macs(self, chain: Chain, *, first_line: int, events: int) -> None:
        """One problem for every MAC failure after the run's first one."""
        count = chain.later_bad_macs
        lines = chain.later_bad_mac_lines
        if chain.first_bad_mac == first_line and count == events - 1:
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
        self._add(lines[0], "EV101", message)

    def _check_late(self, chain: Chain, seq: int, line: int) -> None:
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

    def end_run(self, chain: Chain, *, path: str, first_line: int, events: int) -> ChainHead | None:
        """Report what was counted over the run (later bad MACs, missing records); its head.

        The head is None when no record of the run had a usable ``seq``.
        """
        if chain.later_bad_macs:
            self._later_bad_macs(chain, first_line=first_line, events=events)
        plain = chain.plain
        if plain is not None and plain.count:
            count = plain.count
            self._add(
                plain.listed[0],
                "EV110",
                f"{plural(count, 'more record')} after line {plain.first} "
                f"{'is' if count == 1 else 'are'} sealed with plain SHA-256 too: "
                f"line{'' if count == 1 else 's'} {plain.named()}",
            )
        head = None
        if chain.max_seq >= 0:
            head = ChainHead(
                path=path,
                run_id=chain.run_id,
                seq=chain.max_seq,
                head=chain.hash_at_max,
                scheme=chain.scheme,
                authenticated=chain.mac_key is not None,
            )
        for first, last, noticed in chain.gaps:
            span = f"seq {first}" if first == last else f"seq {first}-{last}"
            count = last - first + 1
            self._add(
                noticed,
                "EV103",
                f"{span} missing before this line: {count} record"
                f"{'' if count == 1 else 's'} deleted",
            )
        return head

    def finish(self) -> None:
        """End the source: one problem for each kind of altered line seen more than once."""
        for repeated in self._altered.values():
            if repeated.count:
                count = repeated.count
                self._add(
                    repeated.listed[0],
                    "EV109",
                    f"{count} more line{'' if count == 1 else 's'} after line "
                    f"{repeated.first} {'is' if count == 1 else 'are'} changed the same way: "
                    f"line{'' if count == 1 else 's'} {repeated.named()}",
                )
