"""Drill reports: a rich summary, JSON, the sweep table (with its progress bar), JUnit."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape

from agentundo.evidence.events import CompensationOutcome, LedgerState, Verdict
from agentundo.report import layout
from agentundo.report.layout import Column
from agentundo.saga.result import CompensationReport, DrillResult, StepReport
from agentundo.saga.sweep import NOT_REACHED, SweepRow

_VERDICT_STYLE = {
    Verdict.COMPLETED: "bold green",
    Verdict.RECOVERED: "bold green",
    Verdict.FAILED: "bold red",
    Verdict.INTERRUPTED: "bold yellow",
}
_LEDGER_STYLE: dict[LedgerState, str] = {
    LedgerState.UNDONE: "green",
    LedgerState.ESCALATED: "yellow",
    LedgerState.KEPT: "cyan",
    LedgerState.NONE: "dim",
    LedgerState.READ: "dim",
    LedgerState.LEFT_BEHIND: "bold red",
    LedgerState.UNDONE_TWICE: "bold red",
}
"""The colour of each ledger state (every state has one: a test loops over them)."""


def as_dict(result: DrillResult, evidence: str | None) -> dict[str, Any]:
    """The JSON form of one drill (``--format json``)."""
    return {
        "summary": result.summary,
        "steps": [
            {
                "step_id": s.step_id,
                "topic": s.topic,
                "job_id": s.job_id,
                "state": s.state.value,
                "rule_id": s.rule_id,
                "attempts": s.attempts,
                "error": s.error,
            }
            for s in result.steps
        ],
        "compensations": [
            {
                "step_id": c.step_id,
                "for_topic": c.for_topic,
                "topic": c.topic,
                "job_id": c.job_id,
                "idempotency_key": c.idempotency_key,
                "outcome": c.outcome,
                "applied": c.applied,
                "attempts": c.attempts,
                "deliveries": c.deliveries,
            }
            for c in result.compensations
        ],
        "manual_followups": [
            {
                "step_id": f.step_id,
                "topic": f.topic,
                "category": f.category.value,
                "reason": f.reason,
                "mitigation": f.mitigation,
            }
            for f in result.followups
        ],
        "ledger": [
            {
                "step_id": r.step_id,
                "topic": r.topic,
                "applied": r.applied,
                "undone": r.undone,
                "state": r.state,
            }
            for r in result.ledger
        ],
        "problems": result.problems,
        "verdict": result.verdict.value,
        "exit_code": result.verdict.exit_code,
        "evidence": evidence,
    }


def render_json(result: DrillResult, stream: TextIO, evidence: str | None) -> None:
    json.dump(as_dict(result, evidence), stream, indent=2)
    stream.write("\n")


STEP_COLUMNS = (
    Column("#", drop=1, title=True, justify="right"),
    Column("step", title=True),
    Column("topic", title=True),
    Column("job", drop=2),
    Column("rule"),
    Column("tries", drop=3),
    Column("state"),
)
"""The steps table: the index, the job and the tries give way first at narrow widths."""

ROLLBACK_COLUMNS = (
    Column("step", title=True),
    Column("compensation", title=True),
    Column("job", drop=1),
    Column("tries", drop=2),
    Column("outcome", readable=16),
)


def render_text(result: DrillResult, console: Console, evidence: str | None) -> None:
    """Steps, decisions, compensations, manual follow-ups, the ledger and the verdict."""
    from rich.text import Text

    s = result.summary
    scenario = f" scenario {s['scenario']}" if s.get("scenario") else ""
    head = [Text.assemble(("drill", "bold"), f" {result.workflow_id} ({result.env}){scenario}")]
    head.append(Text(f"run {result.run_id}"))
    head.append(Text.assemble("status ", (result.status.value, "bold")))
    layout.flow(console, head, indent=2)
    layout.render(console, STEP_COLUMNS, [_step_row(st) for st in result.steps], title="steps")
    if result.rollback_triggered:
        layout.render(
            console,
            ROLLBACK_COLUMNS,
            [_compensation_row(c) for c in result.compensations],
            title=f"rollback ({s['rollback_mode']})",
        )
    if result.followups:
        console.print("[bold]manual follow-up[/]")
        for f in result.followups:
            mitigation = f" (mitigation: {f.mitigation})" if f.mitigation else ""
            layout.hanging(
                console,
                Text.assemble("  ", (f.category.value, "yellow"), "  "),
                f"{f.step_id} {f.topic}: {f.reason}{mitigation}",
            )
    if result.ledger:
        parts = [
            Text(f"{r.step_id}={r.state}", style=_LEDGER_STYLE[r.state]) for r in result.ledger
        ]
        layout.flow(console, [Text("ledger", style="bold"), *parts], indent=8)
    for problem in result.problems:
        layout.hanging(console, Text.assemble("  ", ("problem", "red"), " "), problem)
    console.print(
        f"compensations: {s['compensation_jobs_dispatched']} dispatched, "
        f"{s['compensation_jobs_skipped']} skipped, {s['compensation_jobs_failed']} failed; "
        f"{s['manual_followups']} manual follow-ups"
    )
    style = _VERDICT_STYLE[result.verdict]
    console.print(f"verdict: [{style}]{result.verdict.value}[/]", soft_wrap=True)
    if evidence:  # a path is never broken: the terminal wraps it, a copy stays whole
        console.print(f"evidence: {escape(evidence)}", soft_wrap=True)


def _step_row(st: StepReport) -> list[str]:
    rule = st.rule_id or ("(default)" if st.decision else "")
    return [
        str(st.index + 1),
        st.step_id,
        st.topic,
        st.job_id or "",
        rule,
        str(st.attempts or ""),
        st.state.value,
    ]


def _compensation_row(c: CompensationReport) -> list[str]:
    outcome: str = c.outcome.value
    if c.outcome is CompensationOutcome.SUCCEEDED and c.applied is False:
        outcome = "succeeded (nothing to undo)"
    if c.deliveries > c.attempts:
        outcome += f", delivered {c.deliveries}x"
    return [c.step_id, c.topic or "-", c.job_id or "", str(c.attempts or ""), outcome]


def sweep_dict(rows: Sequence[SweepRow], evidence: str | None) -> dict[str, Any]:
    failed = [r for r in rows if r.verdict == Verdict.FAILED.value]
    return {
        "runs": [
            {
                "index": r.index,
                "step_id": r.step_id,
                "topic": r.topic,
                "run_id": r.run_id,
                "status": r.status,
                "verdict": r.verdict,
                "reached": r.reached,
                "stopped_at": r.stopped_at,
                "compensated": r.compensated,
                "manual": r.manual,
                "problems": list(r.problems),
                "evidence": r.evidence,
            }
            for r in rows
        ],
        "total": len(rows),
        "failed": len(failed),
        "not_reached": sum(1 for r in rows if r.verdict == NOT_REACHED),
        "interrupted": sum(1 for r in rows if r.verdict == Verdict.INTERRUPTED.value),
        "evidence": evidence,
    }


def render_sweep_json(rows: Sequence[SweepRow], stream: TextIO, evidence: str | None) -> None:
    json.dump(sweep_dict(rows, evidence), stream, indent=2)
    stream.write("\n")


SWEEP_COLUMNS = (
    Column("#", drop=1, title=True, justify="right"),
    Column("fails at", title=True),
    Column("topic", title=True),
    Column("status", drop=2),
    Column("undone"),
    Column("manual"),
    Column("verdict", readable=len("not reached")),
    Column("problem", readable=24),
)
"""The sweep table: the index and the run's status give way first at narrow widths."""


