"""Policy files: rules that gate each dispatch with allow, deny or require_human."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from agentundo.model.common import Decision, Name, Risk, Rollback, Strict

StrOrList = str | Annotated[list[str], Field(min_length=1)]


class When(Strict):
    """Conditions of a rule, ANDed; a list value matches any of its items."""

    env: StrOrList | None = None
    topic: StrOrList | None = None
    workflow: StrOrList | None = None
    side_effect: bool | None = None
    compensation_declared: bool | None = None
    rollback_supported: bool | None = None
    approval_present: bool | None = None
    is_compensation: bool | None = None
    risk: Risk | Annotated[list[Risk], Field(min_length=1)] | None = None
    rollback: Rollback | Annotated[list[Rollback], Field(min_length=1)] | None = None


class Rule(Strict):
    """One policy rule."""

    id: Name
    when: When = When()
    decision: Decision
    reason: str | None = None
    description: str | None = None


class Policy(Strict):
    """A policy file in agentundo's own format."""

    version: Literal["v1"]
    kind: Literal["policy"] | None = None
    description: str | None = None
    combining: Literal["most_restrictive", "first_match"] = "most_restrictive"
    default_decision: Decision = Decision.ALLOW
    rules: list[Rule]
