"""Readable report: findings grouped by file, then a summary line."""

from __future__ import annotations

import sys
from itertools import groupby

from rich.console import Console
from rich.markup import escape

from agentundo.lint.engine import LintResult
from agentundo.lint.finding import Severity

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def render(result: LintResult, console: Console) -> None:
    for error in result.input_errors:
        print(error.describe(), file=sys.stderr)
    for path, group in groupby(result.findings, key=lambda f: f.path):
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
    counts = ", ".join(
        f"{result.count(s)} {s}{'s' if result.count(s) != 1 else ''}"
        for s in (Severity.ERROR, Severity.WARNING, Severity.INFO)
    )
    files = len(result.files) + len({e.position.path for e in result.input_errors})
    bad = f", {len(result.input_errors)} input errors" if result.input_errors else ""
    verdict = "[bold green]clean[/]" if not result.findings and not result.input_errors else ""
    console.print(f"{files} files checked: {counts}{bad} {verdict}".rstrip(), soft_wrap=True)
