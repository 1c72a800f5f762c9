"""What ``agentundo recover --trace`` prints: the run's undo plan, then what was done."""

from __future__ import annotations

import json
import sys
from typing import Any

from agentundo.trace.plan import CallPlan, Effect
from agentundo.trace.recover import TraceRecoverOutcome

MISSING_CONTENT = 2
"""Exit code when a call's undo needs arguments or a result the trace does not hold."""


def exit_code(outcome: TraceRecoverOutcome) -> int:
    from agentundo.cli.recover import EVIDENCE_INCOMPLETE

    if outcome.missing:
        return MISSING_CONTENT
    recovery = outcome.recovery
    if recovery is None:
        return 0
    if recovery.evidence_failure:
        return EVIDENCE_INCOMPLETE
    result = recovery.result
    if result is None:
        return 0
    return 1 if result.owed or result.lock_held else 0


def _call(item: CallPlan, key: str | None = None) -> dict[str, Any]:
    comp = item.spec.compensation if item.spec is not None else None
    return {
        "call_id": item.call.call_id,
        "tool": item.call.tool,
        "topic": item.topic,
        "rollback": item.rollback,
        "effect": item.effect.value,
        "note": item.note,
        "compensation": comp.topic if comp is not None and item.effect is Effect.OWED else None,
        "idempotency_key": key,
        "mitigation": item.spec.mitigation if item.spec is not None else None,
    }


def as_dict(outcome: TraceRecoverOutcome, *, dry_run: bool) -> dict[str, Any]:
    from agentundo.cli.recover import result_dict

    plan, keys = outcome.plan, outcome.keys
    recovery = outcome.recovery
    result = recovery.result if recovery is not None else None
    return {
        "trace_id": plan.run.trace_id,
        "agent": plan.run.agent,
        "failed": plan.run.failed,
        "error": plan.run.error,
        "evidence": str(outcome.evidence),
        "dry_run": dry_run,
        "continued": outcome.continued,
        "calls": [_call(c, keys.get(c.call.call_id)) for c in plan.calls],
        "owed": [_call(c, keys.get(c.call.call_id)) for c in plan.owed],
        "missing_content": [
            {"call_id": m.call_id, "tool": m.tool, "fields": list(m.fields)}
            for m in outcome.missing
        ],
        "result": None if result is None else result_dict(result, "call_id"),
        "evidence_failure": recovery.evidence_failure if recovery is not None else None,
    }


def report(outcome: TraceRecoverOutcome, output_format: str, *, dry_run: bool) -> None:
    data = as_dict(outcome, dry_run=dry_run)
    for item in outcome.missing:
        print(f"{outcome.plan.run.path}: error: {item.describe()}", file=sys.stderr)
    if outcome.trace_changed:
        print(
            f"agentundo: warning: {outcome.plan.run.path} differs from the trace "
            f"{outcome.evidence} was opened from; recovering what that evidence records",
            file=sys.stderr,
        )
    if data["evidence_failure"]:
        print(f"agentundo: evidence incomplete: {data['evidence_failure']}", file=sys.stderr)
    if output_format == "json":
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    _text(outcome, data)


def _text(outcome: TraceRecoverOutcome, data: dict[str, Any]) -> None:
    out = sys.stdout.write
    plan = outcome.plan
    status = f"failed: {data['error']}" if data["failed"] else "succeeded"
    out(f"recover trace {data['trace_id']} (agent {data['agent']}, {status})\n")
    if not data["failed"]:
        out("the run did not fail: its effects are kept, there is nothing to recover\n")
        return
    if outcome.continued:
        out(f"continuing {data['evidence']} (the trace was read into it before)\n")
    owed = [c for c in data["owed"] if c["effect"] == Effect.OWED.value]
    out("undo, last landed first:\n" if owed else "nothing to undo\n")
    for number, item in enumerate(owed, 1):
        key = item["idempotency_key"] or "(none)"
        out(
            f"  {number}. {item['call_id']} {item['tool']} ({item['topic']}): "
            f"{item['compensation']}, key {key}\n"
        )
    _group(out, plan.manual, "for a human")
    _group(out, plan.with_effect(Effect.NONE), "not compensated (failed, no effect)")
    _group(out, plan.unknown, "unknown (no catalog topic: a human must judge)")
    _group(out, plan.with_effect(Effect.UNDONE, Effect.COMPENSATION), "undone already")
    recovery = outcome.recovery
    result = data["result"]
    if outcome.missing:
        out("not recovered: the trace lacks what the undo needs (see stderr)\n")
    elif data["dry_run"]:
        out(f"dry run: nothing was called, locked or written (evidence: {data['evidence']})\n")
    elif result is None and recovery is not None:
        out("nothing is owed: every effect that landed was undone or handed to a human\n")
    elif result is not None:
        from agentundo.cli.recover import write_result

        write_result(out, result, "call_id")
    if not data["dry_run"] and not outcome.missing:
        out(f"evidence: {data['evidence']}\n")


def _group(out: Any, items: list[CallPlan], title: str) -> None:
    if not items:
        return
    out(f"{title}:\n")
    for item in items:
        mitigation = item.spec.mitigation if item.spec is not None else None
        extra = (
            f" (mitigation: {mitigation})" if mitigation and item.effect is Effect.MANUAL else ""
        )
        out(f"  {item.call.call_id} {item.call.tool} ({item.topic or '?'}): {item.note}{extra}\n")
