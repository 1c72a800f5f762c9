"""The evidence key: where keyed sealing gets its secret (see :mod:`agentundo.evidence.chain`).

The key is the value of ``AGENTUNDO_EVIDENCE_KEY``, used as UTF-8 bytes (a hex or
base64 string is used as the text it is, not decoded). It is read where a command starts
and handed to the writer or the verifier; it is never written to evidence and never
printed, not even in part: messages about it name only the variable.
"""

from __future__ import annotations

from collections.abc import Mapping

from agentundo.errors import UsageError

ENV_VAR = "AGENTUNDO_EVIDENCE_KEY"
MIN_KEY_BYTES = 16
"""Shorter keys can be guessed offline from any evidence file sealed with them."""


def evidence_key(environ: Mapping[str, str]) -> bytes | None:
    """The key set in ``environ``, or None when the variable is unset.

    A variable that is set but empty or shorter than :data:`MIN_KEY_BYTES` is a usage
    error rather than silently unkeyed (or weakly keyed) evidence.
    """
    value = environ.get(ENV_VAR)
    if value is None:
        return None
    key = value.encode("utf-8", "surrogateescape")
    if not key:
        raise UsageError(f"{ENV_VAR} is set but empty: set a key, or unset it for unkeyed evidence")
    if len(key) < MIN_KEY_BYTES:
        raise UsageError(
            f"{ENV_VAR} is too short: use at least {MIN_KEY_BYTES} bytes of random text "
            "(e.g. the output of `openssl rand -hex 32`)"
        )
    return key
