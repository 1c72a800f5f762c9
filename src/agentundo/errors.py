"""The project's typed errors; the CLI edge turns them into messages and exit codes."""

from __future__ import annotations

from dataclasses import dataclass


class AgentundoError(Exception):
    """Base class of every error agentundo raises on purpose."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class Position:
    """A place in an input file; line and column are 1-based, 0 means unknown."""

    path: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line:
            return f"{self.path}:{self.line}:{self.column}"
        return self.path


class InputError(AgentundoError):
    """An input file is missing, unreadable, malformed or invalid."""

    def __init__(self, position: Position, message: str, hint: str | None = None) -> None:
        super().__init__(f"{position}: {message}")
        self.position = position
        self.message = message
        self.hint = hint

    def describe(self) -> str:
        """One line for a terminal: ``path:line:col: error: message (hint: ...)``."""
        line = f"{self.position}: error: {self.message}"
        return f"{line} (hint: {self.hint})" if self.hint else line


class InputErrors(AgentundoError):
    """Several input problems found in one pass (each one a full InputError)."""

    def __init__(self, errors: list[InputError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


class UsageError(AgentundoError):
    """The command line asks for something that cannot be done."""


class ConfigError(AgentundoError):
    """The project configuration (pyproject.toml or agentundo.toml) is invalid."""
