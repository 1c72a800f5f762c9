"""JSON report: a list of finding objects (code, severity, message, path, line, column, hint).

Input errors appear with code AU000 after the findings.
"""

from __future__ import annotations

import json
from typing import TextIO

from agentundo.lint.engine import LintResult
from agentundo.report.common import all_findings


def render(result: LintResult, stream: TextIO) -> None:
    json.dump([f.as_dict() for f in all_findings(result)], stream, indent=2)
    stream.write("\n")
