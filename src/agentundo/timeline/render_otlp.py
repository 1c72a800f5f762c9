"""``--format otlp``: each run as OpenTelemetry spans in OTLP JSON, for a tracing backend.

One ``{"resourceSpans": [...]}`` document per run, one line each (what the OpenTelemetry
Collector's file exporter writes and its ``otlpjsonfile`` receiver reads). Per run:

* a root span (``run WORKFLOW``) from the run's first to its last record, status ERROR
  unless the run's ``run_summary`` says ``SUCCEEDED``;
* a span per forward step (``execute_tool TOPIC``; a job, its retries included) with the
  GenAI attributes ``gen_ai.operation.name`` = ``execute_tool``, ``gen_ai.tool.name`` (the
  topic) and ``gen_ai.tool.call.id`` (the job), and the ``params`` and ``response`` the
  evidence holds as ``gen_ai.tool.call.arguments`` and ``gen_ai.tool.call.result``;
* a span per compensation (``compensate TOPIC``), linked to the step it undoes;

every one a child of the root. Each record becomes a span event on its job's span (the
run-level ones on the root), its fields as the event's attributes, so the attempts, the
retries and their errors are all there. Trace and span ids are derived from the run id
and the job id (sha256), so exporting the same evidence twice gives the same spans.

Nothing is added that the evidence does not hold: the evidence is already redacted, and
no opentelemetry package is imported (plain dicts written with :mod:`json`). The spans of
a run are kept until its last record: memory grows with one run's records, like
``--verify``; ``--limit`` does not apply.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from agentundo import __version__
from agentundo.evidence.events import Event, FollowUp, RunStatus
from agentundo.evidence.reader import Record
from agentundo.timeline.runs import ShowsNoProblems
from agentundo.timeline.times import parse_ts

if TYPE_CHECKING:
    from agentundo.timeline.runs import Run

SPAN_KIND_INTERNAL = 1
STATUS_UNSET = 0
STATUS_OK = 1
STATUS_ERROR = 2

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_RUN_EVENTS = frozenset(
    {
        Event.RUN_STARTED,
        Event.RUN_SUMMARY,
        Event.ROLLBACK_TRIGGERED,
        Event.ROLLBACK_FINISHED,
        Event.LOCK_ACQUIRED,
        Event.LOCK_BUSY,
        Event.LOCK_TAKEN_OVER,
        Event.LOCK_EXPIRED,
        Event.LOCK_RELEASED,
        Event.RECOVERY_STARTED,
        Event.RECOVERY_FINISHED,
    }
)
"""Records about the run, not one job: events of the root span (some carry a job_id)."""

_STEP_OUTCOMES = frozenset(
    {
        Event.STEP_SUCCEEDED,
        Event.STEP_FAILED_FATAL,
        Event.STEP_DENIED,
        Event.STEP_OUTCOME_UNKNOWN,
        Event.RUN_INTERRUPTED,
    }
)
_COMPENSATION_OUTCOMES = frozenset(
    {
        Event.COMPENSATION_SUCCEEDED,
        Event.COMPENSATION_NOT_NEEDED,
        Event.COMPENSATION_SKIPPED,
        Event.COMPENSATION_TIMED_OUT,
        Event.COMPENSATION_REJECTED,
        Event.MANUAL_FOLLOWUP,
        Event.RUN_INTERRUPTED,
    }
)
_GOOD_OUTCOMES = frozenset(
    {Event.STEP_SUCCEEDED, Event.COMPENSATION_SUCCEEDED, Event.COMPENSATION_NOT_NEEDED}
)
_NOT_ATTRIBUTES = frozenset({"event", "ts", "run_id", "workflow_id", "prev_hash", "hash", "mac"})
"""Record fields an event does not repeat: its name and time, the span's run, the chain."""

_MAX_NESTING = 8
"""Deeper values are written as a JSON string, not as nested OTLP values."""


# --- ids and times ----------------------------------------------------------------------


def trace_id(run_id: str) -> str:
    """The run's trace id: the first 16 bytes of sha256(run_id), as hex."""
    return hashlib.sha256(run_id.encode("utf-8", "surrogatepass")).digest()[:16].hex()


def span_id(run_id: str, name: str) -> str:
    """A span's id within a run: the first 8 bytes of sha256(run_id NUL name), as hex."""
    data = f"{run_id}\x00{name}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).digest()[:8].hex()


ROOT = "\x00run"
"""The root span's name in :func:`span_id` (a job id never holds a NUL)."""


