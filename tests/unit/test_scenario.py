"""The scenario format: schema and model agree, files load, mistakes are positioned."""

from __future__ import annotations

from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel

from agentundo.errors import InputErrors
from agentundo.load.files import load_file
from agentundo.load.schema import load_schema
from agentundo.model.scenario import Expect, FailMode, Fault, FaultType, Phase, Scenario, Settings
from tests.saga_helpers import write

PAIRS: list[tuple[str | None, type[BaseModel]]] = [
    (None, Scenario),
    ("fault", Fault),
    ("settings", Settings),
    ("expect", Expect),
]


@pytest.mark.parametrize(("definition", "model"), PAIRS)
def test_schema_and_model_agree_field_for_field(
    definition: str | None, model: type[BaseModel]
) -> None:
    schema = load_schema("scenario")
    obj = schema if definition is None else schema["$defs"][definition]
    assert set(obj["properties"]) == set(model.model_fields)
    required = {n for n, f in model.model_fields.items() if f.is_required()}
    assert set(obj.get("required", [])) == required
    assert obj["additionalProperties"] is False
    assert model.model_config.get("extra") == "forbid"


def test_schema_is_valid_and_enums_agree() -> None:
    schema = load_schema("scenario")
    Draft202012Validator.check_schema(schema)
    fault = schema["$defs"]["fault"]["properties"]
    assert fault["type"]["enum"] == [t.value for t in FaultType]
    assert fault["phase"]["enum"] == [p.value for p in Phase]
    assert schema["$defs"]["settings"]["properties"]["policy_fail_mode"]["enum"] == [
        m.value for m in FailMode
    ]


def test_a_scenario_is_recognised_by_its_keys_and_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "s.yaml",
        """
        version: v1
        scenario: weekly
        seed: 4
        approvals: [charge]
        settings: {rollback_window: 45s, policy_fail_mode: open}
        faults:
          - {type: partial, step: charge}
          - {type: lock_expires, after: 2, taken_over: true}
        expect: {status: FAILED_FATAL, manual: [notify]}
        """,
    )
    loaded = load_file(path)
    assert loaded.kind == "scenario"
    scenario = loaded.model
    assert isinstance(scenario, Scenario)
    assert scenario.faults[0].type is FaultType.PARTIAL
    assert scenario.settings.policy_fail_mode is FailMode.OPEN


@pytest.mark.parametrize(
    ("body", "line", "fragment"),
    [
        ("faults:\n  - {type: fatal}\n", 4, "missing 'step'"),
        ("faults:\n  - {type: transient, step: a}\n", 4, "missing 'count'"),
        ("faults:\n  - {type: fatl, step: a}\n", 4, "did you mean 'fatal'"),
        ("settings: {rollback_window: soon}\n", 3, "does not match"),
        ("expect: {compensate: [a]}\n", 3, "unknown key 'compensate'"),
        ("seed: -1\n", 3, "seed: -1 is less than the minimum of 0"),
        ("settings: {deadline: soon}\n", 3, "does not match"),
        (
            "faults:\n  - {type: fatal, step: a, count: 2}\n",
            4,
            "faults[0].count does not apply to this fault type (only to compensation_failure",
        ),
        ("faults:\n  - {type: lock_held, after: 1}\n", 4, "only to lock_expires"),
        ("faults:\n  - {type: lock_expires, expired: true}\n", 4, "only to lock_held"),
        ("faults:\n  - {type: lock_held, taken_over: true}\n", 4, "only to lock_expires"),
        ("faults:\n  - {type: fatal, step: a, phase: forward}\n", 4, "only to policy_unavailable"),
        ("expect: {compensated: [a, b, a]}\n", 3, "expect.compensated names an item more than"),
    ],
)
def test_mistakes_are_reported_at_their_position(
    tmp_path: Path, body: str, line: int, fragment: str
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("version: v1\nscenario: s\n" + body, encoding="utf-8")
    with pytest.raises(InputErrors) as caught:
        load_file(path, expect="scenario")
    described = [e.describe() for e in caught.value.errors]
    assert any(
        fragment in d and e.position.line == line
        for d, e in zip(described, caught.value.errors, strict=True)
    ), described


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"type": "fatal", "step": "a", "count": 2}, "'count' does not apply to a fatal fault"),
        ({"type": "lock_held", "after": 1}, "'after' does not apply to a lock_held fault"),
        ({"type": "partial", "step": "a", "expired": False}, "'expired' does not apply"),
    ],
)
def test_the_model_refuses_settings_a_fault_type_ignores(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Fault.model_validate(fields)


def test_settings_that_apply_are_accepted() -> None:
    for fields in (
        {"type": "transient", "step": "a", "count": 2},
        {"type": "compensation_failure", "step": "a", "count": 1},
        {"type": "policy_unavailable", "phase": "forward"},
        {"type": "lock_expires", "after": 2, "taken_over": True},
        {"type": "lock_held", "expired": True},
    ):
        Fault.model_validate(fields)


def test_the_sample_weekly_scenario_is_valid() -> None:
    for path in sorted(Path("sample-policies/scenarios").glob("*.yaml")):
        assert load_file(path, expect="scenario").kind == "scenario"
