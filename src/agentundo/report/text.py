"""Readable report: findings grouped by file, then a summary line.

Colour follows rich's rules: none when ``NO_COLOR`` is set or the stream is not a terminal.
"""

from __future__ import annotations

from itertools import groupby
from typing import TextIO

from rich.console import Console
from rich.markup import escape

from agentundo.lint.engine import LintResult
from agentundo.lint.finding import Severity
from agentundo.report.common import all_findings, summary_line

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def render_stream(result: LintResult, stream: TextIO) -> None:
    """The text report on ``stream`` (colour only when it is a terminal)."""
    render(result, Console(file=stream, highlight=False))


def render(result: LintResult, console: Console, *, input_errors: bool = True) -> None:
    """Findings by file, then the summary; ``input_errors=False`` leaves AU000 lines out
    (the CLI prints input errors on stderr when this report goes to the terminal)."""
    findings = sorted(all_findings(result) if input_errors else result.findings)
    for path, group in groupby(findings, key=lambda f: f.path):
        console.print(f"[bold underline]{escape(path)}[/]", soft_wrap=True)
        for f in group:
            style = _STYLE[f.severity]
            console.print(
                f"  {f.line}:{f.column}  [{style}]{f.severity}[/]  [bold]{f.code}[/]  "
                f"{escape(f.message)}",
                soft_wrap=True,
            )
            if f.hint:
                console.print(f"      [dim]hint: {escape(f.hint)}[/]", soft_wrap=True)
    render_summary(result, console)


def render_summary(result: LintResult, console: Console) -> None:
    line = escape(summary_line(result))
    if not result.findings and not result.input_errors:
        line = line.replace(" - clean", " - [bold green]clean[/]")
    console.print(line, soft_wrap=True)
