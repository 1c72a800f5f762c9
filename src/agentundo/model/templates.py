"""Catalog templates: ``{run_id}:{step_id}:{params.order_id}``.

A catalog topic writes templates in several places (its idempotency key, its
compensation's key and params, the URL and body of an ``http`` block). Which fields a
template may use depends on the place: :func:`template_fields_for` is the one answer, for
the linter, the HTTP executor and the engine alike. ``params.NAME`` (a param of the step)
is allowed everywhere.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentundo.model.workflow import Workflow

PARAMS_PREFIX = "params."
"""``{params.NAME}`` reads the step's param ``NAME``, in every place."""


class TemplatePlace(StrEnum):
    """Where in a catalog topic a template is written; the value is the key's path."""

    IDEMPOTENCY_KEY = "idempotency_key"
    """The forward action's ``idempotency_key``."""
    COMPENSATION_KEY = "compensation.idempotency_key"
    """The compensation's ``idempotency_key``."""
    COMPENSATION_PARAMS = "compensation.params"
    """String values of the compensation's ``params``."""
    HTTP = "http"
    """The URL and body of the topic's own ``http`` block."""
    COMPENSATION_HTTP = "compensation.http"
    """The URL and body of the compensation's ``http`` block."""


KNOWN_FIELDS = frozenset(
    {"run_id", "workflow_id", "step_id", "step_index", "topic", "env", "job_id"}
)
"""Fields every template may use besides ``params.NAME``."""

_HTTP_FIELDS = KNOWN_FIELDS | {"idempotency_key"}
"""An http call also knows the idempotency key it sends."""

_FIELDS_BY_PLACE: dict[TemplatePlace, frozenset[str]] = {
    TemplatePlace.IDEMPOTENCY_KEY: KNOWN_FIELDS,
    TemplatePlace.COMPENSATION_KEY: KNOWN_FIELDS,
    TemplatePlace.COMPENSATION_PARAMS: KNOWN_FIELDS,
    TemplatePlace.HTTP: _HTTP_FIELDS,
    TemplatePlace.COMPENSATION_HTTP: _HTTP_FIELDS,
}


def template_fields_for(place: TemplatePlace) -> frozenset[str]:
    """The fields a template written at ``place`` may use besides ``params.NAME``."""
    return _FIELDS_BY_PLACE[place]


def sample_fields(
    workflow: Workflow, index: int, place: TemplatePlace = TemplatePlace.IDEMPOTENCY_KEY
) -> dict[str, Any]:
    """Stand-in values to check, before a run, that templates at ``place`` render for
    step ``index`` of ``workflow``.

    The step's own values where the workflow knows them (ids, index, its topic, env and
    params); placeholders for what only a run knows (run id, job id, idempotency key).
    Only the fields :func:`template_fields_for` allows at ``place`` are given, so a
    template that renders here uses no field the place lacks.
    """
    step = workflow.steps[index]
    values: dict[str, Any] = {
        "run_id": "run",
        "workflow_id": workflow.workflow,
        "step_id": step.id,
        "step_index": index,
        "topic": step.topic,
        "env": workflow.env,
        "job_id": "job",
        "idempotency_key": "key",
    }
    allowed = template_fields_for(place)
    fields = {name: value for name, value in values.items() if name in allowed}
    fields["params"] = step.params
    return fields


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
        if name.startswith(PARAMS_PREFIX):
            key = name[len(PARAMS_PREFIX) :]
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
