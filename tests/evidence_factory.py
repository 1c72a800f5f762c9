"""Realistic evidence files for tests, written through the real :class:`EvidenceWriter`.

Until the saga engine writes evidence itself, these runs stand in for it: forward steps
behind policy decisions, a retried transient failure, a fatal failure, LIFO compensations
(one retried, one skipped by policy with a manual follow-up) and the closing summary.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agentundo.evidence.chain import genesis_of, seal
from agentundo.evidence.writer import EvidenceWriter

START = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)


def ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class BulkWriter:
    """EvidenceWriter's format without its per-record redaction and flush, for large files.

    Same records, same ``seq``/``prev_hash``/``hash`` sealing through :func:`chain.seal`:
    only faster to write (the large-file test and the benchmark need ~10^5..10^6 records).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = path.open("x", encoding="utf-8", buffering=1 << 20)
        self._prev: str | None = None
        self._seq = 0

    def write(self, record: dict[str, Any]) -> dict[str, Any]:
        prev = genesis_of(record) if self._prev is None else self._prev
        sealed = seal({"seq": self._seq, **record}, prev)
        self._handle.write(json.dumps(sealed, ensure_ascii=False, separators=(",", ":")) + "\n")
        self._prev = sealed["hash"]
        self._seq += 1
        return sealed

    def __enter__(self) -> BulkWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()


class RunBuilder:
    """Writes one run's records with a virtual clock that advances ``step`` per record."""

    def __init__(
        self,
        writer: EvidenceWriter | BulkWriter,
        *,
        run_id: str = "run-1",
        workflow_id: str = "refund-order",
        actor: str = "agent:support-bot",
        start: datetime = START,
        step: timedelta = timedelta(milliseconds=250),
    ) -> None:
        self.writer = writer
        self.run_id = run_id
        self.workflow_id = workflow_id
        self.actor = actor
        self.now = start
        self.start = start
        self.step = step
        self.written = 0
        self.rolled_back = False

    def event(self, event: str, **fields: Any) -> dict[str, Any]:
        self.rolled_back = self.rolled_back or event == "rollback_triggered"
        record = {
            "ts": ts(self.now),
            "event": event,
            "run_id": self.run_id,
            "workflow_id": self.workflow_id,
            "actor": self.actor,
            **fields,
        }
        self.now += self.step
        self.written += 1
        return self.writer.write(record)

    def forward_ok(
        self, step_id: str, topic: str, *, rule_id: str | None = "allow-support"
    ) -> None:
        decision: dict[str, Any] = {"rule_id": rule_id}
        if rule_id is None:
            decision["default"] = True
        self.event(
            "policy_decision",
            job_id=f"job-{step_id}",
            step_id=step_id,
            topic=topic,
            decision="allow",
            is_compensation=False,
            **decision,
        )
        key = f"{self.run_id}:{step_id}"
        self.event(
            "step_dispatched",
            job_id=f"job-{step_id}",
            step_id=step_id,
            topic=topic,
            attempt=1,
            idempotency_key=key,
        )
        self.event(
            "step_succeeded", job_id=f"job-{step_id}", step_id=step_id, topic=topic, attempt=1
        )

    def compensate_ok(self, step_id: str, topic: str, for_topic: str, *, attempt: int = 1) -> None:
        self.event(
            "compensation_dispatched",
            job_id=f"comp-{step_id}",
            step_id=step_id,
            topic=topic,
            for_topic=for_topic,
            attempt=attempt,
            idempotency_key=f"{self.run_id}:{step_id}:undo",
            epoch=1,
        )
        self.event(
            "compensation_succeeded",
            job_id=f"comp-{step_id}",
            step_id=step_id,
            topic=topic,
            applied=True,
        )

    def summary(self, **fields: Any) -> dict[str, Any]:
        base: dict[str, Any] = {
            "job_id": f"job-{self.run_id}",
            "status": "succeeded",
            "matched_policy_id": "support-policy",
            "rollback_triggered": False,
            "rollback_mode": "lifo",
            "compensation_jobs_dispatched": 0,
            "compensation_jobs_skipped": 0,
            "compensation_jobs_failed": 0,
            "manual_followups": 0,
            "rollback_finished_at": None,
            "started_at": ts(self.start),
            "finished_at": ts(self.now),
            "env": "staging",
            "verdict": "recovered" if self.rolled_back else "completed",
        }
        base.update(fields)
        return self.event("run_summary", **base)


