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

_EMPTY = (None, "")
_CACHE_LIMIT = 4096
_KEY_IS_SECRET: dict[str, bool] = {}
_MASKED: dict[str, str] = {}
"""Strings already run through the secret-value pattern (no ``secrets``): evidence repeats
the same run ids, actors and keys in every record, and the pattern is the costly part."""

_SCALARS = frozenset({int, float, bool, type(None)})


def _secret_key(key: str) -> bool:
    found = _KEY_IS_SECRET.get(key)
    if found is None:
        found = _SECRET_KEY.search(key) is not None
        if len(_KEY_IS_SECRET) < _CACHE_LIMIT:
            _KEY_IS_SECRET[key] = found
    return found


def _mask(value: str) -> str:
    """``value`` with secret-looking substrings masked (no explicit secrets)."""
    if len(value) < _SHORTEST_SECRET:
        return value
    if type(value) is not str:  # a str subclass (an enum member): not cached
        return _SECRET_VALUE.sub(REDACTED, value)
    found = _MASKED.get(value)
    if found is None:
        found = _SECRET_VALUE.sub(REDACTED, value)
        if len(_MASKED) >= _CACHE_LIMIT:
            _MASKED.clear()
        _MASKED[value] = found
    return found


def _redact_str(value: str, secrets: frozenset[str]) -> str:
    for secret in secrets:
        if len(secret) >= 4 and secret in value:
            value = value.replace(secret, REDACTED)
    return _mask(value)


def _redact_dict(value: dict[Any, Any], secrets: frozenset[str]) -> dict[Any, Any]:
    return redact_into({}, value, secrets)


def redact_into(
    out: dict[Any, Any],
    value: dict[Any, Any],
    secrets: frozenset[str] = frozenset(),
    keep: frozenset[str] = frozenset(),
) -> dict[Any, Any]:
    """Add the items of ``value``, redacted, to ``out``; return ``out``.

    ``redact_into({"seq": 1}, record)`` is ``redact({"seq": 1, **record})`` with one copy
    fewer (``seq`` is not secret). The items named in ``keep`` are copied as they are.
    This is the hot path of evidence writing: the common cases are inlined, the rest
    recurses.
    """
    key_is_secret = _KEY_IS_SECRET
    masked = _MASKED
    for k, v in value.items():
        if k in keep:
            out[k] = v
            continue
        secret = key_is_secret.get(k) if type(k) is str else None
        if secret is None:
            secret = _secret_key(str(k))
        if secret and v not in _EMPTY:
            out[k] = REDACTED
            continue
        kind = type(v)
        if kind is str:
            if secrets:
                out[k] = _redact_str(v, secrets)
            elif len(v) < _SHORTEST_SECRET:
                out[k] = v
            else:
                found = masked.get(v)
                out[k] = _mask(v) if found is None else found
        elif kind in _SCALARS:
            out[k] = v
        else:
            out[k] = redact(v, secrets)
    return out


def redact(value: Any, secrets: frozenset[str] = frozenset()) -> Any:
    """A copy of ``value`` with secret keys, secret-looking strings and ``secrets`` masked."""
    if isinstance(value, dict):
        return _redact_dict(value, secrets)
    if isinstance(value, list):
        return [redact(v, secrets) for v in value]
    if isinstance(value, str):
        return _redact_str(value, secrets)
    return value
