"""What became of each traced tool call's effect, and what a recovery must undo.

Each call maps to a catalog topic (its tool name, else an ``aliases`` entry). Its
:class:`Effect`:

* ``read``: the topic has no side effect;
* ``none``: the call failed (span status ERROR): no effect, nothing to compensate;
* ``compensation``: the call undid an earlier call of the run (its topic is that call's
  compensating topic, and its arguments carry the ids the compensation needs);
* ``undone``: undone by such a call, by ``agentundo recover`` (its evidence says so), or,
  in a drill exported with ``timeline --format otlp``, by the drill's own compensation
  (a span with ``agentundo.compensation`` whose ``agentundo.outcome`` says it succeeded);
* ``kept``: landed in a run that did not fail;
* ``owed``: landed in a failed run and has a compensation: a recovery undoes it;
* ``manual``: landed in a failed run and cannot be undone by agentundo (irreversible, no
  compensation): a human follows up, with the catalog's reason;
* ``unknown``: the tool maps to no topic: shown and warned about, never dropped.

The recovery plan of a failed run is its ``owed`` calls, last first (LIFO), then the
manual follow-ups and the unknown calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from agentundo.model.catalog import Catalog, Topic
from agentundo.model.common import Rollback
from agentundo.model.templates import (
    ENV_REFERENCE,
    PARAMS_PREFIX,
    compensation_templates,
    lookup_response,
    response_fields,
    response_path,
    template_fields,
)
from agentundo.trace.runs import NOT_CAPTURED, AgentRun, ToolCall


class Effect(StrEnum):
    """What became of one tool call's effect."""

    READ = "read"
    NONE = "none"
    COMPENSATION = "compensation"
    UNDONE = "undone"
    KEPT = "kept"
    OWED = "owed"
    MANUAL = "manual"
    UNKNOWN = "unknown"


PROBLEM_EFFECTS = frozenset({Effect.OWED, Effect.MANUAL, Effect.UNKNOWN, Effect.NONE})
"""Effects ``--only-problems`` shows: something owed, for a human, unmapped, or failed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallPlan:
    """One tool call, its topic and the fate of its effect."""

    call: ToolCall
    topic: str | None
    spec: Topic | None
    effect: Effect
    note: str = ""
    """Why: the irreversible reason, who undid it, what failed."""

    @property
    def rollback(self) -> str:
        """The topic's rollback class as shown (``read-only`` for a read, ``?`` unmapped)."""
        if self.spec is None:
            return "?"
        if not self.spec.side_effect:
            return "read-only"
        return self.spec.rollback.value if self.spec.rollback else "untagged"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunPlan:
    """A run's calls with their effects."""

    run: AgentRun
    calls: tuple[CallPlan, ...]

    def with_effect(self, *effects: Effect) -> list[CallPlan]:
        return [c for c in self.calls if c.effect in effects]

    @property
    def owed(self) -> list[CallPlan]:
        """What a recovery compensates, in the order it does: last landed first."""
        return list(reversed(self.with_effect(Effect.OWED)))

    @property
    def manual(self) -> list[CallPlan]:
        return self.with_effect(Effect.MANUAL)

    @property
    def unknown(self) -> list[CallPlan]:
        return self.with_effect(Effect.UNKNOWN)

    def counts(self) -> dict[str, int]:
        return {effect.value: len(self.with_effect(effect)) for effect in Effect}


@dataclass(frozen=True, slots=True)
class Settled:
    """What a recovery's evidence says of a run's calls (by call id)."""

    undone: frozenset[str] = frozenset()
    manual: Mapping[str, str] = field(default_factory=dict)
    """Call id to the follow-up's category."""


def plan_run(run: AgentRun, catalog: Catalog, settled: Settled | None = None) -> RunPlan:
    """Map every call of ``run`` and say what became of its effect."""
    settled = settled or Settled()
    mapped = [(call, catalog.topic_of_tool(call.tool)) for call in run.calls]
    undone_by = _undone_in_trace(mapped, catalog)
    drilled = _compensated_in_export(run)
    compensations = set(undone_by.values())
    plans: list[CallPlan] = []
    for call, topic in mapped:
        spec = catalog.topics.get(topic) if topic else None
        effect, note = _effect(call, spec, run.failed)
        if spec is None:
            note = f"tool '{call.tool}' maps to no catalog topic (add it, or an alias)"
        elif call.call_id in compensations:
            effect = Effect.COMPENSATION
            undid = next(k for k, v in undone_by.items() if v == call.call_id)
            note = f"undoes {undid}"
        elif call.call_id in undone_by:
            effect, note = Effect.UNDONE, f"undone by the agent's call {undone_by[call.call_id]}"
        elif call.span.attributes.get(_STEP_ID) in drilled:
            job = drilled[call.span.attributes[_STEP_ID]]
            effect, note = Effect.UNDONE, f"undone by the drill's compensation {job}"
        elif effect in (Effect.OWED, Effect.MANUAL, Effect.UNKNOWN):
            if call.call_id in settled.undone:
                effect, note = Effect.UNDONE, "undone by agentundo recover"
            elif call.call_id in settled.manual:
                effect = Effect.MANUAL
                note = f"with a human ({settled.manual[call.call_id]}), says the recovery"
        plans.append(CallPlan(call=call, topic=topic, spec=spec, effect=effect, note=note))
    return RunPlan(run=run, calls=tuple(plans))


