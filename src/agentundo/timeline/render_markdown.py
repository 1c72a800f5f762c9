"""``--format markdown``: per run a heading, a field table and the events table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from agentundo.evidence.reader import Record
from agentundo.timeline.entries import COLUMNS, RowKeeper, Tone, entry_cells, hidden_note

if TYPE_CHECKING:
    from agentundo.evidence.problems import Problem
    from agentundo.evidence.verify_chain import ChainHead
    from agentundo.timeline.runs import Run


def md_cell(text: str) -> str:
    """Text safe inside a GitHub-flavoured markdown table cell."""
    return (
        text.replace("\\", "\\\\")
        .replace("|", "\\|")
        .replace("<", "&lt;")
        .replace("\r", " ")
        .replace("\n", " ")
        .replace("*", "\\*")
        .replace("`", "\\`")
    )


class MarkdownRenderer:
    """Per run: a heading, a field table, the events table; for pasting into an incident doc."""

    writes_data = False

    def __init__(self, stream: TextIO, *, limit: int) -> None:
        self.stream = stream
        self.keeper = RowKeeper(limit)

    def record(self, run: Run, record: Record) -> None:
        self.keeper.record(run, record)

    def end_run(self, run: Run) -> None:
        rows, hidden = self.keeper.take()
        write = self.stream.write
        write(
            f"## {md_cell(run.tally.workflow_id or '?')} · run {md_cell(run.tally.run_id or '?')}\n\n"
        )
        write("| Field | Value |\n|---|---|\n")
        for label, value in run.header():
            shown = md_cell(value)
            if label == "verdict" or (label == "manual follow-ups" and value not in ("0", "?")):
                shown = f"**{shown}**"
            write(f"| {label} | {shown} |\n")
        write("\n")
        if not rows:
            write("_No records match the filters._\n\n")
            return
        write("| " + " | ".join(COLUMNS) + " |\n")
        write("|" + "---|" * len(COLUMNS) + "\n")
        for entry in rows:
            cells = [md_cell(c) for c in entry_cells(entry)]
            if entry.tone in (Tone.FAILURE, Tone.SKIP, Tone.MANUAL):
                cells[4] = f"**{cells[4]}**"
            elif entry.tone is Tone.UNKNOWN:
                cells[4] = f"_{cells[4]}_"
            write("| " + " | ".join(cells) + " |\n")
        write("\n")
        if hidden:
            write(f"_{md_cell(hidden_note(hidden))}_\n\n")

    def problems(
        self,
        path: str,
        problems: list[Problem],
        *,
        verified: bool,
        chains: Sequence[ChainHead] = (),
        across: bool = False,
    ) -> None:
        if not verified:
            return
        write = self.stream.write
        write(f"### Verification of `{path}`{' across files' if across else ''}\n\n")
        if not problems:
            write("Verified: hash chain intact, run complete.\n\n")
        else:
            write(f"**{len(problems)} problem{'' if len(problems) == 1 else 's'}:**\n\n")
            for problem in problems:
                write(
                    f"- line {problem.line}: `{problem.code}` {md_cell(problem.message)} "
                    f"({problem.name})\n"
                )
            write("\n")
        for chain in chains:
            write(
                f"Chain `{md_cell(chain.run_id or '?')}`: head `{chain.head}` at seq {chain.seq} "
                f"({md_cell(chain.strength())}).\n\n"
            )

    def close(self) -> None:
        self.stream.flush()
