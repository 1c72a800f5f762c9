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
no opentelemetry package is imported (plain dicts written with :mod:`json`). A run's
records are kept, as their lines, until the run ends, and its spans are then written one
at a time: memory grows with the size of one run; ``--limit`` does not apply.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
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


@lru_cache(maxsize=4096)
def _nanos(value: str) -> str | None:
    moment = parse_ts(value)
    if moment is None:
        return None
    delta = moment - _EPOCH
    return str((delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000)


def unix_nanos(value: object) -> str | None:
    """An evidence timestamp as unix nanoseconds in a string (OTLP JSON's int64), or None."""
    return _nanos(value) if isinstance(value, str) else None


# --- attribute values -------------------------------------------------------------------


def any_value(value: Any, depth: int = 0) -> dict[str, Any] | None:
    """A JSON value as an OTLP ``AnyValue``; None for JSON null (an attribute left out)."""
    if type(value) is str:  # the common case first
        return {"stringValue": value}
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


# --- one run's jobs, gathered record by record ----------------------------------------------


def _message(data: Mapping[str, Any]) -> str:
    """Why a record ended its job badly: its error, else its reason, else its event."""
    return str(data.get("error") or data.get("reason") or data.get("event"))


@dataclass(slots=True)
class _Job:
    """One job (a forward step with its retries, or a compensation): the fields its span
    needs, taken as its records pass, and the records' lines for its events."""

    job_id: str
    lines: list[bytes] = field(default_factory=list)
    compensation: bool = False
    first_ts: Any = None
    last_ts: Any = None
    step_id: Any = None
    topic: Any = None
    for_topic: Any = None
    idempotency_key: Any = None
    params: Any = None
    decision: Any = None
    rule_id: Any = None
    response: Any = None
    epoch: Any = None
    sent: Any = None
    attempts: int = 0
    step_end: tuple[str, str] | None = None
    """The last forward outcome, (event, message): a step asked again for its answer (a
    ``replay`` during a rollback) ends again."""
    compensation_end: tuple[str, str] | None = None
    """The last compensation outcome, (event, message); a manual follow-up is one only
    when nothing else ended the job (after a skip it is the skip's consequence)."""
    last: tuple[str, str] = ("", "")
    """The last record's (event, message)."""

    def add(self, data: Mapping[str, Any], line: bytes) -> None:
        self.lines.append(line)
        event = str(data.get("event"))
        if event.startswith("compensation_") or data.get("is_compensation") is True:
            self.compensation = True
        ts = data.get("ts")
        if self.first_ts is None:
            self.first_ts = ts
        self.last_ts = ts if ts is not None else self.last_ts
        for name in ("step_id", "topic", "for_topic", "idempotency_key", "params"):
            if getattr(self, name) is None and data.get(name) is not None:
                setattr(self, name, data[name])
        for name in ("rule_id", "response", "epoch", "sent"):
            if data.get(name) is not None:
                setattr(self, name, data[name])
        if event == Event.POLICY_DECISION and isinstance(data.get("decision"), str):
            self.decision = data["decision"]
        if event in (Event.STEP_DISPATCHED, Event.COMPENSATION_DISPATCHED):
            self.attempts += 1
        ended = (event, _message(data))
        if event in _STEP_OUTCOMES:
            self.step_end = ended
        if event in _COMPENSATION_OUTCOMES and not (
            event == Event.MANUAL_FOLLOWUP and self.compensation_end is not None
        ):
            self.compensation_end = ended
        self.last = ended

    def outcome(self) -> tuple[str, str] | None:
        """The (event, message) that ended the job: its last outcome, else a failed last
        attempt; None when no outcome is among the records shown."""
        found = self.compensation_end if self.compensation else self.step_end
        if found is None and self.last[0] in (Event.STEP_FAILED, Event.COMPENSATION_FAILED):
            return self.last
        return found

    def status(self) -> dict[str, Any]:
        """ERROR when the job ended badly (message: its error or reason); UNSET otherwise."""
        outcome = self.outcome()
        if outcome is None or outcome[0] in _GOOD_OUTCOMES:
            return {"code": STATUS_UNSET}
        return {"code": STATUS_ERROR, "message": outcome[1]}


@dataclass(slots=True)
class _RunSpans:
    """One run's jobs and run-level records, gathered until the run ends."""

    run_id: str
    root_lines: list[bytes] = field(default_factory=list)
    jobs: dict[str, _Job] = field(default_factory=dict)
    followups: dict[str, str] = field(default_factory=dict)
    """step_id → ``irreversible`` or ``no_compensation``, when a manual follow-up says so."""
    forward: dict[str, _Job] = field(default_factory=dict)
    """step_id → its last forward job (a compensation and a follow-up find their step)."""

    def add(self, data: Mapping[str, Any], line: bytes) -> None:
        event = data.get("event")
        job_id = data.get("job_id")
        step_id = data.get("step_id")
        if event == Event.MANUAL_FOLLOWUP and isinstance(step_id, str):
            category = data.get("category")
            if category in (FollowUp.IRREVERSIBLE, FollowUp.NO_COMPENSATION):
                self.followups[step_id] = str(category)
        if isinstance(job_id, str) and job_id and event not in _RUN_EVENTS:
            job = self.jobs.get(job_id)
            if job is None:
                job = self.jobs[job_id] = _Job(job_id)
            job.add(data, line)
            if isinstance(job.step_id, str):
                if not job.compensation:
                    self.forward[job.step_id] = job
                elif self.forward.get(job.step_id) is job:
                    del self.forward[job.step_id]
            return
        if event == Event.MANUAL_FOLLOWUP and isinstance(step_id, str) and step_id in self.forward:
            self.forward[step_id].add(data, line)  # an irreversible step's follow-up
            return
        self.root_lines.append(line)

    def spans(self, run: Run) -> Iterator[dict[str, Any]]:
        """The root span, then one span per job in the order the jobs began; one at a time."""
        summary = run.tally.summary or {}
        read = summary.get("read")
        read_steps = {s for s in read if isinstance(s, str)} if isinstance(read, list) else set()
        undone = {job.step_id for job in self.jobs.values() if job.compensation}
        root = self._root_span(run)
        yield root
        for job in self.jobs.values():
            if job.compensation:
                yield self._compensation_span(job, root["spanId"])
            else:
                known = _rollback_class(
                    job.step_id, read=read_steps, undone=undone, followups=self.followups
                )
                yield self._step_span(job, root["spanId"], rollback_class=known)

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
        return _span(
            run_id=self.run_id,
            span=span_id(self.run_id, ROOT),
            parent=None,
            name=f"run {tally.workflow_id or '?'}",
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
            lines=self.root_lines,
            status=state,
        )

    def _step_span(self, job: _Job, parent: str, *, rollback_class: str | None) -> dict[str, Any]:
        topic = job.topic if isinstance(job.topic, str) else "?"
        return _span(
            run_id=self.run_id,
            span=span_id(self.run_id, job.job_id),
            parent=parent,
            name=f"execute_tool {topic}",
            start=job.first_ts,
            end=job.last_ts,
            attrs=[
                ("gen_ai.operation.name", "execute_tool"),
                ("gen_ai.tool.name", job.topic),
                ("gen_ai.tool.call.id", job.job_id),
                ("gen_ai.tool.call.arguments", _json_text(job.params)),
                ("gen_ai.tool.call.result", _json_text(job.response)),
                *_job_attributes(job),
                ("agentundo.sent", job.sent if isinstance(job.sent, bool) else None),
                ("agentundo.rollback_class", rollback_class),
            ],
            lines=job.lines,
            status=job.status(),
        )

    def _compensation_span(self, job: _Job, parent: str) -> dict[str, Any]:
        topic = job.topic if isinstance(job.topic, str) else "?"
        span = _span(
            run_id=self.run_id,
            span=span_id(self.run_id, job.job_id),
            parent=parent,
            name=f"compensate {topic}",
            start=job.first_ts,
            end=job.last_ts,
            attrs=[
                *_job_attributes(job),
                ("agentundo.compensation", True),
                ("agentundo.for_topic", job.for_topic),
                ("agentundo.epoch", job.epoch),
            ],
            lines=job.lines,
            status=job.status(),
        )
        undone = self.forward.get(job.step_id) if isinstance(job.step_id, str) else None
        if undone is not None:
            span["links"] = [
                {
                    "traceId": span["traceId"],
                    "spanId": span_id(self.run_id, undone.job_id),
                    "attributes": attributes([("agentundo.link", "compensates")]),
                }
            ]
        return span


def _json_text(value: Any) -> str | None:
    """A value as compact JSON text (a GenAI arguments or result attribute); None stays None."""
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _job_attributes(job: _Job) -> list[tuple[str, Any]]:
    outcome = job.outcome()
    return [
        ("agentundo.job_id", job.job_id),
        ("agentundo.step_id", job.step_id),
        ("agentundo.topic", job.topic),
        ("agentundo.decision", job.decision),
        ("agentundo.rule_id", job.rule_id),
        ("agentundo.idempotency_key", job.idempotency_key),
        ("agentundo.outcome", outcome[0] if outcome else None),
        ("agentundo.attempts", job.attempts or None),
    ]


def _rollback_class(
    step_id: Any,
    *,
    read: set[str],
    undone: set[Any],
    followups: Mapping[str, str],
) -> str | None:
    """What the evidence says of a step's rollback: ``irreversible`` or ``no_compensation``
    (a manual follow-up says so), ``read_only`` (the summary lists it as read),
    ``has_compensation`` (a compensation job names it; the catalog calls such a topic
    reversible or compensatable, which the evidence does not tell apart); else None."""
    if not isinstance(step_id, str):
        return None
    if step_id in followups:
        return followups[step_id]
    if step_id in read:
        return "read_only"
    if step_id in undone:
        return "has_compensation"
    return None


def _span(
    *,
    run_id: str,
    span: str,
    parent: str | None,
    name: str,
    start: object,
    end: object,
    attrs: Sequence[tuple[str, Any]],
    lines: Sequence[bytes],
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
        "events": [_event(json.loads(line), start_ns) for line in lines],
        "status": status,
    }
    return body


def _event(record: Mapping[str, Any], fallback_ns: str) -> dict[str, Any]:
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
    """``document`` as compact JSON that every line reader keeps on one line."""
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    if "\x85" in text or "\u2028" in text or "\u2029" in text:
        return text.translate(_LINE_BREAKS)
    return text


def _envelope(env: object) -> tuple[str, str]:
    """The text before and after the spans of one run's ``ExportTraceServiceRequest``."""
    resource = attributes(
        [
            ("service.name", "agentundo"),
            ("service.version", __version__),
            ("deployment.environment.name", env if isinstance(env, str) else None),
        ]
    )
    marker = "\x00spans\x00"
    document = {
        "resourceSpans": [
            {
                "resource": {"attributes": resource},
                "scopeSpans": [
                    {"scope": {"name": "agentundo", "version": __version__}, "spans": marker}
                ],
            }
        ]
    }
    before, after = dumps_line(document).split(json.dumps(marker))
    return before + "[", "]" + after


class OtlpRenderer(ShowsNoProblems):
    """Per run, one line of OTLP JSON (``{"resourceSpans": [...]}``): see the module.

    A run's records are kept as their lines (bytes) and a few fields per job until the run
    ends; then its spans are built and written one at a time.
    """

    writes_data = True

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._current: _RunSpans | None = None
        self._run: Run | None = None

    def record(self, run: Run, record: Record) -> None:
        if self._run is not run or self._current is None:
            self._run = run
            self._current = _RunSpans(run.tally.run_id or run.path)
        self._current.add(record.data, record.raw)

    def end_run(self, run: Run) -> None:
        current = self._current if self._run is run else None
        if current is None:
            current = _RunSpans(run.tally.run_id or run.path)
        self._current = None
        self._run = None
        summary = run.tally.summary or {}
        before, after = _envelope(summary.get("env", run.tally.env))
        write = self.stream.write
        write(before)
        for index, span in enumerate(current.spans(run)):
            write(("," if index else "") + dumps_line(span))
        write(after + "\n")

    def close(self) -> None:
        self.stream.flush()
