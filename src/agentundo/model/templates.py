"""Catalog templates: ``{run_id}:{step_id}:{params.order_id}``.

A catalog topic writes templates in several places (its idempotency key, its
compensation's key and params, the URL and body of an ``http`` block). Which fields a
template may use depends on the place: :func:`template_fields_for` is the one answer, for
the linter, the HTTP executor and the engine alike. ``params.NAME`` (a param of the step)
is allowed everywhere.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Iterator, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentundo.model.catalog import Topic
    from agentundo.model.workflow import Workflow

PARAMS_PREFIX = "params."
"""``{params.NAME}`` reads the step's param ``NAME``, in every place."""

RESPONSE_PREFIX = "response."
"""``{response.PATH}`` reads the forward call's JSON answer (``response.id``,
``response.data.id``): only in compensation templates of a topic that has ``http``."""

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")

ENV_REFERENCE = re.compile(r"\$\{[^}]*\}")
"""``${VAR}`` or ``${VAR:-default}`` in a URL or header: the environment, not a field."""

ENV_NAME = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}")
"""The name of each well-formed ``${VAR}`` reference."""


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


RESPONSE_PLACES = frozenset(
    {
        TemplatePlace.COMPENSATION_KEY,
        TemplatePlace.COMPENSATION_PARAMS,
        TemplatePlace.COMPENSATION_HTTP,
    }
)
"""Where ``{response.PATH}`` may be written (when the forward topic has ``http``)."""


def template_fields_for(place: TemplatePlace) -> frozenset[str]:
    """The fields a template written at ``place`` may use besides ``params.NAME``."""
    return _FIELDS_BY_PLACE[place]


def response_path(field: str) -> tuple[str, ...] | None:
    """``response.data.id`` as ``("data", "id")``; None when ``field`` is no response path."""
    if not field.startswith(RESPONSE_PREFIX):
        return None
    parts = tuple(field[len(RESPONSE_PREFIX) :].split("."))
    return parts if all(_NAME.match(part) for part in parts) else None


def field_allowed(field: str, place: TemplatePlace, *, has_http: bool) -> bool:
    """Whether a template at ``place`` of a topic (``has_http``: it has an ``http`` block)
    may use ``field``."""
    if field in _FIELDS_BY_PLACE[place]:
        return True
    if field.startswith(PARAMS_PREFIX):
        return len(field) > len(PARAMS_PREFIX)
    return has_http and place in RESPONSE_PLACES and response_path(field) is not None


def allowed_text(place: TemplatePlace, *, has_http: bool) -> str:
    """The fields of ``place``, for a hint: ``env, job_id, ..., params.NAME[, response.PATH]``."""
    names = [*sorted(_FIELDS_BY_PLACE[place]), "params.NAME"]
    if has_http and place in RESPONSE_PLACES:
        names.append("response.PATH")
    return ", ".join(names)


def lookup_response(response: Mapping[str, Any] | None, path: tuple[str, ...]) -> Any:
    """The value at ``path`` in a JSON answer; KeyError when it has none there."""
    value: Any = response
    for part in path:
        if not isinstance(value, Mapping) or part not in value:
            raise KeyError(RESPONSE_PREFIX + ".".join(path))
        value = value[part]
    if isinstance(value, Mapping | list) or value is None:
        raise KeyError(RESPONSE_PREFIX + ".".join(path))  # only a scalar names an effect
    return value


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
    """Fill a template; ``params.NAME`` reads ``fields['params'][NAME]``,
    ``response.PATH`` reads ``fields['response']`` (the forward answer's recorded fields)."""
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
        elif name.startswith(RESPONSE_PREFIX):
            path = response_path(name)
            if path is None:
                raise KeyError(name)
            out.append(str(lookup_response(fields.get("response"), path)))
        else:
            out.append(str(fields[name]))
    return "".join(out)


def compensation_key(
    template: str | None, fields: Mapping[str, Any], *, derive: bool
) -> str | None:
    """The idempotency key of a compensation: its template rendered with ``fields`` (those
    of :meth:`key_fields`: run, workflow, step, index, topic, params, response), else, with
    ``derive``, :func:`derived_compensation_key`; else None."""
    if template:
        return render_key(template, fields)
    if not derive:
        return None
    return derived_compensation_key(
        run_id=str(fields["run_id"]),
        workflow_id=str(fields["workflow_id"]),
        step_id=str(fields["step_id"]),
        topic=str(fields["topic"]),
        step_index=int(fields["step_index"]),
    )


def derived_compensation_key(
    *, run_id: str, workflow_id: str, step_id: str, topic: str, step_index: int
) -> str:
    """The key of a compensation whose catalog entry declares no template.

    Deterministic from the workflow id, the step id, the compensation topic and the step
    index, so a redelivered or retried compensation carries the same key; the run id keeps
    next week's drill from looking like a replay of this week's to the service.
    """
    return f"undo:{run_id}:{workflow_id}:{step_id}:{topic}:{step_index}"


def strings_in(value: Any) -> Iterator[str]:
    """Every string in a template value (a JSON body, params): keys stay literal."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))


def compensation_templates(topic: Topic) -> Iterator[tuple[TemplatePlace, str]]:
    """Every template a topic's compensation renders: its key, its params' strings, and
    the URL, header values and body strings of its own ``http`` block."""
    comp = topic.compensation
    if comp is None:
        return
    if comp.idempotency_key:
        yield TemplatePlace.COMPENSATION_KEY, comp.idempotency_key
    for text in strings_in(comp.params or {}):
        yield TemplatePlace.COMPENSATION_PARAMS, text
    if comp.http is not None:
        yield TemplatePlace.COMPENSATION_HTTP, comp.http.url
        for text in (comp.http.headers or {}).values():
            yield TemplatePlace.COMPENSATION_HTTP, text
        for text in strings_in(comp.http.body):
            yield TemplatePlace.COMPENSATION_HTTP, text


def response_fields(topic: Topic) -> list[str]:
    """The ``response.PATH`` fields a topic's compensation uses, in order, once each."""
    found: dict[str, None] = {}
    for _place, text in compensation_templates(topic):
        try:
            names = template_fields(ENV_REFERENCE.sub("", text))
        except ValueError:
            continue  # malformed: lint reports it, the drill refuses it before any call
        for name in names:
            if response_path(name) is not None:
                found.setdefault(name)
    return list(found)


def pick_response(names: Iterable[str], response: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``response.PATH`` fields ``names`` of a JSON answer, nested as in the answer;
    a path the answer lacks (or holds no scalar at) is left out."""
    kept: dict[str, Any] = {}
    for name in names:
        path = response_path(name)
        if path is None:
            continue
        try:
            value = lookup_response(response, path)
        except KeyError:
            continue
        node = kept
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return kept
