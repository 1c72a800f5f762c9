"""Idempotency checks (AU2xx): keys exist, are stable across retries, unique per step."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from agentundo.errors import Position
from agentundo.lint.finding import Severity
from agentundo.lint.project import Problem, Project, TopicEntry
from agentundo.lint.registry import check
from agentundo.lint.sites import unknown_field_hint
from agentundo.model.templates import TemplatePlace, field_allowed, template_fields

UNSTABLE_FIELDS = frozenset(
    {
        "attempt",
        "retry",
        "retries",
        "retry_count",
        "try",
        "now",
        "time",
        "timestamp",
        "ts",
        "date",
        "datetime",
        "uuid",
        "random",
        "nonce",
        "seq",
    }
)
"""Names that change from one attempt to the next: a retry would not be deduplicated."""


@dataclass(frozen=True, slots=True)
class _Key:
    """A declared key of a side-effecting topic, with what the checks ask of its template."""

    entry: TopicEntry
    which: str
    where: tuple[str, ...]
    """Its path under the topic (a position is looked up only for a finding)."""
    template: str
    place: TemplatePlace
    fields: tuple[str, ...] | None
    """The template's fields; None when it is malformed."""

    def position(self) -> Position:
        return self.entry.position(*self.where)


def _all_keys(project: Project) -> list[_Key]:
    found = []
    for entry in project.side_effect_topics():
        key = entry.topic.idempotency_key
        if key is not None:
            found.append(
                _Key(
                    entry,
                    "idempotency key",
                    ("idempotency_key",),
                    key,
                    TemplatePlace.IDEMPOTENCY_KEY,
                    _fields(key),
                )
            )
        compensation = entry.topic.compensation
        if compensation is not None and compensation.idempotency_key is not None:
            key = compensation.idempotency_key
            found.append(
                _Key(
                    entry,
                    "compensation idempotency key",
                    ("compensation", "idempotency_key"),
                    key,
                    TemplatePlace.COMPENSATION_KEY,
                    _fields(key),
                )
            )
    return found


def _keys(project: Project) -> list[_Key]:
    """Every declared key of a side-effecting topic (once per project: three checks ask)."""
    return project.shared("idempotency-keys", _all_keys)


@lru_cache(maxsize=4096)
def _fields(template: str) -> tuple[str, ...] | None:
    """The fields of ``template`` (thousands of topics share a few templates)."""
    try:
        return tuple(template_fields(template))
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def _missing(fields: tuple[str, ...]) -> tuple[str, ...]:
    """What a key with ``fields`` lacks to be unique per run and step."""
    missing = []
    if "run_id" not in fields:
        missing.append("{run_id}")
    if "step_id" not in fields and "step_index" not in fields:
        missing.append("{step_id}")
    return tuple(missing)


@lru_cache(maxsize=4096)
def _unknown(fields: tuple[str, ...], place: TemplatePlace, has_http: bool) -> tuple[str, ...]:
    """The fields a key at ``place`` may not use (unstable ones are AU203's)."""
    return tuple(
        field
        for field in fields
        if not field_allowed(field, place, has_http=has_http) and field not in UNSTABLE_FIELDS
    )


@check("AU201", "idempotency-key-missing", Severity.ERROR, "idempotency")
def idempotency_key_missing(project: Project) -> Iterator[Problem]:
    """A side-effecting topic has no `idempotency_key`.

    Retries are certain in a runtime that retries up to 50 times: without a key the
    service cannot tell a retry from a second request, and charges twice.

    Bad:
        topics:
          payments.charge:
            side_effect: true
            rollback: compensatable
    Good:
        topics:
          payments.charge:
            side_effect: true
            rollback: compensatable
            idempotency_key: "{run_id}:{step_id}"
    """
    for entry in project.side_effect_topics():
        if entry.topic.idempotency_key is None:
            yield Problem(
                entry.position(key=True),
                f"side-effecting topic '{entry.name}' has no idempotency_key",
                'add idempotency_key: "{run_id}:{step_id}"',
            )


@check("AU202", "compensation-key-missing", Severity.ERROR, "idempotency")
def compensation_key_missing(project: Project) -> Iterator[Problem]:
    """A compensation has no `idempotency_key`.

    A rollback retries compensations and may be resumed by another worker: a refund
    sent twice without a key is applied twice.

    Bad:
        compensation:
          topic: payments.refund
    Good:
        compensation:
          topic: payments.refund
          idempotency_key: "{run_id}:{step_id}:compensate"
    """
    for entry in project.side_effect_topics():
        compensation = entry.topic.compensation
        if compensation is not None and compensation.idempotency_key is None:
            yield Problem(
                entry.position("compensation", key=True),
                f"compensation of '{entry.name}' has no idempotency_key",
                'add idempotency_key: "{run_id}:{step_id}:compensate"',
            )


