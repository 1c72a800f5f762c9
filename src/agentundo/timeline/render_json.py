"""``--format json``: each matching record's original line, as written."""

from __future__ import annotations

from typing import IO, TYPE_CHECKING

from agentundo.evidence.reader import Record
from agentundo.timeline.runs import ShowsNoProblems

if TYPE_CHECKING:
    from agentundo.timeline.runs import Run


class JsonRenderer(ShowsNoProblems):
    """Each matching record's original line, as written (JSON Lines; unknown fields kept)."""

    writes_data = True

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream

    def record(self, run: Run, record: Record) -> None:
        self.stream.write(record.raw + b"\n")

    def end_run(self, run: Run) -> None:
        pass

    def close(self) -> None:
        self.stream.flush()
