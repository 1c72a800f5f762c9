"""MCP tools/list → catalog: parsing, the guesses from hints, and merging into a catalog."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from agentundo.catalog.mcp_tools import (
    Tool,
    assign_topics,
    guess,
    guess_all,
    parse_tools,
    read_tools_file,
    topic_name,
)
from agentundo.catalog.skeleton import merge
from agentundo.errors import InputError
from agentundo.lint.engine import lint_paths
from agentundo.load.files import load_file
from agentundo.model.common import Risk, Rollback

FIXTURES = Path(__file__).parents[1] / "fixtures" / "mcp"


def _tool(**hints: bool) -> Tool:
    return Tool(name="t", description="A tool.", hints=dict(hints))


@pytest.mark.parametrize(
    ("hints", "side_effect", "rollback", "risk"),
    [
        ({"readOnlyHint": True}, False, None, Risk.LOW),
        ({"readOnlyHint": True, "destructiveHint": True}, False, None, Risk.LOW),
        ({}, True, Rollback.IRREVERSIBLE, Risk.CRITICAL),  # MCP defaults: the worst case
        ({"destructiveHint": True, "openWorldHint": False}, True, Rollback.IRREVERSIBLE, Risk.HIGH),
        ({"destructiveHint": False}, True, Rollback.COMPENSATABLE, Risk.HIGH),
        (
            {"destructiveHint": False, "openWorldHint": False},
            True,
            Rollback.COMPENSATABLE,
            Risk.MEDIUM,
        ),
        (
            {"readOnlyHint": False, "destructiveHint": False, "idempotentHint": True},
            True,
            Rollback.COMPENSATABLE,
            Risk.HIGH,
        ),
    ],
)
def test_guess_from_hints(
    hints: dict[str, bool], side_effect: bool, rollback: Rollback | None, risk: Risk
) -> None:
    g = guess(_tool(**hints))
    assert (g.side_effect, g.rollback, g.risk) == (side_effect, rollback, risk)
    assert g.needs_review is side_effect


def test_parse_accepts_result_response_and_bare_list() -> None:
    tools = [{"name": "a", "annotations": {"readOnlyHint": True, "title": "A"}}, {"name": "b"}]
    for data in (
        {"tools": tools},
        {"jsonrpc": "2.0", "id": 1, "result": {"tools": tools}},
        tools,
    ):
        parsed = parse_tools(data, "x.json")
        assert [(t.name, t.hints) for t in parsed] == [("a", {"readOnlyHint": True}), ("b", {})]
        assert parsed[0].description == "A"  # the title when there is no description


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"jsonrpc": "2.0", "id": 1, "error": {"code": -1, "message": "no"}}, "JSON-RPC error"),
        ({"items": []}, "no 'tools' in this JSON"),
        ("tools", "expected a list of tools"),
        ([{"description": "nameless"}], "tools[0]: a tool must be an object with a 'name'"),
        ([{"name": "x", "annotations": []}], "'annotations' must be an object"),
        ([{"name": "n" * 257}], "tools[0]: a name of 257 characters is too long"),
    ],
)
def test_parse_errors(data: object, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_tools(data, "x.json")


def test_read_non_json_file_points_at_the_position() -> None:
    with pytest.raises(InputError) as caught:
        read_tools_file(FIXTURES / "not_json.json")
    assert caught.value.position.line == 1
    assert "not JSON" in caught.value.message


def test_a_byte_order_mark_is_skipped_and_latin_1_is_named(tmp_path: Path) -> None:
    text = (FIXTURES / "tools_list.json").read_bytes()
    with_bom = tmp_path / "bom.json"
    with_bom.write_bytes(b"\xef\xbb\xbf" + text)
    assert read_tools_file(with_bom) == read_tools_file(FIXTURES / "tools_list.json")
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"tools": [{"name": "caf\xe9"}]}')
    with pytest.raises(InputError) as caught:
        read_tools_file(latin)
    assert caught.value.message == "file is not valid UTF-8 (byte 0xe9 at offset 24)"


def test_topic_names_are_made_valid() -> None:
    assert topic_name("create issue!", "gh.") == "gh.create_issue_"
    assert topic_name("-x") == "_-x"


def test_new_catalog_loads_and_lint_fails_only_on_review_marks(tmp_path: Path) -> None:
    tools = read_tools_file(FIXTURES / "tools_list.json")
    text, report = merge(None, [guess(t) for t in tools], source="fixture")
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    catalog = load_file(path).model
    assert set(catalog.topics) == {t.name for t in tools}
    assert report.needs_review == ("create_issue", "set_label", "delete_repository", "run_script")
    result = lint_paths([str(path)], envs=("production",))
    flagged = {f.message.split("'")[1] for f in result.findings if f.code == "AU109"}
    assert flagged == set(report.needs_review)
    assert result.exit_code() == 1


def test_an_empty_tools_list_is_an_empty_catalog() -> None:
    text, report = merge(None, [], source="empty")
    assert text.endswith("topics: {}\n")
    assert report.added == ()


EXISTING = textwrap.dedent(
    """\
    # Our catalog. Hand-written, keep this comment.
    version: v1
    kind: catalog
    topics:
      create_issue:   # reviewed by ana
        side_effect: true
        rollback: compensatable
        risk: low
        idempotency_key: "{run_id}:{step_id}"
        compensation: {topic: close_issue}

      # a trailing comment inside topics
    description: tickets
    """
)


def test_merge_keeps_every_existing_byte_and_adds_new_tools() -> None:
    tools = read_tools_file(FIXTURES / "tools_list_more.json")
    text, report = merge(EXISTING, [guess(t) for t in tools], source="more", path="c.yaml")
    assert report.added == ("search_issues", "close_issue")
    assert report.kept == ("create_issue",)
    common = next(i for i, (a, b) in enumerate(zip(text, EXISTING, strict=False)) if a != b)
    inserted = text[common : len(text) - len(EXISTING) + common]
    assert text == EXISTING[:common] + inserted + EXISTING[common:]  # the old text is intact
    assert "search_issues:" in inserted and "close_issue:" in inserted
    assert text.index("close_issue:\n") < text.index("description: tickets")
    assert "    risk: low\n" in text  # the person's risk, not the server's new hint


def test_merge_again_changes_nothing() -> None:
    tools = [guess(t) for t in read_tools_file(FIXTURES / "tools_list_more.json")]
    once, _ = merge(EXISTING, tools, source="more")
    twice, report = merge(once, tools, source="more")
    assert twice == once
    assert report.added == ()


@pytest.mark.parametrize(
    "existing",
    [
        "version: v1\nkind: catalog\n",
        "version: v1\nkind: catalog\ntopics: {}\n",
    ],
)
def test_merge_into_catalogs_without_topics(existing: str, tmp_path: Path) -> None:
    text, report = merge(existing, [guess(_tool(readOnlyHint=True))], source="s")
    assert report.added == ("t",)
    path = tmp_path / "c.yaml"
    path.write_text(text)
    assert set(load_file(path).model.topics) == {"t"}


def test_merge_refuses_flow_style_topics() -> None:
    existing = "version: v1\ntopics: {a: {side_effect: false}}\n"
    with pytest.raises(InputError, match="flow style"):
        merge(existing, [guess(_tool())], source="s", path="c.yaml")


def test_merge_reports_a_broken_existing_catalog() -> None:
    with pytest.raises(InputError):
        merge("version: v1\ntopics: [\n", [guess(_tool())], source="s", path="c.yaml")


def test_duplicate_tools_count_once() -> None:
    text, report = merge(None, [guess(_tool()), guess(_tool(readOnlyHint=True))], source="s")
    assert report.duplicates == ("t",)
    assert text.count("\n  t:\n") == 1


def test_odd_names_and_descriptions_are_quoted(tmp_path: Path) -> None:
    tool = Tool(name="yes", description='say "yes": #1\nsecond line', hints={})
    text, _ = merge(None, [guess(tool)], source="s")
    path = tmp_path / "c.yaml"
    path.write_text(text)
    topic = load_file(path).model.topics["yes"]
    assert topic.description == 'say "yes": #1'


def _named(name: str, **hints: bool) -> Tool:
    return Tool(name=name, description=None, hints=dict(hints))


def test_names_that_make_the_same_topic_keep_every_tool() -> None:
    read = _named("delete_user", readOnlyHint=True)
    destructive = _named("delete user")
    for order in ([read, destructive], [destructive, read]):
        guesses = {g.tool.name: g for g in guess_all(order)}
        assert guesses["delete_user"].topic == "delete_user"  # needs no change: keeps it
        assert guesses["delete user"].topic == "delete_user_2"
        assert guesses["delete user"].rollback is Rollback.IRREVERSIBLE
        text, report = merge(None, list(guesses.values()), source="s")
        assert set(report.added) == {"delete_user", "delete_user_2"}
        assert report.duplicates == ()
        assert report.warnings == (
            "MCP tools 'delete user' and 'delete_user' both make topic 'delete_user': "
            "'delete user' is imported as 'delete_user_2'",
        )
        assert "  # warning: MCP tools 'delete user' and 'delete_user'" in text


def test_a_renamed_topic_skips_names_other_tools_have() -> None:
    topics = assign_topics(["a b", "a_b_2", "a!b", "a_b"], "gh.")
    assert topics == {"a_b": "gh.a_b", "a_b_2": "gh.a_b_2", "a b": "gh.a_b_3", "a!b": "gh.a_b_4"}


def test_hints_that_are_not_booleans_count_as_unknown() -> None:
    data = [
        {"name": "a", "annotations": {"readOnlyHint": "yes"}},
        {"name": "b", "annotations": {"readOnlyHint": False, "destructiveHint": 0}},
        {"name": "c", "annotations": {"readOnlyHint": None, "destructiveHint": False}},
    ]
    a, b, c = (guess(t) for t in parse_tools(data, "x.json"))
    assert (a.side_effect, a.rollback, a.risk) == (True, Rollback.IRREVERSIBLE, Risk.CRITICAL)
    assert (b.side_effect, b.rollback, b.risk) == (True, Rollback.IRREVERSIBLE, Risk.CRITICAL)
    assert a.warnings == (
        "MCP tool 'a': readOnlyHint is \"yes\", not true or false: treated as unknown, so "
        "the MCP default readOnlyHint=false applies",
    )
    assert b.warnings[0].startswith("MCP tool 'b': destructiveHint is 0, not true or false")
    assert (c.rollback, c.warnings) == (Rollback.COMPENSATABLE, ())  # null: absent
    text, report = merge(None, [a, b, c], source="s")
    assert len(report.warnings) == 2
    assert "  # MCP tool 'a': readOnlyHint=\"yes\" (not true or false)\n" in text


def test_one_name_listed_with_different_annotations_is_an_error() -> None:
    data = [{"name": "x", "annotations": {"readOnlyHint": True}}, {"name": "x"}]
    with pytest.raises(InputError, match=r"tools\[0\] and tools\[1\] are both named 'x'"):
        parse_tools(data, "x.json")
    same = parse_tools([{"name": "x"}, {"name": "x", "description": "again"}], "x.json")
    assert merge(None, guess_all(same), source="s")[1].duplicates == ("x",)


def test_duplicate_keys_in_the_json_file_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "tools.json"
    path.write_text(
        '{"tools": [{"name": "a", "annotations": {"readOnlyHint": false, "readOnlyHint": true}}]}'
    )
    with pytest.raises(InputError) as caught:
        read_tools_file(path)
    assert caught.value.message == (
        "duplicate key 'readOnlyHint' in tools[0].annotations: a JSON object must give each "
        "key once"
    )
    path.write_text('{"tools": [], "tools": [{"name": "a"}]}')
    with pytest.raises(InputError, match="duplicate key 'tools':"):
        read_tools_file(path)


def test_a_line_break_in_a_tool_name_cannot_write_yaml(tmp_path: Path) -> None:
    evil = Tool(name="x\n  evil:\n    side_effect: false\n#", description=None, hints={})
    odd = Tool(name="y\u2028z\x85", description=None, hints={})
    text, _ = merge(None, guess_all([evil, odd]), source="s")
    path = tmp_path / "c.yaml"
    path.write_text(text)
    topics = load_file(path).model.topics
    assert set(topics) == {"x___evil:_____side_effect:_false__", "y_z_"}
    assert all(t.needs_review for t in topics.values())
    assert "# MCP tool 'x\\n  evil:\\n    side_effect: false\\n#'" in text
