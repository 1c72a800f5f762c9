"""Benchmark: what redaction costs the evidence writer per record.

    python bench/bench_redact.py [--steps 125] [--repeat 7] [--secrets 3]

The records of a realistic drill (``--steps`` steps, the last one failing fatally, so the
others are rolled back), each given what the HTTP executor adds (a ``call`` with a URL, a
``detail`` with a JSON body echoing ordinary fields), are passed through
:func:`~agentundo.evidence.redact.redact_into` exactly as :class:`EvidenceWriter` does,
with no explicit secrets and with ``--secrets`` of them (tokens like the ones a drill
reads from the environment, and an evidence key). Each figure is the best of
``--repeat`` passes over all records (each forgetting the strings the one before saw),
divided by the number of records. What is built once shows on its own: for the first
record with a secret set, and for the first record that echoes a secret (its forms are
compiled then). Run from the repository root: python bench/bench_redact.py
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from typing import Any

from agentundo.evidence import redact as redact_module
from agentundo.evidence.redact import redact_into
from agentundo.evidence.writer import STRUCTURE
from agentundo.model.catalog import Catalog
from agentundo.model.policy import Policy
from agentundo.model.scenario import Fault, FaultType
from agentundo.model.workflow import Workflow
from agentundo.saga.clock import VirtualClock
from agentundo.saga.engine import drill
from agentundo.saga.faults import FaultPlan
from agentundo.saga.setup import DrillSetup

SECRETS = (
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "Bearer sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "f3b1c9d27a4e8b6c0d5f2e9a1b7c3d48",  # an evidence key
    "ghp_R2d2C3poBb8Yoda1Luke2Leia3Han4Solo",
    "correct horse battery staple/2024&more",
)


def records(steps: int) -> list[dict[str, Any]]:
    topics: dict[str, object] = {
        "charge": {
            "side_effect": True,
            "rollback": "compensatable",
            "idempotency_key": "{run_id}:{step_id}",
            "compensation": {"topic": "refund", "idempotency_key": "{run_id}:{step_id}:undo"},
        },
        "refund": {"side_effect": True, "rollback": "irreversible"},
    }
    rules = [{"id": "writes", "when": {"env": "production"}, "decision": "allow"}]
    wf_steps = [
        {"id": f"s{i}", "topic": "charge", "params": {"amount": 100 + i, "currency": "EUR"}}
        for i in range(steps)
    ]
    setup = DrillSetup(
        workflow=Workflow.model_validate(
            {"version": "v1", "workflow": "bench", "env": "production", "steps": wf_steps}
        ),
        catalog=Catalog.model_validate({"version": "v1", "topics": topics}),
        policy=Policy.model_validate({"version": "v1", "rules": rules}),
        plan=FaultPlan.of([Fault(type=FaultType.FATAL, step=wf_steps[-1]["id"])]),
    )
    out: list[dict[str, Any]] = []
    drill(setup, run_id="run_0badcafe", sink=out.append, clock=VirtualClock())
    for record in out:  # what the HTTP executor adds
        event = record["event"]
        step = record.get("step_id", "")
        if event.endswith("_dispatched"):
            record["call"] = {
                "method": "POST",
                "url": f"https://api.example.com/v1/charges?step={step}&run=run_0badcafe",
            }
        elif event.endswith("_succeeded"):
            body = {"id": f"ch_{step}_3Lk9", "amount": 100, "currency": "eur", "status": "ok"}
            record["detail"] = {
                "method": "POST",
                "url": "https://api.example.com/v1/charges",
                "status": 200,
                "elapsed_ms": 12.5,
                "body": json.dumps(body),
            }
    return out


def forget_strings() -> None:
    """Forget what redaction remembers of strings it has seen (not the secrets' forms):
    each pass is a new run's records."""
    redact_module._MASKED.clear()
    for forms in getattr(redact_module, "_FORMS", {}).values():
        forms.done.clear()


def per_record(batch: list[dict[str, Any]], secrets: frozenset[str], repeat: int) -> float:
    best = float("inf")
    redact_into({"seq": 0}, batch[0], secrets, STRUCTURE)  # forms built
    for _ in range(repeat):
        forget_strings()
        start = time.perf_counter()
        for seq, record in enumerate(batch):
            redact_into({"seq": seq}, record, secrets, STRUCTURE)
        best = min(best, time.perf_counter() - start)
    return best / len(batch)


def first_records(record: dict[str, Any], secrets: frozenset[str]) -> tuple[float, float]:
    """The cost of the first record with a secret set never seen before, and of the
    first record that then echoes one of the secrets (each building what it needs)."""
    clear = getattr(redact_module, "_clear_caches", None)
    if clear is not None:
        clear()
    re.purge()
    start = time.perf_counter()
    redact_into({"seq": 0}, record, secrets, STRUCTURE)
    first = time.perf_counter() - start
    echo = {**record, "error": f"the server said: {json.dumps({'token': min(secrets)})}"}
    start = time.perf_counter()
    written = redact_into({"seq": 1}, echo, secrets, STRUCTURE)
    echoed = time.perf_counter() - start
    assert min(secrets) not in json.dumps(written)
    return first, echoed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=125, help="workflow steps [125]")
    parser.add_argument("--repeat", type=int, default=7, help="best of N passes [7]")
    parser.add_argument(
        "--secrets", type=int, default=3, help=f"explicit secrets, 0-{len(SECRETS)}"
    )
    args = parser.parse_args(argv)
    batch = records(args.steps)
    secrets = frozenset(SECRETS[: args.secrets])
    none = per_record(batch, frozenset(), args.repeat)
    some = per_record(batch, secrets, args.repeat)
    first, echoed = first_records(batch[0], secrets) if secrets else (0.0, 0.0)
    print(f"{len(batch)} records from a {args.steps}-step drill; best of {args.repeat}")
    print(f"  no explicit secrets: {none * 1e6:6.2f} µs/record")
    print(f"  {len(secrets)} explicit secrets:  {some * 1e6:6.2f} µs/record")
    print(f"  first record with a new secret set: {first * 1e3:.2f} ms")
    print(f"  first record that echoes a secret (pattern compiled): {echoed * 1e3:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
