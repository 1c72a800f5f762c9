"""``agentundo timeline TRACE --catalog C``: agent runs of a trace shown as timelines.

Each run (trace id) is a header (agent, status, what is owed) and one row per span in
start order: tool calls with their topic, rollback class, status, call id, arguments and
result (redacted by the evidence rules) and the fate of their effect; other spans (the
agent, model calls) as context rows. The evidence filters apply to rows: ``--run`` (trace
id), ``--job`` (call id or tool), ``--topic``, ``--event`` (``tool_call``, or a context
row's kind: ``chat``, ``invoke_agent``, ``span``), ``--since``/``--until`` and
``--only-problems`` (calls owed, for a human, unmapped or failed, and failed spans).
``--summary`` lists the runs with their counts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from agentundo.errors import UsageError
from agentundo.evidence.redact import redact
from agentundo.model.catalog import Catalog
from agentundo.report import layout
from agentundo.report.layout import Column
from agentundo.timeline.query import Query
from agentundo.timeline.times import parse_ts, seconds_text
from agentundo.trace.otlp import SpanStatus
from agentundo.trace.plan import PROBLEM_EFFECTS, CallPlan, Effect, RunPlan
from agentundo.trace.runs import NOT_CAPTURED, ContextRow, iso

if TYPE_CHECKING:
    from rich.console import Console

    from agentundo.timeline.core import Streams, TimelineRequest

TOOL_CALL = "tool_call"
"""The ``--event`` name of a tool-call row."""

_STYLES = {
    Effect.OWED.value: "bold red",
    Effect.MANUAL.value: "bold magenta",
    Effect.UNKNOWN.value: "italic cyan",
    Effect.UNDONE.value: "green",
    Effect.COMPENSATION.value: "green",
    Effect.NONE.value: "yellow",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceOutput:
    """Where the view writes: stdout as text, stderr, and a rich console factory."""

    stdout: TextIO
    stderr: TextIO
    console: Callable[[], Console]


def show(request: TimelineRequest, streams: Streams) -> None:
    """``agentundo timeline TRACE…``: check the options, read, plan and render the runs."""
    first = request.paths[0]
    if request.verify or request.require_key:
        raise UsageError(
            f"--verify does not apply to {first}: an OTLP trace has no hash chain to check; "
            "verify the evidence `agentundo recover --trace` writes"
        )
    if request.follow:
        raise UsageError(f"--follow does not apply to {first}: it tails evidence, not traces")
    if request.catalog is None:
        raise UsageError(
            f"{first} is an OTLP trace: give --catalog CATALOG to map its tool calls to topics"
        )
    from agentundo.load.files import load_file

    catalog: Catalog = load_file(request.catalog, expect="catalog").model
    plans = load_plans(list(request.paths), catalog, request.evidence_dir)
    out = TraceOutput(stdout=streams.stdout, stderr=streams.stderr, console=streams.console)
    if request.summary:
        render_summary(plans, request.query, request.fmt.value, out)
    else:
        fmt = "quiet" if request.quiet else request.fmt.value
        render(plans, request.query, fmt, limit=request.limit, out=out)


def row_data(plan: RunPlan, row: CallPlan | ContextRow) -> dict[str, Any]:
    """One row as a JSON object (what ``--format json`` prints, and what filters read)."""
    span = row.span if isinstance(row, ContextRow) else row.call.span
    data: dict[str, Any] = {
        "ts": iso(span.start_ns),
        "offset": "+" + seconds_text(max(0, span.start_ns - plan.run.start_ns) / 1e9),
        "run_id": plan.run.trace_id,
        "agent": plan.run.agent,
        "span_id": span.span_id,
        "duration_ms": round(max(0, span.end_ns - span.start_ns) / 1e6, 3),
        "status": span.status.value,
    }
    if isinstance(row, ContextRow):
        data.update(event=row.kind, name=row.label)
        if span.status is SpanStatus.ERROR:
            data["error"] = span.error_text
        return data
    call = row.call
    secrets = _secrets(row)
    data.update(
        event=TOOL_CALL,
        job_id=call.call_id,
        step_id=call.tool,
        tool=call.tool,
        topic=row.topic,
        rollback=row.rollback,
        effect=row.effect.value,
        note=row.note,
        arguments=None if call.arguments is NOT_CAPTURED else redact(call.arguments, secrets),
        result=None if call.result is NOT_CAPTURED else redact(call.result, secrets),
        content_captured=call.arguments is not NOT_CAPTURED or call.result is not NOT_CAPTURED,
    )
    return data


def _secrets(row: CallPlan) -> frozenset[str]:
    """The values of the topic's secret params in this call (redacted in every form)."""
    names = (row.spec.secret_params or []) if row.spec is not None else []
    values = (row.call.params.get(name) for name in names)
    return frozenset(str(v) for v in values if isinstance(v, str | int) and len(str(v)) >= 4)


