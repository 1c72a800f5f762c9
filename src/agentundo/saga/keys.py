"""Idempotency-key templates: ``{run_id}:{step_id}:{params.order_id}``."""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from typing import Any

KNOWN_FIELDS = frozenset(
    {"run_id", "workflow_id", "step_id", "step_index", "topic", "env", "job_id"}
)
"""Fields a template may use besides ``params.NAME``."""

_FORMATTER = string.Formatter()


def template_fields(template: str) -> list[str]:
    """The field names a template uses, in order; ValueError when it is malformed."""
    fields: list[str] = []
    for _literal, name, spec, conversion in _FORMATTER.parse(template):
        if name is None:
            continue
        if not name or spec or conversion:
            raise ValueError(f"invalid field '{{{name}}}' in template {template!r}")
        fields.append(name)
    return fields


_PARSED: dict[str, tuple[tuple[str, str | None], ...]] = {}


def _parse(template: str) -> tuple[tuple[str, str | None], ...] | None:
    """``(literal, field name)`` pairs of a template (cached); None when it is malformed."""
    parts = _PARSED.get(template)
    if parts is None:
        try:
            parts = tuple((lit, name) for lit, name, _s, _c in _FORMATTER.parse(template))
        except ValueError:
            return None
        if len(_PARSED) < 4096:
            _PARSED[template] = parts
    return parts


def render_key(template: str, fields: Mapping[str, Any]) -> str:
    """Fill a template; ``params.NAME`` reads ``fields['params'][NAME]``."""
    parts: Iterable[tuple[str, str | None]] | None = _parse(template)
    if parts is None:  # malformed: fail exactly where (and how) the formatter does
        parts = ((lit, name) for lit, name, _s, _c in _FORMATTER.parse(template))
    out: list[str] = []
    params = fields.get("params") or {}
    for literal, name in parts:
        out.append(literal)
        if name is None:
            continue
        if name.startswith("params."):
            key = name[len("params.") :]
            if key not in params:
                raise KeyError(name)
            out.append(str(params[key]))
        else:
            out.append(str(fields[name]))
    return "".join(out)


def derived_compensation_key(
    *, run_id: str, workflow_id: str, step_id: str, topic: str, step_index: int
) -> str:
    """The key of a compensation whose catalog entry declares no template.

    Deterministic from the workflow id, the step id, the compensation topic and the step
    index, so a redelivered or retried compensation carries the same key; the run id keeps
    next week's drill from looking like a replay of this week's to the service.
    """
    return f"undo:{run_id}:{workflow_id}:{step_id}:{topic}:{step_index}"
