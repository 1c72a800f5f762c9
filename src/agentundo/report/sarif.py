"""SARIF 2.1.0 for code-scanning dashboards (GitHub code scanning, Azure DevOps, ...).

The driver's rule table lists every registered check (id, name, short and full
description, help with the Bad/Good examples, default level), plus AU000 for input
errors; results carry physical locations relative to ``%SRCROOT%`` (the working
directory), so upload them from the repository root.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from agentundo import __version__
from agentundo.lint.engine import LintResult
from agentundo.lint.finding import Finding, Severity
from agentundo.lint.registry import Check, all_checks
from agentundo.report.common import (
    INPUT_ERROR_CODE,
    INPUT_ERROR_NAME,
    INPUT_ERROR_SUMMARY,
    all_findings,
    relative_uri,
)

SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
INFORMATION_URI = "https://github.com/agentundo/agentundo"
RULES_DOC = "docs/rules.md"
_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def _help(item: Check) -> dict[str, str]:
    bad, good = item.section("Bad"), item.section("Good")
    text = [item.summary, "", item.description]
    markdown = [f"**{item.code} {item.name}**: {item.summary}", "", item.description]
    for title, block in (("Bad", bad), ("Good", good)):
        if block:
            text += ["", f"{title}:", block]
            markdown += ["", f"{title}:", "", "```yaml", block, "```"]
    return {"text": "\n".join(text).strip(), "markdown": "\n".join(markdown).strip()}


def rule_descriptor(item: Check) -> dict[str, Any]:
    """The SARIF ``reportingDescriptor`` of one check."""
    return {
        "id": item.code,
        "name": item.name,
        "shortDescription": {"text": item.summary},
        "fullDescription": {"text": item.description or item.summary},
        "help": _help(item),
        "helpUri": f"{INFORMATION_URI}/blob/main/{RULES_DOC}#{item.code.lower()}",
        "defaultConfiguration": {"level": _LEVEL[item.severity]},
        "properties": {"tags": ["agentundo", item.family]},
    }


def _input_error_descriptor() -> dict[str, Any]:
    return {
        "id": INPUT_ERROR_CODE,
        "name": INPUT_ERROR_NAME,
        "shortDescription": {"text": INPUT_ERROR_SUMMARY},
        "fullDescription": {
            "text": INPUT_ERROR_SUMMARY + " The file is not checked; the exit code is 2."
        },
        "help": {"text": "Fix the file at the reported position; the message says what is wrong."},
        "defaultConfiguration": {"level": "error"},
        "properties": {"tags": ["agentundo", "input"]},
    }


def _fingerprint(finding: Finding, uri: str, occurrence: int) -> str:
    """Stable when lines move (no line number in it); ``occurrence`` tells apart findings
    with the same code and message in one file (the nth such finding, in order)."""
    key = f"{finding.code}\0{uri}\0{finding.message}\0{occurrence}".encode()
    return hashlib.sha256(key).hexdigest()[:32]


def _artifact(path: str) -> dict[str, str]:
    """A URI reference for ``path``: relative to %SRCROOT% where it lies below the working
    directory, else a ``file:`` URI; percent-encoded either way (``#``, ``?``, ``%``, a
    space or ``c:`` would otherwise change what the reference means)."""
    relative = relative_uri(path)
    if relative.startswith("/"):
        return {"uri": Path(relative).as_uri()}
    return {"uri": quote(relative, safe="/"), "uriBaseId": "%SRCROOT%"}


def _result(finding: Finding, index: dict[str, int], occurrence: int) -> dict[str, Any]:
    artifact = _artifact(finding.path)
    uri = artifact["uri"]
    location: dict[str, Any] = {"artifactLocation": artifact}
    if finding.line >= 1:
        region: dict[str, int] = {"startLine": finding.line}
        if finding.column >= 1:
            region["startColumn"] = finding.column
        location["region"] = region
    message = finding.message + (f" (hint: {finding.hint})" if finding.hint else "")
    return {
        "ruleId": finding.code,
        "ruleIndex": index[finding.code],
        "level": _LEVEL[finding.severity],
        "message": {"text": message},
        "locations": [{"physicalLocation": location}],
        "partialFingerprints": {"agentundo/v1": _fingerprint(finding, uri, occurrence)},
    }


def _results(findings: list[Finding], index: dict[str, int]) -> list[dict[str, Any]]:
    seen: Counter[tuple[str, str, str]] = Counter()
    results = []
    for finding in findings:
        same = (finding.path, finding.code, finding.message)
        results.append(_result(finding, index, seen[same]))
        seen[same] += 1
    return results


def document(result: LintResult) -> dict[str, Any]:
    """The SARIF log of ``result`` as plain data."""
    rules = [_input_error_descriptor()]
    rules.extend(rule_descriptor(item) for item in all_checks().values())
    index = {rule["id"]: i for i, rule in enumerate(rules)}
    root = Path.cwd().as_uri().rstrip("/") + "/"
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "agentundo",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": rules,
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"uri": root}},
                "invocations": [{"executionSuccessful": not result.input_errors}],
                "results": _results(all_findings(result), index),
                "columnKind": "unicodeCodePoints",
            }
        ],
    }


def render(result: LintResult, stream: TextIO) -> None:
    json.dump(document(result), stream, indent=2)
    stream.write("\n")
