"""Where a catalog topic writes templates, each with its path, for the template checks.

:func:`agentundo.model.templates.compensation_templates` lists what a compensation
renders; the checks also need where each template is written (to point at it and to
name it in a message), and which strings may read the environment (``${VAR}`` in an
``http`` URL or header value, which the executor resolves before any template is filled).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from agentundo.model.catalog import HttpCall, Topic
from agentundo.model.common import Rollback
from agentundo.model.templates import (
    RESPONSE_PLACES,
    RESPONSE_PREFIX,
    TemplatePlace,
    allowed_text,
    template_fields,
)

ENV_VAR = re.compile(r"\$\{[^}]*\}")
"""``${VAR}`` or ``${VAR:-default}``: read from the environment in URLs and header values."""

TemplatePath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Site:
    """One template string of a topic: where it is written and what it says."""

    place: TemplatePlace
    path: TemplatePath
    """Keys under the topic, e.g. ``("compensation", "http", "headers", "X-Order")``."""
    text: str
    env: bool = False
    """``${VAR}`` is an environment reference here (a URL or a header value)."""
    secret: bool = False
    """A header value: may hold a credential, so a message never shows it."""

    @property
    def where(self) -> str:
        return dotted(self.path)

    def fields(self) -> list[str]:
        """The fields the template uses; ValueError when it is malformed."""
        return template_fields(ENV_VAR.sub("", self.text) if self.env else self.text)


def dotted(path: TemplatePath) -> str:
    """``("compensation", "http", "body", "tags", 0)`` as ``compensation.http.body.tags[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _strings(value: Any, path: TemplatePath) -> Iterator[tuple[TemplatePath, str]]:
    """Every string in a value with its path (keys of a mapping stay literal)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))


def http_sites(call: HttpCall, prefix: TemplatePath, place: TemplatePlace) -> Iterator[Site]:
    """The URL, header values and body strings of an ``http`` block written at ``prefix``."""
    yield Site(place, (*prefix, "url"), call.url, env=True)
    for name, value in (call.headers or {}).items():
        yield Site(place, (*prefix, "headers", name), value, env=True, secret=True)
    for path, text in _strings(call.body, (*prefix, "body")):
        yield Site(place, path, text)


def compensation_sites(topic: Topic) -> Iterator[Site]:
    """Every template a topic's compensation renders (as
    :func:`~agentundo.model.templates.compensation_templates`), with its path."""
    comp = topic.compensation
    if comp is None:
        return
    if comp.idempotency_key:
        yield Site(
            TemplatePlace.COMPENSATION_KEY,
            ("compensation", "idempotency_key"),
            comp.idempotency_key,
        )
    for path, text in _strings(comp.params or {}, ("compensation", "params")):
        yield Site(TemplatePlace.COMPENSATION_PARAMS, path, text)
    if comp.http is not None:
        yield from http_sites(comp.http, ("compensation", "http"), TemplatePlace.COMPENSATION_HTTP)


def compensation_dispatched(topic: Topic) -> bool:
    """Whether a rollback dispatches the topic's compensation (the engine stacks only
    side-effecting steps and never compensates an irreversible one)."""
    return (
        topic.side_effect
        and topic.compensation is not None
        and topic.rollback is not Rollback.IRREVERSIBLE
    )


RESPONSE_WHERE = (
    "{response.PATH} (the forward call's JSON answer) may be used only in a compensation's "
    "idempotency_key, params and own http block, of a topic that has an http block"
)


def unknown_field_hint(field: str, place: TemplatePlace, *, has_http: bool) -> str:
    """The hint for ``field``, which a template at ``place`` may not use."""
    fields = "fields: " + allowed_text(place, has_http=has_http)
    if field != "response" and not field.startswith(RESPONSE_PREFIX):
        return fields
    if place not in RESPONSE_PLACES:
        return f"{RESPONSE_WHERE}; {fields}"
    if not has_http:
        return (
            "{response.PATH} reads the forward call's JSON answer, and this topic has no "
            f"http block to answer; {fields}"
        )
    return (
        "a response path is written {response.NAME} or {response.NAME.NAME} (letters, "
        f"digits, _ and -); {fields}"
    )
