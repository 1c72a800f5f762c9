"""`agentundo rules`: the registry listed and documented; docs/rules.md kept in sync."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from agentundo.lint.docs import markdown, static_checks
from agentundo.lint.registry import all_checks
from tests.cli_runner import invoke

ROOT = Path(__file__).parents[2]


def run(*args: str, importtime: bool = False) -> Any:
    if not importtime:  # in this process; start-up imports need a fresh interpreter
        return invoke(*args)
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "agentundo", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_lists_every_check() -> None:
    done = run("rules")
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines] == list(all_checks())
    assert lines[0].split(None, 3) == [
        "AU101",
        "error",
        "rollback-tag-missing",
        "A side-effecting topic has no `rollback` tag.",
    ]


def test_documents_one_check_with_bad_and_good_examples() -> None:
    done = run("rules", "au301")
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert lines[:2] == ["AU301 unrecoverable-action-allowed", "severity: error    family: policy"]
    assert "Bad:" in lines and "Good:" in lines
    assert "    default_decision: allow" in lines
    by_name = run("rules", "unrecoverable-action-allowed")
    assert by_name.stdout == done.stdout


def test_json_listing() -> None:
    data = json.loads(run("rules", "--format", "json").stdout)
    assert [d["code"] for d in data] == list(all_checks())
    assert {"code", "name", "severity", "family", "summary", "description", "bad", "good"} == set(
        data[0]
    )


def test_unknown_code() -> None:
    done = run("rules", "AU999")
    assert done.returncode == 2
    assert "no check 'AU999'" in done.stderr


def test_a_code_prefix_lists_its_family() -> None:
    done = run("rules", "au2", "--format", "json")
    assert done.returncode == 0
    assert [c["code"] for c in json.loads(done.stdout)] == [
        c for c in all_checks() if c.startswith("AU2")
    ]
    text = run("rules", "AU9")
    assert [line.split()[0] for line in text.stdout.splitlines()] == ["AU901", "AU902", "AU903"]


def test_static_index_equals_the_registry() -> None:
    static, live = static_checks(), all_checks()
    assert list(static) == list(live)
    for code, item in live.items():
        other = static[code]
        assert (other.name, other.severity, other.family, other.doc) == (
            item.name,
            item.severity,
            item.family,
            item.doc,
        )


def test_every_check_is_documented() -> None:
    for item in all_checks().values():
        assert item.summary and item.description, item.code
        assert item.section("Bad") and item.section("Good"), item.code


def test_docs_rules_md_is_up_to_date() -> None:
    committed = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    assert committed == markdown(all_checks()), (
        "docs/rules.md is out of date: run python -m agentundo.lint.docs > docs/rules.md"
    )


def test_rules_imports_no_heavy_module_of_ours() -> None:
    done = run("rules", importtime=True)
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    # typer itself may import pydantic for parameter coercion; our code must not add these
    assert imported.isdisjoint({"rich", "jsonschema", "httpx", "yaml"})
    assert not any(name.startswith("agentundo.model") for name in imported)
    assert "agentundo.lint.project" not in imported
