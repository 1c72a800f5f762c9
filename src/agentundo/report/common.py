"""What every lint reporter needs: all findings (input errors as AU000), paths, the summary."""

from __future__ import annotations

import os
from pathlib import Path, PurePath

from agentundo.errors import InputError
from agentundo.lint.engine import LintResult
from agentundo.lint.finding import Finding, Severity
from agentundo.lint.registry import RULES_DOC_URL

INPUT_ERROR_CODE = "AU000"
INPUT_ERROR_NAME = "input-error"
INPUT_ERROR_SUMMARY = (
    "An input file is missing, unreadable, not valid YAML or not valid for its schema."
)
INPUT_ERROR_HELP_URI = f"{RULES_DOC_URL}#lint-rules"
"""AU000 is not a check: the rule reference describes it in its opening section."""


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


def inside_root(path: str, root: Path | None = None) -> str | None:
    """``path`` relative to ``root`` (default: the working directory, the repository root
    in CI) with ``/`` separators when it lies inside it, else None.

    ``..`` is resolved first, so ``../repo/a.yaml`` run from ``repo`` is ``a.yaml``; a
    path reached through a symbolic link counts as inside when its target is.
    """
    base = Path.cwd() if root is None else root
    absolute = Path(os.path.abspath(os.path.join(base, path)))
    for candidate, top in (
        (absolute, Path(os.path.abspath(base))),
        (Path(os.path.realpath(absolute)), Path(os.path.realpath(base))),
    ):
        try:
            relative = candidate.relative_to(top)
        except ValueError:
            continue
        return PurePath(relative).as_posix() or "."
    return None


def relative_uri(path: str, root: Path | None = None) -> str:
    """``path`` relative to ``root`` (the working directory) with ``/`` separators; a path
    outside it is absolute (never a ``../`` path, which a CI system would resolve against
    the repository root and get wrong)."""
    inside = inside_root(path, root)
    if inside is not None:
        return inside
    base = Path.cwd() if root is None else root
    return Path(os.path.abspath(os.path.join(base, path))).as_posix()


def report_path(path: str, root: Path | None = None) -> str:
    """Where CI reports (SARIF, GitLab Code Quality) put ``path``: relative to the
    repository root (the working directory) when inside it, else a ``file:`` URI."""
    inside = inside_root(path, root)
    if inside is not None:
        return inside
    return Path(relative_uri(path, root)).as_uri()


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