def render_sweep_text(rows: Sequence[SweepRow], console: Console, evidence: str | None) -> None:
    from rich.text import Text

    cells: list[list[str | Text]] = []
    for r in rows:
        if r.verdict == NOT_REACHED:
            shown, note = Text("not reached", style="yellow"), _not_reached(r)
        else:
            style = _ROW_STYLE.get(r.verdict, "red")
            shown, note = Text(r.verdict, style=style), r.problems[0] if r.problems else ""
        cells.append(
            [
                str(r.index + 1),
                r.step_id,
                r.topic,
                r.status,
                str(r.compensated),
                str(r.manual),
                shown,
                note,
            ]
        )
    layout.render(console, SWEEP_COLUMNS, cells, title="sweep: FAILED_FATAL at each step")
    failed = sum(1 for r in rows if r.verdict == Verdict.FAILED.value)
    missed = sum(1 for r in rows if r.verdict == NOT_REACHED)
    stopped = sum(1 for r in rows if r.verdict == Verdict.INTERRUPTED.value)
    if failed:
        verdict = "[bold red]failed[/]"
    elif stopped:
        verdict = "[bold yellow]interrupted[/] (the runs not finished were not rehearsed)"
    elif missed:
        verdict = "[bold yellow]incomplete[/] (steps not reached were not rehearsed)"
    else:
        verdict = "[bold green]recovered[/]"
    counts = f"{_plural(len(rows), 'run')}, {failed} failed" + (
        f", {missed} not reached" if missed else ""
    )
    if stopped:
        counts += f", {stopped} interrupted"
    console.print(f"{counts}: {verdict}")
    if evidence:
        console.print(f"evidence: {escape(evidence)}", soft_wrap=True)


_ROW_STYLE = {
    Verdict.COMPLETED.value: "green",
    Verdict.RECOVERED.value: "green",
    Verdict.INTERRUPTED.value: "yellow",
}
"""How a sweep row's verdict is coloured (anything else: red)."""


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _not_reached(row: SweepRow) -> str:
    if row.stopped_at is None or row.stopped_at == row.step_id:
        return f"{row.status} before the injected failure"
    return f"stopped at '{row.stopped_at}' first"


