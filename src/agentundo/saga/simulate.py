"""The simulated world: an in-memory ledger of effects, and the executor that acts on it.

Each forward call to a side-effecting topic applies its effect once; each compensation
undoes the effect of the step it names. Idempotency keys are honoured as a careful API
does: a repeat with the same key and payload is answered from memory and applies
nothing, a repeat with a different payload is refused. Calls carrying a fencing epoch
older than one already seen are refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from agentundo.model.catalog import Catalog
from agentundo.model.templates import response_fields, response_path
from agentundo.saga.executor import Call, CallKind, Outcome, Result


@dataclass(slots=True)
class Effect:
    """What one step did to the world, and how often it was undone."""

    step_id: str
    topic: str
    applied: int = 0
    undone: int = 0

    @property
    def balance(self) -> int:
        """Applied minus undone: 0 when nothing is left behind (negative: undone twice)."""
        return self.applied - self.undone


class SimulatedWorld:
    """The ledger: effects by step, idempotency keys seen, highest fencing epoch seen."""

    def __init__(self) -> None:
        self.effects: dict[str, Effect] = {}
        self.deliveries = 0
        self._keys: dict[str, str] = {}
        self._answers: dict[str, bool | None] = {}
        self._epoch = 0

    def plant_key(self, key: str, fingerprint: str) -> None:
        """Record that ``key`` was already used with another payload (a fault)."""
        self._keys.setdefault(key, fingerprint)

    def effect(self, step_id: str) -> Effect | None:
        return self.effects.get(step_id)


_ENCODE = json.JSONEncoder(sort_keys=True, default=str).encode
"""``json.dumps(..., sort_keys=True, default=str)`` with its encoder built once."""


def _fingerprint(call: Call) -> str:
    return _ENCODE([call.kind.value, call.topic, call.step_id, call.params])


class SimulatedExecutor:
    """An :class:`~agentundo.saga.executor.Executor` that acts on a :class:`SimulatedWorld`."""

    def __init__(self, catalog: Catalog, world: SimulatedWorld | None = None) -> None:
        self.catalog = catalog
        self.world = world or SimulatedWorld()

    def execute(self, call: Call) -> Result:
        world = self.world
        world.deliveries += 1
        if call.epoch is not None:
            if call.epoch < world._epoch:
                return Result(
                    outcome=Outcome.REJECTED,
                    error=f"stale fencing epoch {call.epoch} (seen {world._epoch})",
                )
            world._epoch = call.epoch
        key = call.idempotency_key
        if key is not None:
            seen = world._keys.get(key)
            if seen is not None:
                if seen != _fingerprint(call):
                    return Result(
                        outcome=Outcome.FATAL,
                        error="idempotency key reused with a different payload",
                        detail={"conflict": True},
                    )
                return Result(
                    outcome=Outcome.OK,
                    applied=world._answers.get(key),
                    detail={"deduplicated": True},
                    replayed=True,
                    response=self._response(call),
                )
        applied = self._apply(call)
        if key is not None:
            world._keys[key] = _fingerprint(call)
            world._answers[key] = applied
        return Result(outcome=Outcome.OK, applied=applied, response=self._response(call))

    def _response(self, call: Call) -> dict[str, Any] | None:
        """A forward call's answer: a made-up id at every path its compensation names."""
        if call.kind is not CallKind.FORWARD:
            return None
        spec = self.catalog.topics.get(call.topic)
        if spec is None:
            return None
        answer: dict[str, Any] = {}
        for name in response_fields(spec):
            path = response_path(name)
            if path is None:
                continue
            node = answer
            for part in path[:-1]:
                child = node.get(part)
                node = child if isinstance(child, dict) else node.setdefault(part, {})
            node[path[-1]] = f"sim:{call.step_id}:{'.'.join(path)}"
        return answer

    def _apply(self, call: Call) -> bool | None:
        effects = self.world.effects
        if call.kind is CallKind.FORWARD:
            spec = self.catalog.topics.get(call.topic)
            if spec is not None and not spec.side_effect:
                return None
            effect = effects.setdefault(call.step_id, Effect(call.step_id, call.topic))
            effect.applied += 1
            return True
        undo = effects.get(call.step_id)
        if undo is None or undo.applied == 0:
            return False  # nothing landed: a compensation must tolerate that
        undo.undone += 1
        return True
