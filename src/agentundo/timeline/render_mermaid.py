"""``--format mermaid``: per run a gantt chart of steps, compensations and milestones."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, TextIO

from agentundo.evidence.events import Event
from agentundo.evidence.reader import Record
from agentundo.timeline.entries import value_text
from agentundo.timeline.runs import ShowsNoProblems
from agentundo.timeline.times import parse_ts

if TYPE_CHECKING:
    from agentundo.timeline.runs import Run


_MERMAID_TS = "%Y-%m-%d %H:%M:%S"


def _mermaid_time(moment: datetime) -> str:
    return moment.strftime(_MERMAID_TS) + f".{moment.microsecond // 1000:03d}"


def _mermaid_label(text: str) -> str:
    """A task name: mermaid splits on ':' and ends statements at ';' and '#'."""
    return re.sub(r"[:;#]", " ", text).strip() or "?"


@dataclass(slots=True)
class _Task:
    section: str
    label: str
    start: datetime
    end: datetime
    state: str  # done, crit, active, milestone-crit, milestone
    index: int = 0
    note: str = ""


_FORWARD_END = {
    Event.STEP_SUCCEEDED: "done",
    Event.STEP_FAILED_FATAL: "crit",
    Event.STEP_FAILED: "active",
}
_COMPENSATION_END = {
    Event.COMPENSATION_SUCCEEDED: "done",
    Event.COMPENSATION_FAILED: "crit",
    Event.COMPENSATION_TIMED_OUT: "crit",
    Event.COMPENSATION_REJECTED: "crit",
}
_MILESTONES = {
    Event.ROLLBACK_TRIGGERED: ("Compensation", "rollback triggered", "crit"),
    Event.STEP_DENIED: ("Forward", "denied", "crit"),
    Event.COMPENSATION_SKIPPED: ("Follow-up", "compensation skipped", "crit"),
    Event.MANUAL_FOLLOWUP: ("Follow-up", "manual follow-up", "crit"),
    Event.APPROVAL_TIMEOUT: ("Forward", "approval timed out", "crit"),
    Event.RUN_INTERRUPTED: ("Forward", "run interrupted", "crit"),
}
_SECTIONS = ("Forward", "Compensation", "Follow-up")


class MermaidRenderer(ShowsNoProblems):
    """Per run, a gantt chart: forward steps and compensations as bars, the rest as milestones.

    A bar runs from a step's first dispatch to its last outcome (retries included); its
    state is done (succeeded), crit (failed) or active (no outcome: still running, or the
    evidence ends). Several runs give several charts, separated by a blank line.
    """

    writes_data = True

    def __init__(self, stream: TextIO, *, limit: int) -> None:
        self.stream = stream
        self.limit = limit
        self.tasks: list[_Task] = []
        self.open: dict[tuple[str, str], _Task] = {}
        self.hidden = 0
        self.charts = 0

    def _add(self, task: _Task) -> bool:
        if self.limit and len(self.tasks) >= self.limit:
            self.hidden += 1
            return False
        task.index = len(self.tasks)
        self.tasks.append(task)
        return True

    def record(self, run: Run, record: Record) -> None:
        data = record.data
        moment = parse_ts(data.get("ts"))
        if moment is None:
            return
        event = record.event
        step = value_text(data.get("step_id", "") or data.get("job_id", "") or "?")
        topic = value_text(data.get("topic", ""))
        if event in (Event.STEP_DISPATCHED, Event.COMPENSATION_DISPATCHED):
            forward = event == Event.STEP_DISPATCHED
            key = ("f" if forward else "c", step)
            task = self.open.get(key)
            if task is None:
                label = f"{step} {topic}" if forward else f"undo {step} {topic}"
                task = _Task(
                    "Forward" if forward else "Compensation", label, moment, moment, "active"
                )
                if self._add(task):
                    self.open[key] = task
            return
        ends = _FORWARD_END if event in _FORWARD_END else _COMPENSATION_END
        if event in ends:
            key = ("f" if ends is _FORWARD_END else "c", step)
            task = self.open.get(key)
            if task is not None:
                task.end = max(moment, task.start)
                task.state = ends[Event(event)]
                failed = event in (Event.STEP_FAILED_FATAL, Event.STEP_FAILED)
                if failed or task.state == "crit":
                    task.note = "failed" if failed else event.removeprefix("compensation_")
                else:
                    task.note = ""
            return
        if event in _MILESTONES:
            section, what, state = _MILESTONES[Event(event)]
            self._add(
                _Task(section, f"{what} {step}".strip(), moment, moment, f"milestone-{state}")
            )

    def end_run(self, run: Run) -> None:
        tasks, hidden = self.tasks, self.hidden
        self.tasks, self.open, self.hidden = [], {}, 0
        write = self.stream.write
        if self.charts:
            write("\n")
        self.charts += 1
        header = dict(run.header())
        title = f"{run.tally.workflow_id or '?'} {run.tally.run_id or '?'} ({header['env']}) verdict {header['verdict']}"
        write("gantt\n")
        write(f"    title {_mermaid_label(title)}\n")
        write("    dateFormat YYYY-MM-DD HH:mm:ss.SSS\n")
        write("    axisFormat %H:%M:%S\n")
        for section in _SECTIONS:
            members = [t for t in tasks if t.section == section]
            if not members:
                continue
            write(f"    section {section}\n")
            for task in members:
                tags = {
                    "done": "done, ",
                    "crit": "crit, ",
                    "active": "active, ",
                    "milestone-crit": "milestone, crit, ",
                    "milestone": "milestone, ",
                }[task.state]
                label = f"{task.label} ({task.note})" if task.note else task.label
                write(
                    f"    {_mermaid_label(label)} :{tags}t{task.index}, "
                    f"{_mermaid_time(task.start)}, {_mermaid_time(task.end)}\n"
                )
        if hidden:
            write(f"    %% {hidden} more tasks not shown (raise --limit)\n")

    def close(self) -> None:
        self.stream.flush()
