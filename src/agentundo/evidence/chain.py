"""The hash chain that makes evidence tamper-evident, and its optional key.

Each record carries ``prev_hash`` (the previous record's ``hash``, or :data:`GENESIS`
for the first) and ``hash``: a digest of the record's canonical JSON without its
``hash`` field. Editing, deleting, inserting or reordering a line breaks the chain.

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
from typing import Any

GENESIS = "0" * 64

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