@check("AU203", "idempotency-key-unstable", Severity.ERROR, "idempotency")
def idempotency_key_unstable(project: Project) -> Iterator[Problem]:
    """An idempotency key uses a field that changes between retries.

    An attempt number, a time or a random value gives every retry a new key, so the
    service applies each retry as a new request.

    Bad:
        idempotency_key: "{run_id}:{step_id}:{attempt}"
    Good:
        idempotency_key: "{run_id}:{step_id}"
    """
    for key in _keys(project):
        if not key.fields or UNSTABLE_FIELDS.isdisjoint(key.fields):
            continue
        for field in key.fields:
            if field in UNSTABLE_FIELDS:
                yield Problem(
                    key.position(),
                    f"{key.which} of '{key.entry.name}' uses '{{{field}}}', which changes "
                    "between retries",
                    f"remove '{{{field}}}' so that every retry sends the same key",
                )


@check("AU204", "idempotency-key-not-unique", Severity.ERROR, "idempotency")
def idempotency_key_not_unique(project: Project) -> Iterator[Problem]:
    """An idempotency key is not unique per run and step.

    Without `{run_id}` the next run of the workflow reuses the key and the service
    replays the old answer instead of acting; without `{step_id}` (or `{step_index}`)
    two steps of the same topic in one run share a key.

    Bad:
        idempotency_key: "{workflow_id}:{topic}"
    Good:
        idempotency_key: "{run_id}:{step_id}"
    """
    for key in _keys(project):
        if key.fields is None:
            continue
        missing = _missing(key.fields)
        if missing:
            yield Problem(
                key.position(),
                f"{key.which} of '{key.entry.name}' is not unique per run and step "
                f"(missing {' and '.join(missing)})",
                "include {run_id} and {step_id}",
            )


@check("AU205", "idempotency-key-invalid", Severity.ERROR, "idempotency")
def idempotency_key_invalid(project: Project) -> Iterator[Problem]:
    """An idempotency key template is malformed or uses an unknown field.

    Fields are `run_id`, `workflow_id`, `step_id`, `step_index`, `topic`, `env`,
    `job_id` and `params.NAME`; braces must balance (`{{` for a literal brace). A
    compensation's key may also use `{response.PATH}` (a field of the forward call's JSON
    answer, such as `{response.id}`) when the topic has an `http` block; the forward key
    cannot, as it is sent before there is an answer.

    Bad:
        idempotency_key: "{run_id}:{stepid}:{response.id}"
    Good:
        idempotency_key: "{run_id}:{step_id}"
        http: {method: POST, url: "http://ledger.internal/charges"}
        compensation:
          topic: payments.refund
          idempotency_key: "{run_id}:{step_id}:refund:{response.id}"
    """
    for key in _keys(project):
        if key.fields is None:
            yield Problem(
                key.position(),
                f"{key.which} of '{key.entry.name}' is not a valid template: {key.template!r}",
                "fields are written {name}; use {{ and }} for literal braces",
            )
            continue
        has_http = key.entry.topic.http is not None
        for field in _unknown(key.fields, key.place, has_http):
            yield Problem(
                key.position(),
                f"{key.which} of '{key.entry.name}' uses unknown field '{{{field}}}'",
                unknown_field_hint(field, key.place, has_http=has_http),
            )


@check("AU206", "compensation-key-reuses-forward-key", Severity.ERROR, "idempotency")
def compensation_key_reuses_forward_key(project: Project) -> Iterator[Problem]:
    """A compensation uses the same idempotency key template as its forward action.

    A service that deduplicates by key would treat the undo as a replay of the action
    it undoes, and do nothing.

    Bad:
        idempotency_key: "{run_id}:{step_id}"
        compensation:
          topic: payments.refund
          idempotency_key: "{run_id}:{step_id}"
    Good:
        idempotency_key: "{run_id}:{step_id}"
        compensation:
          topic: payments.refund
          idempotency_key: "{run_id}:{step_id}:compensate"
    """
    for entry in project.side_effect_topics():
        compensation = entry.topic.compensation
        if (
            compensation is not None
            and compensation.idempotency_key is not None
            and compensation.idempotency_key == entry.topic.idempotency_key
        ):
            yield Problem(
                entry.position("compensation", "idempotency_key"),
                f"compensation of '{entry.name}' reuses the forward idempotency key",
                "add a suffix such as ':compensate'",
            )
