"""model/templates.py: catalog templates (idempotency keys, params, http), rendered and checked."""

from __future__ import annotations

import pytest

from agentundo.model.templates import (
    KNOWN_FIELDS,
    TemplatePlace,
    derived_compensation_key,
    render_key,
    sample_fields,
    template_fields,
    template_fields_for,
)
from agentundo.model.workflow import Workflow

FIELDS = {"run_id": "r1", "step_id": "charge", "step_index": 2, "params": {"order": "A-7"}}


def test_template_fields_in_order() -> None:
    assert template_fields("{run_id}:{step_id}:{params.order}") == [
        "run_id",
        "step_id",
        "params.order",
    ]
    assert template_fields("fixed") == []
    assert template_fields("{{literal}}") == []


@pytest.mark.parametrize("template", ["{}", "{run_id!r}", "{run_id:>5}", "{run_id", "run_id}"])
def test_malformed_templates_are_a_value_error(template: str) -> None:
    with pytest.raises(ValueError):
        template_fields(template)


def test_render_fills_fields_and_params() -> None:
    assert render_key("{run_id}:{step_id}:{params.order}", FIELDS) == "r1:charge:A-7"
    assert render_key("n{step_index}", FIELDS) == "n2"
    assert render_key("{{x}}-{run_id}", FIELDS) == "{x}-r1"
    assert render_key("{run_id}", FIELDS) == render_key("{run_id}", FIELDS)  # cached alike


def test_render_of_a_missing_field_or_param_is_a_key_error() -> None:
    with pytest.raises(KeyError, match=r"params\.nope"):
        render_key("{params.nope}", FIELDS)
    with pytest.raises(KeyError):
        render_key("{topic}", FIELDS)
    with pytest.raises(KeyError):
        render_key("{params.order}", {"run_id": "r1"})  # no params at all


def test_render_of_a_malformed_template_fails_like_the_formatter() -> None:
    with pytest.raises(ValueError):
        render_key("{run_id", FIELDS)


def test_known_fields() -> None:
    assert {"run_id", "step_id", "workflow_id"} <= KNOWN_FIELDS
    assert not any(name.startswith("params.") for name in KNOWN_FIELDS)


def test_a_derived_compensation_key_is_stable_and_names_the_run() -> None:
    args = {"workflow_id": "wf", "step_id": "charge", "topic": "payments.refund", "step_index": 2}
    one = derived_compensation_key(run_id="r1", **args)
    assert one == derived_compensation_key(run_id="r1", **args)
    assert one == "undo:r1:wf:charge:payments.refund:2"
    assert derived_compensation_key(run_id="r2", **args) != one


def test_each_place_allows_the_known_fields_and_http_adds_the_key() -> None:
    for place in TemplatePlace:
        allowed = template_fields_for(place)
        assert allowed >= KNOWN_FIELDS
        is_http = place in (TemplatePlace.HTTP, TemplatePlace.COMPENSATION_HTTP)
        assert ("idempotency_key" in allowed) is is_http


@pytest.mark.parametrize("place", list(TemplatePlace))
def test_sample_fields_give_exactly_what_the_place_allows(place: TemplatePlace) -> None:
    workflow = Workflow.model_validate(
        {
            "version": "v1",
            "workflow": "checkout",
            "env": "staging",
            "steps": [
                {"id": "look", "topic": "orders.get"},
                {"id": "pay", "topic": "payments.charge", "params": {"order_id": "A-1"}},
            ],
        }
    )
    values = sample_fields(workflow, 1, place)
    assert set(values) == template_fields_for(place) | {"params"}
    assert values["step_id"] == "pay" and values["step_index"] == 1
    assert values["topic"] == "payments.charge" and values["env"] == "staging"
    assert values["params"] == {"order_id": "A-1"}
    assert render_key("{workflow_id}:{step_id}:{params.order_id}", values) == "checkout:pay:A-1"


def test_compensation_params_are_rendered_at_every_depth() -> None:
    """Lint checks nested strings of a compensation's params as templates (AU407), so the
    engine fills them at every depth too, and leaves non-strings alone."""
    from agentundo.saga.compensate import _render_params

    fields = {"run_id": "run_1", "step_id": "charge", "params": {"order_id": "A-1", "n": 2}}
    params = {
        "reason": "undo {params.order_id}",
        "meta": {"order": "{params.order_id}", "deep": [{"step": "{run_id}:{step_id}"}]},
        "tags": ["{step_id}", 3, None, True],
        "count": 7,
    }
    assert _render_params(params, fields) == {
        "reason": "undo A-1",
        "meta": {"order": "A-1", "deep": [{"step": "run_1:charge"}]},
        "tags": ["charge", 3, None, True],
        "count": 7,
    }
