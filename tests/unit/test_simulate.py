"""The simulated world (saga/simulate.py): the ledger of effects and the executor acting on it."""

from __future__ import annotations

from typing import Any

from agentundo.model.catalog import Catalog
from agentundo.saga.executor import Call, CallKind, Outcome
from agentundo.saga.simulate import Effect, SimulatedExecutor, SimulatedWorld

CATALOG = Catalog.model_validate(
    {
        "version": "v1",
        "topics": {
            "orders.lookup": {"side_effect": False},
            "inventory.reserve": {
                "side_effect": True,
                "rollback": "reversible",
                "compensation": {"topic": "inventory.release"},
            },
            "inventory.release": {"side_effect": True, "rollback": "irreversible"},
        },
    }
)


def _call(step_id: str = "reserve", **overrides: Any) -> Call:
    fields: dict[str, Any] = {
        "kind": CallKind.FORWARD,
        "run_id": "run_t",
        "workflow_id": "order",
        "job_id": "job_1",
        "step_id": step_id,
        "step_index": 0,
        "topic": "inventory.reserve",
        "params": {"sku": "A1"},
    }
    fields.update(overrides)
    return Call(**fields)


def _undo(step_id: str = "reserve", **overrides: Any) -> Call:
    fields: dict[str, Any] = {
        "kind": CallKind.COMPENSATION,
        "topic": "inventory.release",
        "for_topic": "inventory.reserve",
        "params": {},
    }
    fields.update(overrides)
    return _call(step_id, **fields)


def _balances(world: SimulatedWorld) -> dict[str, tuple[int, int]]:
    return {step: (e.applied, e.undone) for step, e in world.effects.items()}


# -- the ledger --------------------------------------------------------------------------


def test_effect_balance_is_applied_minus_undone() -> None:
    effect = Effect("reserve", "inventory.reserve", applied=1, undone=2)
    assert effect.balance == -1
    assert Effect("charge", "payments.charge", applied=3, undone=1).balance == 2
    assert Effect("ship", "inventory.reserve").balance == 0


def test_a_new_world_is_empty() -> None:
    world = SimulatedWorld()
    assert world.effects == {}
    assert world.deliveries == 0
    assert world.effect("reserve") is None


def test_an_executor_without_a_world_makes_its_own() -> None:
    one, two = SimulatedExecutor(CATALOG), SimulatedExecutor(CATALOG)
    one.execute(_call())
    assert one.world.effect("reserve") is not None
    assert two.world.effect("reserve") is None


# -- forward calls -----------------------------------------------------------------------


def test_a_forward_call_applies_its_effect_once_per_step() -> None:
    world = SimulatedWorld()
    executor = SimulatedExecutor(CATALOG, world)
    result = executor.execute(_call())
    assert result.outcome is Outcome.OK
    assert result.applied is True
    assert result.error is None
    effect = world.effect("reserve")
    assert effect is not None
    assert (effect.step_id, effect.topic, effect.applied, effect.undone) == (
        "reserve",
        "inventory.reserve",
        1,
        0,
    )
    assert world.deliveries == 1


def test_each_step_has_its_own_effect_and_repeats_without_a_key_apply_again() -> None:
    world = SimulatedWorld()
    executor = SimulatedExecutor(CATALOG, world)
    executor.execute(_call("reserve"))
    executor.execute(_call("reserve"))
    executor.execute(_call("ship", params={"sku": "B2"}))
    assert _balances(world) == {"reserve": (2, 0), "ship": (1, 0)}
    assert world.deliveries == 3


def test_a_read_only_topic_applies_nothing() -> None:
    world = SimulatedWorld()
    result = SimulatedExecutor(CATALOG, world).execute(
        _call("lookup", topic="orders.lookup", params={})
    )
    assert result.outcome is Outcome.OK
    assert result.applied is None
    assert world.effects == {}
    assert world.deliveries == 1  # delivered all the same


def test_a_topic_missing_from_the_catalog_counts_as_a_side_effect() -> None:
    world = SimulatedWorld()
    result = SimulatedExecutor(CATALOG, world).execute(_call("x", topic="crm.update"))
    assert result.applied is True
    assert _balances(world) == {"x": (1, 0)}


# -- compensations -----------------------------------------------------------------------


def test_a_compensation_undoes_the_effect_of_the_step_it_names() -> None:
    world = SimulatedWorld()
    executor = SimulatedExecutor(CATALOG, world)
    executor.execute(_call("reserve"))
    executor.execute(_call("ship"))
    result = executor.execute(_undo("reserve"))
    assert result.outcome is Outcome.OK
    assert result.applied is True
    assert _balances(world) == {"reserve": (1, 1), "ship": (1, 0)}
    effect = world.effect("reserve")
    assert effect is not None and effect.balance == 0


