"""Test-wide settings: tests see the environment a clean CI runner has."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.cli_runner import Result, invoke


@pytest.fixture(autouse=True)
def _no_evidence_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's exported evidence key must not turn unkeyed tests into keyed ones."""
    monkeypatch.delenv("AGENTUNDO_EVIDENCE_KEY", raising=False)


@pytest.fixture(autouse=True)
def _own_lint_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Each test starts with an empty lint cache of its own, never the developer's."""
    monkeypatch.setenv("AGENTUNDO_CACHE_DIR", str(tmp_path_factory.mktemp("lint-cache")))


@pytest.fixture
def cli() -> Callable[..., Result]:
    """``cli(*args, cwd=..., env=..., clean_env=..., stdin=...)``: agentundo in this process.

    Returns ``returncode``, ``stdout`` and ``stderr`` like ``subprocess.run``; see
    tests/cli_runner.py for what is captured, set and restored around the call.
    """
    return invoke
