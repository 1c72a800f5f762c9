"""Inline suppressions: handled by the engine, with findings of their own (AU901-AU903)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from agentundo.lint.engine import PerFileIgnores, lint_paths
from agentundo.lint.suppress import parse

POLICY = """
version: v1
rules:
  - id: allow-compensations
    when: {is_compensation: true}
    decision: allow
"""


def _lint(tmp_path: Path, catalog: str, **options: object) -> list[tuple[str, int, int]]:
    (tmp_path / "catalog.yaml").write_text(textwrap.dedent(catalog).lstrip("\n"), "utf-8")
    (tmp_path / "policy.yaml").write_text(textwrap.dedent(POLICY).lstrip("\n"), "utf-8")
    result = lint_paths([str(tmp_path)], **options)  # type: ignore[arg-type]
    assert not result.input_errors
    return [(f.code, f.line, f.column) for f in result.findings]


BARE = """
version: v1
topics:
  email.send:
    side_effect: true
    risk: low
    idempotency_key: "{run_id}:{step_id}"
"""


def test_unsuppressed_finding(tmp_path: Path) -> None:
    assert _lint(tmp_path, BARE) == [("AU101", 3, 3)]


def test_comment_on_the_line_suppresses(tmp_path: Path) -> None:
    text = BARE.replace("email.send:", "email.send:  # agentundo: ignore[AU101] legacy, see T-12")
    assert _lint(tmp_path, text) == []
    result = lint_paths([str(tmp_path)])
    assert result.suppressed == 1


def test_comment_on_the_line_above_suppresses(tmp_path: Path) -> None:
    text = BARE.replace(
        "  email.send:", "  # agentundo: ignore[AU101] legacy, see T-12\n\n  email.send:"
    )
    assert _lint(tmp_path, text) == []


def test_trailing_comment_does_not_reach_the_next_line(tmp_path: Path) -> None:
    text = BARE.replace("topics:", "topics:  # agentundo: ignore[AU101] wrong line")
    assert _lint(tmp_path, text) == [("AU902", 2, 10), ("AU101", 3, 3)]


def test_several_codes_and_a_reason_after_a_dash(tmp_path: Path) -> None:
    text = BARE.replace(
        "email.send:", "email.send:  # agentundo: ignore[AU101, AU201] - legacy"
    ).replace('    idempotency_key: "{run_id}:{step_id}"\n', "")
    assert _lint(tmp_path, text) == []


def test_without_reason_still_suppresses_but_is_reported(tmp_path: Path) -> None:
    text = BARE.replace("email.send:", "email.send:  # agentundo: ignore[AU101]")
    assert _lint(tmp_path, text) == [("AU901", 3, 16)]


def test_unused_suppression(tmp_path: Path) -> None:
    text = BARE.replace("email.send:", "email.send:  # agentundo: ignore[AU101,AU102] legacy")
    assert _lint(tmp_path, text) == [("AU902", 3, 16)]


def test_unused_is_not_reported_for_codes_that_did_not_run(tmp_path: Path) -> None:
    text = BARE.replace("email.send:", "email.send:  # agentundo: ignore[AU201] legacy")
    assert _lint(tmp_path, text, select=("AU1",)) == [("AU101", 3, 3)]
    per_file = PerFileIgnores([("catalog.yaml", ["AU2"])], root=str(tmp_path))
    assert _lint(tmp_path, text, per_file_ignores=per_file) == [("AU101", 3, 3)]


def test_suppression_findings_follow_select_and_ignore(tmp_path: Path) -> None:
    text = BARE.replace("email.send:", "email.send:  # agentundo: ignore[AU101]")
    assert _lint(tmp_path, text, ignore=("AU9",)) == []


def test_invalid_directives(tmp_path: Path) -> None:
    text = (
        BARE.replace("version: v1", "version: v1  # agentundo: ignore legacy")
        .replace("topics:", "topics:  # agentundo: ignroe[AU101] typo")
        .replace("side_effect: true", "side_effect: true  # agentundo: ignore[AU1O1] typo")
    )
    assert _lint(tmp_path, text) == [
        ("AU903", 1, 14),
        ("AU903", 2, 10),
        ("AU101", 3, 3),
        ("AU903", 4, 24),
    ]


def test_prose_mentioning_agentundo_is_not_a_directive(tmp_path: Path) -> None:
    text = BARE.replace("version: v1", "# checked by agentundo: see docs/ci.md\nversion: v1")
    assert _lint(tmp_path, text) == [("AU101", 4, 3)]


def test_per_file_ignores_by_glob(tmp_path: Path) -> None:
    per_file = PerFileIgnores([("*.yaml", ["AU1"])], root=str(tmp_path))
    assert _lint(tmp_path, BARE, per_file_ignores=per_file) == []
    other = PerFileIgnores([("legacy/*", ["AU1"])], root=str(tmp_path))
    assert _lint(tmp_path, BARE, per_file_ignores=other) == [("AU101", 3, 3)]


def test_parse_reports_lines_covered(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("a: 1\n# agentundo: ignore[AU101] why\n\n# other comment\nb: 2\n", "utf-8")
    directives, problems = parse(
        str(path), {2: (1, "agentundo: ignore[AU101] why")}, lambda c: True
    )
    assert problems == []
    assert [(d.line, d.column, d.codes, d.reason, sorted(d.covers)) for d in directives] == [
        (2, 1, ("AU101",), "why", [2, 5])
    ]


def test_marker_verb_and_codes_are_read_in_any_case(tmp_path: Path) -> None:
    for comment in (
        "# AGENTUNDO: IGNORE[AU101] legacy",
        "# agentundo:ignore[au101] legacy",
        "# Agentundo : Ignore [Au101] legacy",
    ):
        text = BARE.replace("email.send:", f"email.send:  {comment}")
        assert _lint(tmp_path, text) == [], comment


def test_a_code_named_twice_is_reported_as_unused(tmp_path: Path) -> None:
    text = BARE.replace("email.send:", "email.send:  # agentundo: ignore[AU101, au101] legacy")
    assert _lint(tmp_path, text) == [("AU902", 3, 16)]
    result = lint_paths([str(tmp_path)])
    assert [f.message for f in result.findings] == [
        "suppression names AU101 more than once; only one suppresses anything"
    ]


def test_two_suppressions_of_one_finding_report_the_second(tmp_path: Path) -> None:
    text = BARE.replace(
        "  email.send:",
        "  # agentundo: ignore[AU101] legacy\n  email.send:  # agentundo: ignore[AU101] again",
    )
    assert _lint(tmp_path, text) == [("AU902", 4, 16)]


def test_comments_that_look_like_suppressions_are_findings(tmp_path: Path) -> None:
    text = (
        BARE.replace("version: v1", "version: v1  # agentundo ignore[AU101] no colon")
        .replace("topics:", "topics:  # AGENTUNDO-IGNORE[AU101] dash")
        .replace("email.send:", "email.send:  # agentundo: ignore[AU101 never closed")
    )
    assert _lint(tmp_path, text) == [
        ("AU903", 1, 14),
        ("AU903", 2, 10),
        ("AU101", 3, 3),
        ("AU903", 3, 16),
    ]
    messages = [f.message for f in lint_paths([str(tmp_path)]).findings if f.code == "AU903"]
    assert messages == [
        "malformed suppression: it cannot be read, so it suppresses nothing",
        "malformed suppression: it cannot be read, so it suppresses nothing",
        "the '[' of this suppression is never closed",
    ]


def test_prose_in_any_case_is_not_a_directive(tmp_path: Path) -> None:
    text = BARE.replace(
        "version: v1",
        "# Checked by AGENTUNDO: see docs/ci.md; agentundo ignores nothing\nversion: v1",
    )
    assert _lint(tmp_path, text) == [("AU101", 4, 3)]


def test_suppression_text_inside_a_string_is_not_a_comment(tmp_path: Path) -> None:
    quoted = BARE.replace(
        "    risk: low\n",
        '    risk: low\n    description: "# agentundo: ignore[AU101] not a comment"\n',
    )
    assert _lint(tmp_path, quoted) == [("AU101", 3, 3)]
    single = BARE.replace("email.send:", "email.send: # agentundo: ignore[AU101] real, after 'x #'")
    assert _lint(tmp_path, single) == []


def test_suppression_text_inside_a_block_scalar_is_not_a_comment(tmp_path: Path) -> None:
    block = BARE.replace(
        "    risk: low\n",
        "    risk: low\n    description: |\n      # agentundo: ignore[AU101] quoted docs\n",
    )
    assert _lint(tmp_path, block) == [("AU101", 3, 3)]


def test_a_comment_after_a_string_holding_a_hash_is_found(tmp_path: Path) -> None:
    text = BARE.replace(
        "  email.send:\n",
        '  email.send:\n    description: "ticket #12"  # agentundo: ignore[AU101] reason\n',
    )
    assert _lint(tmp_path, text) == [("AU101", 3, 3), ("AU902", 4, 32)]
