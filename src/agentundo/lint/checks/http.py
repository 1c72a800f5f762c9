"""HTTP endpoint checks (AU5xx): the templates `--executor http` renders must render."""

from __future__ import annotations

from collections.abc import Iterator

from agentundo.lint.finding import Severity
from agentundo.lint.project import Problem, Project, TopicEntry
from agentundo.lint.registry import check
from agentundo.lint.sites import Site, http_sites, unknown_field_hint
from agentundo.model.catalog import HttpCall
from agentundo.model.templates import ENV_NAME, ENV_REFERENCE, TemplatePlace, field_allowed


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


def _env_sites(project: Project) -> Iterator[tuple[TopicEntry, Site, dict[str, bool]]]:
    """Every URL and header value of every ``http`` block, with its catalog's readable
    variables (name -> whether its value is a secret)."""
    readable_in: dict[int, dict[str, bool]] = {}  # by catalog file: topics share them
    for entry in project.topics.values():
        topic = entry.topic
        blocks: list[tuple[tuple[str, ...], HttpCall, TemplatePlace]] = []
        if topic.http is not None:
            blocks.append((("http",), topic.http, TemplatePlace.HTTP))
        if topic.compensation is not None and topic.compensation.http is not None:
            blocks.append(
                (("compensation", "http"), topic.compensation.http, TemplatePlace.COMPENSATION_HTTP)
            )
        if not blocks:  # most topics make no HTTP call
            continue
        readable = readable_in.get(id(entry.file))
        if readable is None:
            readable = readable_in[id(entry.file)] = entry.file.model.readable()
        for prefix, call, place in blocks:
            for site in http_sites(call, prefix, place):
                if site.env:
                    yield entry, site, readable


@check("AU502", "env-variable-not-listed", Severity.ERROR, "http")
def env_variable_not_listed(project: Project) -> Iterator[Problem]:
    """An `http` URL or header reads an environment variable the catalog does not list.

    A drill reads only the variables a catalog names in its top-level `environment:`
    list, and never agentundo's own (`AGENTUNDO_*`, such as the evidence key): otherwise a
    catalog change in a pull request could send any CI secret to any host. The drill
    refuses such a catalog before any call (exit 2).

    Bad:
        topics:
          payments.charge:
            http: {method: POST, url: "https://ledger/charges", headers: {Authorization: "Bearer ${CI_DEPLOY_TOKEN}"}}
    Good:
        environment: [LEDGER_TOKEN]
        topics:
          payments.charge:
            http: {method: POST, url: "https://ledger/charges", headers: {Authorization: "Bearer ${LEDGER_TOKEN}"}}
    """
    for entry, site, readable in _env_sites(project):
        for name in ENV_NAME.findall(site.text):
            if name.startswith("AGENTUNDO_"):
                yield Problem(
                    entry.position(*site.path),
                    f"{site.where} of '{entry.name}' reads ${{{name}}}: agentundo's own "
                    "variables (AGENTUNDO_*) are never readable by templates",
                    "give the endpoint its own variable",
                )
            elif name not in readable:
                yield Problem(
                    entry.position(*site.path),
                    f"{site.where} of '{entry.name}' reads ${{{name}}}, which the catalog's "
                    "`environment:` list does not name",
                    f"add it to the catalog's top-level list: environment: [{name}]",
                )


@check("AU503", "secret-in-url", Severity.WARNING, "http")
def secret_in_url(project: Project) -> Iterator[Problem]:
    """A secret environment variable is written into a URL's path or query.

    A secret in a URL ends up in logs and proxies: access logs, tracing, browser and
    proxy histories keep whole URLs. Send it in a header instead. A variable listed as
    `{name: VAR, secret: false}` (a service's base URL, say) is not flagged.

    Bad:
        url: "https://ledger.internal/charges?api_key=${LEDGER_KEY}"
    Good:
        url: "https://ledger.internal/charges"
        headers: {Authorization: "Bearer ${LEDGER_KEY}"}
    """
    for entry, site, readable in _env_sites(project):
        if site.path[-1] != "url":
            continue
        for match in ENV_REFERENCE.finditer(site.text):
            name = ENV_NAME.findall(match.group(0))
            if not name or not readable.get(name[0], False):
                continue
            if _in_authority(site.text, match.start()):
                continue
            yield Problem(
                entry.position(*site.path),
                f"url of '{entry.name}' puts the secret ${{{name[0]}}} in its path or query: "
                "a secret in a URL ends up in logs and proxies",
                f'send it in a header instead, e.g. headers: {{Authorization: "Bearer ${{{name[0]}}}"}}',
            )


def _in_authority(url: str, at: int) -> bool:
    """Whether position ``at`` of ``url`` is before its path (the scheme, host and port)."""
    start = url.find("://")
    if start < 0:
        return at == 0  # "${BASE}/charges": the variable is the whole base
    path = url.find("/", start + 3)
    return path < 0 or at < path
