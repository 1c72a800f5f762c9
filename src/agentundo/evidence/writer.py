"""Append-only, flushed, hash-chained JSON Lines evidence files (keyed when a key is set)."""

from __future__ import annotations

import hashlib
import json
import json.encoder
import os
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal

from agentundo.errors import UsageError
from agentundo.evidence.chain import GENESIS, HMAC_SHA256, MAC_FIELD, canonical_text, mac_of
from agentundo.evidence.keys import evidence_key
from agentundo.evidence.redact import redact_into


def _canonical_encoder() -> Callable[[dict[str, Any]], str]:
    """:func:`~agentundo.evidence.chain.canonical_text`, with its encoder built once.

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


_CANONICAL = _canonical_encoder()

STRUCTURE = frozenset(
    {
        "ts", "event", "run_id", "workflow_id", "actor", "job_id", "step_id", "topic",
        "for_topic", "status", "verdict", "decision", "rule_id", "matched_policy_id",
        "category", "outcome", "lock_key", "owner", "previous_owner", "compensated", "manual",
    }
)  # fmt: skip
"""Fields the engine fills from the run and the project's files, never from a secret: a
secret that happens to spell part of one (a token ``step``) must not rewrite the record's
structure (``[REDACTED]_dispatched``), so they are written as they are."""

_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)


class _FromEnvironment(Enum):
    TOKEN = "from the environment"


FROM_ENVIRONMENT: Final = _FromEnvironment.TOKEN
"""The writer's default key: ``AGENTUNDO_EVIDENCE_KEY`` if set, else unkeyed."""


def _write_all(fd: int, rest: memoryview) -> None:
    while rest:
        rest = rest[os.write(fd, rest) :]


class EvidenceWriter:
    """Writes one run's evidence file.

    The file is created exclusively (an existing file is never overwritten) and opened
    for appending only; each record is written as one line with a single unbuffered
    ``write`` (nothing waits in a buffer), so a process killed mid-run leaves a file
    whose complete lines are all valid; :meth:`close` also syncs it to disk. Records
    are redacted before they are hashed, so no secret is ever written.

    With a ``key`` (by default ``AGENTUNDO_EVIDENCE_KEY``, read when the writer is made;
    ``None`` for unkeyed) each ``hash`` is an HMAC-SHA256 under it and the first record
    carries ``"mac": "hmac-sha256"``; the key itself is redacted like a secret.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        secrets: frozenset[str] = frozenset(),
        key: bytes | Literal[_FromEnvironment.TOKEN] | None = FROM_ENVIRONMENT,
    ) -> None:
        if key is FROM_ENVIRONMENT:
            key = evidence_key(os.environ)
        self._key: bytes | None = key
        if key is not None:
            secrets = secrets | {key.decode("utf-8", "surrogateescape")}
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:  # a file, or a symbolic link to nowhere
            raise UsageError(
                f"cannot write evidence to {self.path.parent}: it exists and is not a directory"
            ) from None
        except OSError as exc:
            raise UsageError(f"cannot write evidence to {self.path}: {exc.strerror}") from None
        try:
            self._fd: int | None = os.open(self.path, _OPEN_FLAGS, 0o666)
        except FileExistsError:
            raise UsageError(f"evidence file {self.path} exists; it is never overwritten") from None
        except OSError as exc:
            raise UsageError(f"cannot write evidence to {self.path}: {exc.strerror}") from None
        self._prev = GENESIS
        self._seq = 0
        self._secrets = secrets

    def write(self, record: dict[str, Any]) -> dict[str, Any]:
        """Seal ``record`` (adding ``seq``, ``prev_hash``, ``hash``), append it, flush."""
        fd = self._fd
        if fd is None:
            raise ValueError(f"evidence file {self.path} is closed")
        body = redact_into({"seq": self._seq}, record, self._secrets, STRUCTURE)
        body["prev_hash"] = self._prev
        key = self._key
        if key is not None and self._seq == 0:
            body[MAC_FIELD] = HMAC_SHA256
        data = _CANONICAL(body).encode()
        digest = hashlib.sha256(data).hexdigest() if key is None else mac_of(data, key)
        # the line is the canonical body with the hash appended: one encoding per record
        line = data[:-1] + b',"hash":"' + digest.encode() + b'"}\n'
        written = os.write(fd, line)
        if written < len(line):  # a short write (disk full, signal): finish the line
            _write_all(fd, memoryview(line)[written:])
        body["hash"] = digest
        self._prev = digest
        self._seq += 1
        return body

    def close(self) -> None:
        fd = self._fd
        if fd is None:
            return
        self._fd = None
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def __enter__(self) -> EvidenceWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
