"""Run the registered checks over a project and select what to report."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from agentundo.errors import InputError
from agentundo.lint.finding import Finding, Severity
from agentundo.lint.project import Project
from agentundo.lint.registry import Check, all_checks
from agentundo.load.files import LoadedFile, load_paths


def selected(code: str, select: Sequence[str], ignore: Sequence[str]) -> bool:
    """Whether ``code`` passes ``--select``/``--ignore`` (codes or code prefixes)."""
    if select and not any(code.startswith(prefix) for prefix in select):
        return False
    return not any(code.startswith(prefix) for prefix in ignore)


@dataclass(slots=True)
class LintResult:
    """Findings of one run, the files that loaded, and the inputs that did not."""

    files: list[LoadedFile]
    findings: list[Finding] = field(default_factory=list)
    input_errors: list[InputError] = field(default_factory=list)

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity is severity)

    def exit_code(self, fail_on: Severity = Severity.ERROR) -> int:
        """2 when an input was bad, 1 when a finding reaches ``fail_on``, else 0."""
        if self.input_errors:
            return 2
        if any(f.severity.rank >= fail_on.rank for f in self.findings):
            return 1
        return 0


def lint_files(
    files: list[LoadedFile],
    *,
    envs: tuple[str, ...] = ("production",),
    select: Sequence[str] = (),
    ignore: Sequence[str] = (),
    checks: Iterable[Check] | None = None,
) -> list[Finding]:
    """Every finding of the selected checks over ``files``, sorted by file and position."""
    project = Project.build(files, envs)
    found: list[Finding] = []
    for item in all_checks().values() if checks is None else checks:
        if selected(item.code, select, ignore):
            found.extend(item.findings(project))
    return sorted(set(found))


def lint_paths(
    paths: Iterable[str],
    *,
    envs: tuple[str, ...] = ("production",),
    select: Sequence[str] = (),
    ignore: Sequence[str] = (),
) -> LintResult:
    """Load every file under ``paths`` and lint them together."""
    files, errors = load_paths(paths)
    findings = lint_files(files, envs=envs, select=select, ignore=ignore)
    return LintResult(files=files, findings=findings, input_errors=errors)
