"""Guesses from tool names, descriptions and input schemas (agentundo.catalog.mcp_names)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentundo.catalog.mcp_names import (
    additive_guess,
    find_inverse,
    map_params,
    read_only_guess,
    verb,
    word_index,
    words,
)
from agentundo.catalog.mcp_tools import Tool, guess, guess_all
from agentundo.catalog.skeleton import merge
from agentundo.load.files import build
from agentundo.load.yamlpos import parse
from agentundo.model.common import Risk, Rollback


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("getPullRequest", ["get", "pull", "request"]),
        ("get_pull-request", ["get", "pull", "request"]),
        ("API-post-search", ["api", "post", "search"]),
        ("listHTTPRoutes2", ["list", "http", "routes", "2"]),
    ],
)
def test_words(name: str, expected: list[str]) -> None:
    assert words(name) == expected


@pytest.mark.parametrize(
    ("name", "found"),
    [
        ("get_pull_request", "get"),  # the first word
        ("pull_request_read", "read"),  # else the last
        ("git_log", "log"),
        ("git_create_branch", "create"),  # else the first known one between
        ("mark_all_notifications_read", "mark"),
        ("port_forward", None),
    ],
)
def test_verb(name: str, found: str | None) -> None:
    known = verb(name)
    assert (known[1] if known else None) == found


@pytest.mark.parametrize(
    ("name", "description", "why"),
    [
        ("list_issues", None, "its name's verb 'list' reads"),
        ("issue_read", None, "its name's verb 'read' reads"),
        ("query", "Run a read-only SQL query", "its description says it is read-only"),
        ("lookup", "Notion | Retrieve a page", "its name's verb 'lookup' reads"),
        ("page", "Notion | Retrieve a page", "its description starts with 'Retrieve'"),
        ("get_or_create_user", "Get a user, creating it if needed.", None),  # 'create' vetoes
        ("run_sql", "Run SQL. This is not read-only.", None),
        ("delete_rows", "Runs in a read-only transaction... not", None),
        ("launch", "Launches the rocket.", None),
        ("mark_all_notifications_read", None, None),
    ],
)
def test_read_only_guess(name: str, description: str | None, why: str | None) -> None:
    assert read_only_guess(name, description) == why


@pytest.mark.parametrize(
    ("name", "verb_"),
    [("create_issue", "create"), ("star_repository", "star"), ("create_or_update_file", None)],
)
def test_additive_guess(name: str, verb_: str | None) -> None:
    assert additive_guess(name) == verb_


@pytest.mark.parametrize(
    ("name", "others", "found"),
    [
        ("star_repository", ["unstar_repository"], ("unstar_repository", "star", "unstar")),
        ("createIssue", ["deleteIssue"], ("deleteIssue", "create", "delete")),
        ("kubectl_create", ["kubectl_delete"], ("kubectl_delete", "create", "delete")),
        ("close_issue", ["open_issue", "reopen_issue"], ("reopen_issue", "close", "reopen")),
        ("delete_issue", ["create_issue"], None),  # a deletion has no inverse
        ("create_issue", ["delete_issues"], None),  # a different noun
    ],
)
def test_find_inverse(name: str, others: list[str], found: tuple[str, str, str] | None) -> None:
    assert find_inverse(name, word_index([name, *others])) == found


def _schema(*names: str, required: tuple[str, ...] = ()) -> dict[str, object]:
    return {
        "type": "object",
        "properties": {n: {"type": "string"} for n in names},
        "required": list(required),
    }


def test_map_params_by_name_from_the_answer_and_missing() -> None:
    mapped = map_params(
        _schema("owner", "repo", "title"),
        _schema("owner", "repo", "issue_id", "reason", "label", required=("issue_id", "reason")),
    )
    assert mapped.params == {
        "owner": "{params.owner}",
        "repo": "{params.repo}",
        "issue_id": "{response.issue_id}",
    }
    assert (mapped.from_response, mapped.missing) == (("issue_id",), ("reason",))


def test_map_params_reads_the_output_schema_and_survives_junk() -> None:
    mapped = map_params(_schema("a"), _schema("a", "number"), _schema("number"))
    assert mapped.params == {"a": "{params.a}", "number": "{response.number}"}
    assert map_params("junk", {"properties": []}, None).params == {}
    odd = map_params(_schema("x y"), _schema("x y", required=("x y",)))
    assert (odd.params, odd.missing) == ({}, ("x y",))  # not a template name: named, not mapped


def test_a_guessed_read_only_tool_is_marked_for_review() -> None:
    g = guess(Tool(name="list_things", description=None, hints={}))
    assert (g.side_effect, g.rollback, g.risk, g.needs_review) == (False, None, Risk.LOW, True)


def test_an_explicit_read_only_false_is_not_overruled() -> None:
    g = guess(Tool(name="list_things", description=None, hints={"readOnlyHint": False}))
    assert g.side_effect is True


def test_an_inverse_makes_a_destructive_tool_compensatable() -> None:
    tools = [
        Tool(name="lock_door", description=None, hints={}, input_schema=_schema("door")),
        Tool(name="unlock_door", description=None, hints={}, input_schema=_schema("door")),
    ]
    lock, unlock = guess_all(tools, "home.")
    assert lock.compensation is not None
    assert (lock.rollback, lock.compensation.topic) == (Rollback.COMPENSATABLE, "home.unlock_door")
    assert lock.compensation.params == {"door": "{params.door}"}
    assert lock.risk is Risk.HIGH  # 'lock' adds: destructiveHint guessed false
    assert unlock.compensation is not None and unlock.compensation.topic == "home.lock_door"
    assert unlock.risk is Risk.CRITICAL  # no hints, no creating verb: the MCP defaults


def test_a_read_only_inverse_is_not_proposed() -> None:
    tools = [
        Tool(name="open_valve", description=None, hints={}),
        Tool(name="close_valve", description=None, hints={"readOnlyHint": True}),
    ]
    assert guess_all(tools)[0].compensation is None


_WORDS = st.sampled_from(
    ["create", "delete", "add", "remove", "star", "unstar", "list", "get", "issue", "repo",
     "lock", "unlock", "Thing", "x y", "read-only", "close", "reopen", "-"]
)  # fmt: skip
_SCHEMAS = st.one_of(
    st.none(),
    st.just("junk"),
    st.builds(
        lambda names, required: {"properties": {n: {} for n in names}, "required": required},
        st.lists(st.sampled_from(["id", "owner", "repo", "x y", "issue_id", "{a}"]), max_size=4),
        st.lists(st.sampled_from(["id", "owner", "repo", "x y", "note"]), max_size=3),
    ),
)
_TOOLS = st.lists(
    st.builds(
        lambda parts, description, read, schema: Tool(
            name="_".join(parts),
            description=description,
            hints={} if read is None else {"readOnlyHint": read},
            input_schema=schema,
        ),
        st.lists(_WORDS, min_size=1, max_size=3),
        st.one_of(st.none(), st.sampled_from(["Get it.", "A read-only query.", "Do it."])),
        st.one_of(st.none(), st.booleans()),
        _SCHEMAS,
    ),
    max_size=8,
    unique_by=lambda tool: tool.name,
)


@settings(max_examples=150, deadline=None)
@given(_TOOLS, st.sampled_from(["", "p."]))
def test_any_tool_list_makes_a_catalog_that_loads(tools: list[Tool], prefix: str) -> None:
    """Whatever the names and schemas: the catalog loads, every proposed compensation is
    a topic of the catalog and not its own, and every guess is marked for review."""
    guesses = guess_all(tools, prefix)
    text, _ = merge(None, guesses, source="s")
    catalog = build(parse(text, "c.yaml"), "catalog").model
    for name, topic in catalog.topics.items():
        if topic.compensation is not None:
            assert topic.compensation.topic in catalog.topics
            assert topic.compensation.topic != name
            assert topic.needs_review
            assert topic.rollback == "compensatable"
    for g in guesses:
        assert g.needs_review or g.tool.hints.get("readOnlyHint") is True