def _is_problem(data: dict[str, Any]) -> bool:
    return data.get("effect") in PROBLEM_EFFECTS or data.get("status") == SpanStatus.ERROR.value


def _rows(plan: RunPlan, query: Query) -> list[dict[str, Any]]:
    by_span = {c.call.span.span_id: c for c in plan.calls}
    start = parse_ts(iso(plan.run.start_ns))
    plain = Query(
        runs=query.runs,
        jobs=query.jobs,
        topics=query.topics,
        events=query.events,
        since=query.since,
        until=query.until,
    )
    found = []
    for row in plan.run.rows:
        item = row if isinstance(row, ContextRow) else by_span[row.span.span_id]
        data = row_data(plan, item)
        if plain.matches(data, start) and (not query.only_problems or _is_problem(data)):
            found.append(data)
    return found


def header(plan: RunPlan) -> list[tuple[str, str]]:
    """(label, value) pairs of a run's header."""
    run, counts = plan.run, plan.counts()
    status = f"failed: {run.error}" if run.failed else "succeeded"
    landed = sum(counts[e] for e in ("kept", "owed", "manual", "undone", "unknown"))
    return [
        ("agent", run.agent),
        ("trace", run.trace_id),
        ("env", run.env or "not in the trace"),
        ("status", status),
        ("started", iso(run.start_ns)),
        ("duration", seconds_text(max(0, run.end_ns - run.start_ns) / 1e9)),
        ("tool calls", f"{len(plan.calls)} ({landed} landed, {counts['none']} failed)"),
        (
            "effects",
            f"{counts['owed']} owed, {counts['undone']} undone, {counts['manual']} manual, "
            f"{counts['unknown']} unknown, {counts['kept']} kept",
        ),
        ("source", run.path),
    ]


def render(plans: list[RunPlan], query: Query, fmt: str, *, limit: int, out: TraceOutput) -> None:
    """Write the timeline of every run ``query`` wants, in ``fmt``."""
    wanted = [p for p in plans if query.wants_run(p.run.trace_id)]
    for plan in wanted:
        for item in plan.unknown:
            out.stderr.write(
                f"{item.call.span.path}:{item.call.span.line}: warning: run "
                f"{plan.run.trace_id} call {item.call.call_id}: {item.note}\n"
            )
    rows = [(plan, _rows(plan, query)) for plan in wanted]
    if fmt == "json":
        for _plan, found in rows:
            for data in found:
                out.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    elif fmt == "table":
        _table(rows, limit, out.console())
    elif fmt == "markdown":
        _markdown(rows, limit, out.stdout)
    elif fmt == "mermaid":
        _mermaid(rows, limit, out.stdout)
    elif fmt != "quiet":
        raise UsageError(
            f"--format {fmt} does not apply to a trace; use table, json, markdown or mermaid"
        )


_COLUMNS = ("Time", "Offset", "Call", "Tool / span", "Topic", "Rollback", "Status", "Effect")

