"""The strict pydantic models accept exactly what the published JSON Schemas accept.

The loader validates catalogs, policies and workflows in pydantic-core first and runs
the JSON Schema only to explain a failure, so the two must never disagree.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from agentundo.load.files import KINDS, _has_null, build_model
from agentundo.load.schema import load_schema

SEEDS: dict[str, dict[str, Any]] = {
    "catalog": {
        "version": "v1",
        "topics": {
            "payments.charge": {
                "side_effect": True,
                "rollback": "compensatable",
                "risk": "high",
                "idempotency_key": "{run_id}:{step_id}",
                "compensation": {"topic": "payments.refund", "timeout": "10s", "params": {"a": 1}},
                "aliases": ["charge_card", "pay:v2/charge"],
            },
            "tickets.read": {"side_effect": False},
        },
    },
    "policy": {
        "version": "v1",
        "combining": "first_match",
        "default_decision": "deny",
        "rules": [
            {
                "id": "r",
                "when": {
                    "env": ["production"],
                    "topic": "a.*",
                    "risk": ["high"],
                    "side_effect": True,
                },
                "decision": "require_human",
            }
        ],
    },
    "scenario": {
        "version": "v1",
        "kind": "scenario",
        "scenario": "weekly",
        "workflow": "refund-dispute",
        "seed": 7,
        "faults": [
            {"type": "transient", "step": "close-ticket", "count": 3},
            {"type": "partial", "step": "notify-finance"},
            {"type": "duplicate_delivery", "step": "refund-duplicate"},
        ],
        "expect": {"status": "FAILED_FATAL", "compensated": ["a"], "manual": []},
    },
    "workflow": {
        "version": "v1",
        "workflow": "w",
        "env": "production",
        "steps": [{"id": "a", "topic": "t", "params": {"x": [1, 2]}}],
    },
}

VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 2),
    st.floats(allow_nan=False, allow_infinity=False, width=16),
    st.sampled_from(
        [
            "",
            "v1",
            "v2",
            "10s",
            "10 s",
            "1.5m",
            "high",
            "irreversible",
            "deny",
            "require_human",
            "most_restrictive",
            "catalog",
            "policy",
            "workflow",
            "x y",
            "a.b",
        ]
    ),
    st.just([]),
    st.just(["production"]),
    st.just(["high", "nope"]),
    st.just({}),
    st.just({"topic": "x"}),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    doc = copy.deepcopy(SEEDS[kind])
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = doc
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["set", "delete", "add"]))
        if action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            key = draw(st.sampled_from(["extra", "risk", "when", "id", "Topic-1", "bad key"]))
            parent[key] = copy.deepcopy(draw(VALUES))
        else:
            parent[path[-1]] = copy.deepcopy(draw(VALUES))
    return doc


def _agree(kind: str, doc: dict[str, Any]) -> None:
    schema_ok = Draft202012Validator(load_schema(KINDS[kind].schema)).is_valid(doc)
    try:
        build_model(KINDS[kind], doc)
        model_ok = True
    except ValidationError:
        model_ok = False
    if _has_null(doc):
        # the loader validates documents with nulls against the schema first
        model_ok = model_ok and schema_ok
    assert schema_ok == model_ok, json.dumps(doc)


@settings(max_examples=400, deadline=None)
@given(mutated("catalog"))
def test_catalog_schema_and_model_agree(doc: dict[str, Any]) -> None:
    _agree("catalog", doc)


@settings(max_examples=400, deadline=None)
@given(mutated("policy"))
def test_policy_schema_and_model_agree(doc: dict[str, Any]) -> None:
    _agree("policy", doc)


@settings(max_examples=300, deadline=None)
@given(mutated("workflow"))
def test_workflow_schema_and_model_agree(doc: dict[str, Any]) -> None:
    _agree("workflow", doc)


def test_seeds_are_valid() -> None:
    for kind in SEEDS:
        _agree(kind, SEEDS[kind])
        KINDS[kind].build(SEEDS[kind])


@settings(max_examples=400, deadline=None)
@given(mutated("scenario"))
def test_scenario_schema_and_model_agree(doc: dict[str, Any]) -> None:
    _agree("scenario", doc)
