"""The hash chain that makes evidence tamper-evident, and its optional key.

Each record carries ``prev_hash`` (the previous record's ``hash``; for the first, its
run's genesis, :func:`genesis`) and ``hash``: a digest of the record's canonical JSON
without its ``hash`` field. Editing, deleting, inserting or reordering a line breaks the
chain.

The **genesis** of a run is ``sha256(canonical JSON of [GENESIS_LABEL, run_id, ts])``
(hex) over the first record's own ``run_id`` and ``ts``: each chain starts from a value
of its own run, so a chain (or its head) cannot be passed off as another run's. Files
written before it existed start from the legacy constant :data:`GENESIS` (64 zeros); the
verifier accepts that only for unkeyed chains.

Two schemes:

* **unkeyed** (the default): ``hash`` is the SHA-256 of the canonical JSON. It detects
  corruption, truncation and careless edits, but anyone who rewrites a record and
  recomputes every later hash (a *reseal*) produces a file that verifies.
* **keyed**: ``hash`` is the HMAC-SHA256 of the canonical JSON under a secret key
  (``AGENTUNDO_EVIDENCE_KEY``, see :mod:`agentundo.evidence.keys`), and the first
  record (``seq`` 0) says so with ``"mac": "hmac-sha256"``. Without the key a reseal is
  not possible; with the key, verification finds it.

Neither scheme proves when a record was written, or that a whole file was not replaced
by someone holding the key: record the chain's head (its last ``hash``) somewhere else
to anchor it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import json.encoder
from collections.abc import Callable
from typing import Any

GENESIS = "0" * 64
"""The legacy genesis: the ``prev_hash`` of every first record before run-specific ones."""
GENESIS_LABEL = "agentundo/evidence-genesis/v1"
"""The fixed label hashed into every run's genesis (:func:`genesis`); never changes."""

MAC_FIELD = "mac"
"""The field of a keyed chain's first record that names its MAC scheme."""
HMAC_SHA256 = "hmac-sha256"
"""The one MAC scheme: ``hash`` is HMAC-SHA256(key, canonical JSON without ``hash``)."""
UNKEYED = "sha256"
"""How a chain without ``mac`` is described: ``hash`` is a plain SHA-256."""


def canonical_text(record: dict[str, Any]) -> str:
    """Canonical JSON text: sorted keys, no spaces, non-ASCII kept as is."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(record: dict[str, Any]) -> bytes:
    """Canonical JSON as UTF-8 bytes: what the hash is computed over."""
    return canonical_text(record).encode()


def _canonical_encoder() -> Callable[[dict[str, Any]], str]:
    """:func:`canonical_text`, with its encoder built once.

    ``json.dumps`` builds a new encoder for every call, which costs as much as encoding
    a record. Where the C encoder is available it is made once (without the circular
    reference check: records are trees) and used only if it agrees with
    :func:`canonical_text` on a sample; otherwise a reused ``JSONEncoder`` does the work.
    """
    fallback = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return fallback
    try:
        encode = make(None, None, json.encoder.encode_basestring, None, ":", ",", True, False, True)
    except TypeError:  # another Python's private signature
        return fallback

    def canonical(record: dict[str, Any]) -> str:
        return "".join(encode(record, 0))

    sample: dict[str, Any] = {"z": [1, 2.5, None, True], "a": {"é": '\n"x'}, "m": -0.0}
    return canonical if canonical(sample) == canonical_text(sample) else fallback


CANONICAL = _canonical_encoder()
"""The canonical JSON text of a record (:func:`canonical_text`), fast: the writer seals
with it and the verifier measures lines with it."""


def genesis(run_id: object, ts: object) -> str:
    """The ``prev_hash`` of a run's first record: its run's own genesis.

    SHA-256 (hex) of the canonical JSON of ``[GENESIS_LABEL, run_id, ts]`` (compact,
    UTF-8, non-ASCII kept), where ``run_id`` and ``ts`` are the first record's own values
    (a missing one is ``null``). The writer seals a new chain's first record with it and
    the verifier checks the first record against it: the one definition of both.
    """
    text = json.dumps(
        [GENESIS_LABEL, run_id, ts], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(text.encode()).hexdigest()


def genesis_of(record: dict[str, Any]) -> str:
    """:func:`genesis` of the run a first record begins (from its ``run_id`` and ``ts``)."""
    return genesis(record.get("run_id"), record.get("ts"))


def starts_chain(record: dict[str, Any]) -> bool:
    """Whether ``prev_hash`` is a genesis: its run's own, or the legacy :data:`GENESIS`."""
    prev_hash = record.get("prev_hash")
    return prev_hash == GENESIS or prev_hash == genesis_of(record)


def hash_body(record: dict[str, Any]) -> bytes:
    """What ``hash`` covers: the record's canonical JSON without ``hash`` itself."""
    return canonical({k: v for k, v in record.items() if k != "hash"})


def record_hash(record: dict[str, Any]) -> str:
    """The hash an unkeyed record must carry: over every field except ``hash`` itself."""
    return hashlib.sha256(hash_body(record)).hexdigest()


def record_mac(record: dict[str, Any], key: bytes) -> str:
    """The ``hash`` a keyed record must carry: HMAC-SHA256 under ``key``, hex."""
    return mac_of(hash_body(record), key)


def mac_of(data: bytes, key: bytes) -> str:
    """HMAC-SHA256 of canonical bytes under ``key``, hex (the writer's hot path)."""
    return hmac.digest(key, data, "sha256").hex()


def seal(record: dict[str, Any], prev_hash: str, *, key: bytes | None = None) -> dict[str, Any]:
    """Return ``record`` with ``prev_hash`` and ``hash`` set (an HMAC when ``key`` is given).

    Marking the chain as keyed (``mac`` on the first record) is the writer's job.
    """
    sealed = {**record, "prev_hash": prev_hash}
    sealed["hash"] = record_hash(sealed) if key is None else record_mac(sealed, key)
    return sealed
