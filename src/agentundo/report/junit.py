"""JUnit XML for CI systems that show test reports (GitLab, Jenkins, Azure, CircleCI).

One test case per checked file and check that ran: ``classname`` is the file, ``name``
is ``CODE check-name``; a case fails (``<failure>``) when the check found something in
that file, one line per finding in the body. A file that could not be read gets one
case ``AU000 input-error`` with an ``<error>``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import TextIO
from xml.etree import ElementTree as ET

from agentundo.lint.engine import LintResult
from agentundo.lint.finding import Finding
from agentundo.lint.registry import all_checks
from agentundo.report.common import (
    INPUT_ERROR_CODE,
    INPUT_ERROR_NAME,
    checked_paths,
    input_error_finding,
    relative_uri,
)

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _describe(finding: Finding) -> str:
    text = f"{relative_uri(finding.path)}:{finding.line}:{finding.column}: {finding.severity} {finding.code} {finding.message}"
    return text + (f" (hint: {finding.hint})" if finding.hint else "")


def document(result: LintResult) -> ET.Element:
    """The ``<testsuites>`` element of ``result``."""
    registry = all_checks()
    by_case: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for finding in result.findings:
        by_case[(finding.path, finding.code)].append(finding)
    broken: dict[str, list[Finding]] = defaultdict(list)
    for problem in result.input_errors:
        broken[problem.position.path].append(input_error_finding(problem))
    codes = list(result.checks)
    codes.extend(sorted({f.code for f in result.findings} - set(codes)))

    suites = ET.Element("testsuites", name="agentundo lint")
    suite = ET.SubElement(suites, "testsuite", name="agentundo lint")
    tests = failures = errors = 0
    for path in checked_paths(result):
        classname = _clean(relative_uri(path))
        if path in broken:
            tests += 1
            errors += 1
            case = ET.SubElement(
                suite,
                "testcase",
                classname=classname,
                name=f"{INPUT_ERROR_CODE} {INPUT_ERROR_NAME}",
            )
            first = broken[path][0]
            error = ET.SubElement(
                case, "error", type=INPUT_ERROR_CODE, message=_clean(first.message)
            )
            error.text = _clean("\n".join(_describe(f) for f in broken[path]))
            continue
        for code in codes:
            tests += 1
            name = registry[code].name if code in registry else code
            case = ET.SubElement(suite, "testcase", classname=classname, name=f"{code} {name}")
            found = by_case.get((path, code))
            if found:
                failures += 1
                failure = ET.SubElement(
                    case,
                    "failure",
                    type=code,
                    message=_clean(
                        found[0].message
                        if len(found) == 1
                        else f"{len(found)} findings, first: {found[0].message}"
                    ),
                )
                failure.text = _clean("\n".join(_describe(f) for f in found))
    for element in (suites, suite):
        element.set("tests", str(tests))
        element.set("failures", str(failures))
        element.set("errors", str(errors))
    return suites


def render(result: LintResult, stream: TextIO) -> None:
    tree = ET.ElementTree(document(result))
    ET.indent(tree)
    stream.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    tree.write(stream, encoding="unicode")
    stream.write("\n")
