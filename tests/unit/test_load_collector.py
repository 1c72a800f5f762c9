"""Loading runs with the cyclic garbage collector paused, and gives it back as it was."""

from __future__ import annotations

import gc
from pathlib import Path

from agentundo.load.files import paused_collector, scan_paths


def test_the_collector_is_off_inside_and_as_before_after() -> None:
    assert gc.isenabled()
    with paused_collector():
        assert not gc.isenabled()
        with paused_collector():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block does not turn it on under the outer one
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_collector():
            pass
        assert not gc.isenabled()  # off before, off after
    finally:
        gc.enable()


def test_an_error_inside_gives_the_collector_back() -> None:
    try:
        with paused_collector():
            raise ValueError("boom")
    except ValueError:
        pass
    assert gc.isenabled()


def test_scan_leaves_the_collector_on(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("version: v1\ntopics: {a: [\n", encoding="utf-8")
    scan = scan_paths([tmp_path / "broken.yaml"])
    assert scan.errors and scan.errors[0].position.line == 3
    assert gc.isenabled()