_LAYOUT = {
    "Time": Column("Time", drop=1, title=True),
    "Offset": Column("Offset", title=True),
    "Call": Column("Call", title=True),
    "Tool / span": Column("Tool / span", title=True),
    "Topic": Column("Topic"),
    "Rollback": Column("Rollback", drop=2),
    "Status": Column("Status"),
    "Effect": Column("Effect"),
    "Detail": Column("Detail", readable=40, fold=40),
}
"""How each column gives way at narrow widths (the rule of ``report.layout``): call ids,
tool names and topics are never broken; the clock (the offset stays) and the rollback
class go first, then the rows are stacked; long JSON in a detail may fold past 40 cells."""

_SUMMARY_LAYOUT = (
    Column("Started", title=True),
    Column("Agent", readable=12),
    Column("Trace", title=True),
    Column("Status"),
    Column("Calls", justify="right"),
    Column("Owed", justify="right"),
    Column("Manual", justify="right"),
    Column("Unknown", justify="right"),
)
"""``--summary``: a trace id is never broken; below the width the rows are stacked."""


def _cells(data: dict[str, Any]) -> list[str]:
    moment = parse_ts(data["ts"])
    clock = moment.strftime("%H:%M:%S.%f")[:-3] if moment else data["ts"]
    if data["event"] != TOOL_CALL:
        kind, name = data["event"], data["name"]
        label = name if name.startswith(kind) else f"{kind}: {name}"
        return [clock, data["offset"], "", label, "", "", _status(data), ""]
    return [
        clock,
        data["offset"],
        data["job_id"],
        data["tool"],
        data["topic"] or "?",
        data["rollback"],
        _status(data),
        data["effect"],
    ]


def _status(data: dict[str, Any]) -> str:
    """``error`` for a failed span, else ``ok`` (an unset status is a span that ended)."""
    return "error" if data["status"] == SpanStatus.ERROR.value else "ok"


def _detail(data: dict[str, Any]) -> str:
    if data["event"] != TOOL_CALL:
        return data.get("error") or ""
    parts = []
    if not data["content_captured"]:
        parts.append("(arguments and result not captured)")
    else:
        parts.append(f"args={_json_text(data['arguments'])}")
        if data["status"] != SpanStatus.ERROR.value:
            parts.append(f"result={_json_text(data['result'])}")
    if data["note"]:
        parts.append(data["note"])
    return " ".join(parts)


