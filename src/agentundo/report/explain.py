"""Render a policy explanation: text for people (rich) and JSON for tools."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, TextIO

from agentundo.policy.explain import Explanation, Status, summary, symbol

if TYPE_CHECKING:
    from rich.console import Console

_STYLE = {
    Status.DECIDED: "bold",
    Status.OVERRIDDEN: "yellow",
    Status.NOT_MATCHED: "dim",
    Status.UNDECIDED: "cyan",
}


def render_json(explanation: Explanation, stream: TextIO) -> None:
    json.dump(explanation.as_dict(), stream, indent=2)
    stream.write("\n")


def render_text(explanation: Explanation, console: Console) -> None:
    from rich.markup import escape

    ctx = explanation.context
    console.print(f"[bold]{escape(summary(explanation))}[/]", soft_wrap=True)
    facts = (
        f"side_effect={str(ctx.side_effect).lower()} risk={ctx.risk} "
        f"rollback={ctx.rollback or 'none'} rollback_supported={str(ctx.rollback_supported).lower()} "
        f"compensation_declared={str(ctx.compensation_declared).lower()} "
        f"approval_present={str(ctx.approval_present).lower()} "
        f"is_compensation={str(ctx.is_compensation).lower()}"
    )
    if ctx.workflow:
        facts += f" workflow={ctx.workflow}"
    console.print(f"dispatch: {escape(facts)}", soft_wrap=True)
    if ctx.job.describe():
        console.print(f"job: {escape(ctx.job.describe())}", soft_wrap=True)
    console.print(
        f"combining: {explanation.combining}, default decision: {explanation.default_decision}",
        soft_wrap=True,
    )
    if not explanation.rules:
        console.print("rules: none", soft_wrap=True)
    else:
        console.print("rules:", soft_wrap=True)
    for verdict in explanation.rules:
        where = f" (line {verdict.line})" if verdict.line else ""
        style = _STYLE[verdict.status]
        console.print(
            f"  [{style}]{symbol(verdict.status)} {escape(verdict.rule.id)}{where} "
            f"-> {verdict.rule.decision}[/]",
            soft_wrap=True,
        )
        console.print(f"       {escape(verdict.why)}", soft_wrap=True)
        if verdict.status is Status.DECIDED and verdict.rule.reason:
            console.print(f"       reason: {escape(verdict.rule.reason)}", soft_wrap=True)
    if len(explanation.possible) > 1:
        console.print("outcomes:", soft_wrap=True)
        for possible in explanation.possible:
            who = (
                f"rule '{possible.rule.id}'"
                if possible.rule is not None
                else f"the default decision ({explanation.default_decision})"
            )
            console.print(
                f"  {possible.decision} by {escape(who)}, if {escape(possible.assuming)}",
                soft_wrap=True,
            )
    elif explanation.winner is None:
        console.print(
            f"no rule matches: the default decision {explanation.default_decision} applies",
            soft_wrap=True,
        )
    for note in explanation.notes:
        console.print(f"note: {escape(note)}", soft_wrap=True)
