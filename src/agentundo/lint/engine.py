"""Run the registered checks over a project, select what to report, apply suppressions.

Order of filters: ``--select``/``--ignore`` pick the checks that run; per-file ignores
drop findings of whole files; inline ``# agentundo: ignore[CODE] reason`` comments drop
single findings (:mod:`agentundo.lint.suppress`), and report their own problems
(AU901-AU903) where they are malformed, give no reason or suppress nothing. The findings
they suppress are kept aside with the suppression's reason (SARIF reports them as
suppressed).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from agentundo.errors import InputError
from agentundo.lint.finding import Finding, Severity
from agentundo.lint.registry import Check, all_checks
from agentundo.load.paths import PassedOver

if TYPE_CHECKING:  # the loader and the models: imported where a lint runs, not to replay one
    from agentundo.load.files import DocumentStore, LoadedFile


def selected(code: str, select: Sequence[str], ignore: Sequence[str]) -> bool:
    """Whether ``code`` passes ``--select``/``--ignore`` (codes or code prefixes)."""
    if select and not any(code.startswith(prefix) for prefix in select):
        return False
    return not any(code.startswith(prefix) for prefix in ignore)


class PerFileIgnores:
    """Codes (or prefixes) to ignore in the files whose path matches a glob."""

    def __init__(
        self, entries: Iterable[tuple[str, Sequence[str]]] = (), *, root: str = ""
    ) -> None:
        self.root = Path(root or ".").resolve()
        self.entries = tuple((pattern, tuple(codes)) for pattern, codes in entries)
        self._cache: dict[str, tuple[str, ...]] = {}

    def codes_for(self, path: str) -> tuple[str, ...]:
        """Every ignored code or prefix for ``path`` (empty when no glob matches)."""
        found = self._cache.get(path)
        if found is None:
            absolute = Path(path).resolve()
            try:
                relative = absolute.relative_to(self.root).as_posix()
            except ValueError:
                relative = absolute.as_posix()
            candidates = (relative, Path(path).as_posix(), absolute.name)
            found = tuple(
                code
                for pattern, codes in self.entries
                if any(fnmatchcase(c, pattern) for c in candidates)
                for code in codes
            )
            self._cache[path] = found
        return found

    def ignores(self, path: str, code: str) -> bool:
        return any(code.startswith(prefix) for prefix in self.codes_for(path))


@dataclass(frozen=True, slots=True)
class Suppressed:
    """A finding an inline suppression dropped, and the reason the suppression gives."""

    finding: Finding
    reason: str


class CheckedFile(Protocol):
    """What a report needs of a file that was checked: a loaded file, or one a cached
    result names (:mod:`agentundo.lint.cache`)."""

    @property
    def path(self) -> str: ...

    @property
    def kind(self) -> str: ...


@dataclass(slots=True)
class LintResult:
    """Findings of one run, the files that loaded, the inputs that did not, what ran."""

    files: Sequence[CheckedFile]
    findings: list[Finding] = field(default_factory=list)
    input_errors: list[InputError] = field(default_factory=list)
    checks: tuple[str, ...] = ()
    """Codes of the checks that ran (after ``--select``/``--ignore``)."""
    suppressed: int = 0
    """Findings dropped by inline suppressions."""
    suppressions: list[Suppressed] = field(default_factory=list)
    """The findings dropped by inline suppressions, each with its suppression's reason."""
    passed_over: list[PassedOver] = field(default_factory=list)
    """YAML files found inside directories that are not agentundo's, and why."""
    fail_on: Severity = Severity.ERROR
    """The lowest severity that fails the run (``--fail-on``); reports that tell passed
    from failed (JUnit) follow it."""

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity is severity)

    def exit_code(self, fail_on: Severity | None = None) -> int:
        """2 when an input was bad, 1 when a finding reaches ``fail_on`` (default: the
        result's own), else 0."""
        fail_on = self.fail_on if fail_on is None else fail_on
        if self.input_errors:
            return 2
        if any(f.severity.rank >= fail_on.rank for f in self.findings):
            return 1
        return 0


def run_checks(
    files: list[LoadedFile],
    *,
    envs: tuple[str, ...] = ("production",),
    select: Sequence[str] = (),
    ignore: Sequence[str] = (),
    per_file_ignores: PerFileIgnores | None = None,
    checks: Iterable[Check] | None = None,
) -> LintResult:
    """Lint ``files`` together; the result has findings, the codes that ran, suppressions."""
    from agentundo.lint import suppress
    from agentundo.lint.project import Project

    project = Project.build(files, envs)
    registry = all_checks().values() if checks is None else checks
    ran = [item for item in registry if selected(item.code, select, ignore)]
    codes = frozenset(item.code for item in ran)
    pfi = per_file_ignores or PerFileIgnores()

    def active(path: str, code: str) -> bool:
        return code in codes and not pfi.ignores(path, code)

    raw = [f for item in ran for f in item.findings(project) if active(f.path, f.code)]
    outcome = suppress.apply(raw, files, active=active)
    return LintResult(
        files=files,
        findings=sorted(set(outcome.findings)),
        checks=tuple(item.code for item in ran),
        suppressed=outcome.suppressed,
        suppressions=_suppressions(raw, files) if outcome.suppressed else [],
    )


def _suppressions(raw: Iterable[Finding], files: list[LoadedFile]) -> list[Suppressed]:
    """The findings of ``raw`` that an inline suppression covers, with its reason (the
    first directive that covers a finding suppresses it, as :func:`suppress.apply` does)."""
    from agentundo.lint import suppress
    from agentundo.lint.registry import all_checks

    known = all_checks().__contains__
    directives = {
        file.path: suppress.parse(file.path, file.doc.comments, known)[0]
        for file in files
        if file.doc.comments
    }
    found: dict[Finding, str] = {}
    for finding in raw:
        directive = next(
            (
                d
                for d in directives.get(finding.path, ())
                if finding.line in d.covers and finding.code in d.codes
            ),
            None,
        )
        if directive is not None:
            found.setdefault(finding, directive.reason)
    return [Suppressed(finding, reason) for finding, reason in sorted(found.items())]


def lint_files(
    files: list[LoadedFile],
    *,
    envs: tuple[str, ...] = ("production",),
    select: Sequence[str] = (),
    ignore: Sequence[str] = (),
    checks: Iterable[Check] | None = None,
) -> list[Finding]:
    """Every finding of the selected checks over ``files``, sorted by file and position."""
    return run_checks(files, envs=envs, select=select, ignore=ignore, checks=checks).findings


def lint_paths(
    paths: Iterable[str],
    *,
    envs: tuple[str, ...] = ("production",),
    select: Sequence[str] = (),
    ignore: Sequence[str] = (),
    per_file_ignores: PerFileIgnores | None = None,
    fail_on: Severity = Severity.ERROR,
    store: DocumentStore | None = None,
) -> LintResult:
    """Load every agentundo file under ``paths`` and lint them together (``store``: parsed
    documents kept from earlier runs, :class:`~agentundo.load.files.DocumentStore`)."""
    from agentundo.load.files import paused_collector, scan_paths
    from agentundo.load.foreign import register

    register()
    with paused_collector():  # the checks, like loading, build much and no cycles
        scan = scan_paths(paths, store=store)
        result = run_checks(
            scan.files, envs=envs, select=select, ignore=ignore, per_file_ignores=per_file_ignores
        )
    result.input_errors = scan.errors
    result.passed_over = scan.passed_over
    result.fail_on = fail_on
    return result
