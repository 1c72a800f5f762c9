"""Workflows: a named, ordered list of steps that an agent runs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from agentundo.model.common import Id, Name, Strict


class Step(Strict):
    """One step: dispatch ``topic`` with ``params``."""

    id: Id
    topic: Name
    params: dict[str, Any] = Field(default_factory=dict)
    secret_params: list[Name] | None = None
    """Params whose values are secrets: redacted from evidence wherever they appear."""
    description: str | None = None


class Workflow(Strict):
    """A workflow definition."""

    version: Literal["v1"]
    kind: Literal["workflow"] | None = None
    workflow: Id
    env: Name
    description: str | None = None
    steps: list[Step] = Field(min_length=1)
