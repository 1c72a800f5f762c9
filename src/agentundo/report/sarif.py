"""SARIF 2.1.0 for code-scanning dashboards (GitHub code scanning, Azure DevOps, ...).

The driver's rule table lists every registered check (id, name, short and full
description, help with the Bad/Good examples, default level, ``helpUri`` to its section of
``docs/rules.md``), plus AU000 for input errors. Results carry physical locations
relative to ``%SRCROOT%`` (the working directory: upload from the repository root), or a
``file:`` URI for a file outside it, and full regions: the span of the key, value or rule
the finding points at, else the rest of its line. Findings an inline suppression drops are
reported too, with ``suppressions: [{kind: inSource, justification: <reason>}]``, so code
scanning shows them as dismissed rather than fixed.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

import yaml

from agentundo import __version__
from agentundo.lint.engine import LintResult
from agentundo.lint.finding import Finding, Severity
from agentundo.lint.registry import Check, all_checks
from agentundo.report.common import (
    INPUT_ERROR_CODE,
    INPUT_ERROR_HELP_URI,
    INPUT_ERROR_NAME,
    INPUT_ERROR_SUMMARY,
    all_findings,
    inside_root,
    report_path,
)

SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
INFORMATION_URI = "https://github.com/agentundo/agentundo"
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
        "helpUri": item.help_uri,
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
        "helpUri": INPUT_ERROR_HELP_URI,
        "defaultConfiguration": {"level": "error"},
        "properties": {"tags": ["agentundo", "input"]},
    }


def _fingerprint(finding: Finding, uri: str, occurrence: int) -> str:
    """Stable when lines move (no line number in it); ``occurrence`` tells apart findings
    with the same code and message in one file (the nth such finding, in order)."""
    key = f"{finding.code}\0{uri}\0{finding.message}\0{occurrence}".encode()
    return hashlib.sha256(key).hexdigest()[:32]


def _artifact(path: str) -> dict[str, str]:
    """A URI reference for ``path``: relative to %SRCROOT% where it lies inside the working
    directory, else a ``file:`` URI (never a ``../`` path against %SRCROOT%); the relative
    one percent-encoded (``#``, ``?``, ``%``, a space or ``c:`` would otherwise change what
    the reference means)."""
    relative = inside_root(path)
    if relative is None:
        return {"uri": report_path(path)}
    return {"uri": quote(relative, safe="/"), "uriBaseId": "%SRCROOT%"}


Span = tuple[int, int, int, int]
"""Start line, start column, end line, end column (exclusive), all 1-based."""


class _Spans:
    """Where each key, value and list item of a file starts and ends, read once per file.

    The loader keeps only where nodes start; a finding's position is one of those starts,
    so composing the file again (no values are built: an alias bomb costs nothing) gives
    its end. At one position a list item that is a mapping (a policy rule, a workflow step)
    wins over the key it starts with, and a key over the value it names.
    """

    def __init__(self) -> None:
        self._files: dict[str, tuple[list[str], dict[tuple[int, int], Span]]] = {}

    def _load(self, path: str) -> tuple[list[str], dict[tuple[int, int], Span]]:
        found = self._files.get(path)
        if found is None:
            found = self._files[path] = _read_spans(path)
        return found

    def region(self, finding: Finding) -> dict[str, int] | None:
        if finding.line < 1:
            return None
        lines, spans = self._load(finding.path)
        span = spans.get((finding.line, finding.column))
        if span is None:
            text = lines[finding.line - 1] if finding.line <= len(lines) else ""
            start = max(finding.column, 1)
            span = (finding.line, start, finding.line, max(len(text.rstrip()) + 1, start))
        return {
            "startLine": span[0],
            "startColumn": span[1],
            "endLine": span[2],
            "endColumn": span[3],
        }


def _read_spans(path: str) -> tuple[list[str], dict[tuple[int, int], Span]]:
    from agentundo.errors import InputError
    from agentundo.load.files import read_bytes
    from agentundo.load.yamlpos import decode

    try:
        raw = read_bytes(path)
    except InputError:
        return [], {}
    try:
        text = decode(raw, path)
    except InputError:
        return raw.decode("utf-8", "replace").splitlines(), {}
    lines = text.splitlines()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        root = yaml.compose(text, Loader=loader)
    except (yaml.YAMLError, RecursionError):
        return lines, {}
    walk = _Walk(lines)
    if root is not None:
        try:
            walk.node(root, item=False)
        except RecursionError:
            return lines, {}
    spans = {**walk.values, **walk.keys, **walk.items}
    return lines, spans


class _Walk:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.keys: dict[tuple[int, int], Span] = {}
        self.values: dict[tuple[int, int], Span] = {}
        self.items: dict[tuple[int, int], Span] = {}
        self.ends: dict[int, tuple[int, int]] = {}

    def end(self, mark: yaml.Mark, start_line: int) -> tuple[int, int]:
        """The 1-based exclusive end of a token ending at ``mark``; a block scalar's end
        mark is the start of the next line, its end is the end of its last line."""
        if mark.column == 0 and mark.line + 1 > start_line and mark.line <= len(self.lines):
            return mark.line, len(self.lines[mark.line - 1]) + 1
        return mark.line + 1, mark.column + 1

    def node(self, node: yaml.Node, *, item: bool) -> tuple[int, int]:
        """Record ``node``'s span and its children's; return where it ends."""
        known = self.ends.get(id(node))
        if known is not None:  # an alias: the anchor's node, walked already
            return known
        start = (node.start_mark.line + 1, node.start_mark.column + 1)
        self.ends[id(node)] = start  # a recursive alias stops here
        end = self.end(node.end_mark, start[0])
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                key_end = self.node(key, item=False)
                key_start = (key.start_mark.line + 1, key.start_mark.column + 1)
                self.keys.setdefault(key_start, (*key_start, *key_end))
                value_end = self.node(value, item=False)
                if not node.flow_style:
                    end = max(key_end, value_end)
        elif isinstance(node, yaml.SequenceNode):
            for child in node.value:
                child_end = self.node(child, item=True)
                if not node.flow_style:
                    end = child_end
        self.ends[id(node)] = end
        span = (*start, *end)
        if item and isinstance(node, yaml.MappingNode) and not node.flow_style:
            self.items.setdefault(start, span)
        self.values.setdefault(start, span)
        return end


def _result(
    finding: Finding,
    index: dict[str, int],
    occurrence: int,
    spans: _Spans,
    suppression: str | None = None,
) -> dict[str, Any]:
    artifact = _artifact(finding.path)
    uri = artifact["uri"]
    location: dict[str, Any] = {"artifactLocation": artifact}
    region = spans.region(finding)
    if region is not None:
        location["region"] = region
    message = finding.message + (f" (hint: {finding.hint})" if finding.hint else "")
    result: dict[str, Any] = {
        "ruleId": finding.code,
        "ruleIndex": index[finding.code],
        "level": _LEVEL[finding.severity],
        "message": {"text": message},
        "locations": [{"physicalLocation": location}],
        "partialFingerprints": {"agentundo/v1": _fingerprint(finding, uri, occurrence)},
    }
    if suppression is not None:
        entry = {"kind": "inSource"}
        if suppression:
            entry["justification"] = suppression
        result["suppressions"] = [entry]
    return result


def _results(result: LintResult, index: dict[str, int]) -> list[dict[str, Any]]:
    """Findings and suppressed findings in file order, then input errors. The nth finding
    with one code and message in a file keeps its fingerprint whether or not it is
    suppressed (a suppression added later dismisses the same alert)."""
    reasons: dict[Finding, str] = {s.finding: s.reason for s in result.suppressions}
    ordered = sorted({*result.findings, *reasons})
    inputs = all_findings(result)[len(result.findings) :]
    seen: Counter[tuple[str, str, str]] = Counter()
    spans = _Spans()
    results = []
    for finding in [*ordered, *inputs]:
        same = (finding.path, finding.code, finding.message)
        suppression = reasons.get(finding) if finding.code != INPUT_ERROR_CODE else None
        results.append(_result(finding, index, seen[same], spans, suppression))
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
                "results": _results(result, index),
                "columnKind": "unicodeCodePoints",
            }
        ],
    }


def render(result: LintResult, stream: TextIO) -> None:
    json.dump(document(result), stream, indent=2)
    stream.write("\n")
