"""The guesses from names and descriptions, measured on real servers' tool lists.

tests/fixtures/mcp/real/ holds the tools/list answers of 13 real MCP servers (see its
README.md) and judgements.yaml, a reviewed judgement of every guess made on them. This
test recomputes the guesses: a rule change that adds, drops or alters one fails here
until judgements.yaml is reviewed again, and the figures in docs/mcp-import.md are the
ones asserted below.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agentundo.catalog.mcp_tools import Guess, guess_all, read_tools_file
from agentundo.model.common import Rollback

REAL = Path(__file__).parents[1] / "fixtures" / "mcp" / "real"
SERVERS = sorted(p.stem for p in REAL.glob("*.json"))
JUDGEMENTS: dict[str, dict[str, dict[str, object]]] = yaml.safe_load(
    (REAL / "judgements.yaml").read_text(encoding="utf-8")
)


def _kinds(g: Guess) -> list[str]:
    """The guesses made for one tool beyond its hints, as judgements.yaml writes them."""
    kinds = []
    if any(r.startswith("guess: read-only") for r in g.reasons):
        kinds.append("read-only")
    if any(r.startswith("guess: destructiveHint=false") for r in g.reasons):
        kinds.append("additive")
    if g.compensation is not None:
        kinds.append(f"inverse {g.compensation.topic}")
    return kinds


def _guesses(server: str) -> list[Guess]:
    return guess_all(read_tools_file(REAL / f"{server}.json"))


def test_thirteen_servers_are_measured() -> None:
    assert len(SERVERS) == 13
    assert set(JUDGEMENTS) <= set(SERVERS)


@pytest.mark.parametrize("server", SERVERS)
def test_every_guess_has_a_reviewed_judgement(server: str) -> None:
    made = {g.tool.name: _kinds(g) for g in _guesses(server) if _kinds(g)}
    judged = {name: entry["guesses"] for name, entry in (JUDGEMENTS.get(server) or {}).items()}
    assert made == judged
    assert all(
        isinstance(e["right"], bool) and e["why"] for e in (JUDGEMENTS.get(server) or {}).values()
    )


@pytest.mark.parametrize("server", SERVERS)
def test_every_guess_is_marked_for_review(server: str) -> None:
    for g in _guesses(server):
        if _kinds(g):
            assert g.needs_review, g.tool.name


def test_the_figures_in_the_docs() -> None:
    """docs/mcp-import.md quotes these: tools, tools with a guess, guesses judged right."""
    tools = sum(len(read_tools_file(REAL / f"{s}.json")) for s in SERVERS)
    entries = [e for server in JUDGEMENTS.values() for e in server.values()]
    right = [e for e in entries if e["right"]]
    assert (tools, len(entries), len(right)) == (272, 54, 53)
    by_kind: dict[str, list[int]] = {}
    for e in entries:
        for kind in e["guesses"]:  # type: ignore[attr-defined]
            counts = by_kind.setdefault(str(kind).split()[0], [0, 0])
            counts[0] += 1
            counts[1] += bool(e["right"])
    assert by_kind == {"read-only": [22, 22], "additive": [22, 22], "inverse": [13, 12]}


@pytest.mark.parametrize(
    ("server", "irreversible"),
    [("github-official", 22), ("github-reference", 5), ("slack", 0), ("postgres", 0)],
)
def test_fewer_tools_are_irreversible_than_with_hints_alone(server: str, irreversible: int) -> None:
    """With hints alone: github-official 35 of its 59 write tools, the others all theirs."""
    guesses = _guesses(server)
    assert sum(g.rollback is Rollback.IRREVERSIBLE for g in guesses) == irreversible


def test_the_pairs_the_issue_names_are_proposed() -> None:
    official = {g.tool.name: g for g in _guesses("github-official")}
    star = official["star_repository"].compensation
    assert star is not None
    assert (star.topic, star.params) == (
        "unstar_repository",
        {"owner": "{params.owner}", "repo": "{params.repo}"},
    )
    sub = official["add_sub_issue"].compensation
    assert sub is not None and sub.topic == "remove_sub_issue"
    assert set(sub.params) == {"owner", "repo", "issue_number", "sub_issue_id"}
    memory = {g.tool.name: g for g in _guesses("memory")}
    entities = memory["create_entities"]
    assert entities.compensation is not None
    assert entities.compensation.topic == "delete_entities"
    assert any("also requires entityNames" in r for r in entities.reasons)