_STEP_ID = "agentundo.step_id"
_UNDOING_OUTCOMES = frozenset({"compensation_succeeded", "compensation_not_needed"})
"""Outcomes of a drill's compensation after which nothing of its step is left to undo."""


def _compensated_in_export(run: AgentRun) -> dict[str, str]:
    """Steps a drill exported with ``timeline --format otlp`` compensated itself: step id to
    the compensation's job. Such a trace is agentundo's own evidence; reading its forward
    spans as owed would undo them a second time."""
    found: dict[str, str] = {}
    for row in run.rows:
        attributes = row.span.attributes
        step = attributes.get(_STEP_ID)
        if (
            attributes.get("agentundo.compensation") is True
            and isinstance(step, str)
            and attributes.get("agentundo.outcome") in _UNDOING_OUTCOMES
        ):
            found[step] = str(attributes.get("agentundo.job_id") or "?")
    return found


def _effect(call: ToolCall, spec: Topic | None, run_failed: bool) -> tuple[Effect, str]:
    if call.failed:
        return Effect.NONE, f"failed: {call.span.error_text}; no effect, nothing to undo"
    if spec is None:
        return Effect.UNKNOWN, ""
    if not spec.side_effect:
        return Effect.READ, ""
    if not run_failed:
        return Effect.KEPT, "the run did not fail"
    undoable = spec.rollback in (Rollback.REVERSIBLE, Rollback.COMPENSATABLE)
    if undoable and spec.compensation is not None:
        return Effect.OWED, f"compensation {spec.compensation.topic}"
    if spec.rollback is Rollback.IRREVERSIBLE:
        return Effect.MANUAL, spec.no_rollback_reason or "irreversible"
    return Effect.MANUAL, "no compensation is declared in the catalog"


def _undone_in_trace(mapped: list[tuple[ToolCall, str | None]], catalog: Catalog) -> dict[str, str]:
    """Effects the agent undid itself: call id to the id of the later call that undid it.

    A later successful call undoes an earlier one when its topic is the earlier topic's
    compensating topic and every ``{response.…}`` value the compensation names (the ids of
    the effect) is one of its argument values; a compensation that names none matches the
    earlier call's arguments instead. Each undoing call undoes one effect.
    """
    found: dict[str, str] = {}
    used: set[str] = set()
    for index, (call, topic) in enumerate(mapped):
        spec = catalog.topics.get(topic) if topic else None
        if call.failed or spec is None or spec.compensation is None:
            continue
        for later, later_topic in mapped[index + 1 :]:
            if later.failed or later.call_id in used or later_topic != spec.compensation.topic:
                continue
            if _names_effect(call, spec, later):
                found[call.call_id] = later.call_id
                used.add(later.call_id)
                break
    return found


def _names_effect(call: ToolCall, spec: Topic, later: ToolCall) -> bool:
    values = set(_scalars(later.arguments))
    ids = []
    for name in response_fields(spec):
        path = response_path(name)
        try:
            ids.append(lookup_response(call.response, path or ()))
        except KeyError:
            return False
    if ids:
        return all(value in values for value in ids)
    mine = set(_scalars(call.arguments))
    return bool(mine) and mine <= values


def _scalars(value: Any) -> Iterable[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _scalars(item)
    elif isinstance(value, list):
        for item in value:
            yield from _scalars(item)
    elif value is not NOT_CAPTURED and value is not None:
        yield value


@dataclass(frozen=True, slots=True, kw_only=True)
class MissingContent:
    """An owed call whose compensation needs content the trace does not hold."""

    call_id: str
    tool: str
    fields: tuple[str, ...]

    def describe(self) -> str:
        names = ", ".join(f"{{{f}}}" for f in self.fields)
        return (
            f"call {self.call_id} ({self.tool}): its compensation needs {names}, which the "
            "trace does not hold (content capture was off: no gen_ai.tool.call.arguments/"
            "result)"
        )


def missing_content(plan: RunPlan, catalog: Catalog) -> list[MissingContent]:
    """Owed calls whose compensation names arguments or result fields the trace lacks."""
    missing: list[MissingContent] = []
    for item in plan.owed:
        if item.spec is None:
            continue
        lacking = [name for name in _needed(item.spec, catalog) if not _held(item.call, name)]
        if lacking:
            missing.append(
                MissingContent(
                    call_id=item.call.call_id, tool=item.call.tool, fields=tuple(lacking)
                )
            )
    return missing


def _needed(spec: Topic, catalog: Catalog) -> list[str]:
    """The ``params.…`` and ``response.…`` fields the compensation's templates use."""
    texts = [text for _place, text in compensation_templates(spec)]
    comp = spec.compensation
    target = catalog.topics.get(comp.topic) if comp is not None else None
    if comp is not None and comp.http is None and target is not None and target.http:
        texts.append(target.http.url)
        texts.extend(str(v) for v in (target.http.headers or {}).values())
    found: dict[str, None] = {}
    for text in texts:
        try:
            names = template_fields(ENV_REFERENCE.sub("", text))
        except ValueError:
            continue
        for name in names:
            if name.startswith(PARAMS_PREFIX) or response_path(name) is not None:
                found.setdefault(name)
    return list(found)


def _held(call: ToolCall, name: str) -> bool:
    path = response_path(name)
    if path is not None:
        try:
            lookup_response(call.response, path)
        except KeyError:
            return False
        return True
    return call.arguments is not NOT_CAPTURED and name[len(PARAMS_PREFIX) :] in call.params
