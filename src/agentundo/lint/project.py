"""Everything one lint run sees: the loaded files, grouped by kind, and the merged catalog."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from agentundo.errors import Position
from agentundo.load.files import LoadedFile
from agentundo.load.foreign import KIND as FOREIGN
from agentundo.model.catalog import Topic
from agentundo.model.policy import Policy
from agentundo.model.workflow import Workflow
from agentundo.policy.compiled import CompiledPolicy


@dataclass(frozen=True, slots=True)
class TopicEntry:
    """A catalog topic and the file that declares it."""

    name: str
    topic: Topic
    file: LoadedFile

    def position(self, *path: str | int, key: bool = False) -> Position:
        return self.file.position("topics", self.name, *path, key=key)


@dataclass(frozen=True, slots=True)
class PolicyEntry:
    """A policy in agentundo's model, and the file (and format) it came from."""

    policy: Policy
    file: LoadedFile
    compiled: CompiledPolicy

    def decided_by(self, index: int | None) -> str:
        """Who made a decision: a rule by id, or the default."""
        if index is None:
            return f"the default decision ({self.policy.default_decision})"
        return f"rule '{self.policy.rules[index].id}'"

    def rule_position(self, index: int | None) -> Position:
        if index is None:
            if "default_decision" in self.file.doc.data:
                return self.file.position("default_decision", key=True)
            return self.file.position()
        return self.file.position("rules", index)


@dataclass(slots=True)
class Project:
    """Catalogs, policies and workflows of one lint run, and the envs to check."""

    files: list[LoadedFile]
    envs: tuple[str, ...] = ("production",)
    topics: dict[str, TopicEntry] = field(default_factory=dict)
    duplicate_topics: list[tuple[TopicEntry, TopicEntry]] = field(default_factory=list)
    policies: list[PolicyEntry] = field(default_factory=list)
    workflows: list[LoadedFile] = field(default_factory=list)
    _side_effects: list[TopicEntry] | None = field(default=None, repr=False)

    @classmethod
    def build(cls, files: list[LoadedFile], envs: tuple[str, ...] = ("production",)) -> Project:
        project = cls(files=files, envs=envs)
        for file in files:
            if file.kind == "catalog":
                for name, topic in file.model.topics.items():
                    entry = TopicEntry(name, topic, file)
                    first = project.topics.setdefault(name, entry)
                    if first is not entry:
                        project.duplicate_topics.append((first, entry))
            elif isinstance(file.model, Policy):
                project.policies.append(PolicyEntry(file.model, file, CompiledPolicy(file.model)))
            elif file.kind == FOREIGN:
                # a control plane's policy: rule i of the converted policy is the file's rules[i]
                from agentundo.model.foreign_policy import convert

                policy = convert(file.model).policy
                project.policies.append(PolicyEntry(policy, file, CompiledPolicy(policy)))
            elif isinstance(file.model, Workflow):
                project.workflows.append(file)
        return project

    @property
    def has_catalog(self) -> bool:
        return any(f.kind == "catalog" for f in self.files)

    def topic(self, name: str) -> Topic | None:
        entry = self.topics.get(name)
        return None if entry is None else entry.topic

    def side_effect_topics(self) -> Iterator[TopicEntry]:
        if self._side_effects is None:  # a dozen checks ask; 10,000 topics are many to sift
            self._side_effects = [e for e in self.topics.values() if e.topic.side_effect]
        return iter(self._side_effects)


@dataclass(frozen=True, slots=True)
class Problem:
    """What a check yields: where and what; the engine adds the code and severity."""

    position: Position
    message: str
    hint: str | None = None
