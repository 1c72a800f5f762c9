"""Test-wide settings: tests see the environment a clean CI runner has."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_evidence_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's exported evidence key must not turn unkeyed tests into keyed ones."""
    monkeypatch.delenv("AGENTUNDO_EVIDENCE_KEY", raising=False)
