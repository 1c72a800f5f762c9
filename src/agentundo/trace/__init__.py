"""Agent traces: OTLP JSON span exports read as runs of tool calls mapped to catalog topics.

``otlp.py`` parses the documents into plain :class:`~agentundo.trace.otlp.Span` objects
(bad input is an :class:`~agentundo.errors.InputError` at its line); ``runs.py`` groups
spans by trace id into :class:`~agentundo.trace.runs.AgentRun` objects of tool calls and
context rows; ``plan.py`` maps each call to its topic and says what became of its effect
(read, kept, undone, owed, a manual follow-up, unknown) and what a recovery must undo;
``view.py`` renders runs for ``agentundo timeline``; ``evidence.py`` turns a run into the
records that open a recovery's evidence (``agentundo recover --trace``).
"""
