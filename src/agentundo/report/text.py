"""Readable report: findings grouped by file, then a summary line.

Colour follows rich's rules: none when ``NO_COLOR`` is set or the stream is not a terminal.
A stream that is no terminal gets the same lines written directly, without importing rich
(:func:`wants_rich`): a pre-commit hook or a CI log does not pay for it.
"""

from __future__ import annotations

import os
from itertools import groupby
from typing import TYPE_CHECKING, TextIO

from agentundo.lint.engine import LintResult
from agentundo.lint.finding import Finding, Severity
from agentundo.report.common import all_findings, summary_line

if TYPE_CHECKING:
    from rich.console import Console

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def wants_rich(stream: TextIO) -> bool:
    """Whether rich would style ``stream``: rich's own terminal test (``TTY_COMPATIBLE``,
    ``FORCE_COLOR``, then ``isatty()``), so plain output is exactly what rich would write."""
    compatible = os.environ.get("TTY_COMPATIBLE", "")
    if compatible in ("0", "1"):
        return compatible == "1"
    force = os.environ.get("FORCE_COLOR")
    if force is not None:
        return force != ""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def render_stream(result: LintResult, stream: TextIO, *, input_errors: bool = True) -> None:
    """The text report on ``stream``: styled by rich on a terminal, plain lines otherwise."""
    if not wants_rich(stream):
        render_plain(result, stream, input_errors=input_errors)
        return
    from rich.console import Console

    render(result, Console(file=stream, highlight=False), input_errors=input_errors)


def _sorted(result: LintResult, input_errors: bool) -> list[Finding]:
    return sorted(all_findings(result) if input_errors else result.findings)


def render_plain(result: LintResult, stream: TextIO, *, input_errors: bool = True) -> None:
    """The lines :func:`render` prints, without styles and without rich."""
    lines: list[str] = []
    for path, group in groupby(_sorted(result, input_errors), key=lambda f: f.path):
        lines.append(path)
        for f in group:
            lines.append(f"  {f.line}:{f.column}  {f.severity}  {f.code}  {f.message}")
            if f.hint:
                lines.append(f"      hint: {f.hint}")
    lines.append(summary_line(result))
    stream.write("\n".join(lines) + "\n")


def render(result: LintResult, console: Console, *, input_errors: bool = True) -> None:
    """Findings by file, then the summary; ``input_errors=False`` leaves AU000 lines out
    (the CLI prints input errors on stderr when this report goes to the terminal)."""
    from rich.markup import escape

    for path, group in groupby(_sorted(result, input_errors), key=lambda f: f.path):
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
    from rich.markup import escape

    line = escape(summary_line(result))
    if not result.findings and not result.input_errors:
        line = line.replace(" - clean", " - [bold green]clean[/]")
    console.print(line, soft_wrap=True)
