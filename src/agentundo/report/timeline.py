"""Moved to :mod:`agentundo.timeline`; these names stay importable from here for the tests.

Remove this module once the tests import from :mod:`agentundo.timeline`'s modules.
"""

from __future__ import annotations

from agentundo.timeline.entries import Tone, decision_text, make_entry
from agentundo.timeline.formats import Format, renderer
from agentundo.timeline.query import Query
from agentundo.timeline.render_markdown import md_cell
from agentundo.timeline.runs import Timeline
from agentundo.timeline.times import TimeBound

__all__ = [
    "Format",
    "Query",
    "TimeBound",
    "Timeline",
    "Tone",
    "decision_text",
    "make_entry",
    "md_cell",
    "renderer",
]
