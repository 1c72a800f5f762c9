"""Feeding one source's items to a timeline view, and to a verifier when verifying."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, TextIO

from agentundo.evidence.reader import BadLine, Item

if TYPE_CHECKING:
    from agentundo.evidence.problems import Problem
    from agentundo.evidence.verify import Verifier
    from agentundo.evidence.verify_chain import ChainHead
    from agentundo.timeline.runs import Timeline


def feed(
    items: Iterable[Item], view: Timeline, verifier: Verifier | None, *, stderr: TextIO
) -> None:
    """Stream one source into the view, and into the verifier when verifying.

    Bad lines go to the verifier (which reports them) or, without one, to a warning.
    """
    for item in items:
        if verifier is not None:
            verifier.feed(item)
        if isinstance(item, BadLine):
            if verifier is None:
                warn(item, stderr)
            continue
        view.feed(item)


def warn(item: BadLine, stderr: TextIO) -> None:
    print(f"{item.path}:{item.line}:{item.column}: warning: {item.message}", file=stderr)


def print_problems(
    name: str, problems: Sequence[Problem], chains: Sequence[ChainHead], stderr: TextIO
) -> None:
    """A source's verification problems and chain heads, one a line (where stdout is data)."""
    for problem in problems:
        print(problem.describe(), file=stderr)
    for chain in chains:
        print(f"{name}: {chain.describe()}", file=stderr)
