"""Inline suppressions: ``# agentundo: ignore[CODE, ...] reason`` on a line or the line above.

A comment after YAML content covers its own line; a comment on a line of its own covers
the next line that holds content. The engine applies suppressions after the checks ran,
so checks never see them. The marker, the verb and the codes are read in any case
(``# AGENTUNDO: IGNORE[au101] reason`` is ``# agentundo: ignore[AU101] reason``).

A suppression without a reason (AU901), one that suppresses nothing or names a code twice
(AU902) and a malformed one (AU903) are findings themselves; so is a comment that looks
like a suppression but is not written as one (``# agentundo ignore[AU101]``, no colon),
which would otherwise suppress nothing, silently. Their codes are declared in
:mod:`agentundo.lint.checks.suppression`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from agentundo.lint.finding import Finding, Severity
from agentundo.load.files import LoadedFile

WITHOUT_REASON = "AU901"
UNUSED = "AU902"
INVALID = "AU903"
_SEVERITY = {WITHOUT_REASON: Severity.WARNING, UNUSED: Severity.WARNING, INVALID: Severity.ERROR}

_DIRECTIVE = re.compile(
    r"agentundo\s*:\s*(?P<verb>[A-Za-z_-]+)\s*(?:\[(?P<codes>[^\]]*)\])?(?P<reason>.*)$",
    re.IGNORECASE,
)
_LOOKALIKE = re.compile(r"\bagentundo\b[\s:=_-]*ignore\b", re.IGNORECASE)
"""A comment that means to be a suppression, whether or not it is written as one."""
_CODE = re.compile(r"^AU[0-9]{3}$")
_WRITE = "write '# agentundo: ignore[CODE] reason'"
_REASON_LEAD = " \t-:\u2013\u2014"  # what people put before a reason, dashes included


@dataclass(frozen=True, slots=True)
class Directive:
    """One parsed suppression comment and the lines it covers."""

    path: str
    line: int
    column: int
    codes: tuple[str, ...]
    reason: str
    covers: frozenset[int]


@dataclass(frozen=True, slots=True)
class Outcome:
    """Findings kept (with suppression findings added) and how many were suppressed."""

    findings: list[Finding]
    suppressed: int


def _finding(path: str, line: int, column: int, code: str, message: str, hint: str) -> Finding:
    return Finding(path, line, column, code, _SEVERITY[code], message, hint)


def _lines(path: str) -> list[str] | None:
    try:
        return Path(path).read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError):
        return None


def _is_content(text: str) -> bool:
    stripped = text.strip()
    return bool(stripped) and not stripped.startswith("#")


def _unreadable(match: re.Match[str] | None, verb: str, codes: str | None) -> str | None:
    """Why a comment that means to be a suppression cannot be one; None when it can."""
    if match is None or (verb != "ignore" and codes is None):
        return "malformed suppression: it cannot be read, so it suppresses nothing"
    if verb != "ignore":
        return f"unknown suppression directive 'agentundo: {match.group('verb')}'"
    if codes is None and match.group("reason").lstrip().startswith("["):
        return "the '[' of this suppression is never closed"
    return None


def parse(
    path: str, comments: dict[int, tuple[int, str]], known: Callable[[str], bool]
) -> tuple[list[Directive], list[Finding]]:
    """The suppression directives of one file, and AU903 findings for malformed ones.

    ``comments`` maps a line number to the column of its ``#`` and the comment text after
    it, as the loader records them; ``known`` tells whether a code is a registered check.
    """
    directives: list[Directive] = []
    problems: list[Finding] = []
    lines = _lines(path) if comments else None
    for number, (column, comment) in sorted(comments.items()):
        match = _DIRECTIVE.search(comment)
        lookalike = _LOOKALIKE.search(comment) is not None
        if match is None and not lookalike:
            continue
        verb = match.group("verb").lower() if match else ""
        codes_text = match.group("codes") if match else None
        if match is not None and verb != "ignore" and codes_text is None and not lookalike:
            continue  # prose that happens to say "agentundo:", not a directive
        text = lines[number - 1] if lines and number <= len(lines) else ""
        unreadable = _unreadable(match, verb, codes_text)
        if unreadable is not None:
            problems.append(_finding(path, number, column, INVALID, unreadable, _WRITE))
            continue
        assert match is not None
        named = [c.strip().upper() for c in (codes_text or "").split(",") if c.strip()]
        codes = tuple(dict.fromkeys(named))
        if not codes:
            problems.append(
                _finding(
                    path,
                    number,
                    column,
                    INVALID,
                    "suppression names no code",
                    "name the codes it suppresses: '# agentundo: ignore[AU101] reason'",
                )
            )
            continue
        problems.extend(
            _finding(
                path,
                number,
                column,
                UNUSED,
                f"suppression names {code} more than once; only one suppresses anything",
                f"write {code} once",
            )
            for code in codes
            if named.count(code) > 1
        )
        bad = [c for c in codes if not _CODE.match(c) or not known(c)]
        if bad:
            problems.append(
                _finding(
                    path,
                    number,
                    column,
                    INVALID,
                    f"suppression names unknown code {', '.join(repr(c) for c in bad)}",
                    "'agentundo rules' lists every code",
                )
            )
            codes = tuple(c for c in codes if c not in bad)
            if not codes:
                continue
        reason = match.group("reason").strip(_REASON_LEAD)
        covers = {number}
        if lines is not None and not _is_content(text[: column - 1]):
            following = next(
                (n for n in range(number + 1, len(lines) + 1) if _is_content(lines[n - 1])), None
            )
            if following is not None:
                covers.add(following)
        elif lines is None:
            covers.add(number + 1)
        directives.append(Directive(path, number, column, codes, reason, frozenset(covers)))
    return directives, problems


def apply(
    findings: Iterable[Finding],
    files: Iterable[LoadedFile],
    *,
    active: Callable[[str, str], bool],
    known: Callable[[str], bool] | None = None,
) -> Outcome:
    """Drop suppressed findings; add AU901-AU903 findings where ``active(path, code)``.

    ``active`` says whether a code ran for a file (selected, not ignored for it): a
    suppression of a code that did not run is not reported as unused.
    """
    if known is None:
        from agentundo.lint.registry import all_checks

        registered = all_checks()
        known = registered.__contains__
    by_path: dict[str, list[Directive]] = {}
    problems: list[Finding] = []
    for file in files:
        if not file.doc.comments:
            continue
        directives, invalid = parse(file.path, file.doc.comments, known)
        by_path[file.path] = directives
        problems.extend(invalid)
    if not by_path:
        return Outcome(list(findings), 0)
    used: set[tuple[Directive, str]] = set()
    kept: list[Finding] = []
    suppressed = 0
    for finding in findings:
        directive = next(
            (
                d
                for d in by_path.get(finding.path, ())
                if finding.line in d.covers and finding.code in d.codes
            ),
            None,
        )
        if directive is None:
            kept.append(finding)
        else:
            used.add((directive, finding.code))
            suppressed += 1
    for directives in by_path.values():
        for d in directives:
            if not d.reason:
                problems.append(
                    _finding(
                        d.path,
                        d.line,
                        d.column,
                        WITHOUT_REASON,
                        f"suppression of {', '.join(d.codes)} gives no reason",
                        "say why after the brackets: '# agentundo: ignore[CODE] reason'",
                    )
                )
            problems.extend(
                _finding(
                    d.path,
                    d.line,
                    d.column,
                    UNUSED,
                    f"suppression of {code} suppresses nothing on this line or the next",
                    "remove it, or move it to the line the finding is reported on",
                )
                for code in d.codes
                if (d, code) not in used and active(d.path, code)
            )
    kept.extend(p for p in problems if active(p.path, p.code))
    return Outcome(kept, suppressed)
