"""GitLab Code Quality report (``artifacts: reports: codequality``).

A JSON list of issues: ``description``, ``check_name``, ``fingerprint`` (unique per
issue), ``severity`` (error: major, warning: minor, info: info, input error: blocker)
and ``location`` (``path``, ``lines.begin``). ``path`` is relative to the repository root
(the working directory) when the file is inside it, else a ``file:`` URI, as in SARIF.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any, TextIO

from agentundo.lint.engine import LintResult
from agentundo.lint.finding import Severity
from agentundo.report.common import INPUT_ERROR_CODE, all_findings, report_path

_SEVERITY = {Severity.ERROR: "major", Severity.WARNING: "minor", Severity.INFO: "info"}


def issues(result: LintResult) -> list[dict[str, Any]]:
    seen: Counter[str] = Counter()
    found = []
    for finding in all_findings(result):
        path = report_path(finding.path)
        key = f"{finding.code}\0{path}\0{finding.message}"
        seen[key] += 1
        fingerprint = hashlib.sha256(f"{key}\0{seen[key]}".encode()).hexdigest()
        description = f"{finding.code} {finding.message}"
        if finding.hint:
            description += f" (hint: {finding.hint})"
        found.append(
            {
                "description": description,
                "check_name": finding.code,
                "fingerprint": fingerprint,
                "severity": "blocker"
                if finding.code == INPUT_ERROR_CODE
                else _SEVERITY[finding.severity],
                "categories": ["Bug Risk"],
                "location": {"path": path, "lines": {"begin": max(finding.line, 1)}},
            }
        )
    return found


def render(result: LintResult, stream: TextIO) -> None:
    json.dump(issues(result), stream, indent=2)
    stream.write("\n")
