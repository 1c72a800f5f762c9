"""Explicit secrets are redacted from evidence in every form a server may echo them in.

The encoders here are written independently of the redactor (``json``, ``urllib.parse``,
``base64`` and small imitations of other languages' JSON encoders): a secret is echoed
through them, redacted and written as the writer writes a record, and no encoded form
of it may be left anywhere in the line.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from agentundo.evidence.chain import canonical_text
from agentundo.evidence.redact import (
    BASE64_MIN_CHARS,
    MIN_SECRET_LENGTH,
    REDACTED,
    add_secret_values,
    redact,
    redact_into,
)
from agentundo.evidence.writer import STRUCTURE, EvidenceWriter

# -- encoders, as servers and their libraries write ---------------------------------------


def _json_python(text: str) -> str:
    """Python's ``json.dumps`` (``ensure_ascii=True``)."""
    return json.dumps(text)[1:-1]


def _json_utf8(text: str) -> str:
    """``json.dumps(..., ensure_ascii=False)``: the evidence writer's own escaping."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


def _json_php(text: str) -> str:
    """PHP's ``json_encode``: ``\\/`` for ``/``, ``\\uXXXX`` for non-ASCII."""
    return json.dumps(text)[1:-1].replace("/", "\\/")


def _u(code: int, upper: bool = False) -> str:
    if code > 0xFFFF:
        code -= 0x10000
        return _u(0xD800 + (code >> 10), upper) + _u(0xDC00 + (code & 0x3FF), upper)
    return f"\\u{code:04X}" if upper else f"\\u{code:04x}"


def _json_go(text: str) -> str:
    """Go's ``encoding/json`` (HTML-safe): ``\\u0026``, ``\\u003c``, ``\\u003e``."""
    short = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    out = []
    for char in text:
        if char in short:
            out.append(short[char])
        elif ord(char) < 0x20 or char in "&<>\u2028\u2029":
            out.append(_u(ord(char)))
        else:
            out.append(char)
    return "".join(out)


def _json_dotnet(text: str) -> str:
    """.NET's ``System.Text.Json`` default encoder: upper-case ``\\uXXXX`` for ``"&'+<>```
    and everything outside ASCII."""
    short = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
    out = []
    for char in text:
        if char in short:
            out.append(short[char])
        elif ord(char) < 0x20 or ord(char) > 0x7E or char in "\"&'+<>`":
            out.append(_u(ord(char), upper=True))
        else:
            out.append(char)
    return "".join(out)


def _json_gson(text: str) -> str:
    """Gson (HTML-safe): ``\\u003c``, ``\\u003e``, ``\\u0026``, ``\\u003d``, ``\\u0027``."""
    return "".join(_u(ord(c)) if c in "<>&='" else c for c in _json_utf8(text))


JSON_ENCODERS: dict[str, Callable[[str], str]] = {
    "python": _json_python,
    "utf8": _json_utf8,
    "php": _json_php,
    "go": _json_go,
    "dotnet": _json_dotnet,
    "gson": _json_gson,
}


def _lower_hex(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), text)


PERCENT_ENCODERS: dict[str, Callable[[str], str]] = {
    "quote": lambda t: quote(t, safe=""),
    "quote-lower": lambda t: _lower_hex(quote(t, safe="")),
    "quote-path": quote,  # "/" left as it is
    "quote_plus": quote_plus,
    "quote_plus-lower": lambda t: _lower_hex(quote_plus(t)),
}


def _b64(data: bytes, alphabet: str, padded: bool) -> str:
    encode = base64.b64encode if alphabet == "standard" else base64.urlsafe_b64encode
    text = encode(data).decode("ascii")
    return text if padded else text.rstrip("=")