def unix_nanos(value: object) -> str | None:
    """An evidence timestamp as unix nanoseconds in a string (OTLP JSON's int64), or None."""
    moment = parse_ts(value)
    if moment is None:
        return None
    delta = moment - _EPOCH
    return str((delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000)


# --- attribute values -------------------------------------------------------------------


def any_value(value: Any, depth: int = 0) -> dict[str, Any] | None:
    """A JSON value as an OTLP ``AnyValue``; None for JSON null (an attribute left out)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        if -(2**63) <= value < 2**63:
            return {"intValue": str(value)}
        return {"stringValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value} if math.isfinite(value) else {"stringValue": str(value)}
    if isinstance(value, str):
        return {"stringValue": value}
    if depth >= _MAX_NESTING:
        return {"stringValue": json.dumps(value, ensure_ascii=False, separators=(",", ":"))}
    if isinstance(value, list):
        items = (any_value(item, depth + 1) for item in value)
        return {"arrayValue": {"values": [item if item is not None else {} for item in items]}}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": attributes(value.items(), depth + 1)}}
    return {"stringValue": str(value)}


def attributes(pairs: Iterable[tuple[str, Any]], depth: int = 0) -> list[dict[str, Any]]:
    """OTLP ``KeyValue`` list of ``pairs``, leaving out null values."""
    found = []
    for key, value in pairs:
        converted = any_value(value, depth)
        if converted is not None:
            found.append({"key": str(key), "value": converted})
    return found


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


# --- one run's spans ----------------------------------------------------------------------


@dataclass(slots=True)
class _Job:
    """One job's records: a forward step (with its retries) or a compensation."""

    job_id: str
    records: list[dict[str, Any]] = field(default_factory=list)
    compensation: bool = False

    def add(self, data: dict[str, Any]) -> None:
        self.records.append(data)
        event = data.get("event")
        if (isinstance(event, str) and event.startswith("compensation_")) or (
            data.get("is_compensation") is True
        ):
            self.compensation = True

    def first(self, name: str) -> Any:
        """The first value of field ``name`` among the job's records, or None."""
        return next((r[name] for r in self.records if r.get(name) is not None), None)

    def last(self, name: str) -> Any:
        """The last value of field ``name`` among the job's records, or None."""
        return next((r[name] for r in reversed(self.records) if r.get(name) is not None), None)

    def outcome(self) -> dict[str, Any] | None:
        """The record that ended the job: its first outcome, else a last failed attempt."""
        ends = _COMPENSATION_OUTCOMES if self.compensation else _STEP_OUTCOMES
        found = next((r for r in self.records if r.get("event") in ends), None)
        if found is None and self.records:
            last = self.records[-1]
            if last.get("event") in (Event.STEP_FAILED, Event.COMPENSATION_FAILED):
                return last
        return found


@dataclass(slots=True)
class _RunSpans:
    """What one run's spans are built from, gathered record by record."""

    run_id: str
    root_records: list[dict[str, Any]] = field(default_factory=list)
    jobs: dict[str, _Job] = field(default_factory=dict)
    step_classes: dict[str, str] = field(default_factory=dict)
    """step_id → what the evidence says of its rollback (see :func:`_rollback_class`)."""
    forward: dict[str, _Job] = field(default_factory=dict)
    """step_id → its last forward job (a compensation and a follow-up find their step)."""

    def add(self, data: dict[str, Any]) -> None:
        event = data.get("event")
        job_id = data.get("job_id")
        if event == Event.MANUAL_FOLLOWUP:
            self._note_followup(data)
        if isinstance(job_id, str) and job_id and event not in _RUN_EVENTS:
            job = self.jobs.get(job_id)
            if job is None:
                job = self.jobs[job_id] = _Job(job_id)
            job.add(data)
            self._index(job)
            return
        if event == Event.MANUAL_FOLLOWUP and isinstance(data.get("step_id"), str):
            step = self._forward_job(data["step_id"])
            if step is not None:
                step.add(data)
                return
        self.root_records.append(data)

    def _note_followup(self, data: dict[str, Any]) -> None:
        category = data.get("category")
        step_id = data.get("step_id")
        if isinstance(step_id, str) and category in (
            FollowUp.IRREVERSIBLE,
            FollowUp.NO_COMPENSATION,
        ):
            self.step_classes[step_id] = str(category)

    def _index(self, job: _Job) -> None:
        step_id = job.first("step_id")
        if not isinstance(step_id, str):
            return
        if not job.compensation:
            self.forward[step_id] = job
        elif self.forward.get(step_id) is job:
            del self.forward[step_id]

    def _forward_job(self, step_id: str) -> _Job | None:
        """The last forward job of ``step_id``."""
        return self.forward.get(step_id)

    def spans(self, run: Run) -> list[dict[str, Any]]:
        """The root span, then one span per job in the order the jobs began."""
        summary = run.tally.summary or {}
        read = summary.get("read")
        read_steps = {s for s in read if isinstance(s, str)} if isinstance(read, list) else set()
        compensated_steps = {job.first("step_id") for job in self.jobs.values() if job.compensation}
        root = self._root_span(run)
        spans = [root]
        for job in self.jobs.values():
            if job.compensation:
                spans.append(self._compensation_span(job, root))
                continue
            step_id = job.first("step_id")
            known = _rollback_class(
                step_id,
                read=read_steps,
                compensated=compensated_steps,
                followups=self.step_classes,
            )
            spans.append(self._step_span(job, root, rollback_class=known))
        return spans

    def _root_span(self, run: Run) -> dict[str, Any]:
        tally = run.tally
        summary = tally.summary or {}
        started = tally.started or {}
        status = summary.get("status")
        verdict = summary.get("verdict")
        state: dict[str, Any]
        if status == RunStatus.SUCCEEDED:
            state = {"code": STATUS_UNSET}
        elif tally.summary is None:
            state = {"code": STATUS_ERROR, "message": "incomplete: no run_summary"}
        else:
            state = {"code": STATUS_ERROR, "message": f"status {status}, verdict {verdict}"}
        workflow = tally.workflow_id or "?"
        span = _span(
            run_id=self.run_id,
            span=span_id(self.run_id, ROOT),
            parent=None,
            name=f"run {workflow}",
            start=tally.first_ts,
            end=tally.last_ts,
            attrs=[
                ("gen_ai.operation.name", "invoke_agent"),
                ("gen_ai.agent.name", tally.workflow_id or None),
                ("agentundo.run_id", self.run_id),
                ("agentundo.workflow_id", tally.workflow_id or None),
                ("agentundo.env", summary.get("env", tally.env)),
                ("agentundo.scenario", summary.get("scenario", started.get("scenario"))),
                ("agentundo.status", status),
                ("agentundo.verdict", verdict),
                ("agentundo.rollback_triggered", tally.rollback_triggered),
            ],
            records=self.root_records,
            status=state,
        )
        return span

    def _job_attributes(self, job: _Job) -> list[tuple[str, Any]]:
        outcome = job.outcome()
        decision = job.last("decision")
        return [
            ("agentundo.job_id", job.job_id),
            ("agentundo.step_id", job.first("step_id")),
            ("agentundo.topic", job.first("topic")),
            ("agentundo.decision", decision if isinstance(decision, str) else None),
            ("agentundo.rule_id", job.last("rule_id")),
            ("agentundo.idempotency_key", job.first("idempotency_key")),
            ("agentundo.outcome", outcome.get("event") if outcome else None),
            ("agentundo.attempts", _attempts(job)),
        ]

    def _step_span(
        self, job: _Job, root: dict[str, Any], *, rollback_class: str | None
    ) -> dict[str, Any]:
        topic = job.first("topic")
        params = job.first("params")
        response = job.last("response")
        return _span(
            run_id=self.run_id,
            span=span_id(self.run_id, job.job_id),
            parent=root["spanId"],
            name=f"execute_tool {topic if isinstance(topic, str) else '?'}",
            start=job.records[0].get("ts"),
            end=job.records[-1].get("ts"),
            attrs=[
                ("gen_ai.operation.name", "execute_tool"),
                ("gen_ai.tool.name", topic),
                ("gen_ai.tool.call.id", job.job_id),
                ("gen_ai.tool.call.arguments", _json_text(params) if params is not None else None),
                ("gen_ai.tool.call.result", _json_text(response) if response is not None else None),
                *self._job_attributes(job),
                ("agentundo.rollback_class", rollback_class),
            ],
            records=job.records,
            status=_job_status(job),
        )

    def _compensation_span(self, job: _Job, root: dict[str, Any]) -> dict[str, Any]:
        topic = job.first("topic")
        step_id = job.first("step_id")
        undone = self._forward_job(step_id) if isinstance(step_id, str) else None
        span = _span(
            run_id=self.run_id,
            span=span_id(self.run_id, job.job_id),
            parent=root["spanId"],
            name=f"compensate {topic if isinstance(topic, str) else '?'}",
            start=job.records[0].get("ts"),
            end=job.records[-1].get("ts"),
            attrs=[
                *self._job_attributes(job),
                ("agentundo.compensation", True),
                ("agentundo.for_topic", job.first("for_topic")),
                ("agentundo.epoch", job.last("epoch")),
            ],
            records=job.records,
            status=_job_status(job),
        )
        if undone is not None:
            span["links"] = [
                {
                    "traceId": span["traceId"],
                    "spanId": span_id(self.run_id, undone.job_id),
                    "attributes": attributes([("agentundo.link", "compensates")]),
                }
            ]
        return span


def _rollback_class(
    step_id: Any,
    *,
    read: set[str],
    compensated: set[Any],
    followups: Mapping[str, str],
) -> str | None:
    """What the evidence says of a step's rollback: ``read_only`` (the summary lists it as
    read), ``irreversible`` or ``no_compensation`` (a manual follow-up says so),
    ``has_compensation`` (a compensation job names it; the catalog calls such a topic
    reversible or compensatable, which the evidence does not tell apart); else None."""
    if not isinstance(step_id, str):
        return None
    if step_id in followups:
        return followups[step_id]
    if step_id in read:
        return "read_only"
    if step_id in compensated:
        return "has_compensation"
    return None


def _attempts(job: _Job) -> int | None:
    dispatched = (Event.STEP_DISPATCHED, Event.COMPENSATION_DISPATCHED)
    count = sum(1 for r in job.records if r.get("event") in dispatched)
    return count or None


def _job_status(job: _Job) -> dict[str, Any]:
    """ERROR when the job ended badly (message: its error or reason); UNSET otherwise,
    and when no outcome is among the records shown."""
    outcome = job.outcome()
    if outcome is None or outcome.get("event") in _GOOD_OUTCOMES:
        return {"code": STATUS_UNSET}
    message = outcome.get("error") or outcome.get("reason") or outcome.get("event")
    return {"code": STATUS_ERROR, "message": str(message)}


def _span(
    *,
    run_id: str,
    span: str,
    parent: str | None,
    name: str,
    start: object,
    end: object,
    attrs: Sequence[tuple[str, Any]],
    records: Sequence[dict[str, Any]],
    status: dict[str, Any],
) -> dict[str, Any]:
    start_ns = unix_nanos(start) or "0"
    end_ns = unix_nanos(end) or start_ns
    body: dict[str, Any] = {"traceId": trace_id(run_id), "spanId": span}
    if parent is not None:
        body["parentSpanId"] = parent
    body |= {
        "name": name,
        "kind": SPAN_KIND_INTERNAL,
        "startTimeUnixNano": start_ns,
        "endTimeUnixNano": max(end_ns, start_ns, key=int),
        "attributes": attributes(attrs),
        "events": [_event(record, start_ns) for record in records],
        "status": status,
    }
    return body


def _event(record: dict[str, Any], fallback_ns: str) -> dict[str, Any]:
    """A record as a span event: named for its event type, at its time, its fields kept."""
    fields = ((k, v) for k, v in record.items() if k not in _NOT_ATTRIBUTES)
    return {
        "timeUnixNano": unix_nanos(record.get("ts")) or fallback_ns,
        "name": str(record.get("event")),
        "attributes": attributes(fields),
    }


# --- the renderer -------------------------------------------------------------------------


_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})
"""Characters that JSON leaves raw but many line readers (``str.splitlines``) split on."""


