"""JUnit XML for CI systems that show test reports (GitLab, Jenkins, Azure, CircleCI).

One test case per checked file and per check that applies to the file's kind (a policy
file gets no catalog checks; suppression checks apply to every file): ``classname`` is
the file, ``name`` is ``CODE check-name``. A case fails (``<failure>``) only with
findings at or above ``--fail-on`` (the result's ``fail_on``), one line per finding in
the body, so the report passes exactly when the exit code says the lint passed; findings
below it are lines of the case's ``<system-out>``. A file that could not be read gets
one case ``AU000 input-error`` with an ``<error>``.

The output is valid against the JUnit schema of Jenkins' xunit plugin (``junit-10.xsd``).
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


def _summary(found: list[Finding]) -> str:
    if len(found) == 1:
        return found[0].message
    return f"{len(found)} findings, first: {found[0].message}"


def document(result: LintResult) -> ET.Element:
    """The ``<testsuites>`` element of ``result``."""
    registry = all_checks()
    by_case: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for finding in result.findings:
        by_case[(finding.path, finding.code)].append(finding)
    broken: dict[str, list[Finding]] = defaultdict(list)
    for problem in result.input_errors:
        broken[problem.position.path].append(input_error_finding(problem))
    kinds = {file.path: file.kind for file in result.files}
    ran = list(result.checks)
    ran.extend(sorted({f.code for f in result.findings} - set(ran)))

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
        kind = kinds.get(path)
        for code in ran:
            found = by_case.get((path, code), [])
            check = registry.get(code)
            if not found and check is not None and not check.applies_to(kind):
                continue
            tests += 1
            name = check.name if check is not None else code
            case = ET.SubElement(suite, "testcase", classname=classname, name=f"{code} {name}")
            failing = [f for f in found if f.severity.rank >= result.fail_on.rank]
            passing = [f for f in found if f.severity.rank < result.fail_on.rank]
            if failing:
                failures += 1
                failure = ET.SubElement(
                    case, "failure", type=code, message=_clean(_summary(failing))
                )
                failure.text = _clean("\n".join(_describe(f) for f in failing))
            if passing:
                out = ET.SubElement(case, "system-out")
                out.text = _clean("\n".join(_describe(f) for f in passing))
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