def _own_part(encoded: str, before: int, size: int) -> str:
    """The characters of a base64 encoding that depend on ``size`` bytes alone, which
    come after ``before`` other bytes."""
    return encoded[(8 * before + 5) // 6 : (8 * (before + size)) // 6]


# -- what the evidence holds ---------------------------------------------------------------


def _written(record: dict[str, Any], secrets: frozenset[str]) -> tuple[dict[str, Any], str]:
    """The record as the writer seals it (redacted, ``seq`` first) and its line."""
    body = redact_into({"seq": 0}, record, secrets, STRUCTURE)
    return body, canonical_text(body)


def _record(text: str) -> dict[str, Any]:
    """A record in which a server's answer (``text``) turns up where answers do."""
    return {
        "event": "step_succeeded",
        "run_id": "run_1",
        "job_id": "job_1",
        "step_id": "charge",
        "detail": {"status": 200, "body": text, "url": "https://api.example.com/x"},
        "error": f"the service said: {text}",
        "response": {"items": [text, 1, None]},
    }


def _echoes_in(body: dict[str, Any]) -> list[str]:
    """The values of a record made by :func:`_record` that hold the server's answer."""
    return [body["detail"]["body"], body["error"], body["response"]["items"][0]]


_SKELETON = canonical_text(redact_into({"seq": 0}, _record(""), frozenset(), STRUCTURE))
"""The line of a record with an empty answer: a form found in it (``null``, ``step``)
is in every line, the secret or not."""


def _assert_absent(form: str, body: dict[str, Any], line: str) -> None:
    """Neither ``form`` in the answer's values nor, as the writer escapes it, in the line."""
    for value in _echoes_in(body):
        assert form not in value
    written = _json_utf8(form)
    if written not in _SKELETON:
        assert written not in line


def _canonical_forms(secret: str) -> list[str]:
    """A sweep of the common forms of ``secret``, each none of the redacted evidence may
    hold, whatever the server did."""
    data = secret.encode("utf-8")
    forms = {secret, quote(secret, safe=""), quote_plus(secret)}
    for encode in JSON_ENCODERS.values():
        forms.add(encode(secret))
        forms.add(encode(encode(secret)))
    for alphabet in ("standard", "urlsafe"):
        for before in range(3):
            own = _own_part(_b64(bytes(before) + data, alphabet, True), before, len(data))
            if len(own) >= BASE64_MIN_CHARS:
                forms.add(own)
    return sorted(forms)


_MARKER_PIECES = frozenset(
    REDACTED[i:j] for i in range(len(REDACTED)) for j in range(i + 1, len(REDACTED) + 1)
)


def _fits(secret: str) -> bool:
    """Not a piece of ``[REDACTED]``, nor beginning where it ends or ending where it
    begins: replacing such a secret can spell it again, a case no redaction can help."""
    if secret in REDACTED:
        return False
    return not any(
        (secret.startswith(REDACTED[i:]) or secret.endswith(REDACTED[: len(REDACTED) - i]))
        for i in range(1, len(REDACTED))
    )


# -- strategies ----------------------------------------------------------------------------

SECRET_CHARS = st.one_of(
    st.sampled_from(list("/&<>\"\\'+=% :@?#~-_.`\n\t")),
    st.characters(min_codepoint=0x21, max_codepoint=0x7E),
    st.characters(min_codepoint=0xA0, exclude_categories=("Cs",)),
)
SECRETS = st.text(SECRET_CHARS, min_size=4, max_size=64).filter(_fits)
AROUND = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=12)
"""Text around an echo: no control characters, whose escapes in the line (``\\u0000``) could
spell a secret of digits without holding it."""
EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def echoes(draw: st.DrawFn) -> tuple[str, str, str | None]:
    """(secret, what the server sent back, the part of it that must go).

    The secret is optionally base64-encoded with bytes before and after it (a Basic
    ``user:secret`` header is one case) and percent-encoded, with text around it, then
    JSON-escaped up to three times over by any mix of encoders (a JSON string in a JSON
    body in a JSON body). The part that must go is the secret's own encoding: for base64,
    the characters that depend on the secret alone (None when shorter than
    :data:`BASE64_MIN_CHARS`: not redacted).
    """
    secret = draw(SECRETS)
    data = secret.encode("utf-8")
    core: str | None
    if draw(st.booleans()):
        before = draw(st.binary(max_size=5))
        after = draw(st.binary(max_size=5))
        alphabet = draw(st.sampled_from(["standard", "urlsafe"]))
        text = _b64(before + data + after, alphabet, draw(st.booleans()))
        own = _own_part(_b64(before + data + after, alphabet, True), len(before), len(data))
        core = own if len(own) >= BASE64_MIN_CHARS else None
        assert core is None or core in text
    else:
        text = core = secret
        left, right = draw(AROUND), draw(AROUND)
        text = left + text + right
    if draw(st.booleans()):
        encode = PERCENT_ENCODERS[draw(st.sampled_from(sorted(PERCENT_ENCODERS)))]
        text = encode(text)
        core = None if core is None else encode(core)
    for name in draw(st.lists(st.sampled_from(sorted(JSON_ENCODERS)), max_size=3)):
        encode = JSON_ENCODERS[name]
        text = encode(text)
        if draw(st.booleans()):  # a string in a JSON body, not a JSON string alone
            text = f'{{"echo": "{text}", "n": 1}}'
        core = None if core is None else encode(core)
    return secret, text, core