def standard_run(
    path: Path,
    *,
    run_id: str = "run-1",
    workflow_id: str = "refund-order",
    env: str = "staging",
    start: datetime = START,
) -> Path:
    """A run that fails at its fourth step and rolls back: the incident-shaped example.

    Forward: reserve, charge (default rule), ship-label, then notify fails transiently,
    is retried and fails fatally. Rollback, LIFO: the label's void is denied by policy
    (skipped, manual follow-up), the charge's refund fails once and succeeds on retry,
    the reservation's release succeeds.
    """
    with EvidenceWriter(path) as writer:
        run = RunBuilder(writer, run_id=run_id, workflow_id=workflow_id, start=start)
        run.event("run_started", env=env, scenario="notify-outage", seed=7, clock="virtual")
        run.forward_ok("reserve", "inventory.reserve")
        run.forward_ok("charge", "payments.charge", rule_id=None)
        run.forward_ok("label", "shipping.label")
        job = {"job_id": "job-notify", "step_id": "notify", "topic": "email.notify"}
        run.event(
            "policy_decision",
            **job,
            decision="allow",
            rule_id="allow-support",
            is_compensation=False,
        )
        run.event("step_dispatched", **job, attempt=1, idempotency_key=f"{run_id}:notify")
        run.event("step_failed", **job, attempt=1, transient=True, error="smtp 421 try later")
        run.event("retry_scheduled", **job, attempt=2, delay_s=0.5)
        run.event("step_dispatched", **job, attempt=2, idempotency_key=f"{run_id}:notify")
        run.event("step_failed_fatal", **job, attempts=2, error="smtp 550 mailbox unavailable")
        run.event(
            "rollback_triggered",
            cause="step_failed_fatal",
            job_id="job-notify",
            step_id="notify",
            pending=3,
        )
        run.event(
            "lock_acquired", lock_key=f"rollback:{run_id}", owner="agentundo", epoch=1, ttl_s=30
        )
        # LIFO: label, charge, reserve
        run.event(
            "policy_decision",
            job_id="comp-label",
            step_id="label",
            topic="shipping.void_label",
            decision="deny",
            rule_id="no-void-after-pickup",
            is_compensation=True,
        )
        run.event(
            "compensation_skipped",
            job_id="comp-label",
            step_id="label",
            topic="shipping.void_label",
            reason="denied by policy",
            rule_id="no-void-after-pickup",
        )
        run.event(
            "manual_followup",
            step_id="label",
            topic="shipping.label",
            category="compensation_denied",
            reason="label may already be picked up",
            mitigation="ask the carrier to cancel the label",
        )
        comp = {"job_id": "comp-charge", "step_id": "charge", "topic": "payments.refund"}
        run.event(
            "policy_decision", **comp, decision="allow", rule_id="allow-undo", is_compensation=True
        )
        run.event(
            "compensation_dispatched",
            **comp,
            for_topic="payments.charge",
            attempt=1,
            idempotency_key=f"{run_id}:charge:undo",
            epoch=1,
        )
        run.event("compensation_failed", **comp, attempt=1, transient=True, error="gateway timeout")
        run.event("compensation_retry_scheduled", **comp, delay_s=1.0)
        run.event(
            "compensation_dispatched",
            **comp,
            for_topic="payments.charge",
            attempt=2,
            idempotency_key=f"{run_id}:charge:undo",
            epoch=1,
        )
        run.event("compensation_succeeded", **comp, applied=True)
        run.event(
            "policy_decision",
            job_id="comp-reserve",
            step_id="reserve",
            topic="inventory.release",
            decision="allow",
            rule_id="allow-undo",
            is_compensation=True,
        )
        run.compensate_ok("reserve", "inventory.release", "inventory.reserve")
        run.event("lock_released", lock_key=f"rollback:{run_id}", owner="agentundo", released=True)
        run.event("rollback_finished", outcome="partial")
        run.summary(
            status="rolled_back",
            rollback_triggered=True,
            compensation_jobs_dispatched=2,
            compensation_jobs_skipped=1,
            compensation_jobs_failed=0,
            manual_followups=1,
            rollback_finished_at=ts(run.now - run.step),
            env=env,
            verdict="needs_followup",
        )
    return path


