"""One FaultSpec per fault type: the schema, the model and the drill's checks agree with it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from agentundo.model.scenario import (
    COMPENSATION_FAULTS,
    FAULT_SETTINGS,
    FAULT_SPECS,
    STEP_FAULTS,
    WORKFLOW_FAULTS,
    Fault,
    FaultType,
    StepNaming,
)

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "scenario.schema.json"
SAMPLE_VALUES: dict[str, Any] = {
    "count": 2,
    "phase": "forward",
    "after": 1,
    "taken_over": True,
    "expired": True,
}


def _fault_schema() -> dict[str, Any]:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    found = schema["$defs"]["fault"]
    assert isinstance(found, dict)
    return found


def _types_where(clause: str, setting: str) -> set[str]:
    """The fault types for which the schema's ``allOf`` applies ``clause`` to ``setting``."""
    types: set[str] = set()
    for rule in _fault_schema()["allOf"]:
        condition = rule["if"]["properties"]["type"]
        named = set(condition.get("enum", [condition.get("const")]))
        then = rule["then"]
        if clause == "required" and setting in then.get("required", []):
            types |= named
        if clause == "refused" and setting in then.get("properties", {}):
            types |= named
    return types


def test_every_fault_type_has_exactly_one_spec() -> None:
    assert set(FAULT_SPECS) == set(FaultType)
    assert all(spec.type is kind for kind, spec in FAULT_SPECS.items())


@pytest.mark.parametrize("setting", FAULT_SETTINGS)
def test_schema_refuses_a_setting_exactly_where_the_spec_does(setting: str) -> None:
    refused = {k.value for k, spec in FAULT_SPECS.items() if setting not in spec.settings}
    assert _types_where("refused", setting) == refused


def test_schema_requires_step_and_count_where_the_specs_do() -> None:
    assert _types_where("required", "step") == {k.value for k in STEP_FAULTS}
    needs_count = {k.value for k, spec in FAULT_SPECS.items() if "count" in spec.required}
    assert _types_where("required", "count") == needs_count == {"transient"}


def test_schema_enum_lists_every_fault_type() -> None:
    assert set(_fault_schema()["properties"]["type"]["enum"]) == {k.value for k in FaultType}


@pytest.mark.parametrize("kind", list(FaultType))
@pytest.mark.parametrize("setting", FAULT_SETTINGS)
def test_the_model_accepts_a_setting_only_where_it_applies(kind: FaultType, setting: str) -> None:
    spec = FAULT_SPECS[kind]
    data: dict[str, Any] = {"type": kind.value, setting: SAMPLE_VALUES[setting]}
    if spec.step is StepNaming.REQUIRED:
        data["step"] = "charge"
    if "count" in spec.required and setting != "count":
        data["count"] = 1
    if setting in spec.settings:
        assert getattr(Fault.model_validate(data), setting) == SAMPLE_VALUES[setting]
    else:
        with pytest.raises(ValidationError, match=f"'{setting}' does not apply to a {kind}"):
            Fault.model_validate(data)


@pytest.mark.parametrize("kind", sorted(STEP_FAULTS))
def test_a_step_fault_without_its_step_is_refused(kind: FaultType) -> None:
    with pytest.raises(ValidationError, match="must name its 'step'"):
        Fault.model_validate(
            {"type": kind.value, "count": 1}
            if kind is FaultType.TRANSIENT
            else {"type": kind.value}
        )


def test_the_derived_groups_are_the_ones_the_docs_name() -> None:
    assert {k.value for k in WORKFLOW_FAULTS} == {"lock_held", "lock_expires"}
    assert {k.value for k in COMPENSATION_FAULTS} == {
        "compensation_failure",
        "compensation_timeout",
        "compensation_denied",
        "duplicate_delivery",
        "key_reuse",
    }
    ends = {k.value for k, spec in FAULT_SPECS.items() if spec.ends_forward}
    assert ends == {"fatal", "partial"}
