"""Suppression checks (AU9xx): inline ``# agentundo: ignore[CODE] reason`` comments.

The engine emits these findings (:mod:`agentundo.lint.suppress`): suppressions are
handled after every check ran, so these functions yield nothing themselves. They are
registered here so that ``--select``, ``agentundo rules`` and SARIF know them.
"""

from __future__ import annotations

from collections.abc import Iterator

from agentundo.lint.finding import Severity
from agentundo.lint.project import Problem, Project
from agentundo.lint.registry import check


@check("AU901", "suppression-without-reason", Severity.WARNING, "suppression")
def suppression_without_reason(project: Project) -> Iterator[Problem]:
    """A suppression comment gives no reason.

    A suppressed finding is a decision someone made; the reason tells the next reader
    (and the reviewer of the pull request) why it is safe. The finding is still
    suppressed.

    Bad:
        payments.charge:  # agentundo: ignore[AU201]
    Good:
        payments.charge:  # agentundo: ignore[AU201] the provider deduplicates by order id
    """
    yield from ()


@check("AU902", "unused-suppression", Severity.WARNING, "suppression")
def unused_suppression(project: Project) -> Iterator[Problem]:
    """A suppression comment suppresses nothing.

    The finding it was written for is gone (fixed, or reported on another line), so the
    comment only hides the next problem with that code. A code that did not run
    (`--select`, `--ignore`, per-file ignores) is not reported. A code named twice in one
    suppression (`ignore[AU101, au101]`) is reported too: the second one suppresses
    nothing.

    Bad:
        # agentundo: ignore[AU101] legacy topic
        tickets.read:
          side_effect: false
    Good:
        tickets.read:
          side_effect: false
    """
    yield from ()


@check("AU903", "invalid-suppression", Severity.ERROR, "suppression")
def invalid_suppression(project: Project) -> Iterator[Problem]:
    """A suppression comment cannot be read: unknown directive, no code, or an unknown code.

    A malformed suppression suppresses nothing, and silently: the author believes the
    finding is handled. Case does not matter (`# AGENTUNDO: IGNORE[au201] reason` is
    read), but a comment that starts like a suppression and is not written as one (no
    colon: `# agentundo ignore[AU201]`; a `[` never closed) is reported here.

    Bad:
        payments.charge:  # agentundo: ignore[AU2O1] typo in the code
    Good:
        payments.charge:  # agentundo: ignore[AU201] the provider deduplicates by order id
    """
    yield from ()
