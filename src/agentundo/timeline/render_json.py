"""``--format json``: each matching record's original line, as written."""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO, TYPE_CHECKING

from agentundo.evidence.reader import Record

if TYPE_CHECKING:
    from agentundo.evidence.problems import Problem
    from agentundo.evidence.verify_chain import ChainHead
    from agentundo.timeline.runs import Run


class JsonRenderer:
    """Each matching record's original line, as written (JSON Lines; unknown fields kept)."""

    writes_data = True

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream

    def record(self, run: Run, record: Record) -> None:
        self.stream.write(record.raw + b"\n")

    def end_run(self, run: Run) -> None:
        pass

    def problems(
        self,
        path: str,
        problems: list[Problem],
        *,
        verified: bool,
        chains: Sequence[ChainHead] = (),
    ) -> None:
        pass

    def close(self) -> None:
        self.stream.flush()