@contextmanager
def progress(console: Console, total: int) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on ``console`` while a long sweep runs; yields the update callback.

    The bar is redrawn by each update, not by a refresh thread: a parallel sweep forks
    its worker processes while the bar is up, and forking a process that runs other
    threads can deadlock the child.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        auto_refresh=False,
    ) as bar:
        task = bar.add_task("sweep", total=total)
        bar.refresh()

        def update(done: int, _total: int) -> None:
            bar.update(task, completed=done, refresh=True)

        yield update


@dataclass(frozen=True, slots=True)
class DrillCase:
    """One drill (or one run of a sweep) as a JUnit test case.

    ``verdict`` is the run's, :data:`~agentundo.saga.sweep.NOT_REACHED`, :data:`ERROR`
    (bad input: nothing ran) or :data:`EVIDENCE_LOST`.
    """

    workflow: str  # the classname: the workflow id
    name: str  # the scenario (or the step of a sweep)
    verdict: str
    problems: tuple[str, ...] = ()
    evidence: str | None = None


ERROR = "error"
EVIDENCE_LOST = "evidence_incomplete"
_PASSING = {Verdict.COMPLETED.value, Verdict.RECOVERED.value}


def case_of(result: DrillResult, name: str, evidence: str | None, lost: str | None) -> DrillCase:
    """The case of one drill run (``lost``: why its evidence is incomplete)."""
    if lost is not None:
        return DrillCase(
            result.workflow_id,
            name,
            EVIDENCE_LOST,
            (f"evidence incomplete: {lost}", *result.problems),
            evidence,
        )
    return DrillCase(
        result.workflow_id, name, result.verdict.value, tuple(result.problems), evidence
    )


def cases_of_sweep(rows: Sequence[SweepRow], workflow: str, prefix: str = "") -> list[DrillCase]:
    """One case per sweep run, named after the step that was failed."""
    cases: list[DrillCase] = []
    for r in rows:
        problems = r.problems
        if r.verdict == NOT_REACHED:
            problems = (f"not reached: {_not_reached(r)}", *problems)
        if r.evidence_failure:
            problems = (f"evidence incomplete: {r.evidence_failure}", *problems)
        verdict = EVIDENCE_LOST if r.evidence_failure else r.verdict
        name = f"{prefix}{r.step_id}"
        cases.append(DrillCase(workflow, name, verdict, tuple(problems), r.evidence))
    return cases


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def junit_document(cases: Sequence[DrillCase]) -> Any:
    """The ``<testsuites>`` element: a ``<failure>`` for a failed or unreached drill (and
    lost evidence), an ``<error>`` for bad input, ``<skipped>`` for an interrupted one;
    ``<system-out>`` names the evidence."""
    from xml.etree import ElementTree as ET

    suites = ET.Element("testsuites", name="agentundo drill")
    suite = ET.SubElement(suites, "testsuite", name="agentundo drill")
    failures = errors = skipped = 0
    for c in cases:
        case = ET.SubElement(suite, "testcase", classname=_clean(c.workflow), name=_clean(c.name))
        first = c.problems[0] if c.problems else f"verdict: {c.verdict}"
        if c.verdict == ERROR:
            errors += 1
            element = ET.SubElement(case, "error", type="input-error", message=_clean(first))
            element.text = _clean("\n".join(c.problems))
        elif c.verdict == Verdict.INTERRUPTED.value:
            skipped += 1
            ET.SubElement(case, "skipped", message="interrupted: the drill did not finish")
        elif c.verdict not in _PASSING:
            failures += 1
            element = ET.SubElement(case, "failure", type=c.verdict, message=_clean(first))
            element.text = _clean("\n".join([f"verdict: {c.verdict}", *c.problems]))
        if c.evidence:
            out = ET.SubElement(case, "system-out")
            out.text = _clean(f"evidence: {c.evidence}")
    for element in (suites, suite):
        element.set("tests", str(len(cases)))
        element.set("failures", str(failures))
        element.set("errors", str(errors))
    suite.set("skipped", str(skipped))
    return suites


def render_junit(cases: Sequence[DrillCase], stream: TextIO) -> None:
    from xml.etree import ElementTree as ET

    tree = ET.ElementTree(junit_document(cases))
    ET.indent(tree)
    stream.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    tree.write(stream, encoding="unicode")
    stream.write("\n")


def render_case_line(case: DrillCase, console: Console) -> None:
    """One line of ``agentundo drill DIR`` in text mode."""
    style = "green" if case.verdict in _PASSING else _ROW_STYLE.get(case.verdict, "red")
    note = case.problems[0] if case.problems else f"evidence: {case.evidence or '-'}"
    console.print(
        f"[{style}]{case.verdict}[/] {escape(case.workflow)} {escape(case.name)}: {escape(note)}",
        soft_wrap=True,
    )
