"""JSON report: a list of finding objects (code, severity, message, path, line, column, hint)."""

from __future__ import annotations

import json
from typing import TextIO

from agentundo.lint.engine import LintResult


def render(result: LintResult, stream: TextIO) -> None:
    items = [f.as_dict() for f in result.findings]
    items.extend(
        {
            "code": "AU000",
            "severity": "error",
            "message": e.message,
            "path": e.position.path,
            "line": e.position.line,
            "column": e.position.column,
            "hint": e.hint,
        }
        for e in result.input_errors
    )
    json.dump(items, stream, indent=2)
    stream.write("\n")
