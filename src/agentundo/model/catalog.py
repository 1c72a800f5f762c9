"""The action catalog: every agent action topic and its rollback contract."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from agentundo.model.common import Duration, Name, Risk, Rollback, Strict, seconds

HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


class HttpCall(Strict):
    """How a topic (or its compensation) is called over HTTP by ``--executor http``.

    ``url`` and string values in ``body`` are templates (``{run_id}``, ``{step_id}``,
    ``{params.NAME}``); ``url`` and ``headers`` may read environment variables as
    ``${VAR}`` or ``${VAR:-default}``. Header values are secrets: never written to evidence.
    """

    method: HttpMethod
    url: Name
    headers: dict[str, str] | None = None
    body: dict[str, Any] | str | None = None
    timeout: Duration | None = None

    @property
    def timeout_seconds(self) -> float | None:
        return None if self.timeout is None else seconds(self.timeout)


TopicName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.:/-]*$")]


class Compensation(Strict):
    """How to undo a topic: the compensating topic and how to call it safely."""

    topic: Name
    idempotency_key: str | None = None
    timeout: Duration | None = None
    params: dict[str, Any] | None = None
    http: HttpCall | None = None
    description: str | None = None

    @property
    def timeout_seconds(self) -> float | None:
        return None if self.timeout is None else seconds(self.timeout)


class Topic(Strict):
    """One agent action and what it takes to roll it back."""

    side_effect: bool
    rollback: Rollback | None = None
    risk: Risk | None = None
    idempotency_key: str | None = None
    compensation: Compensation | None = None
    http: HttpCall | None = None
    no_rollback_reason: str | None = None
    mitigation: str | None = None
    retriable: bool = False
    needs_review: bool = False
    owner: str | None = None
    description: str | None = None
    secret_params: list[Name] | None = None
    """Params of this topic's steps whose values are secrets (redacted from evidence)."""
    aliases: list[TopicName] | None = None
    """Tool names an agent calls this action by (``charge_card`` for ``payments.charge``):
    how ``agentundo timeline`` and ``recover --trace`` map a traced tool call to a topic."""

    @property
    def effective_risk(self) -> Risk:
        """Risk used by policy evaluation: an undeclared risk counts as medium."""
        return self.risk or Risk.MEDIUM

    @property
    def compensation_declared(self) -> bool:
        return self.compensation is not None

    def timeouts(self) -> list[tuple[tuple[str, ...], str]]:
        """Every timeout the topic declares, each with its path under the topic."""
        found: list[tuple[tuple[str, ...], str | None]] = [
            (("http", "timeout"), self.http.timeout if self.http else None)
        ]
        if self.compensation is not None:
            comp = self.compensation
            found.append((("compensation", "timeout"), comp.timeout))
            found.append(
                (("compensation", "http", "timeout"), comp.http.timeout if comp.http else None)
            )
        return [(path, value) for path, value in found if value is not None]

    @property
    def rollback_supported(self) -> bool:
        """True when the topic has nothing to undo or declares a usable undo."""
        if not self.side_effect:
            return True
        return (
            self.rollback in (Rollback.REVERSIBLE, Rollback.COMPENSATABLE)
            and self.compensation is not None
        )


EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class EnvVariable(Strict):
    """An environment variable templates may read, with whether its value is a secret."""

    name: EnvName
    secret: bool = True


class Catalog(Strict):
    """A versioned map from topic name to its contract."""

    version: Literal["v1"]
    kind: Literal["catalog"] | None = None
    description: str | None = None
    environment: list[EnvName | EnvVariable] | None = None
    """The environment variables ``http`` templates may read as ``${VAR}``: nothing else
    is ever read. Each value is a secret (redacted everywhere) unless listed as
    ``{name: VAR, secret: false}`` (a service's base URL, say)."""
    topics: dict[TopicName, Topic] = Field(default_factory=dict)

    def topic_of_tool(self, tool: str) -> str | None:
        """The topic a traced tool call named ``tool`` maps to: the topic of that name,
        else the topic listing it in ``aliases`` (lint keeps aliases unique, AU110); None
        when no topic answers to it."""
        if tool in self.topics:
            return tool
        for name, topic in self.topics.items():
            if tool in (topic.aliases or ()):
                return name
        return None

    def readable(self) -> dict[str, bool]:
        """The variables templates may read, each with whether its value is a secret."""
        found: dict[str, bool] = {}
        for item in self.environment or ():
            if isinstance(item, str):
                found[item] = True
            else:
                found[item.name] = item.secret
        return found
