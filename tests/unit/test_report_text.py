"""The text report off a terminal: the lines rich would print, written without rich."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from agentundo.errors import InputError, Position
from agentundo.lint.engine import LintResult
from agentundo.lint.finding import Finding, Severity
from agentundo.report import text


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _result() -> LintResult:
    findings = [
        Finding(
            "b [x].yaml", 3, 5, "AU101", Severity.ERROR, "topic '[bold]x[/]' is bad", "fix [it]"
        ),
        Finding("a.yaml", 1, 1, "AU305", Severity.WARNING, "rule 'r' can never decide", None),
        Finding("a.yaml", 9, 2, "AU104", Severity.INFO, "a note", "hint text"),
    ]
    errors = [InputError(Position("c.yaml", 2, 1), "duplicate key 'v'", "remove one")]
    return LintResult(files=[], findings=findings, input_errors=errors)


@pytest.mark.parametrize("input_errors", [True, False])
def test_plain_lines_equal_what_rich_prints_off_a_terminal(input_errors: bool) -> None:
    result = _result()
    plain = io.StringIO()
    text.render_plain(result, plain, input_errors=input_errors)
    styled = io.StringIO()
    console = Console(file=styled, force_terminal=False, highlight=False, width=20)
    text.render(result, console, input_errors=input_errors)
    assert plain.getvalue() == styled.getvalue()
    assert "[bold]x[/]" in plain.getvalue()


def test_a_clean_run_is_one_summary_line() -> None:
    plain = io.StringIO()
    text.render_plain(LintResult(files=[]), plain)
    styled = io.StringIO()
    text.render(LintResult(files=[]), Console(file=styled, force_terminal=False))
    assert plain.getvalue() == styled.getvalue()
    assert plain.getvalue().count("\n") == 1


@pytest.mark.parametrize(
    ("environ", "tty", "expected"),
    [
        ({}, False, False),
        ({}, True, True),
        ({"FORCE_COLOR": "1"}, False, True),
        ({"FORCE_COLOR": ""}, True, False),
        ({"TTY_COMPATIBLE": "1"}, False, True),
        ({"TTY_COMPATIBLE": "0", "FORCE_COLOR": "1"}, True, False),
    ],
)
def test_rich_is_wanted_exactly_where_rich_would_style(
    environ: dict[str, str], tty: bool, expected: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    stream = _Tty() if tty else io.StringIO()
    assert text.wants_rich(stream) is expected
    assert Console(file=stream).is_terminal is expected


def test_a_terminal_gets_styles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    stream = _Tty()
    text.render_stream(_result(), stream)
    assert "\x1b[" in stream.getvalue()
