"""The evidence key: where keyed sealing gets its secret (see :mod:`agentundo.evidence.chain`).

The key is the value of ``AGENTUNDO_EVIDENCE_KEY``, used as UTF-8 bytes (a hex or
base64 string is used as the text it is, not decoded). It is read where a command starts
and handed to the writer or the verifier; it is never written to evidence and never
printed, not even in part: messages about it name only the variable.

``AGENTUNDO_REQUIRE_KEY`` (or ``agentundo timeline --verify --require-key``) makes the key
mandatory for verification: without it set, verifying is a usage error, and with it every
chain must be keyed throughout (see :func:`key_required`, :func:`required_key`).
"""

from __future__ import annotations

from collections.abc import Mapping

from agentundo.errors import UsageError

ENV_VAR = "AGENTUNDO_EVIDENCE_KEY"
REQUIRE_ENV_VAR = "AGENTUNDO_REQUIRE_KEY"
"""Set to a true value (``1``, ``true``, ``yes``, ``on``) to verify as ``--require-key``."""
REQUIRE_OPTION = "--require-key"
_TRUE = frozenset({"1", "true", "yes", "on", "y", "t"})
_FALSE = frozenset({"", "0", "false", "no", "off", "n", "f"})
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


def key_required(environ: Mapping[str, str]) -> bool:
    """Whether ``AGENTUNDO_REQUIRE_KEY`` asks for ``--require-key``: a true value (``1``,
    ``true``, ``yes``, ``on``, any case) does; unset, empty, ``0``, ``false``, ``no`` or
    ``off`` does not; anything else is a usage error rather than a guess either way."""
    value = environ.get(REQUIRE_ENV_VAR)
    if value is None:
        return False
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    # not echoed: the evidence key pasted into the wrong variable must not reach a log
    raise UsageError(
        f"{REQUIRE_ENV_VAR} must be 1, true, yes or on (or 0, false, no, off); "
        "its value is none of these"
    )


def required_key(environ: Mapping[str, str], *, option: bool) -> tuple[bytes | None, bool]:
    """The evidence key for verifying, and whether it is required (``option``:
    ``--require-key`` was given; else ``AGENTUNDO_REQUIRE_KEY`` decides).

    A required key that is not set is a usage error naming what required it.
    """
    key = evidence_key(environ)
    required = option or key_required(environ)
    if required and key is None:
        why = REQUIRE_OPTION if option else f"{REQUIRE_ENV_VAR} (set to a true value)"
        raise UsageError(
            f"{why} needs the evidence key: {ENV_VAR} is not set; set it to the key the "
            "evidence was sealed with"
        )
    return key, required
