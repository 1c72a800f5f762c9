"""HTTP endpoint checks (AU5xx): the templates `--executor http` renders must render."""

from __future__ import annotations

from collections.abc import Iterator

from agentundo.lint.finding import Severity
from agentundo.lint.project import Problem, Project, TopicEntry
from agentundo.lint.registry import check
from agentundo.lint.sites import Site, http_sites, unknown_field_hint
from agentundo.model.templates import TemplatePlace, field_allowed


@check("AU501", "http-template-invalid", Severity.ERROR, "http")
def http_template_invalid(project: Project) -> Iterator[Problem]:
    """An `http` URL, header or body template is malformed or uses an unknown field.

    `agentundo drill --executor http` fills `{run_id}`, `{workflow_id}`, `{step_id}`,
    `{step_index}`, `{topic}`, `{env}`, `{job_id}`, `{idempotency_key}` and
    `{params.NAME}` in the URL, the header values and the body strings; `${VAR}` in the
    URL or a header value reads an environment variable, and `{{`/`}}` write literal
    braces. A compensation's own `http` block may also read the forward call's JSON answer
    as `{response.PATH}` (`{response.id}`, `{response.data.id}`) when the topic has an
    `http` block of its own; the forward call cannot, it has no answer yet. Anything else
    fails the call before it is sent, in the middle of a rollback.

    Bad:
        http:
          method: POST
          url: "http://ledger.internal/charges/{stepid}"
          headers: {X-Charge: "{response.id}"}  # the forward call has no answer yet
    Good:
        http:
          method: POST
          url: "http://ledger.internal/charges/{step_id}"
        compensation:
          topic: payments.refund
          http:
            method: POST
            url: "http://ledger.internal/charges/{response.id}/refund"
    """
    for entry in project.side_effect_topics():
        has_http = entry.topic.http is not None
        if entry.topic.http is not None:
            for site in http_sites(entry.topic.http, ("http",), TemplatePlace.HTTP):
                yield from _problems(entry, site, has_http=has_http)
        comp = entry.topic.compensation
        if comp is not None and comp.http is not None:
            prefix = ("compensation", "http")
            for site in http_sites(comp.http, prefix, TemplatePlace.COMPENSATION_HTTP):
                yield from _problems(entry, site, has_http=has_http)


def _problems(entry: TopicEntry, site: Site, *, has_http: bool) -> Iterator[Problem]:
    position = entry.position(*site.path)
    try:
        fields = site.fields()
    except ValueError:
        shown = "" if site.secret else f": {site.text!r}"  # a header value may be a secret
        yield Problem(
            position,
            f"{site.where} template of '{entry.name}' is malformed{shown}",
            "fields are written {name}; use {{ and }} for literal braces",
        )
        return
    for field in fields:
        if not field_allowed(field, site.place, has_http=has_http):
            hint = unknown_field_hint(field, site.place, has_http=has_http)
            if not site.env and "${" in site.text:
                hint = "${VAR} reads the environment only in the url and header values; " + hint
            yield Problem(
                position,
                f"{site.where} template of '{entry.name}' uses unknown field '{{{field}}}'",
                hint,
            )
