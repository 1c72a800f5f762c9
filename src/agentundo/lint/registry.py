"""The registry of checks: one source for the engine, ``--select``, ``rules`` and SARIF.

A check is a function decorated with :func:`check`; its docstring is the user
documentation (first line: summary; then explanation; then ``Bad:`` and ``Good:``
examples in indented YAML). Codes are forever: a published code keeps its meaning.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agentundo.lint.finding import Finding, Severity

if TYPE_CHECKING:
    from agentundo.lint.project import Problem, Project

CheckFunction = Callable[["Project"], Iterator["Problem"]]

RULES_DOC_URL = "https://github.com/agentundo/agentundo/blob/main/docs/rules.md"
"""The rule reference in the repository; each check's section is ``#<code>`` (``#au101``),
the heading ``docs/rules.md`` has for it. Reports link rules here (SARIF ``helpUri``)."""

FAMILY_KINDS: dict[str, frozenset[str]] = {
    "catalog": frozenset({"catalog"}),
    "idempotency": frozenset({"catalog"}),
    "http": frozenset({"catalog"}),
    "policy": frozenset({"policy", "foreign-policy"}),
    "foreign": frozenset({"foreign-policy"}),
    "workflow": frozenset({"workflow"}),
}
"""The kinds of file a family's checks report on; a family not listed here (suppressions)
reports on a file of any kind."""


@dataclass(frozen=True, slots=True)
class Check:
    """Declared metadata of one check."""

    code: str
    name: str
    severity: Severity
    family: str
    function: CheckFunction

    def findings(self, project: Project) -> Iterator[Finding]:
        """Run the check; every problem becomes a finding with this check's code."""
        for problem in self.function(project):
            position = problem.position
            yield Finding(
                path=position.path,
                line=position.line,
                column=position.column,
                code=self.code,
                severity=self.severity,
                message=problem.message,
                hint=problem.hint,
            )

    @property
    def help_uri(self) -> str:
        """This check's section of the rule reference (:data:`RULES_DOC_URL`)."""
        return f"{RULES_DOC_URL}#{self.code.lower()}"

    def applies_to(self, kind: str | None) -> bool:
        """Whether this check can report on a file of ``kind`` (None: unknown, yes)."""
        kinds = FAMILY_KINDS.get(self.family)
        return kinds is None or kind is None or kind in kinds

    @property
    def doc(self) -> str:
        return inspect.cleandoc(self.function.__doc__ or "")

    @property
    def summary(self) -> str:
        return self.doc.splitlines()[0] if self.doc else self.name

    def section(self, title: str) -> str:
        """The indented block after ``title:`` in the docstring (``Bad``/``Good``), dedented."""
        lines = self.doc.splitlines()
        try:
            start = lines.index(f"{title}:") + 1
        except ValueError:
            return ""
        block: list[str] = []
        for line in lines[start:]:
            if line and not line.startswith("    "):
                break
            block.append(line[4:])
        return "\n".join(block).strip("\n")

    @property
    def description(self) -> str:
        """The explanation: the docstring between the summary and the examples."""
        body: list[str] = []
        for line in self.doc.splitlines()[1:]:
            if line in ("Bad:", "Good:"):
                break
            body.append(line)
        return "\n".join(body).strip()


REGISTRY: dict[str, Check] = {}


def check(
    code: str, name: str, severity: Severity, family: str
) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check under a stable ``code``."""

    def register(function: CheckFunction) -> CheckFunction:
        if code in REGISTRY:
            raise ValueError(f"check code {code} registered twice")
        REGISTRY[code] = Check(code, name, severity, family, function)
        return function

    return register


def all_checks() -> dict[str, Check]:
    """Every registered check, importing the check modules on first use."""
    from agentundo.lint.checks import load_all

    load_all()
    return dict(sorted(REGISTRY.items()))
