"""Drill history: every run of many evidence files, grouped by workflow.

* :mod:`~agentundo.history.collect`: every record of every file read as a stream, split
  into runs (one :class:`~agentundo.history.collect.RunEntry` each), verified when asked;
* :mod:`~agentundo.history.stats`: runs grouped by workflow (pass rate, last verdict,
  rollback durations, follow-ups, the trend of verdicts);
* :mod:`~agentundo.history.svg` and :mod:`~agentundo.history.html`: the static page of
  ``agentundo report``.

``agentundo timeline --summary`` and ``agentundo report`` both read the evidence through
:func:`~agentundo.history.collect.collect`, so their numbers agree.
"""
