"""Keep secrets out of evidence: redact secret-looking keys and values before writing.

Explicit secrets (the environment values an executor read, the evidence key, step
params marked secret) are redacted in every form a server may echo them in: as they
are, JSON-escaped (up to three times), percent-encoded, and base64-encoded (alone or
inside a longer encoded string, at any alignment). See ``docs/evidence.md``, "Secrets in
evidence".
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from itertools import product
from typing import Any, Final

REDACTED = "[REDACTED]"

MIN_SECRET_LENGTH: Final = 4
"""Explicit secrets shorter than this are not redacted (a 1-character secret would
redact half the evidence); :func:`add_secret_values` refuses them."""

BASE64_MIN_CHARS: Final = 8
"""The fewest base64 characters (48 bits) that depend on a secret alone for a base64
form to be redacted: shorter fragments could turn up in ordinary text. Every alignment
is covered for secrets of at least 7 UTF-8 bytes; from 6 bytes, a secret that starts a
group of 3 bytes (alone, or after 3, 6, ... other bytes); below that, none."""

JSON_LEVELS: Final = 3
"""How many times over a secret may be JSON-escaped and still be found: a JSON string
(1) inside a JSON string (2) inside a JSON string (3), on top of the writer's own."""

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


# -- the forms of an explicit secret -----------------------------------------------------

_SHORT_ESCAPES: Final = {
    '"': ('\\"', "\\u0022"),
    "\\": ("\\\\",),
    "/": ("/", "\\/"),
    "\b": ("\\b",),
    "\f": ("\\f",),
    "\n": ("\\n",),
    "\r": ("\\r",),
    "\t": ("\\t",),
}
_HTML_SAFE: Final = frozenset("&'+<=>`")
"""ASCII characters that some encoders write as ``\\uXXXX`` to be safe in HTML: ``&<>``
(Go), also ``'+`` and a backquote (.NET), ``'=`` (Gson)."""

_URL_PLAIN: Final = frozenset("-._")
"""Characters no percent-encoder encodes (besides letters and digits)."""

_B64_OTHER: Final = {"+": "-", "/": "_", "-": "+", "_": "/"}
"""Each base64 character's twin in the other alphabet (standard, URL-safe)."""

_ALNUM = re.compile(r"[0-9A-Za-z]+")
_ALNUM_RUNS = re.compile(r"([0-9A-Za-z]+)")


def _u_escapes(code: int) -> tuple[str, ...]:
    """``\\uXXXX`` in lower- and upper-case hex (a surrogate pair above U+FFFF)."""
    if code > 0xFFFF:
        code -= 0x10000
        high, low = 0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF)
        return (f"\\u{high:04x}\\u{low:04x}", f"\\u{high:04X}\\u{low:04X}")
    return (f"\\u{code:04x}", f"\\u{code:04X}")


def _escapes(char: str) -> frozenset[str]:
    """How one JSON encoder or another writes ``char`` inside a string."""
    code = ord(char)
    short = _SHORT_ESCAPES.get(char)
    if short is not None:
        return frozenset(short if code >= 0x20 else (*short, *_u_escapes(code)))
    if code < 0x20:
        return frozenset(_u_escapes(code))
    if code < 0x7F and char not in _HTML_SAFE:
        return frozenset((char,))
    return frozenset((char, *_u_escapes(code)))


_ESCAPED: dict[tuple[str, int], frozenset[str]] = {}


def _escaped(char: str, level: int) -> frozenset[str]:
    """Every way ``char`` reads after ``level`` JSON encodings, each by any encoder."""
    found = _ESCAPED.get((char, level))
    if found is None:
        if level == 0:
            found = frozenset((char,))
        else:
            found = frozenset(
                "".join(parts)
                for text in _escaped(char, level - 1)
                for parts in product(*(_escapes(c) for c in text))
            )
        _ESCAPED[char, level] = found
    return found


