"""The static drill history page of ``agentundo report``: one self-contained HTML file.

Inline CSS, inline SVG (:mod:`agentundo.history.svg`), no script, no request for anything
(a Content-Security-Policy of ``default-src 'none'`` says so to the browser as well). Every
text that comes from evidence is escaped with :func:`html.escape`. Per workflow: its
figures, the verdicts over time, the rollback durations, its open problems, its follow-ups
and a table of its runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from agentundo.history.collect import History, RunEntry
from agentundo.history.stats import WorkflowStats, by_workflow, date_text, duration_text, mark_of
from agentundo.history.svg import duration_plot, verdict_plot

CSS = """
:root { --pass: #1a7f37; --fail: #cf222e; --incomplete: #9a6700; --ink: #1f2328;
  --muted: #59636e; --line: #d1d9e0; --paper: #ffffff; --band: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px 48px; font: 14px/1.45 system-ui, sans-serif;
  color: var(--ink); background: var(--paper); max-width: 1100px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 0 0 8px; word-break: break-all; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.lede, .none, footer { color: var(--muted); }
section.workflow { border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px;
  margin: 20px 0; }
dl.figures { display: flex; flex-wrap: wrap; gap: 8px 20px; margin: 8px 0 0; }
dl.figures div { min-width: 92px; }
dt { color: var(--muted); font-size: 12px; }
dd { margin: 0; font-size: 18px; font-weight: 600; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { background: var(--band); }
td.id, .mono { font-family: ui-monospace, monospace; word-break: break-all; }
td.id { white-space: nowrap; word-break: normal; }
tr.fail td.verdict, .fail-text { color: var(--fail); font-weight: 600; }
tr.pass td.verdict { color: var(--pass); }
tr.incomplete td.verdict { color: var(--incomplete); }
ul.problems { margin: 0; padding-left: 20px; }
ul.problems li { margin: 2px 0; }
.code { font-family: ui-monospace, monospace; font-weight: 600; }
svg.plot { display: block; max-width: 100%; height: auto; }
svg .lane, svg .axis-line { stroke: var(--line); stroke-width: 1; }
svg .axis { fill: var(--muted); font-size: 11px; }
svg .mean { stroke: var(--muted); stroke-dasharray: 4 3; }
svg .mark.pass { fill: var(--pass); }
svg .mark.fail { fill: var(--fail); }
svg .mark.incomplete { fill: var(--incomplete); }
.trend span { font-family: ui-monospace, monospace; font-weight: 700; }
.trend .pass { color: var(--pass); } .trend .fail { color: var(--fail); }
.trend .incomplete { color: var(--incomplete); }
"""

_TREND = {"pass": "✓", "fail": "✗", "incomplete": "?"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Page:
    """What the page says about where it came from."""

    title: str = "Drill history"
    sources: str = ""
    """The paths read, as given."""
    files: int = 0
    version: str = ""


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _trend(stats: WorkflowStats) -> str:
    marks = "".join(f'<span class="{m}">{_TREND[m]}</span>' for m in stats.marks[-40:])
    return f'<span class="trend" title="oldest to newest">{marks}</span>'


def _figures(stats: WorkflowStats) -> str:
    figures = [
        ("Runs", str(stats.runs), "runs"),
        ("Pass rate", f"{stats.pass_rate:.0%}", "pass-rate"),
        ("Passed", f"{stats.passed} of {stats.runs}", "passed"),
        ("Last verdict", stats.last_verdict, "last-verdict"),
        ("Rollback mean", duration_text(stats.rollback_mean_s), "rollback-mean"),
        ("Rollback max", duration_text(stats.rollback_max_s), "rollback-max"),
        ("Follow-ups", str(stats.followups), "followups"),
        ("Unplanned", str(stats.unplanned_followups), "unplanned"),
    ]
    cells = "".join(
        f'<div><dt>{_e(label)}</dt><dd class="{name}">{_e(value)}</dd></div>'
        for label, value, name in figures
    )
    return f'<dl class="figures">{cells}</dl>'


def _problems(runs: Sequence[RunEntry]) -> str:
    """What is still open: failed verification, bad verdicts, unfinished runs, unplanned
    follow-ups; newest run first."""
    items: list[str] = []
    for run in reversed(runs):
        who = f'<span class="mono">{_e(run.run_id)}</span>'
        for problem in run.problems:
            where = f"{problem.path}:{problem.line}" if problem.line else problem.path
            items.append(
                f'<li class="ev">{who}: <span class="code">{_e(problem.code)}</span> '
                f"{_e(problem.name)}: {_e(problem.message)} "
                f'<span class="mono">({_e(where)})</span></li>'
            )
        if run.problem_count > len(run.problems):
            more = run.problem_count - len(run.problems)
            items.append(f'<li class="ev">{who}: {more} more verification problems</li>')
        if not run.complete:
            items.append(
                f'<li class="incomplete">{who}: no run_summary: the run did not finish</li>'
            )
        elif not run.passed and run.verified is not False:
            items.append(f'<li class="verdict">{who}: verdict {_e(run.verdict)}</li>')
        items.extend(
            f'<li class="unplanned">{who}: unplanned follow-up at step '
            f"<b>{_e(note.step)}</b> ({_e(note.category)}): {_e(note.reason)}</li>"
            for note in run.followups
            if not note.planned
        )
    if not items:
        return '<p class="none">No open problems.</p>'
    return f'<ul class="problems">{"".join(items)}</ul>'


def _followups(runs: Sequence[RunEntry]) -> str:
    rows = []
    for run in reversed(runs):
        for note in run.followups:
            kind = "planned" if note.planned else "unplanned"
            rows.append(
                f'<tr class="{kind}"><td class="id">{_e(run.run_id)}</td><td>{_e(date_text(run))}</td>'
                f"<td>{_e(note.step)}</td><td>{_e(note.category)}</td><td>{kind}</td>"
                f"<td>{_e(note.reason)}</td></tr>"
            )
        hidden = run.followup_count - len(run.followups)
        if hidden > 0:
            rows.append(
                f'<tr><td class="id">{_e(run.run_id)}</td><td colspan="5">{hidden} more '
                "follow-ups (see its timeline)</td></tr>"
            )
    if not rows:
        return '<p class="none">No manual follow-ups.</p>'
    head = "<tr><th>Run</th><th>Date</th><th>Step</th><th>Category</th><th>Kind</th><th>Reason</th></tr>"
    return f'<table class="followups">{head}{"".join(rows)}</table>'


def _runs_table(runs: Sequence[RunEntry]) -> str:
    head = (
        "<tr><th>Date</th><th>Run</th><th>Env</th><th>Status</th><th>Verdict</th>"
        "<th>Rollback</th><th>Skipped</th><th>Follow-ups</th><th>Verified</th><th>Evidence</th></tr>"
    )
    rows = []
    for run in reversed(runs):
        if not run.rollback:
            rollback = "no"
        else:
            rollback = "unfinished" if run.rollback_s is None else duration_text(run.rollback_s)
        verified = {True: "yes", False: "NO", None: "-"}[run.verified]
        rows.append(
            f'<tr class="run {mark_of(run)}" data-run="{_e(run.run_id)}">'
            f'<td>{_e(date_text(run))}</td><td class="id">{_e(run.run_id)}</td>'
            f"<td>{_e(run.env)}</td><td>{_e(run.status)}</td>"
            f'<td class="verdict">{_e(run.verdict)}</td><td>{_e(rollback)}</td>'
            f"<td>{_e(run.skipped)}</td><td>{_e(run.manual_followups)}</td>"
            f'<td>{verified}</td><td class="mono">{_e(run.path)}:{run.line}</td></tr>'
        )
    return f'<table class="runs">{head}{"".join(rows)}</table>'


def _workflow(index: int, stats: WorkflowStats, runs: Sequence[RunEntry]) -> str:
    durations = duration_plot(runs) or '<p class="none">No rollback finished in these runs.</p>'
    return (
        f'<section class="workflow" id="wf-{index}" data-workflow="{_e(stats.workflow)}">'
        f"<h2>{_e(stats.workflow)}</h2>{_figures(stats)}"
        f"<h3>Verdicts over time</h3>{verdict_plot(runs)}"
        f"<h3>Rollback duration</h3>{durations}"
        f"<h3>Open problems</h3>{_problems(runs)}"
        f"<h3>Follow-ups</h3>{_followups(runs)}"
        f"<h3>Runs (newest first)</h3>{_runs_table(runs)}"
        "</section>"
    )


def _overview(workflows: Sequence[WorkflowStats]) -> str:
    head = (
        "<tr><th>Workflow</th><th>Runs</th><th>Pass rate</th><th>Last verdict</th>"
        "<th>Rollback mean</th><th>Rollback max</th><th>Follow-ups</th><th>Trend</th></tr>"
    )
    rows = "".join(
        f'<tr><td><a href="#wf-{index}">{_e(w.workflow)}</a></td><td>{w.runs}</td>'
        f'<td class="pass-rate">{w.pass_rate:.0%}</td><td>{_e(w.last_verdict)}</td>'
        f"<td>{_e(duration_text(w.rollback_mean_s))}</td><td>{_e(duration_text(w.rollback_max_s))}</td>"
        f"<td>{w.followups} ({w.unplanned_followups} unplanned)</td><td>{_trend(w)}</td></tr>"
        for index, w in enumerate(workflows, start=1)
    )
    return f'<table class="overview">{head}{rows}</table>'


def _lede(history: History, workflows: Sequence[WorkflowStats], page: Page) -> str:
    runs = history.runs
    dated = [r.moment for r in runs if r.moment is not None]
    span = f", {min(dated):%Y-%m-%d} to {max(dated):%Y-%m-%d}" if dated else ""
    verified = sum(r.verified is True for r in runs)
    source = f" from {_e(page.sources)} ({page.files} files)" if page.sources else ""
    return (
        f'<p class="lede">{len(runs)} runs of {len(workflows)} workflows{span}{source}. '
        f"Evidence verified for {verified} of {len(runs)} runs.</p>"
    )


def _unreadable(history: History) -> str:
    if not history.unreadable:
        return ""
    items = "".join(f'<li class="mono">{_e(text)}</li>' for text in history.unreadable)
    return (
        '<section class="unreadable"><h2>Files that are not evidence</h2>'
        f'<ul class="problems">{items}</ul></section>'
    )


def render_page(history: History, page: Page) -> str:
    """The whole page for the runs of ``history`` (sorted by start)."""
    workflows = by_workflow(history.runs)
    grouped: dict[str, list[RunEntry]] = {}
    for run in history.runs:
        grouped.setdefault(run.workflow, []).append(run)
    sections = "".join(
        _workflow(index, stats, grouped[stats.workflow])
        for index, stats in enumerate(workflows, start=1)
    )
    version = f" {_e(page.version)}" if page.version else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(page.title)}</title><style>{CSS}</style></head>\n<body>"
        f"<header><h1>{_e(page.title)}</h1>{_lede(history, workflows, page)}</header>"
        f'<section class="overview"><h2>Workflows</h2>{_overview(workflows)}</section>'
        f"{_unreadable(history)}{sections}"
        f"<footer><p>Written by agentundo{version} from the evidence files; "
        "pass rate: runs with a completed or recovered verdict whose evidence did not fail "
        "verification.</p></footer>"
        "</body></html>\n"
    )