# -- properties ----------------------------------------------------------------------------


@EXAMPLES
@given(echoes())
def test_no_echoed_form_of_a_secret_is_written(case: tuple[str, str, str | None]) -> None:
    secret, text, core = case
    body, line = _written(_record(text), frozenset({secret}))
    if core is not None:
        _assert_absent(core, body, line)
        assert REDACTED in body["detail"]["body"]
    for form in _canonical_forms(secret):
        _assert_absent(form, body, line)


@EXAMPLES
@given(SECRETS, st.sampled_from(sorted(JSON_ENCODERS)), st.integers(0, 3))
def test_basic_auth_headers_are_redacted(secret: str, name: str, levels: int) -> None:
    """``Authorization: Basic base64(user:secret)`` echoed in a JSON body."""
    user = "agent" * (len(secret) % 3)  # the secret at each alignment: 1, 6, 11 bytes in
    data = secret.encode("utf-8")
    header = "Basic " + base64.b64encode(f"{user}:".encode() + data).decode()
    own = _own_part(header.removeprefix("Basic "), len(user) + 1, len(data))
    if len(data) >= 7:  # long enough at every alignment
        assert len(own) >= BASE64_MIN_CHARS
    text = json.dumps({"headers": {"Authorization": header}})
    for _ in range(levels):
        text = JSON_ENCODERS[name](text)
    body, line = _written(_record(text), frozenset({secret}))
    if len(own) >= BASE64_MIN_CHARS:
        for _ in range(levels):
            own = JSON_ENCODERS[name](own)
        _assert_absent(own, body, line)
        assert REDACTED in body["detail"]["body"]


@EXAMPLES
@given(SECRETS, st.text(st.characters(exclude_categories=("Cs",)), max_size=200))
def test_strings_without_a_secret_are_unchanged(secret: str, text: str) -> None:
    forms = _canonical_forms(secret)
    assume(not any(form in text for form in forms))
    assume(not any(_json_python(form) in text for form in forms))
    assert redact(text, frozenset({secret})) == redact(text)
    record = _record(text)
    with_secret, _line = _written(record, frozenset({secret}))
    without, _line = _written(record, frozenset())
    assert _echoes_in(with_secret) == _echoes_in(without)


@EXAMPLES
@given(SECRETS)
def test_structure_fields_are_never_rewritten(secret: str) -> None:
    record = {field: f"{secret}/{field}" for field in STRUCTURE}
    record["note"] = secret
    body, _line = _written(record, frozenset({secret}))
    assert {field: body[field] for field in STRUCTURE} == {
        field: f"{secret}/{field}" for field in STRUCTURE
    }
    assert body["note"] == REDACTED


# -- examples ------------------------------------------------------------------------------

TOKEN = 'tok/en &<é"\\x+='


@pytest.mark.parametrize(
    "echo",
    [
        TOKEN,
        json.dumps(TOKEN),
        json.dumps(TOKEN, ensure_ascii=False),
        json.dumps(TOKEN).replace("/", "\\/"),
        _json_go(TOKEN),
        _json_dotnet(TOKEN),
        json.dumps(json.dumps(TOKEN)),
        json.dumps(json.dumps(json.dumps(TOKEN))),
        'tok\\\\/en &<\\\\u00e9\\\\\\"\\\\\\\\x+=',  # twice escaped, "/" only once
        quote(TOKEN, safe=""),
        _lower_hex(quote(TOKEN, safe="")),
        quote_plus(TOKEN),
        _json_dotnet(quote_plus(TOKEN)),  # the space's "+" as \u002B
        json.dumps({"next": "https://x.test/?t=" + quote(TOKEN, safe="")}),
        base64.b64encode(TOKEN.encode()).decode(),
        base64.urlsafe_b64encode(TOKEN.encode()).decode().rstrip("="),
        "Basic " + base64.b64encode(b"user:" + TOKEN.encode()).decode(),
        json.dumps(json.dumps({"auth": base64.b64encode(b"ab" + TOKEN.encode()).decode()})),
    ],
)
def test_every_echoed_form_is_redacted(echo: str) -> None:
    out = redact(f"server said <{echo}> ok", frozenset({TOKEN}))
    assert REDACTED in out
    assert out.startswith("server said <") and out.endswith("> ok")
    for form in _canonical_forms(TOKEN):
        assert form not in out