def clean_run(
    path: Path, *, run_id: str = "run-ok", env: str = "staging", start: datetime = START
) -> Path:
    """A run whose three steps all succeed: no rollback."""
    with EvidenceWriter(path) as writer:
        run = RunBuilder(writer, run_id=run_id, workflow_id="restock", start=start)
        run.event("run_started", env=env, scenario="happy-path", seed=1, clock="virtual")
        run.forward_ok("reserve", "inventory.reserve")
        run.forward_ok("order", "supplier.order")
        run.forward_ok("notify", "email.notify")
        run.summary(env=env)
    return path


def big_run(path: Path, *, steps: int, run_id: str = "run-big", skip_every: int = 0) -> int:
    """A run of ``steps`` forward steps, a fatal failure and ``steps`` LIFO compensations.

    Every ``skip_every``-th compensation (0: none) is skipped with a manual follow-up.
    Returns the number of records written (about ``5 * steps``).
    """
    skipped = 0
    dispatched = 0
    with BulkWriter(path) as writer:
        run = RunBuilder(
            writer, run_id=run_id, workflow_id="bulk-migrate", step=timedelta(milliseconds=3)
        )
        run.event("run_started", env="staging", scenario="bulk", seed=3, clock="virtual")
        for index in range(steps):
            run.forward_ok(f"s{index}", f"db.migrate.shard{index % 16}")
        job = {"job_id": "job-final", "step_id": "final", "topic": "db.switch"}
        run.event("step_dispatched", **job, attempt=1, idempotency_key=f"{run_id}:final")
        run.event("step_failed_fatal", **job, attempts=1, error="switch refused")
        run.event(
            "rollback_triggered",
            cause="step_failed_fatal",
            job_id="job-final",
            step_id="final",
            pending=steps,
        )
        for index in reversed(range(steps)):
            step_id = f"s{index}"
            if skip_every and index % skip_every == 0:
                skipped += 1
                run.event(
                    "compensation_skipped",
                    job_id=f"comp-{step_id}",
                    step_id=step_id,
                    topic="db.unmigrate",
                    reason="no compensation for this shard",
                    rule_id="no-undo-shard",
                )
                run.event(
                    "manual_followup",
                    step_id=step_id,
                    topic=f"db.migrate.shard{index % 16}",
                    category="no_compensation",
                    reason="shard has no compensation",
                    mitigation="restore the shard from backup",
                )
            else:
                dispatched += 1
                run.compensate_ok(step_id, "db.unmigrate", f"db.migrate.shard{index % 16}")
        run.event("rollback_finished", outcome="partial" if skipped else "complete")
        run.summary(
            status="rolled_back",
            rollback_triggered=True,
            compensation_jobs_dispatched=dispatched,
            compensation_jobs_skipped=skipped,
            manual_followups=skipped,
            verdict="failed" if skipped else "recovered",
        )
    return run.written


def reseal(path: Path, change: dict[str, Any]) -> None:
    """Edit run_summary and recompute every hash from there: a forger without a key."""
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    prev = genesis_of(records[0])
    for index, record in enumerate(records):
        body = {k: v for k, v in record.items() if k not in ("hash", "prev_hash")}
        if record["event"] == "run_summary":
            body.update(change)
        records[index] = seal(body, prev)
        prev = records[index]["hash"]
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records),
        encoding="utf-8",
    )