def _utf8(text: str) -> bytes:
    """``text`` as the bytes an encoder sends (lone surrogates from undecodable bytes as
    those bytes, or as UTF-8 surrogates)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def _hex_digit(digit: str) -> str:
    return digit if digit.isdigit() else f"[{digit.upper()}{digit.lower()}]"


def _percent(char: str) -> str | None:
    """A pattern for ``char`` percent-encoded (either case of hex), or None when no
    encoder encodes it."""
    if char in _URL_PLAIN or (char.isascii() and char.isalnum()):
        return None
    return "".join(f"%{_hex_digit(h[0])}{_hex_digit(h[1])}" for h in _utf8(char).hex(" ").split())


def _alternatives(chars: Iterable[str], level: int) -> str:
    """A pattern matching any of ``chars`` as it reads after ``level`` JSON encodings,
    or percent-encoded (a space also as ``+``)."""
    literals: set[str] = set()
    patterns: list[tuple[int, str]] = []
    for char in chars:
        literals |= _escaped(char, level)
        percent = _percent(char)
        if percent is not None:
            patterns.append((3 * len(_utf8(char)), percent))
        if char == " ":  # form-encoded: "+", which an HTML-safe encoder may escape
            literals |= _escaped("+", level)
    singles = sorted(c for c in literals if len(c) == 1)
    patterns += [(len(text), re.escape(text)) for text in literals if len(text) > 1]
    if len(singles) > 1:
        patterns.append((1, "[" + "".join(re.escape(c) for c in singles) + "]"))
    elif singles:
        patterns.append((1, re.escape(singles[0])))
    patterns.sort(key=lambda item: (-item[0], item[1]))  # the longest first
    if len(patterns) == 1:
        return patterns[0][1]
    return "(?:" + "|".join(pattern for _, pattern in patterns) + ")"


def _spelled(text: str, level: int, twins: Mapping[str, str] | None = None) -> str:
    """A pattern matching ``text`` in any spelling of its characters after ``level``
    JSON encodings (and percent-encoding); ``twins`` adds a second character for some."""
    out: list[str] = []
    for run in _ALNUM_RUNS.split(text):
        if not run:
            continue
        if _ALNUM.fullmatch(run):  # letters and digits are never escaped nor encoded
            out.append(run)
            continue
        for char in run:
            twin = None if twins is None else twins.get(char)
            out.append(_alternatives((char,) if twin is None else (char, twin), level))
    return "".join(out)


_B64: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _base64_parts(data: bytes) -> list[tuple[int, str]]:
    """(alignment, the characters that depend on ``data`` alone) of ``data`` base64-encoded
    after 0, 1 or 2 other bytes (standard alphabet), leaving out those shorter than
    :data:`BASE64_MIN_CHARS`."""
    out: list[tuple[int, str]] = []
    for align in range(3):
        encoded = base64.b64encode(bytes(align) + data).decode("ascii")
        first = (8 * align + 5) // 6  # the first character of data alone
        end = (8 * (align + len(data))) // 6  # past the last one
        if end - first >= BASE64_MIN_CHARS:
            out.append((align, encoded[first:end]))
    return out


def _base64_pattern(data: bytes, align: int, own: str, level: int) -> str:
    """A pattern for ``data`` base64-encoded (standard or URL-safe alphabet, with or
    without padding) after ``align`` other bytes, whose characters of its own are ``own``.

    Those characters must be there; a character that mixes its first or last bits with
    a neighbour's may be (any character those bits allow), and so may padding when
    ``data`` ends the encoding.
    """
    pattern = _spelled(own, level, _B64_OTHER)
    if align:  # the character before mixes the neighbour's last bits with data's first
        shift = 2 * align  # the neighbour's bits in it: 2 (align 1) or 4 (align 2)
        top = data[0] >> (8 - (6 - shift))
        lead = {_B64[(high << (6 - shift)) | top] for high in range(1 << shift)}
        lead |= {_B64_OTHER.get(c, c) for c in lead}
        pattern = f"(?:{_alternatives(lead, level)})?{pattern}"
    bits = (8 * (align + len(data))) % 6  # data's bits in the character after: 0, 2 or 4
    if bits:
        low = data[-1] & ((1 << bits) - 1)
        tail = {_B64[(low << (6 - bits)) | rest] for rest in range(1 << (6 - bits))}
        tail |= {_B64_OTHER.get(c, c) for c in tail}
        padding = _alternatives("=", level) * (3 - (align + len(data)) % 3)
        pattern += f"(?:{_alternatives(tail, level)}(?:{padding})?)?"
    return pattern


def _anchor(form: str) -> str:
    """The longest run of letters and digits in ``form``: every match of its pattern
    holds it as it is."""
    return max(_ALNUM.findall(form), key=len, default="")


def _secret_heads(secret: str) -> list[tuple[int, str]]:
    """(fewest characters, anchor) of each form of ``secret``: cheap, for deciding which
    strings need to be searched before any pattern is compiled."""
    parts = _base64_parts(_utf8(secret))
    return [(len(secret), _anchor(secret)), *((len(own), _anchor(own)) for _, own in parts)]


def _secret_patterns(secret: str) -> list[tuple[int, int, str]]:
    """(fewest characters, JSON level, pattern) of each form of ``secret``: as it is at
    each level of JSON escaping (and percent-encoded), and base64-encoded at each
    alignment. Base64 has one pattern for all levels: no base64 character must be
    escaped, so the spellings of each level include those of the levels below, and one
    pattern cannot stop short of a padding or an edge character that another level
    would have taken."""
    data = _utf8(secret)
    out: dict[str, tuple[int, int]] = {}
    for level in range(JSON_LEVELS, -1, -1):
        out.setdefault(_spelled(secret, level), (len(secret), level))
    for align, own in _base64_parts(data):
        out.setdefault(_base64_pattern(data, align, own, JSON_LEVELS), (len(own), JSON_LEVELS))
    return [(length, level, pattern) for pattern, (length, level) in out.items()]


_MIN_ANCHOR = 3
"""Anchors shorter than this would let nearly every string through: a set of secrets
with a form that has none is searched for in every string long enough."""


_NUMBER_TEXT = frozenset("0123456789+-.eE")


class _Forms:
    """The forms of one set of explicit secrets, and what they did to the strings they
    have seen. The pattern is compiled when a string first may hold a form: evidence
    seldom holds a secret, and the drill does not wait for it before its first record."""

    __slots__ = ("_pattern", "anchors", "done", "numbers", "secrets", "shortest")

    def __init__(self, secrets: frozenset[str]) -> None:
        self.secrets = sorted(s for s in secrets if len(s) >= MIN_SECRET_LENGTH)
        heads = [head for secret in self.secrets for head in _secret_heads(secret)]
        self.shortest = min((length for length, _ in heads), default=0)
        """No string shorter than this holds a form."""
        anchors = sorted({anchor for _, anchor in heads}, key=len)
        self.anchors: tuple[str, ...] | None = None
        """A string that holds a form holds one of these (None: no such promise)."""
        if all(len(anchor) >= _MIN_ANCHOR for anchor in anchors):
            kept: list[str] = []
            for anchor in anchors:  # one that holds another adds nothing
                if not any(other in anchor for other in kept):
                    kept.append(anchor)
            self.anchors = tuple(kept)
        self.numbers = any(set(s) <= _NUMBER_TEXT for s in self.secrets)
        """Whether a secret could be spelled by a number (a param marked secret)."""
        self.done: dict[str, str] = {}
        self._pattern: re.Pattern[str] | None = None

    @property
    def pattern(self) -> re.Pattern[str]:
        """Every form of every secret, the longest first."""
        if self._pattern is None:
            patterns = [item for secret in self.secrets for item in _secret_patterns(secret)]
            # the longest forms first; of two as long, the more escaped one, which may go
            # on where the other stops (a secret that ends in a backslash, escaped once)
            patterns.sort(key=lambda item: (-item[0], -item[1], item[2]))
            self._pattern = re.compile("|".join(p for _, _, p in patterns) or "(?!)")
        return self._pattern

    def redact(self, value: str) -> str:
        if not self.secrets or len(value) < self.shortest:
            return value
        found = self.done.get(value)
        if found is None:
            anchors = self.anchors
            if (
                anchors is not None and not any(anchor in value for anchor in anchors)
            ) or self.pattern.search(value) is None:
                found = value
            else:
                found = self.pattern.sub(REDACTED, value)
            if type(value) is str:  # a str subclass (an enum member) keeps its type
                if len(self.done) >= _CACHE_LIMIT:
                    self.done.clear()
                self.done[value] = found
        return found

    def holds(self, number: object) -> bool:
        """Whether the text of ``number`` (an int or a float) holds a secret."""
        text = str(number)
        return (
            bool(self.secrets)
            and len(text) >= self.shortest
            and self.pattern.search(text) is not None
        )


_FORMS: dict[frozenset[str], _Forms] = {}
_FORMS_LIMIT = 64


def _forms(secrets: frozenset[str]) -> _Forms:
    """The forms of ``secrets``, built once per set (the writer redacts every record
    with the same set)."""
    found = _FORMS.get(secrets)
    if found is None:
        found = _Forms(secrets)
        if len(_FORMS) >= _FORMS_LIMIT:
            _FORMS.clear()
        _FORMS[secrets] = found
    return found


def _clear_caches() -> None:
    """Forget every built form and remembered result (benchmarks, tests)."""
    _FORMS.clear()
    _ESCAPED.clear()
    _MASKED.clear()
    _KEY_IS_SECRET.clear()


def add_secret_values(
    secrets: frozenset[str], values: Mapping[str, object], *, what: str = "step param"
) -> frozenset[str]:
    """``secrets`` with ``values`` (name: value, e.g. the step params marked secret) added.

    A value is a string, or an int or float (its ``str()``: it is also redacted where it
    is written as a number). Raises ``ValueError`` (the caller reports a usage error)
    for a value shorter than :data:`MIN_SECRET_LENGTH` characters, which would redact
    ordinary text all over the evidence, or of another type (``None``, a bool, a list,
    a mapping); the message names ``what`` and the name, never the value.
    """
    added: set[str] = set()
    for name, value in values.items():
        if isinstance(value, str):
            text = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            text = str(value)
        else:
            kind = "null" if value is None else f"a {type(value).__name__}"
            raise ValueError(
                f"{what} '{name}' is marked secret but its value is {kind}: "
                "only a string or a number can be redacted"
            )
        if len(text) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"{what} '{name}' is marked secret but its value has {len(text)} "
                f"character{'' if len(text) == 1 else 's'}; a secret needs at least "
                f"{MIN_SECRET_LENGTH} (a shorter one would redact ordinary text all over "
                "the evidence)"
            )
        added.add(text)
    return secrets | added if added else secrets


# -- redaction -----------------------------------------------------------------------------


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
    if secrets:
        value = _forms(secrets).redact(value)
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
    forms = _forms(secrets) if secrets else None
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
            if forms is not None:
                out[k] = _mask(forms.redact(v))
            elif len(v) < _SHORTEST_SECRET:
                out[k] = v
            else:
                found = masked.get(v)
                out[k] = _mask(v) if found is None else found
        elif kind in _SCALARS:
            if forms is not None and forms.numbers and kind in _NUMBERS and forms.holds(v):
                out[k] = REDACTED
            else:
                out[k] = v
        else:
            out[k] = redact(v, secrets)
    return out


_NUMBERS = frozenset({int, float})


def redact(value: Any, secrets: frozenset[str] = frozenset()) -> Any:
    """A copy of ``value`` with secret keys, secret-looking strings and ``secrets`` masked
    (in every form listed in ``docs/evidence.md``, "Secrets in evidence")."""
    if isinstance(value, dict):
        return _redact_dict(value, secrets)
    if isinstance(value, list):
        return [redact(v, secrets) for v in value]
    if isinstance(value, str):
        return _redact_str(value, secrets)
    if secrets and type(value) in _NUMBERS:
        forms = _forms(secrets)
        if forms.numbers and forms.holds(value):
            return REDACTED
    return value
