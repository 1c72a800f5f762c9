"""Everything one lint run sees: the loaded files, grouped by kind, and the merged catalog."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from agentundo.errors import Position
from agentundo.load.files import LoadedFile
from agentundo.load.foreign import KIND as FOREIGN
from agentundo.model.catalog import Compensation, Topic
from agentundo.model.common import Decision
from agentundo.model.cordum_workflow import CordumWorkflow, lint_plan, native_file
from agentundo.model.policy import Policy
from agentundo.model.workflow import Step, Workflow
from agentundo.policy.compiled import CompiledPolicy
from agentundo.policy.conditions import UNKNOWN_JOB, Job
from agentundo.policy.evaluate import Context, Outcome

_T = TypeVar("_T")


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
    rule_paths: tuple[tuple[str | int, ...], ...] = ()
    """Where each rule is written, when not at ``rules[i]`` (a control plane's tenant lists)."""

    def decided_by(self, index: int | None) -> str:
        """Who made a decision: a rule by id, or the default."""
        if index is None:
            return f"the default decision ({self.policy.default_decision})"
        return f"rule '{self.policy.rules[index].id}'"

    def outcomes(self, ctx: Context) -> tuple[Outcome, ...]:
        """Every decision the policy may make for ``ctx`` (one unless rules are undecided)."""
        return self.compiled.outcomes(ctx)

    def assuming(self, outcome: Outcome, job: Job) -> str:
        """What ``outcome`` assumes of undecided rules, as a clause ('' when nothing):
        ``, when the job has risk_tags low (and rule 'x' does not match)``."""
        if not outcome.assumes:
            return ""
        rules = self.policy.rules
        matching = [i for i, matches in outcome.assumes if matches]
        others = [f"'{rules[i].id}'" for i, matches in outcome.assumes if not matches]
        clause = ""
        if matching:
            clause = f", when the job has {self.compiled.conditions[matching[0]].describe(job)}"
        if others:
            word = "rule" if len(others) == 1 else "rules"
            verb = "does" if len(others) == 1 else "do"
            tail = f"{word} {', '.join(others)} {verb} not match"
            clause += f" (and {tail})" if clause else f", when {tail}"
        return clause

    def topic_position(self, index: int) -> Position:
        """Where rule ``index`` names its topics (a control plane's ``match.topics``)."""
        if index < len(self.rule_paths):
            path = self.rule_paths[index]
            if path[:1] == ("rules",):
                return self.file.position(*path, "match", "topics")
            return self.file.position(*path)
        return self.file.position("rules", index, "when", "topic")

    def rule_position(self, index: int | None) -> Position:
        if index is None:
            if "default_decision" in self.file.doc.data:
                return self.file.position("default_decision", key=True)
            return self.file.position()
        if index < len(self.rule_paths):
            return self.file.position(*self.rule_paths[index])
        return self.file.position("rules", index)


@dataclass(frozen=True, slots=True)
class StepGate:
    """What one policy decides for one workflow step dispatched without an approval."""

    file: LoadedFile
    workflow: Workflow
    index: int
    step: Step
    ctx: Context
    outcomes: tuple[Outcome, ...]


@dataclass(frozen=True, slots=True)
class CompensationGate:
    """What one policy decides, in one env, for the compensation of a side-effecting topic."""

    env: str
    entry: TopicEntry
    compensation: Compensation
    ctx: Context
    outcomes: tuple[Outcome, ...]


@dataclass(slots=True)
class Project:
    """Catalogs, policies and workflows of one lint run, and the envs to check."""

    files: list[LoadedFile]
    envs: tuple[str, ...] = ("production",)
    topics: dict[str, TopicEntry] = field(default_factory=dict)
    duplicate_topics: list[tuple[TopicEntry, TopicEntry]] = field(default_factory=list)
    policies: list[PolicyEntry] = field(default_factory=list)
    workflows: list[LoadedFile] = field(default_factory=list)
    dags: list[LoadedFile] = field(default_factory=list)
    """Cordum workflows as written; each is also in ``workflows`` as a linear view."""
    jobs: dict[tuple[str, int], Job] = field(default_factory=dict)
    """Job facts of workflow steps that have them (Cordum's step meta), by (path, index)."""
    _side_effects: list[TopicEntry] | None = field(default=None, repr=False)
    _shared: dict[Any, Any] = field(default_factory=dict, repr=False)

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

                conversion = convert(file.model)
                policy = conversion.policy
                project.policies.append(
                    PolicyEntry(policy, file, CompiledPolicy(policy), conversion.paths)
                )
            elif isinstance(file.model, Workflow):
                project.workflows.append(file)
            elif isinstance(file.model, CordumWorkflow):
                project._add_dag(file)
        return project

    def _add_dag(self, file: LoadedFile) -> None:
        """A Cordum workflow: its dispatching steps (every branch) as a linear workflow in
        the first env, with each step's job facts, so the workflow checks apply to it."""
        model: CordumWorkflow = file.model
        name = model.id or file.path
        plan = lint_plan(model, name=name, env=self.envs[0] if self.envs else "production")
        self.dags.append(file)
        if plan.workflow is None:
            return
        view = native_file(file, plan)
        self.workflows.append(view)
        for index, key in enumerate(plan.keys):
            self.jobs[(view.path, index)] = plan.jobs[key]

    def job(self, file: LoadedFile, index: int) -> Job:
        """What the policy sees of step ``index``'s job beyond its topic (unknown for
        agentundo's own workflows)."""
        return self.jobs.get((file.path, index), UNKNOWN_JOB)

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

    def shared(self, name: str, build: Callable[[Project], _T]) -> _T:
        """``build(self)``, computed once per project: what several checks need alike."""
        try:
            return cast(_T, self._shared[name])
        except KeyError:
            value = self._shared[name] = build(self)
            return value

    def step_gates(self, entry: PolicyEntry) -> list[StepGate]:
        """What ``entry`` decides for each workflow step in its workflow's env, without an
        approval, where it may do anything but allow (AU403 and AU406 both ask; computed
        once, and the many steps it simply allows are not kept)."""
        key = ("step-gates", id(entry))
        found: list[StepGate] | None = self._shared.get(key)
        if found is None:
            found = self._shared[key] = []
            # steps of one workflow often repeat a topic: the same dispatch, decided once
            decided: dict[tuple[str, str, str], tuple[Context, tuple[Outcome, ...]]] = {}
            for file in self.workflows:
                workflow: Workflow = file.model
                for index, step in enumerate(workflow.steps):
                    job = self.job(file, index)
                    same = (step.topic, workflow.env, workflow.workflow)
                    known = decided.get(same) if job is UNKNOWN_JOB else None
                    if known is None:
                        ctx = Context.for_topic(
                            step.topic,
                            self.topic(step.topic),
                            env=workflow.env,
                            workflow=workflow.workflow,
                            job=job,
                        )
                        known = (ctx, entry.outcomes(ctx))
                        if job is UNKNOWN_JOB:
                            decided[same] = known
                    ctx, outcomes = known
                    if any(o.decision is not Decision.ALLOW for o in outcomes):
                        found.append(StepGate(file, workflow, index, step, ctx, outcomes))
        return found

    def compensation_gates(self, entry: PolicyEntry, env: str) -> list[CompensationGate]:
        """What ``entry`` decides in ``env`` for each compensation of a side-effecting
        topic, where it may do anything but allow (AU302 and AU303 both ask; computed once)."""
        key = ("compensation-gates", id(entry), env)
        found: list[CompensationGate] | None = self._shared.get(key)
        if found is None:
            found = self._shared[key] = []
            # topics often share a compensation (one refund for several charges)
            decided: dict[str, tuple[Context, tuple[Outcome, ...]]] = {}
            for topic_entry in self.side_effect_topics():
                compensation = topic_entry.topic.compensation
                if compensation is None:
                    continue
                known = decided.get(compensation.topic)
                if known is None:
                    ctx = Context.for_topic(
                        compensation.topic,
                        self.topic(compensation.topic),
                        env=env,
                        is_compensation=True,
                    )
                    known = decided[compensation.topic] = (ctx, entry.outcomes(ctx))
                ctx, outcomes = known
                if any(o.decision is not Decision.ALLOW for o in outcomes):
                    found.append(CompensationGate(env, topic_entry, compensation, ctx, outcomes))
        return found


@dataclass(frozen=True, slots=True)
class Problem:
    """What a check yields: where and what; the engine adds the code and severity."""

    position: Position
    message: str
    hint: str | None = None