def dumps_line(document: Any) -> str:
    """``document`` as one line of compact JSON that every line reader keeps whole."""
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return text.translate(_LINE_BREAKS)


def request_of(spans: list[dict[str, Any]]) -> dict[str, Any]:
    """An OTLP ``ExportTraceServiceRequest`` (JSON) holding one run's spans."""
    resource = attributes([("service.name", "agentundo"), ("service.version", __version__)])
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": resource},
                "scopeSpans": [
                    {"scope": {"name": "agentundo", "version": __version__}, "spans": spans}
                ],
            }
        ]
    }


class OtlpRenderer(ShowsNoProblems):
    """Per run, one line of OTLP JSON (``{"resourceSpans": [...]}``): see the module."""

    writes_data = True

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._current: _RunSpans | None = None
        self._run: Run | None = None

    def record(self, run: Run, record: Record) -> None:
        if self._run is not run or self._current is None:
            self._run = run
            self._current = _RunSpans(run.tally.run_id or run.path)
        self._current.add(record.data)

    def end_run(self, run: Run) -> None:
        current = self._current if self._run is run else None
        if current is None:
            current = _RunSpans(run.tally.run_id or run.path)
        self._current = None
        self._run = None
        document = request_of(current.spans(run))
        self.stream.write(dumps_line(document) + "\n")

    def close(self) -> None:
        self.stream.flush()