def test_a_compensation_with_nothing_to_undo_answers_applied_false() -> None:
    world = SimulatedWorld()
    result = SimulatedExecutor(CATALOG, world).execute(_undo("ship"))
    assert result.outcome is Outcome.OK
    assert result.applied is False
    assert world.effects == {}  # no effect is made up for it
    assert world.deliveries == 1


def test_compensating_a_read_only_step_has_nothing_to_undo() -> None:
    world = SimulatedWorld()
    executor = SimulatedExecutor(CATALOG, world)
    executor.execute(_call("lookup", topic="orders.lookup", params={}))
    result = executor.execute(_undo("lookup"))
    assert result.applied is False
    assert world.effect("lookup") is None


def test_an_effect_recorded_but_never_applied_has_nothing_to_undo() -> None:
    world = SimulatedWorld()
    world.effects["reserve"] = Effect("reserve", "inventory.reserve")
    result = SimulatedExecutor(CATALOG, world).execute(_undo("reserve"))
    assert result.applied is False
    assert _balances(world) == {"reserve": (0, 0)}


def test_compensating_twice_without_a_key_undoes_twice() -> None:
    world = SimulatedWorld()
    executor = SimulatedExecutor(CATALOG, world)
    executor.execute(_call("reserve"))
    assert executor.execute(_undo("reserve")).applied is True
    assert executor.execute(_undo("reserve")).applied is True
    effect = world.effect("reserve")
    assert effect is not None
    assert (effect.applied, effect.undone, effect.balance) == (1, 2, -1)


# -- idempotency keys --------------------------------------------------------------------


def test_a_repeat_with_the_same_key_and_payload_is_deduplicated() -> None:
    world = SimulatedWorld()
    executor = SimulatedExecutor(CATALOG, world)
    first = executor.execute(_call(idempotency_key="k1"))
    again = executor.execute(_call(idempotency_key="k1", attempt=2, job_id="job_9"))
    assert first.detail == {}
    assert again.outcome is Outcome.OK
    assert again.applied is True  # the first answer, replayed
    assert again.detail == {"deduplicated": True}
    assert _balances(world) == {"reserve": (1, 0)}  # applied once
    assert world.deliveries == 2  # but delivered twice


def test_a_deduplicated_compensation_replays_its_first_answer() -> None:
    world = SimulatedWorld()
    executor = SimulatedExecutor(CATALOG, world)
    # nothing landed: the first answer is "nothing to undo", and so is the replay
    assert executor.execute(_undo("reserve", idempotency_key="u1")).applied is False
    executor.execute(_call("reserve"))
    replay = executor.execute(_undo("reserve", idempotency_key="u1"))
    assert replay.applied is False
    assert replay.detail == {"deduplicated": True}
    assert _balances(world) == {"reserve": (1, 0)}  # the replay undid nothing


def test_a_keyed_compensation_repeated_undoes_once() -> None:
    world = SimulatedWorld()
    executor = SimulatedExecutor(CATALOG, world)
    executor.execute(_call("reserve"))
    assert executor.execute(_undo("reserve", idempotency_key="u1")).applied is True
    assert executor.execute(_undo("reserve", idempotency_key="u1")).applied is True
    assert _balances(world) == {"reserve": (1, 1)}


def test_a_key_reused_with_a_different_payload_is_a_conflict() -> None:
    world = SimulatedWorld()
    executor = SimulatedExecutor(CATALOG, world)
    executor.execute(_call("reserve", idempotency_key="k1"))
    result = executor.execute(_call("reserve", idempotency_key="k1", params={"sku": "Z9"}))
    assert result.outcome is Outcome.FATAL
    assert result.error == "idempotency key reused with a different payload"
    assert result.detail == {"conflict": True}
    assert result.applied is None
    assert _balances(world) == {"reserve": (1, 0)}  # the conflicting call applied nothing


def test_the_payload_includes_the_step_topic_and_kind() -> None:
    world = SimulatedWorld()
    executor = SimulatedExecutor(CATALOG, world)
    executor.execute(_call("reserve", idempotency_key="k1"))
    for other in (
        _call("ship", idempotency_key="k1"),
        _call("reserve", idempotency_key="k1", topic="inventory.release"),
        _undo("reserve", idempotency_key="k1", params={"sku": "A1"}),
    ):
        assert executor.execute(other).outcome is Outcome.FATAL, other
    assert _balances(world) == {"reserve": (1, 0)}


