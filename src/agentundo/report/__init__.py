"""Renderers of results: text (rich), json and the CI formats.

Every lint reporter has the same small interface, :class:`Reporter`: it takes a
:class:`~agentundo.lint.engine.LintResult` and a text stream and writes one report.
:func:`reporter` picks one by :class:`Format`; modules are imported on demand so that
``--format json`` never imports rich.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Protocol, TextIO, assert_never

if TYPE_CHECKING:
    from agentundo.lint.engine import LintResult


class Format(StrEnum):
    """Output formats of ``agentundo lint --format``."""

    TEXT = "text"
    JSON = "json"
    SARIF = "sarif"
    GITHUB = "github"
    JUNIT = "junit"
    GITLAB = "gitlab"


class Reporter(Protocol):
    """Write one report of ``result`` to ``stream``."""

    def __call__(self, result: LintResult, stream: TextIO) -> None: ...


def reporter(fmt: Format) -> Reporter:
    """The reporter of ``fmt`` (imports only that reporter's module)."""
    match fmt:
        case Format.TEXT:
            from agentundo.report import text

            return text.render_stream
        case Format.JSON:
            from agentundo.report import json_

            return json_.render
        case Format.SARIF:
            from agentundo.report import sarif

            return sarif.render
        case Format.GITHUB:
            from agentundo.report import github

            return github.render
        case Format.JUNIT:
            from agentundo.report import junit

            return junit.render
        case Format.GITLAB:
            from agentundo.report import gitlab

            return gitlab.render
        case _:
            assert_never(fmt)
