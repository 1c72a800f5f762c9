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
from agentundo.saga.keys import KNOWN_FIELDS, template_fields

_ENV_VAR = re.compile(r"\$\{[^}]*\}")
_FIELDS = KNOWN_FIELDS | {"idempotency_key"}


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
        calls: list[tuple[tuple[str, ...], HttpCall | None]] = [(("http",), entry.topic.http)]
        if entry.topic.compensation is not None:
            calls.append((("compensation", "http"), entry.topic.compensation.http))
        for prefix, call in calls:
            if call is None:
                continue
            for path, text in _strings({"url": call.url, "body": call.body}, ()):
                yield from _problems(entry.position(*prefix, *path), entry.name, text)


def _problems(position: Position, name: str, text: str) -> Iterator[Problem]:
    try:
        fields = template_fields(_ENV_VAR.sub("", text))
    except ValueError:
        yield Problem(
            position,
            f"http template of '{name}' is malformed: {text!r}",
            "fields are written {name}; use {{ and }} for literal braces",
        )
        return
    for field in fields:
        if field not in _FIELDS and not (field.startswith("params.") and len(field) > 7):
            yield Problem(
                position,
                f"http template of '{name}' uses unknown field '{{{field}}}'",
                "fields: " + ", ".join(sorted(_FIELDS)) + ", params.NAME",
            )
