"""Check modules, one per family; importing a module registers its checks."""

from __future__ import annotations

import importlib

FAMILIES = (
    "catalog",
    "idempotency",
    "policy_gate",
    "policy_rules",
    "foreign",
    "workflow",
    "dag",
    "http",
    "suppression",
)


def load_all() -> None:
    for family in FAMILIES:
        importlib.import_module(f"agentundo.lint.checks.{family}")
