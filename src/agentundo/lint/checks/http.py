"""HTTP endpoint checks (AU5xx): the templates `--executor http` renders must render."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from agentundo.errors import Position
from agentundo.lint.finding import Severity
from agentundo.lint.project import Problem, Project
from agentundo.lint.registry import check
from agentundo.model.catalog import HttpCall
from agentundo.model.templates import (
    PARAMS_PREFIX,
    TemplatePlace,
    template_fields,
    template_fields_for,
)

_ENV_VAR = re.compile(r"\$\{[^}]*\}")


def _strings(
    value: Any, path: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))


@check("AU501", "http-template-invalid", Severity.ERROR, "http")
def http_template_invalid(project: Project) -> Iterator[Problem]:
    """An `http` URL or body template is malformed or uses an unknown field.

    `agentundo drill --executor http` fills `{run_id}`, `{workflow_id}`, `{step_id}`,
    `{step_index}`, `{topic}`, `{env}`, `{job_id}`, `{idempotency_key}` and
    `{params.NAME}`; `${VAR}` reads an environment variable. Anything else fails the
    call before it is sent, in the middle of a rollback.

    Bad:
        http:
          method: POST
          url: "http://ledger.internal/charges/{stepid}"
    Good:
        http:
          method: POST
          url: "http://ledger.internal/charges/{step_id}"
    """
    for entry in project.side_effect_topics():
        calls: list[tuple[TemplatePlace, tuple[str, ...], HttpCall | None]] = [
            (TemplatePlace.HTTP, ("http",), entry.topic.http)
        ]
        if entry.topic.compensation is not None:
            calls.append(
                (
                    TemplatePlace.COMPENSATION_HTTP,
                    ("compensation", "http"),
                    entry.topic.compensation.http,
                )
            )
        for place, prefix, call in calls:
            if call is None:
                continue
            for path, text in _strings({"url": call.url, "body": call.body}, ()):
                yield from _problems(entry.position(*prefix, *path), entry.name, text, place)


def _problems(position: Position, name: str, text: str, place: TemplatePlace) -> Iterator[Problem]:
    try:
        fields = template_fields(_ENV_VAR.sub("", text))
    except ValueError:
        yield Problem(
            position,
            f"http template of '{name}' is malformed: {text!r}",
            "fields are written {name}; use {{ and }} for literal braces",
        )
        return
    allowed = template_fields_for(place)
    for field in fields:
        if field not in allowed and not (
            field.startswith(PARAMS_PREFIX) and len(field) > len(PARAMS_PREFIX)
        ):
            yield Problem(
                position,
                f"http template of '{name}' uses unknown field '{{{field}}}'",
                "fields: " + ", ".join(sorted(allowed)) + ", params.NAME",
            )
