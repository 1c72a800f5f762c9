"""The published JSON Schemas and the pydantic models describe the same formats."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel

from agentundo.load.schema import load_schema
from agentundo.model.catalog import Catalog, Compensation, Topic
from agentundo.model.common import Decision, Risk, Rollback
from agentundo.model.policy import Policy, Rule, When
from agentundo.model.workflow import Step, Workflow

PAIRS: list[tuple[str, str | None, type[BaseModel]]] = [
    ("catalog", None, Catalog),
    ("catalog", "topic", Topic),
    ("catalog", "compensation", Compensation),
    ("policy", None, Policy),
    ("policy", "rule", Rule),
    ("policy", "when", When),
    ("workflow", None, Workflow),
    ("workflow", "step", Step),
]


def _object(schema_name: str, definition: str | None) -> dict[str, Any]:
    schema = load_schema(schema_name)
    return schema if definition is None else schema["$defs"][definition]


@pytest.mark.parametrize(("schema_name", "definition", "model"), PAIRS)
def test_fields_and_required_agree(
    schema_name: str, definition: str | None, model: type[BaseModel]
) -> None:
    obj = _object(schema_name, definition)
    assert set(obj["properties"]) == set(model.model_fields)
    required = {name for name, field in model.model_fields.items() if field.is_required()}
    assert set(obj.get("required", [])) == required
    assert obj["additionalProperties"] is False
    assert model.model_config.get("extra") == "forbid"


@pytest.mark.parametrize("name", ["catalog", "policy", "workflow"])
def test_schemas_are_valid_draft_2020_12(name: str) -> None:
    Draft202012Validator.check_schema(load_schema(name))


def test_enums_agree() -> None:
    topic = load_schema("catalog")["$defs"]["topic"]["properties"]
    assert topic["rollback"]["enum"] == [r.value for r in Rollback]
    assert topic["risk"]["enum"] == [r.value for r in Risk]
    rule = load_schema("policy")["$defs"]["rule"]["properties"]
    assert set(rule["decision"]["enum"]) == {d.value for d in Decision}