def _json_text(value: Any) -> str:
    """A value whole, as compact JSON: the layout wraps it (long JSON words fold), never cuts."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _hidden(found: list[dict[str, Any]], limit: int) -> tuple[list[dict[str, Any]], int]:
    if not limit or len(found) <= limit:
        return found, 0
    return found[:limit], len(found) - limit


def _table(rows: list[tuple[RunPlan, list[dict[str, Any]]]], limit: int, console: Console) -> None:
    from rich.text import Text

    for plan, found in rows:
        console.print(Text("  ".join(f"{k} {v}" for k, v in header(plan)[:4]), style="bold"))
        for label, value in header(plan)[4:]:
            console.print(Text(f"  {label}: {value}"))
        shown, hidden = _hidden(found, limit)
        layout.render(
            console,
            [_LAYOUT[name] for name in (*_COLUMNS, "Detail")],
            [[Text(c) for c in (*_cells(data), _detail(data))] for data in shown],
            row_styles=[
                _STYLES.get(data.get("effect", ""), "dim" if data["event"] != TOOL_CALL else "")
                for data in shown
            ],
            edge=True,
        )
        if hidden:
            console.print(f"{hidden} more rows not shown; raise --limit or filter")


def _markdown(rows: list[tuple[RunPlan, list[dict[str, Any]]]], limit: int, stream: TextIO) -> None:
    from agentundo.timeline.render_markdown import md_cell

    for plan, found in rows:
        stream.write(f"### {md_cell(plan.run.agent)} — trace `{plan.run.trace_id}`\n\n")
        for label, value in header(plan):
            stream.write(f"- **{label}**: {md_cell(value)}\n")
        stream.write("\n| " + " | ".join((*_COLUMNS, "Detail")) + " |\n")
        stream.write("|" + "---|" * (len(_COLUMNS) + 1) + "\n")
        shown, hidden = _hidden(found, limit)
        for data in shown:
            cells = [md_cell(c) for c in (*_cells(data), _detail(data))]
            stream.write("| " + " | ".join(cells) + " |\n")
        if hidden:
            stream.write(f"\n{hidden} more rows not shown.\n")
        stream.write("\n")


def _mermaid(rows: list[tuple[RunPlan, list[dict[str, Any]]]], limit: int, stream: TextIO) -> None:
    """A gantt chart: a section per run, a task per tool call (crit: owed or failed)."""
    stream.write("gantt\n    dateFormat x\n    axisFormat %H:%M:%S\n")
    for plan, found in rows:
        stream.write(f"    section {plan.run.agent} {plan.run.trace_id[:8]}\n")
        calls = [d for d in found if d["event"] == TOOL_CALL]
        shown, _hidden_count = _hidden(calls, limit)
        for data in shown:
            moment = parse_ts(data["ts"])
            start = int(moment.timestamp() * 1000) if moment else 0
            tag = {"owed": "crit, ", "none": "crit, ", "undone": "done, "}.get(data["effect"], "")
            name = f"{data['tool']} {data['job_id']} {data['effect']}".replace(":", " ")
            end = start + max(1, int(data["duration_ms"]))
            stream.write(f"    {name} :{tag}{start}, {end}\n")


def render_summary(plans: list[RunPlan], query: Query, fmt: str, out: TraceOutput) -> None:
    """``--summary``: one row per run with its counts."""
    rows = [_summary_row(p) for p in plans if query.wants_run(p.run.trace_id)]
    if query.only_problems:
        rows = [r for r in rows if r["owed"] or r["manual"] or r["unknown"] or r["failed"]]
    if fmt == "json":
        for row in rows:
            out.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    columns = ("Started", "Agent", "Trace", "Status", "Calls", "Owed", "Manual", "Unknown")
    cells = [
        [
            r["started"].replace("T", " ")[:19],
            r["agent"],
            r["run_id"],
            "failed" if r["failed"] else "succeeded",
            *(str(r[k]) for k in ("calls", "owed", "manual", "unknown")),
        ]
        for r in rows
    ]
    if fmt == "markdown":
        out.stdout.write("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n")
        for line in cells:
            out.stdout.write("| " + " | ".join(line) + " |\n")
        return
    if fmt != "table":
        raise UsageError(
            f"--summary --format {fmt} does not apply to a trace; use table, json or markdown"
        )
    from rich.text import Text

    layout.render(
        out.console(), _SUMMARY_LAYOUT, [[Text(c) for c in line] for line in cells], edge=True
    )


def _summary_row(plan: RunPlan) -> dict[str, Any]:
    counts = plan.counts()
    return {
        "started": iso(plan.run.start_ns),
        "agent": plan.run.agent,
        "run_id": plan.run.trace_id,
        "env": plan.run.env,
        "failed": plan.run.failed,
        "error": plan.run.error,
        "calls": len(plan.calls),
        **{effect: counts[effect] for effect in ("owed", "manual", "unknown", "undone", "kept")},
        "path": plan.run.path,
    }


def load_plans(paths: list[str], catalog: Catalog, evidence_dir: str | None) -> list[RunPlan]:
    """The runs of every trace file, planned against ``catalog`` (and what a recovery in
    ``evidence_dir`` settled)."""
    from agentundo.trace.otlp import read_spans
    from agentundo.trace.plan import plan_run
    from agentundo.trace.runs import group_runs

    spans = [span for path in paths for span in read_spans(path)]
    plans = []
    for run in group_runs(spans):
        settled = None
        if evidence_dir is not None:
            from agentundo.trace.evidence import settled_by_recovery

            settled = settled_by_recovery(evidence_dir, run.trace_id)
        plans.append(plan_run(run, catalog, settled))
    return plans
