"""Keep secrets out of evidence: redact secret-looking keys and values before writing."""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[REDACTED]"

_SECRET_KEY = re.compile(
    r"(authorization|auth|token|secret|password|passwd|api[-_]?key|cookie|credential|private[-_]?key|session)",
    re.IGNORECASE,
)
_SECRET_VALUE = re.compile(
    r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"
    r"|\b(sk|pk|rk|ghp|gho|xox[abp])[-_][A-Za-z0-9_-]{10,}"
    r"|\bAKIA[0-9A-Z]{16}\b"
    r"|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
)


_SHORTEST_SECRET = 13
"""No string shorter than this can match the secret-value pattern ("sk-" and 10 more)."""

_KEY_IS_SECRET: dict[str, bool] = {}


def _secret_key(key: str) -> bool:
    found = _KEY_IS_SECRET.get(key)
    if found is None:
        found = _SECRET_KEY.search(key) is not None
        if len(_KEY_IS_SECRET) < 4096:
            _KEY_IS_SECRET[key] = found
    return found


def redact(value: Any, secrets: frozenset[str] = frozenset()) -> Any:
    """A copy of ``value`` with secret keys, secret-looking strings and ``secrets`` masked."""
    if isinstance(value, dict):
        return {
            k: (
                REDACTED
                if v not in (None, "") and _secret_key(str(k))
                else redact(v, secrets)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v, secrets) for v in value]
    if isinstance(value, str):
        for secret in secrets:
            if len(secret) >= 4 and secret in value:
                value = value.replace(secret, REDACTED)
        if len(value) < _SHORTEST_SECRET:
            return value
        return _SECRET_VALUE.sub(REDACTED, value)
    return value
