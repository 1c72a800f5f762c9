"""The hash chain that makes evidence tamper-evident.

Each record carries ``prev_hash`` (the previous record's ``hash``, or :data:`GENESIS`
for the first) and ``hash``: the SHA-256 of the record's canonical JSON without its
``hash`` field. Editing, deleting, inserting or reordering a line breaks the chain.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

GENESIS = "0" * 64


def canonical_text(record: dict[str, Any]) -> str:
    """Canonical JSON text: sorted keys, no spaces, non-ASCII kept as is."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(record: dict[str, Any]) -> bytes:
    """Canonical JSON as UTF-8 bytes: what the hash is computed over."""
    return canonical_text(record).encode()


def record_hash(record: dict[str, Any]) -> str:
    """The hash a record must carry: over every field except ``hash`` itself."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical(body)).hexdigest()


def seal(record: dict[str, Any], prev_hash: str) -> dict[str, Any]:
    """Return ``record`` with ``prev_hash`` and ``hash`` set."""
    sealed = {**record, "prev_hash": prev_hash}
    sealed["hash"] = record_hash(sealed)
    return sealed
