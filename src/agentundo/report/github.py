"""GitHub Actions workflow commands: findings appear inline on pull requests.

One line per finding::

    ::error file=policies/catalog.yaml,line=4,col=3,title=AU101::topic 'x' has ...

Severity maps to ``error``, ``warning`` and ``notice``. Values are escaped as the
runner expects (``%``, CR and LF in the message; also ``:`` and ``,`` in properties).
"""

from __future__ import annotations

from typing import TextIO

from agentundo.lint.engine import LintResult
from agentundo.lint.finding import Finding, Severity
from agentundo.report.common import all_findings, relative_uri

_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def line(finding: Finding) -> str:
    """The workflow command of one finding."""
    props = [f"file={escape_property(relative_uri(finding.path))}"]
    if finding.line:
        props.append(f"line={finding.line}")
        if finding.column:
            props.append(f"col={finding.column}")
    props.append(f"title={escape_property(finding.code)}")
    message = finding.message
    if finding.hint:
        message += f"\nhint: {finding.hint}"
    return f"::{_COMMAND[finding.severity]} {','.join(props)}::{escape_data(message)}"


def render(result: LintResult, stream: TextIO) -> None:
    for finding in all_findings(result):
        stream.write(line(finding) + "\n")