def test_the_payload_does_not_depend_on_the_order_of_params() -> None:
    world = SimulatedWorld()
    executor = SimulatedExecutor(CATALOG, world)
    executor.execute(_call(idempotency_key="k1", params={"sku": "A1", "qty": 2}))
    again = executor.execute(_call(idempotency_key="k1", params={"qty": 2, "sku": "A1"}))
    assert again.outcome is Outcome.OK
    assert again.detail == {"deduplicated": True}


def test_different_keys_are_independent() -> None:
    world = SimulatedWorld()
    executor = SimulatedExecutor(CATALOG, world)
    executor.execute(_call("reserve", idempotency_key="k1"))
    result = executor.execute(_call("reserve", idempotency_key="k2"))
    assert result.detail == {}
    assert _balances(world) == {"reserve": (2, 0)}


def test_a_planted_key_makes_the_first_call_a_conflict() -> None:
    world = SimulatedWorld()
    world.plant_key("k1", "another payload")
    result = SimulatedExecutor(CATALOG, world).execute(_call(idempotency_key="k1"))
    assert result.outcome is Outcome.FATAL
    assert result.detail == {"conflict": True}
    assert world.effects == {}


def test_planting_a_key_never_overwrites_one_already_seen() -> None:
    world = SimulatedWorld()
    executor = SimulatedExecutor(CATALOG, world)
    executor.execute(_call(idempotency_key="k1"))
    world.plant_key("k1", "another payload")
    again = executor.execute(_call(idempotency_key="k1"))
    assert again.outcome is Outcome.OK
    assert again.detail == {"deduplicated": True}


def test_planting_leaves_other_keys_alone() -> None:
    world = SimulatedWorld()
    world.plant_key("k1", "another payload")
    result = SimulatedExecutor(CATALOG, world).execute(_call(idempotency_key="k2"))
    assert result.outcome is Outcome.OK
    assert result.applied is True


# -- fencing epochs ----------------------------------------------------------------------


def test_a_stale_epoch_is_rejected_and_applies_nothing() -> None:
    world = SimulatedWorld()
    executor = SimulatedExecutor(CATALOG, world)
    executor.execute(_call("reserve"))
    assert executor.execute(_undo("reserve", epoch=3)).outcome is Outcome.OK
    executor.execute(_call("ship"))
    stale = executor.execute(_undo("ship", epoch=2))
    assert stale.outcome is Outcome.REJECTED
    assert stale.error == "stale fencing epoch 2 (seen 3)"
    assert _balances(world) == {"reserve": (1, 1), "ship": (1, 0)}
    assert world.deliveries == 4  # a rejected call was still delivered


def test_the_same_or_a_newer_epoch_is_accepted() -> None:
    world = SimulatedWorld()
    executor = SimulatedExecutor(CATALOG, world)
    for step in ("a", "b", "c"):
        executor.execute(_call(step))
    assert executor.execute(_undo("a", epoch=2)).outcome is Outcome.OK
    assert executor.execute(_undo("b", epoch=2)).outcome is Outcome.OK
    assert executor.execute(_undo("c", epoch=5)).outcome is Outcome.OK
    assert executor.execute(_undo("a", epoch=4)).outcome is Outcome.REJECTED


def test_calls_without_an_epoch_are_not_fenced() -> None:
    world = SimulatedWorld()
    executor = SimulatedExecutor(CATALOG, world)
    executor.execute(_call("reserve"))
    executor.execute(_undo("ship", epoch=7))
    result = executor.execute(_undo("reserve"))
    assert result.outcome is Outcome.OK
    assert result.applied is True


def test_a_stale_epoch_is_rejected_before_the_key_is_looked_up() -> None:
    world = SimulatedWorld()
    executor = SimulatedExecutor(CATALOG, world)
    executor.execute(_call("reserve"))
    executor.execute(_undo("reserve", idempotency_key="u1", epoch=3))
    replay = executor.execute(_undo("reserve", idempotency_key="u1", epoch=1))
    assert replay.outcome is Outcome.REJECTED
    assert replay.detail == {}


def test_worlds_are_shared_by_executors_that_share_them() -> None:
    world = SimulatedWorld()
    SimulatedExecutor(CATALOG, world).execute(_call("reserve", idempotency_key="k1"))
    again = SimulatedExecutor(CATALOG, world).execute(_call("reserve", idempotency_key="k1"))
    assert again.detail == {"deduplicated": True}
    assert world.deliveries == 2
