"""Helpers for check tests: write small YAML files, lint them, list (code, line, column)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from agentundo.lint.engine import lint_paths
from agentundo.lint.finding import Finding


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def lint_texts(
    directory: Path,
    *,
    catalog: str | None = None,
    policy: str | None = None,
    workflow: str | None = None,
    envs: tuple[str, ...] = ("production",),
) -> list[Finding]:
    """Lint the given documents together; input errors fail the test."""
    for name, text in (("catalog.yaml", catalog), ("policy.yaml", policy), ("wf.yaml", workflow)):
        if text is not None:
            write(directory, name, text)
    result = lint_paths([str(directory)], envs=envs)
    assert not result.input_errors, [e.describe() for e in result.input_errors]
    return result.findings


def located(findings: list[Finding], code: str) -> list[tuple[str, int, int]]:
    """(file name, line, column) of every finding with ``code``."""
    return [(Path(f.path).name, f.line, f.column) for f in findings if f.code == code]
