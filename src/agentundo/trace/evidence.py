"""A traced run as the opening records of a recovery's evidence (``recover --trace``).

The evidence of a trace's recovery is ``trace-<trace id>.jsonl`` in the evidence
directory. It opens with a ``run_started`` record that names the trace (its file, its
sha256, the trace id, the agent) and, for each tool call of the run in order, what the
trace shows of it: ``step_dispatched`` (the call, with its arguments as params) and its
outcome: ``step_succeeded`` (with the result as the response) or, for a failed call,
``step_failed_fatal`` with ``sent: false`` (no effect is assumed: it is not
compensated). A call the agent itself undid, and the call that undid it, are settled at
once with ``compensation_not_needed``. Every one of these records carries ``source:
trace`` and the span's id and times: they are what the trace says, written when the
recovery began (their ``ts``), not calls agentundo made.

From there the file is an ordinary run's evidence: ``agentundo recover`` finishes it
(:mod:`agentundo.saga.recover_file`), ``agentundo timeline --verify`` checks it, and a
second ``recover --trace`` of the same trace reads it and finds nothing owed.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from agentundo.evidence.events import Event, FollowUp
from agentundo.evidence.reader import Record, read_path
from agentundo.saga.clock import rfc3339
from agentundo.trace.plan import CallPlan, Effect, RunPlan, Settled
from agentundo.trace.runs import NOT_CAPTURED, iso

SOURCE = "trace"
_STILL_OWED = frozenset({FollowUp.INTERRUPTED.value, FollowUp.LOCK_HELD.value})


def evidence_path(directory: str | Path, trace_id: str) -> Path:
    """Where the recovery of trace ``trace_id`` writes its evidence."""
    return Path(directory) / f"trace-{trace_id}.jsonl"


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def opening_records(
    plan: RunPlan, *, trace_path: str, sha256: str, env: str, now: float | None = None
) -> list[dict[str, Any]]:
    """The records that open the evidence of ``plan``'s recovery (no seq or hash yet)."""
    run = plan.run
    ts = rfc3339(time.time() if now is None else now)
    common = {"ts": ts, "run_id": run.trace_id, "workflow_id": run.agent}
    records: list[dict[str, Any]] = [
        {
            **common,
            "event": Event.RUN_STARTED.value,
            "actor": "agentundo",
            "env": env,
            "steps": len(plan.calls),
            "source": SOURCE,
            "trace": {
                "path": trace_path,
                "sha256": sha256,
                "trace_id": run.trace_id,
                "agent": run.agent,
                "started": iso(run.start_ns),
                "failed": run.failed,
                "error": run.error,
            },
        }
    ]
    for index, item in enumerate(plan.calls):
        records.extend(_call_records(item, index, common))
    return records


def _call_records(item: CallPlan, index: int, common: dict[str, Any]) -> list[dict[str, Any]]:
    call = item.call
    span = call.span
    ids = {
        **common,
        "actor": common["workflow_id"],
        "job_id": f"job_{index + 1}",
        "step_id": call.call_id,
        "topic": item.topic or call.tool,
    }
    traced = {"source": SOURCE, "tool": call.tool, "span_id": span.span_id}
    dispatched = {
        **ids,
        "event": Event.STEP_DISPATCHED.value,
        "step_index": index,
        "attempt": 1,
        "params": call.params,
        **traced,
        "traced_at": iso(span.start_ns),
    }
    if call.arguments is NOT_CAPTURED:
        dispatched["content_captured"] = False
    records = [dispatched]
    ended = {"traced_at": iso(span.end_ns)}
    if call.failed:
        records.append(
            {
                **ids,
                "event": Event.STEP_FAILED_FATAL.value,
                "attempts": 1,
                "error": call.span.error_text,
                "sent": False,
                "reason": "the trace shows the call failed: no effect is assumed",
                **traced,
                **ended,
            }
        )
        return records
    outcome: dict[str, Any] = {**ids, "event": Event.STEP_SUCCEEDED.value, "attempt": 1}
    if call.response is not None:
        outcome["response"] = call.response
    elif call.result is not NOT_CAPTURED:
        outcome["result"] = call.result
    records.append({**outcome, **traced, **ended})
    if item.effect in (Effect.UNDONE, Effect.COMPENSATION):
        records.append(
            {
                **ids,
                "event": Event.COMPENSATION_NOT_NEEDED.value,
                "actor": "agentundo",
                "reason": f"{item.note} (in the trace)",
                **traced,
            }
        )
    return records


def records_of(path: str, data: list[dict[str, Any]]) -> list[Record]:
    """``data`` as the records of ``path`` (line numbers from 1), for a plan in memory."""
    return [
        Record(path, number, item, b"", str(item["event"])) for number, item in enumerate(data, 1)
    ]


def settled_by_recovery(directory: str, trace_id: str) -> Settled | None:
    """What the recovery evidence of ``trace_id`` in ``directory`` settled, if any."""
    path = evidence_path(directory, trace_id)
    if not path.is_file():
        return None
    undone: set[str] = set()
    manual: dict[str, str] = {}
    for item in read_path(str(path)):
        if not isinstance(item, Record):
            continue
        data = item.data
        step = str(data.get("step_id", ""))
        if item.event == Event.COMPENSATION_SUCCEEDED:
            undone.add(step)
        elif item.event == Event.MANUAL_FOLLOWUP and data.get("category") not in _STILL_OWED:
            manual[step] = str(data.get("category"))
    return Settled(frozenset(undone), manual)
