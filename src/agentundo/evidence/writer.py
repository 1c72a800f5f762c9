"""Append-only, flushed, hash-chained JSON Lines evidence files."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from agentundo.evidence.chain import GENESIS, canonical_text
from agentundo.evidence.redact import redact


class EvidenceWriter:
    """Writes one run's evidence file.

    The file is created exclusively (an existing file is never overwritten), each record
    is written as one line and flushed at once, so a process killed mid-run leaves a
    file whose complete lines are all valid; :meth:`close` also syncs it to disk.
    Records are redacted before they are hashed, so no secret is ever written.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, secrets: frozenset[str] = frozenset()
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle: IO[str] | None = self.path.open("x", encoding="utf-8")
        self._prev = GENESIS
        self._seq = 0
        self._secrets = secrets

    def write(self, record: dict[str, Any]) -> dict[str, Any]:
        """Seal ``record`` (adding ``seq``, ``prev_hash``, ``hash``), append it, flush."""
        if self._handle is None:
            raise ValueError(f"evidence file {self.path} is closed")
        body = redact({"seq": self._seq, **record}, self._secrets)
        body["prev_hash"] = self._prev
        text = canonical_text(body)
        digest = hashlib.sha256(text.encode()).hexdigest()
        # the line is the canonical body with the hash appended: one encoding per record
        self._handle.write(f'{text[:-1]},"hash":"{digest}"}}\n')
        self._handle.flush()
        body["hash"] = digest
        self._prev = digest
        self._seq += 1
        return body

    def close(self) -> None:
        if self._handle is None:
            return
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        self._handle = None

    def __enter__(self) -> EvidenceWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
