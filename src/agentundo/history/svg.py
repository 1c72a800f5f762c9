"""Inline SVG plots of one workflow's drills: verdicts over time, rollback durations.

Plain strings, no library: each plot is a few dozen elements. Every text that comes from
evidence (run ids, verdicts) is escaped; a plot has one mark per run it shows, each with
``class="mark …"`` and ``data-run``, and a ``<title>`` that a browser shows on hover.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from agentundo.history.collect import RunEntry
from agentundo.history.stats import Mark, mark_of
from agentundo.timeline.times import format_duration

WIDTH = 720
LEFT = 80
RIGHT = 16
PLOT = WIDTH - LEFT - RIGHT

LANES = (Mark.PASS, Mark.FAIL, Mark.INCOMPLETE)
"""The verdict plot's rows, top to bottom."""
LANE_LABEL = {Mark.PASS: "passed", Mark.FAIL: "failed", Mark.INCOMPLETE: "incomplete"}


def _x_positions(moments: Sequence[datetime | None]) -> list[float]:
    """Each run's x: by its start time when every run has one, else evenly spaced."""
    count = len(moments)
    known = [m for m in moments if m is not None]
    if len(known) == count and count > 1 and min(known) < max(known):
        first, last = min(known), max(known)
        span = (last - first).total_seconds()
        return [LEFT + PLOT * (m - first).total_seconds() / span for m in known]
    if count == 1:
        return [LEFT + PLOT / 2]
    return [LEFT + PLOT * index / (count - 1) for index in range(count)]


def _date(run: RunEntry) -> str:
    moment = run.moment
    return moment.strftime("%Y-%m-%d") if moment else run.started


def _tip(run: RunEntry, what: str) -> str:
    return escape(f"{run.run_id} · {_date(run)} · {what}")


def verdict_plot(runs: Sequence[RunEntry]) -> str:
    """One mark per run on its lane (passed, failed, incomplete), placed by start time."""
    height = 24 + 26 * len(LANES) + 22
    xs = _x_positions([r.moment for r in runs])
    parts = [
        f'<svg class="plot verdicts" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
        f'height="{height}" role="img" aria-label="verdicts over time, oldest left">'
    ]
    for index, lane in enumerate(LANES):
        y = 24 + 26 * index
        parts.append(
            f'<line class="lane" x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}"/>'
            f'<text class="axis" x="{LEFT - 6}" y="{y + 4}" text-anchor="end">'
            f"{LANE_LABEL[lane]}</text>"
        )
    for run, x in zip(runs, xs, strict=True):
        mark = mark_of(run)
        y = 24 + 26 * LANES.index(mark)
        parts.append(
            f'<circle class="mark {mark}" data-run="{escape(run.run_id)}" cx="{x:.1f}" '
            f'cy="{y}" r="6"><title>{_tip(run, run.verdict)}</title></circle>'
        )
    bottom = height - 6
    if runs:
        parts.append(
            f'<text class="axis" x="{LEFT}" y="{bottom}">{escape(_date(runs[0]))}</text>'
            f'<text class="axis" x="{WIDTH - RIGHT}" y="{bottom}" text-anchor="end">'
            f"{escape(_date(runs[-1]))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def duration_plot(runs: Sequence[RunEntry]) -> str:
    """A bar per run whose rollback finished, oldest left, with the mean as a line; an
    empty string when no rollback finished."""
    timed = [(r, r.rollback_s) for r in runs if r.rollback_s is not None]
    if not timed:
        return ""
    height = 150
    top, base = 16, height - 26
    longest = max(s for _, s in timed) or 1.0
    slot = PLOT / len(timed)
    bar = max(2.0, min(28.0, slot * 0.7))
    parts = [
        f'<svg class="plot durations" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
        f'height="{height}" role="img" aria-label="rollback duration per run, oldest left">',
        f'<line class="axis-line" x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}"/>',
        f'<text class="axis" x="{LEFT - 6}" y="{top + 4}" text-anchor="end">'
        f"{escape(format_duration(longest))}</text>",
        f'<text class="axis" x="{LEFT - 6}" y="{base + 4}" text-anchor="end">0</text>',
    ]
    for index, (run, seconds) in enumerate(timed):
        tall = max(1.5, (base - top) * seconds / longest)  # a run of 0s still shows
        x = LEFT + slot * index + (slot - bar) / 2
        mark = mark_of(run)
        parts.append(
            f'<rect class="mark bar {mark}" data-run="{escape(run.run_id)}" x="{x:.1f}" '
            f'y="{base - tall:.1f}" width="{bar:.1f}" height="{tall:.1f}">'
            f"<title>{_tip(run, 'rollback ' + format_duration(seconds))}</title></rect>"
        )
    mean = sum(s for _, s in timed) / len(timed)
    y = base - (base - top) * mean / longest
    parts.append(
        f'<line class="mean" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"/>'
        f'<text class="axis" x="{WIDTH - RIGHT}" y="{y - 4:.1f}" text-anchor="end">'
        f"mean {escape(format_duration(mean))}</text>"
    )
    parts.append(
        f'<text class="axis" x="{LEFT}" y="{height - 6}">{escape(_date(timed[0][0]))}</text>'
        f'<text class="axis" x="{WIDTH - RIGHT}" y="{height - 6}" text-anchor="end">'
        f"{escape(_date(timed[-1][0]))}</text></svg>"
    )
    return "".join(parts)
