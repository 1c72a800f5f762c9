"""``agentundo recover --trace`` without the terminal: plan and finish a traced run's undo.

The run's plan comes from the trace (:mod:`agentundo.trace.plan`). Unless it is a dry
run, the trace is written once as the opening records of ``trace-<trace id>.jsonl``
(:mod:`agentundo.trace.evidence`), and that file is then recovered exactly as
``agentundo recover EVIDENCE`` recovers a drill's run (:mod:`agentundo.saga.recover_file`):
the same policy gate (``is_compensation: true``), lock, rollback and evidence. Once that
file exists, a later ``recover --trace`` of the same trace continues it (or finds nothing
owed) instead of reading the trace again: the keys are the same, nothing is sent twice.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

from agentundo.errors import InputError, Position, UsageError
from agentundo.model.catalog import Catalog
from agentundo.saga.recover import read_plan
from agentundo.saga.recover_file import RecoverOutcome, RecoverRequest
from agentundo.saga.recover_file import run as recover_evidence
from agentundo.saga.setup import Stop
from agentundo.trace.evidence import (
    evidence_path,
    file_sha256,
    opening_records,
    records_of,
    settled_by_recovery,
)
from agentundo.trace.plan import MissingContent, RunPlan, missing_content, plan_run
from agentundo.trace.runs import AgentRun

DEFAULT_ENV = "production"


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceRecoverRequest:
    """What ``agentundo recover --trace`` was asked to do."""

    trace: str
    catalog: str
    policy: str
    run: str | None = None
    """The trace id to recover (a glob or a unique prefix); needed when several runs failed."""
    evidence_dir: Path = Path("agentundo-evidence")
    executor: str = "simulated"
    lock: str = "file"
    lock_wait_s: float = 10.0
    dry_run: bool = False
    env: str | None = None


@dataclass(slots=True, kw_only=True)
class TraceRecoverOutcome:
    """The run's plan, the evidence file, and what recovering it did (None: not recovered)."""

    plan: RunPlan
    evidence: Path
    recovery: RecoverOutcome | None = None
    missing: list[MissingContent] = field(default_factory=list)
    continued: bool = False
    """The evidence existed already: it was read (and continued) instead of the trace."""
    trace_changed: bool = False
    """The trace file differs from the one the evidence was opened from."""

    @property
    def keys(self) -> dict[str, str | None]:
        """Each owed call's compensation key, as the recovery makes it."""
        if self.recovery is None:
            return {}
        return {o.step.step_id: o.key for o in self.recovery.plan.owed}


def run(request: TraceRecoverRequest, *, stop: Stop | None = None) -> TraceRecoverOutcome:
    """Plan the recovery of one traced run and, unless ``dry_run``, carry it out."""
    from agentundo.saga.drills import load_contract
    from agentundo.trace.otlp import read_spans
    from agentundo.trace.runs import group_runs

    catalog, _policy = load_contract(request.catalog, request.policy)
    agent_run = _pick(group_runs(read_spans(request.trace)), request)
    settled = settled_by_recovery(str(request.evidence_dir), agent_run.trace_id)
    plan = plan_run(agent_run, catalog, settled)
    path = evidence_path(request.evidence_dir, agent_run.trace_id)
    outcome = TraceRecoverOutcome(plan=plan, evidence=path)
    if not agent_run.failed:
        return outcome  # its effects are kept: nothing to recover
    sha256 = file_sha256(request.trace)
    base = RecoverRequest(
        evidence=path,
        catalog=request.catalog,
        policy=request.policy,
        executor=request.executor,
        lock=request.lock,
        lock_dir=request.evidence_dir / ".locks",
        lock_wait_s=request.lock_wait_s,
        dry_run=request.dry_run,
    )
    if path.exists():
        outcome.continued = True
        outcome.recovery = recover_evidence(base, stop=stop)
        opened = outcome.recovery.plan.started.get("trace")
        outcome.trace_changed = isinstance(opened, dict) and opened.get("sha256") != sha256
        return outcome
    env = request.env or agent_run.env or DEFAULT_ENV
    records = opening_records(plan, trace_path=request.trace, sha256=sha256, env=env)
    outcome.missing = missing_content(plan, catalog)
    if request.dry_run or outcome.missing:
        written = records_of(str(path), [_as_written(r, plan, catalog) for r in records])
        outcome.recovery = RecoverOutcome(read_plan(str(path), written, catalog), None)
        return outcome
    _open_evidence(path, records, plan, catalog)
    outcome.recovery = recover_evidence(base, stop=stop)
    return outcome


def _pick(runs: list[AgentRun], request: TraceRecoverRequest) -> AgentRun:
    """The run to recover: ``--run``'s, else the only failed run, else the only run."""
    if not runs:
        raise InputError(Position(request.trace), "holds no spans: no agent run to recover")
    ids = ", ".join(f"{r.trace_id} ({'failed' if r.failed else 'succeeded'})" for r in runs)
    if request.run is not None:
        wanted = request.run.lower()
        found = [
            r
            for r in runs
            if fnmatch.fnmatchcase(r.trace_id, wanted) or r.trace_id.startswith(wanted)
        ]
        if len(found) != 1:
            many = "several runs" if found else "no run"
            raise UsageError(f"--run {request.run} matches {many} of {request.trace}: {ids}")
        return found[0]
    if len(runs) == 1:
        return runs[0]
    failed = [r for r in runs if r.failed]
    if len(failed) == 1:
        return failed[0]
    raise UsageError(
        f"{request.trace} holds {len(runs)} runs, {len(failed)} of them failed: "
        f"choose one with --run TRACE_ID ({ids})"
    )


def _secrets(plan: RunPlan, catalog: Catalog) -> frozenset[str]:
    """The values of secret params among the calls' arguments (redacted in every form)."""
    values: set[str] = set()
    for item in plan.calls:
        spec = catalog.topics.get(item.topic) if item.topic else None
        for name in (spec.secret_params or []) if spec is not None else []:
            value = item.call.params.get(name)
            if isinstance(value, str | int) and len(str(value)) >= 4:
                values.add(str(value))
    return frozenset(values)


def _as_written(record: dict[str, object], plan: RunPlan, catalog: Catalog) -> dict[str, object]:
    """A record as the evidence writer would write it (redacted), for a plan in memory."""
    from agentundo.evidence.redact import redact

    redacted: dict[str, object] = redact(record, _secrets(plan, catalog))
    return redacted


def _open_evidence(
    path: Path, records: list[dict[str, object]], plan: RunPlan, catalog: Catalog
) -> None:
    """Write the opening records as a new evidence file (never over an existing one)."""
    from agentundo.evidence.writer import EvidenceWriter

    with EvidenceWriter(path, secrets=_secrets(plan, catalog)) as writer:
        for record in records:
            writer.write(dict(record))
    if writer.failure:
        raise UsageError(f"cannot write evidence to {path}: {writer.failure}")
