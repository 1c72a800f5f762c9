"""What every lint reporter needs: all findings (input errors as AU000), paths, the summary."""

from __future__ import annotations

import os
from pathlib import Path, PurePath

from agentundo.errors import InputError
from agentundo.lint.engine import LintResult
from agentundo.lint.finding import Finding, Severity

INPUT_ERROR_CODE = "AU000"
INPUT_ERROR_NAME = "input-error"
INPUT_ERROR_SUMMARY = (
    "An input file is missing, unreadable, not valid YAML or not valid for its schema."
)


def input_error_finding(error: InputError) -> Finding:
    """An input error as a finding with code AU000 (exit 2, never suppressed)."""
    position = error.position
    return Finding(
        path=position.path,
        line=position.line,
        column=position.column,
        code=INPUT_ERROR_CODE,
        severity=Severity.ERROR,
        message=error.message,
        hint=error.hint,
    )


def all_findings(result: LintResult) -> list[Finding]:
    """Findings followed by input errors, the order of the JSON report."""
    return [*result.findings, *(input_error_finding(e) for e in result.input_errors)]


def checked_paths(result: LintResult) -> list[str]:
    """Every path the run looked at: loaded files, then files with input errors."""
    paths = [f.path for f in result.files]
    paths.extend(e.position.path for e in result.input_errors)
    paths.extend(f.path for f in result.findings)
    return list(dict.fromkeys(paths))


def relative_uri(path: str, root: Path | None = None) -> str:
    """``path`` relative to ``root`` (the working directory) with ``/`` separators."""
    base = Path.cwd() if root is None else root
    candidate = Path(path)
    if candidate.is_absolute():
        try:
            candidate = candidate.relative_to(base)
        except ValueError:
            return candidate.as_posix()
    text = PurePath(os.path.normpath(candidate)).as_posix()
    return text


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def summary_line(result: LintResult) -> str:
    """One line for a terminal: files checked, counts by severity, input errors, suppressed."""
    counts = ", ".join(
        _plural(result.count(s), str(s)) for s in (Severity.ERROR, Severity.WARNING, Severity.INFO)
    )
    files = len(result.files) + len({e.position.path for e in result.input_errors})
    parts = [f"{_plural(files, 'file')} checked: {counts}"]
    if result.input_errors:
        parts.append(_plural(len(result.input_errors), "input error"))
    if result.suppressed:
        parts.append(f"{result.suppressed} suppressed")
    line = ", ".join(parts)
    if not result.findings and not result.input_errors:
        line += " - clean"
    return line
