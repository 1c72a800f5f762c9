"""How the loader recognises a control plane's policy, without importing its model.

A foreign policy is rare in a project, so lint registers this format with a build
function that imports :mod:`agentundo.model.foreign_policy` (pydantic models) only when a
file is one: recognising it needs only :func:`detect`. Registering also teaches the loader
Cordum's DAG workflows (:mod:`agentundo.model.cordum_workflow`), the other half of a
control plane's files.
"""

from __future__ import annotations

from typing import Any

KIND = "foreign-policy"


def detect(data: dict[str, Any]) -> str | None:
    """Claim a mapping whose rules use ``match:`` (and none uses agentundo's ``when:``)."""
    rules = data.get("rules")
    if not isinstance(rules, list):
        return None
    items = [r for r in rules if isinstance(r, dict)]
    if any("match" in r for r in items) and not any("when" in r for r in items):
        return KIND
    return None


def _build(data: Any) -> Any:
    from agentundo.model.foreign_policy import ForeignPolicy

    return ForeignPolicy.model_validate(data)


def register() -> None:
    """Teach the loader this format and Cordum's workflows (idempotent); lint, explain and
    drill call it before loading."""
    from agentundo.load.files import KINDS, Kind, register_kind
    from agentundo.model.cordum_workflow import register as register_workflows

    register_workflows()

    if KIND not in KINDS:
        # keys: never all present in a real file, so only the detector (or kind:) claims it
        register_kind(Kind(KIND, KIND, _build, frozenset({"rules", "match"})), detect)
