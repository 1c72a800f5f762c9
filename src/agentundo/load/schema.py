"""Validate parsed data against the published JSON Schemas, with positions and hints."""

from __future__ import annotations

import difflib
import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from agentundo.errors import InputError
from agentundo.load.yamlpos import Document, JsonPath

_REPO_SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"


def schema_path(name: str) -> Path:
    """Where ``<name>.schema.json`` lives: inside the wheel, or in the source tree."""
    packaged = resources.files("agentundo").joinpath("schemas", f"{name}.schema.json")
    if packaged.is_file():
        return Path(str(packaged))
    return _REPO_SCHEMAS / f"{name}.schema.json"


@cache
def load_schema(name: str) -> dict[str, Any]:
    with schema_path(name).open(encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    return schema


@cache
def _validator(name: str) -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(load_schema(name))


_ID_PATTERN = r"^[^\u0000-\u001f\u007f]+$"
"""The schemas' pattern for ids (``agentundo.model.common.ID_PATTERN``; a test holds the
three equal), repeated here so that loading does not import pydantic for it."""


def validate(doc: Document, name: str) -> list[InputError]:
    """Every schema violation in ``doc``, sorted by position."""
    errors = [_convert(doc, error) for error in _validator(name).iter_errors(doc.data)]
    unique = {(e.position.line, e.position.column, e.message): e for e in errors}
    return sorted(unique.values(), key=lambda e: (e.position.line, e.position.column))


def _where(path: JsonPath) -> str:
    if not path:
        return "the document"
    parts = [f"[{p}]" if isinstance(p, int) else f".{p}" for p in path]
    return "".join(parts).lstrip(".")


def _type_name(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _convert(doc: Document, error: Any) -> InputError:
    path: JsonPath = tuple(error.absolute_path)
    validator = error.validator
    where = _where(path)
    if validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = [key for key in error.instance if key not in error.schema.get("properties", {})]
        key = extra[0] if extra else ""
        if allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(allowed)}"
        else:
            hint = None
        return InputError(
            doc.position((*path, key), key=True), f"unknown key '{key}' in {where}", hint
        )
    if validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return InputError(doc.position(path, key=True), f"{where} is missing '{missing}'")
    if validator == "anyOf" and isinstance(error.instance, list):
        # Say what is wrong inside the list (an item's type, an unknown value, an empty
        # list), not that a list is not one of "string or array".
        inner = [
            c
            for c in error.context
            if len(c.absolute_path) > len(path) or c.validator not in ("type", "enum", "const")
        ]
        if inner:
            return _convert(doc, min(inner, key=lambda c: tuple(map(str, c.absolute_path))))
    if validator in ("type", "anyOf"):
        expected = error.schema.get("type")
        if isinstance(expected, list):
            expected = " or ".join(expected)
        if expected is None:
            options = [o.get("type") or "value" for o in error.schema.get("anyOf", [])]
            expected = " or ".join(str(o) for o in options)
        got = _type_name(error.instance)
        hint = None
        if isinstance(error.instance, bool) and expected == "string":
            hint = "quote the value to keep it a string"
        return InputError(doc.position(path), f"{where} must be {expected}, not {got}", hint)
    if validator in ("enum", "const"):
        options = error.schema.get("enum") or [error.schema.get("const")]
        listed = ", ".join(str(o) for o in options)
        close = difflib.get_close_matches(str(error.instance), [str(o) for o in options], n=1)
        hint = f"did you mean '{close[0]}'?" if close else None
        return InputError(
            doc.position(path), f"{where} is {error.instance!r}; expected one of: {listed}", hint
        )
    if validator == "pattern" and "propertyNames" in error.schema_path:
        # the key itself does not match: point at it and say what a name may hold
        rule = error.schema.get("description") or f"it must match {error.schema['pattern']}"
        return InputError(
            doc.position((*path, error.instance), key=True),
            f"{where}: the name {error.instance!r} is not allowed: {rule}",
        )
    if validator == "pattern" and error.schema["pattern"] == _ID_PATTERN:
        return InputError(
            doc.position(path),
            f"{where} is {error.instance!r}: an id must not hold a line break or control "
            "character (it goes into idempotency keys, HTTP headers and one-line reports)",
        )
    if validator == "pattern":
        return InputError(
            doc.position(path),
            f"{where} is {error.instance!r}, which does not match {error.schema['pattern']}",
        )
    if validator == "propertyNames":
        return InputError(doc.position(path, key=True), f"{where}: invalid name ({error.message})")
    if validator == "not" and "description" in error.schema:
        # A field the schema rules out in this context says why in its description.
        return InputError(doc.position(path, key=True), f"{where} {error.schema['description']}")
    if validator == "uniqueItems":
        return InputError(doc.position(path), f"{where} names an item more than once")
    if validator == "minItems":
        return InputError(doc.position(path), f"{where} must not be empty")
    return InputError(doc.position(path), f"{where}: {error.message}")
