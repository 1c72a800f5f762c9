"""The timeline of evidence: read, filter, verify and render runs (``agentundo timeline``).

:func:`run` is the entry point: a :class:`TimelineRequest` and the :class:`Streams` to
write to in, a :class:`TimelineOutcome` out. The pieces, each its own module:

* :mod:`~agentundo.timeline.times` and :mod:`~agentundo.timeline.query`: which records to show;
* :mod:`~agentundo.timeline.entries`: a record as a row of text;
* :mod:`~agentundo.timeline.runs`: grouping records into runs (:class:`Timeline`), and the
  :class:`~agentundo.timeline.runs.Renderer` interface;
* one module per renderer: ``render_table`` (and ``--follow``), ``render_json``,
  ``render_markdown``, ``render_mermaid``; :mod:`~agentundo.timeline.formats` picks one;
* :mod:`~agentundo.timeline.summary`: the run history (``--summary``).

Renderers keep at most ``limit`` rows per run (0: no limit), so memory stays flat on
huge files; the JSON renderer keeps nothing and writes each record's original line as it
comes. Only the table renderers use rich, imported when they draw.
"""

from __future__ import annotations

from agentundo.timeline.core import Streams, TimelineOutcome, TimelineRequest, run

__all__ = ["Streams", "TimelineOutcome", "TimelineRequest", "run"]
