"""``agentundo recover`` without the terminal: read a run's evidence, check it, plan, run.

The evidence must be one run's file whose hash chain verifies (a recovery from edited
evidence could undo the wrong things); a last line cut off mid-write is the trace of a
crash and is cut cleanly before the recovery's records continue the chain in the same
file. Nothing is written, locked or called when nothing is owed, or with ``dry_run``.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from agentundo.errors import InputError, Position, UsageError
from agentundo.evidence.keys import evidence_key
from agentundo.evidence.reader import BadLine, LineKind, Record, read_path
from agentundo.model.catalog import Catalog
from agentundo.model.policy import Policy
from agentundo.saga.clock import RealClock
from agentundo.saga.executor import Executor
from agentundo.saga.recover import RecoveryPlan, RecoveryResult, read_plan, recover
from agentundo.saga.setup import Settings, Stop

_CHAIN_CODES = ("EV1",)
"""Verification problems that refuse a recovery: the chain itself does not hold."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoverRequest:
    """What ``agentundo recover`` was asked to do."""

    evidence: Path
    catalog: str
    policy: str
    executor: str = "simulated"
    lock: str = "file"
    lock_dir: Path | None = None  # default: the evidence file's directory, .locks/
    lock_wait_s: float = 10.0  # how long to wait for another runner's lock
    dry_run: bool = False


@dataclass(slots=True)
class RecoverOutcome:
    """The plan, what recovery did (None: nothing to do, or a dry run), and the evidence."""

    plan: RecoveryPlan
    result: RecoveryResult | None
    evidence_failure: str | None = None
    cut: int = 0  # bytes of a truncated last line cut off before continuing the chain


def load(request: RecoverRequest) -> tuple[RecoveryPlan, Catalog, Policy, int]:
    """Read and check the evidence and the files; the plan and the truncated tail's size."""
    from agentundo.saga.drills import load_contract

    catalog, policy = load_contract(request.catalog, request.policy)
    path = str(request.evidence)
    if _never_wrote(request.evidence):
        raise NothingRecorded(path)
    items = list(read_path(path))
    records = [i for i in items if isinstance(i, Record)]
    tail = 0
    for item in items:
        if isinstance(item, BadLine):
            if item.kind is LineKind.TRUNCATED and item is items[-1]:
                tail = _tail_size(request.evidence)
                continue
            raise InputError(
                Position(path, item.line), f"not a line the evidence writer writes: {item.message}"
            )
    _check_chain(path, items)
    return read_plan(path, records, catalog), catalog, policy, tail


class NothingRecorded(Exception):
    """The run's file holds no complete record: it was killed before its first one, and
    since every call is announced first, it made no call and nothing is owed."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def _never_wrote(path: Path) -> bool:
    """Whether a file holds no complete line (empty, or one line cut off mid-write)."""
    try:
        with path.open("rb") as handle:
            return b"\n" not in handle.read(1 << 20)
    except OSError:
        return False  # the reader reports it


def _check_chain(path: str, items: list[Record | BadLine]) -> None:
    """Refuse evidence whose chain does not hold (an unkeyed chain checked with a key set
    is fine: the recovery continues it unkeyed)."""
    from agentundo.evidence.verify import verify_items

    problems = verify_items(path, list(items), key=evidence_key(os.environ))
    broken = [p for p in problems if p.code.startswith(_CHAIN_CODES) and p.code != "EV108"]
    if broken:
        first = broken[0]
        raise InputError(
            Position(path, first.line),
            f"the evidence's hash chain does not hold ({first.code}: {first.message}): "
            "recovering from it could undo the wrong things",
            "check it with: agentundo timeline --verify " + path,
        )


def _tail_size(path: Path) -> int:
    """Bytes after the last newline (a line the writer never finished)."""
    data = path.read_bytes()
    return len(data) - (data.rfind(b"\n") + 1)


def run(request: RecoverRequest, *, stop: Stop | None = None) -> RecoverOutcome:
    """Recover the run of ``request.evidence`` (or only plan it, with ``dry_run``)."""
    plan, catalog, policy, tail = load(request)
    if request.dry_run or plan.nothing_owed:
        return RecoverOutcome(plan, None)
    from agentundo.evidence.writer import EvidenceWriter
    from agentundo.saga.lock_stores import open_lock_store

    stop = stop or Stop()
    lock_dir = request.lock_dir or request.evidence.parent / ".locks"
    with ExitStack() as resources:
        executor, secrets = _executor(request, catalog, stop, resources)
        locks = open_lock_store(request.lock, directory=lock_dir)
        last = plan.records[-1].data
        keyed = "mac" in plan.records[0].data
        writer = resources.enter_context(
            EvidenceWriter.resume(
                request.evidence,
                seq=int(last["seq"]) + 1,
                prev_hash=str(last["hash"]),
                cut=tail,
                secrets=secrets,
                key=evidence_key(os.environ) if keyed else None,
            )
        )
        result = recover(
            plan,
            catalog=catalog,
            policy=policy,
            executor=executor,
            lock_store=locks,
            sink=writer.write,
            clock=RealClock(),
            stop=stop,
            settings=Settings(lock_wait_s=request.lock_wait_s),
        )
    return RecoverOutcome(plan, result, writer.failure, tail)


def _executor(
    request: RecoverRequest, catalog: Catalog, stop: Stop, resources: ExitStack
) -> tuple[Executor, frozenset[str]]:
    """The executor that makes the compensations, and the secrets it reads."""
    if request.executor == "http":
        from agentundo.saga.http import HttpExecutor

        executor = resources.enter_context(HttpExecutor(catalog, stop=stop.halt, halt=stop.halt))
        return executor, executor.secrets
    if request.executor != "simulated":
        raise UsageError(f"unknown executor {request.executor!r}; expected simulated or http")
    from agentundo.saga.simulate import SimulatedExecutor

    return SimulatedExecutor(catalog), frozenset()