@pytest.mark.parametrize("name", ["none", *sorted(JSON_ENCODERS)])
def test_a_base64_echo_is_redacted_whole(name: str) -> None:
    """No character of an encoding that carries bits of the secret is left, padding
    included, however the encoding was escaped."""
    encode = JSON_ENCODERS.get(name, str)
    secret = "correct horse battery staple?>"
    for before in (b"", b"u:", b"us:"):
        for b64 in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b64(before + secret.encode()).decode())
            assert {"/", "+", "-", "_", "="} & set(b64(secret.encode()).decode())
            out = redact(f"[{encoded}]", frozenset({secret}))
            kept = encode(b64(before).decode()[: (8 * len(before)) // 6])
            assert out == f"[{kept}{REDACTED}]"


def test_the_longest_form_goes_first() -> None:
    secrets = frozenset({"s3cr3t-token", "Bearer s3cr3t-token"})
    assert redact("auth: Bearer s3cr3t-token.", secrets) == f"auth: {REDACTED}."


def test_short_secrets_and_short_base64_parts_are_not_used() -> None:
    assert redact("abc and abcd", frozenset({"abc", ""})) == "abc and abcd"
    assert redact("abc and abcd", frozenset({"abcd"})) == f"abc and {REDACTED}"
    # "abcd" in base64 has too few characters of its own to be told from ordinary text
    assert redact("YWJjZA==", frozenset({"abcd"})) == "YWJjZA=="
    assert redact("YWJjZGVmZw==", frozenset({"abcdefg"})) == REDACTED


# -- secret step params ---------------------------------------------------------------------


def test_secret_params_join_the_secrets() -> None:
    secrets = add_secret_values(frozenset({"env-token"}), {"card": "4242 4242", "pin": 12345})
    assert secrets == {"env-token", "4242 4242", "12345"}
    assert add_secret_values(secrets, {}) is secrets


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("abc", "has 3 characters"),
        ("", "has 0 characters"),
        (7, "has 1 character;"),
        (True, "is a bool"),
        (None, "is null"),
        (["long enough"], "is a list"),
    ],
)
def test_secret_params_that_cannot_be_redacted_are_refused(value: object, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)) as caught:
        add_secret_values(frozenset(), {"pin": value}, what="step 'pay' param")
    message = str(caught.value)
    assert message.startswith("step 'pay' param 'pin' is marked secret")
    assert str(MIN_SECRET_LENGTH) in message or "string or a number" in message
    if isinstance(value, str) and value:
        assert value not in message  # the secret is never shown


def test_a_secret_number_is_redacted_where_it_is_written_as_a_number() -> None:
    secrets = add_secret_values(frozenset(), {"pin": 918273})
    body, line = _written(
        {"event": "step_dispatched", "params": {"pin": 918273, "amount": 5, "x": [918273]}},
        secrets,
    )
    assert body["params"] == {"pin": REDACTED, "amount": 5, "x": [REDACTED]}
    assert "918273" not in line
    assert redact(918273.5, secrets) == REDACTED
    assert redact(True, secrets) is True


def test_the_writer_redacts_every_form_of_its_key(tmp_path: Any) -> None:
    key = "k/e&y+" + "0123456789abcdef"
    path = tmp_path / "run.jsonl"
    echoes = [
        json.dumps(key).replace("/", "\\/"),
        quote(key, safe=""),
        base64.b64encode(key.encode()).decode(),
    ]
    with EvidenceWriter(path, key=key.encode()) as writer:
        writer.write({"event": "step_succeeded", "detail": {"body": " ".join(echoes)}})
    text = path.read_text("utf-8")
    for form in _canonical_forms(key):
        assert _json_utf8(form) not in text
    assert text.count(REDACTED) == 3
