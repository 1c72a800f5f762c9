"""The simple part of Cordum's step conditions, evaluated from a drill's ``--input``.

Understood: comparisons ``A == B``, ``!=``, ``<``, ``<=``, ``>``, ``>=`` and a bare operand
(truthiness), joined by ``&&`` and ``||`` (``&&`` binds tighter); operands are
``input.NAME`` (dotted paths into the inputs; a missing one is ``nil``), numbers, quoted
strings, ``true``, ``false``, ``nil``/``null``. Anything else (parentheses, ``!``,
``steps.*`` or function calls) is not evaluated: :func:`evaluate_condition` answers None,
and the drill lists the step as not rehearsed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

Inputs = Mapping[str, Any]

_COMPARISON = re.compile(r"^(?P<left>.+?)\s*(?P<op>==|!=|<=|>=|<|>)\s*(?P<right>.+)$")
_PATH = re.compile(r"^input(?:\.[A-Za-z_][A-Za-z0-9_-]*)+$")
_NUMBER = re.compile(r"^-?[0-9]+(?:\.[0-9]+)?$")
_UNSUPPORTED = re.compile(r"[()]|!(?!=)|\$\{")


class _NotEvaluated(Exception):
    """The expression uses something this evaluator does not understand."""


_NIL: Any = object()


def parse_input(spec: str) -> tuple[str, Any]:
    """``KEY=VALUE`` from ``--input``: VALUE as JSON when it is a number, boolean or null
    (``amount=40`` is the number 40), else the text as given. ValueError without ``=``."""
    key, sep, raw = spec.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"--input expects KEY=VALUE, got {spec!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        return key, raw
    return key, value if isinstance(value, int | float | bool) or value is None else raw


def _operand(text: str, inputs: Inputs) -> Any:
    text = text.strip()
    if _PATH.match(text):
        value: Any = inputs
        for part in text.split(".")[1:]:
            if not isinstance(value, Mapping) or part not in value:
                return _NIL
            value = value[part]
        return _NIL if value is None else value
    if _NUMBER.match(text):
        return float(text)
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    if text in ("nil", "null"):
        return _NIL
    raise _NotEvaluated(text)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        return float(value)
    return None


def _compare(left: Any, op: str, right: Any) -> bool:
    if op in ("==", "!="):
        a, b = _number(left), _number(right)
        same = a == b if a is not None and b is not None else left == right
        return same if op == "==" else not same
    a, b = _number(left), _number(right)
    if a is None or b is None:
        raise _NotEvaluated(op)  # ordering nil, text or booleans: not evaluated
    match op:
        case "<":
            return a < b
        case "<=":
            return a <= b
        case ">":
            return a > b
        case _:
            return a >= b


def _truthy(value: Any) -> bool:
    return value is not _NIL and bool(value)


def _term(text: str, inputs: Inputs) -> bool | None:
    try:
        found = _COMPARISON.match(text.strip())
        if found is None:
            return _truthy(_operand(text, inputs))
        left = _operand(found.group("left"), inputs)
        right = _operand(found.group("right"), inputs)
        return _compare(left, found.group("op"), right)
    except _NotEvaluated:
        return None


def evaluate_condition(expression: str, inputs: Inputs | None) -> bool | None:
    """True or False for a condition this module understands; None otherwise (or when
    there are no inputs). Unknown parts combine as in three-valued logic: ``false && ?``
    is false, ``true || ?`` is true."""
    if inputs is None or _UNSUPPORTED.search(expression) or not expression.strip():
        return None
    result: bool | None = False
    for alternative in expression.split("||"):
        conjunction: bool | None = True
        for part in alternative.split("&&"):
            if not part.strip():
                return None
            value = _term(part, inputs)
            if value is False:
                conjunction = False
                break
            if value is None:
                conjunction = None
        if conjunction is True:
            return True
        if conjunction is None:
            result = None
    return result
