"""`agentundo timeline --format otlp` on real drills, parsed back with the OTLP protobuf types.

The drills run as subprocesses of the CLI: the shipped refund-dispute sample (a rollback
that recovers) and the ledger example against the real ledger service on 127.0.0.1 with
its refunds refused (compensations that fail). Each export is parsed into an
``ExportTraceServiceRequest`` and compared with the evidence it came from, computed here
independently of the renderer.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("opentelemetry.proto")

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tests.cli_runner import CLEAN_ENV, invoke
from tests.evidence_factory import standard_run
from tests.saga_helpers import CATALOG, POLICY, WORKFLOW, write
from tests.traces.otlp import attributes, parse_request, spans

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample-policies"
LEDGER = ROOT / "examples" / "ledger"
TOKEN = "otlp-ledger-t0ken-never-exported"
ERROR = Status.StatusCode.STATUS_CODE_ERROR
UNSET = Status.StatusCode.STATUS_CODE_UNSET

RUN_EVENTS = {
    "run_started",
    "run_summary",
    "rollback_triggered",
    "rollback_finished",
    "lock_acquired",
    "lock_busy",
    "lock_taken_over",
    "lock_expired",
    "lock_released",
    "recovery_started",
    "recovery_finished",
}
BAD_ENDS = {
    "step_failed_fatal",
    "step_denied",
    "step_outcome_unknown",
    "compensation_skipped",
    "compensation_timed_out",
    "compensation_rejected",
    "compensation_failed",
    "manual_followup",
}
GOOD_ENDS = {"step_succeeded", "compensation_succeeded", "compensation_not_needed"}


def agentundo(
    *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "agentundo", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**CLEAN_ENV, **(env or {})},
    )
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return done


def export(*paths: Path, extra: tuple[str, ...] = ()) -> list[ExportTraceServiceRequest]:
    done = agentundo("timeline", "--format", "otlp", *extra, *paths)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    return [parse_request(json.loads(line)) for line in lines]


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def nanos(ts: str) -> int:
    moment = datetime.fromisoformat(ts)
    return int(moment.timestamp()) * 10**9 + moment.microsecond * 1000


def jobs(evidence: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """job_id → its records, in file order (what a span per job is made of)."""
    found: dict[str, list[dict[str, Any]]] = {}
    step_jobs: dict[str, str] = {}
    for record in evidence:
        job_id = record.get("job_id")
        if not job_id and record["event"] == "manual_followup":
            job_id = step_jobs.get(record["step_id"])  # an irreversible step's follow-up
        if job_id and record["event"] not in RUN_EVENTS:
            found.setdefault(job_id, []).append(record)
            if record["event"] == "step_dispatched":
                step_jobs[record["step_id"]] = job_id
    return found


def is_compensation(job: list[dict[str, Any]]) -> bool:
    return any(
        r["event"].startswith("compensation_") or r.get("is_compensation") is True for r in job
    )


def check_against_evidence(requests: list[ExportTraceServiceRequest], path: Path) -> list[Span]:
    """Every assertion a run's export must pass, from its evidence file alone."""
    evidence = records(path)
    run_id = evidence[0]["run_id"]
    by_job = jobs(evidence)
    steps = [j for j, rs in by_job.items() if not is_compensation(rs)]
    compensations = [j for j, rs in by_job.items() if is_compensation(rs)]
    found = list(spans(requests))
    assert len(found) == len(steps) + len(compensations) + 1
    (root,) = [s for s in found if not s.parent_span_id]
    assert root.trace_id == hashlib.sha256(run_id.encode()).digest()[:16]
    assert {s.trace_id for s in found} == {root.trace_id}
    assert len({s.span_id for s in found}) == len(found)
    assert all(s.parent_span_id == root.span_id for s in found if s is not root)
    assert root.start_time_unix_nano == nanos(evidence[0]["ts"])
    assert root.end_time_unix_nano == nanos(evidence[-1]["ts"])
    summary = evidence[-1]
    assert summary["event"] == "run_summary"
    (request,) = requests
    (resource_spans,) = request.resource_spans
    resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert resource["service.name"] == "agentundo"
    assert resource["deployment.environment.name"] == summary["env"]
    root_attributes = attributes(root)
    assert root_attributes["agentundo.status"] == summary["status"]
    assert root_attributes["agentundo.verdict"] == summary["verdict"]
    assert root.status.code == (UNSET if summary["status"] == "SUCCEEDED" else ERROR)

    by_call_id = {attributes(s).get("agentundo.job_id"): s for s in found}
    assert set(by_call_id) == {None, *by_job}
    for job_id, job in by_job.items():
        span = by_call_id[job_id]
        got = attributes(span)
        assert got["agentundo.topic"] == job[0]["topic"]
        assert got["agentundo.step_id"] == job[0]["step_id"]
        decisions = [r["decision"] for r in job if r["event"] == "policy_decision"]
        assert got.get("agentundo.decision") == (decisions[-1] if decisions else None)
        keys = [r["idempotency_key"] for r in job if r.get("idempotency_key")]
        assert got.get("agentundo.idempotency_key") == (keys[0] if keys else None)
        assert [e.name for e in span.events] == [r["event"] for r in job]
        assert [e.time_unix_nano for e in span.events] == [nanos(r["ts"]) for r in job]
        assert span.start_time_unix_nano == nanos(job[0]["ts"])
        assert span.end_time_unix_nano == nanos(job[-1]["ts"])
        dispatches = [r for r in job if r["event"].endswith("_dispatched")]
        assert got.get("agentundo.attempts") == (len(dispatches) or None)
        ends = [r["event"] for r in job if r["event"] in BAD_ENDS | GOOD_ENDS]
        failed = bool(ends) and ends[-1] in BAD_ENDS
        assert span.status.code == (ERROR if failed else UNSET), (job_id, ends)
        if job_id in steps:
            assert span.name == f"execute_tool {job[0]['topic']}"
            assert got["gen_ai.operation.name"] == "execute_tool"
            assert got["gen_ai.tool.name"] == job[0]["topic"]
            assert got["gen_ai.tool.call.id"] == job_id
            sent = [r["sent"] for r in job if "sent" in r]
            assert got.get("agentundo.sent") == (sent[-1] if sent else None)
            params = [r["params"] for r in job if "params" in r]
            if params:
                assert json.loads(got["gen_ai.tool.call.arguments"]) == params[0]
            assert not span.links
        else:
            assert span.name == f"compensate {job[0]['topic']}"
            assert "gen_ai.operation.name" not in got
            assert got["agentundo.compensation"] is True
            (link,) = span.links
            undone = by_call_id[_job_of(found, link.span_id)]
            assert attributes(undone)["agentundo.step_id"] == job[0]["step_id"]
            assert attributes(undone)["gen_ai.operation.name"] == "execute_tool"
    return found


def _job_of(found: list[Span], span_id: bytes) -> str:
    (span,) = [s for s in found if s.span_id == span_id]
    return str(attributes(span)["agentundo.job_id"])


def drill_sample(tmp_path: Path, *extra: str | Path) -> Path:
    done = agentundo(
        "drill", SAMPLES / "workflows" / "refund-dispute.yaml",
        "--catalog", SAMPLES / "catalog.yaml",
        "--policy", SAMPLES / "policy.yaml",
        "--evidence", tmp_path / "ev",
        *extra,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stdout + done.stderr
    (path,) = (tmp_path / "ev").glob("*.jsonl")
    return path


def test_a_recovered_sample_drill_exports_as_spans(tmp_path: Path) -> None:
    path = drill_sample(
        tmp_path, "--scenario", SAMPLES / "scenarios" / "weekly-refund-dispute.yaml"
    )
    found = check_against_evidence(export(path), path)
    by_step = {
        (attributes(s).get("agentundo.step_id"), attributes(s).get("agentundo.compensation")): s
        for s in found
    }
    close = attributes(by_step["close-ticket", None])
    assert close["agentundo.attempts"] == 4  # three transient failures, then success
    assert close["agentundo.outcome"] == "step_succeeded"
    assert close["agentundo.rollback_class"] == "has_compensation"
    assert attributes(by_step["read-ticket", None])["agentundo.rollback_class"] == "read_only"
    notify = by_step["notify-finance", None]
    assert notify.status.code == ERROR
    assert notify.status.message == "injected failure after the effect landed"
    assert attributes(notify)["agentundo.outcome"] == "step_failed_fatal"
    assert attributes(notify)["agentundo.sent"] is True  # it landed before it failed
    undo = by_step["notify-finance", True]
    assert attributes(undo)["agentundo.outcome"] == "compensation_succeeded"
    assert attributes(undo)["agentundo.for_topic"] == "slack.post_message"
    assert undo.status.code == UNSET
    (root,) = [s for s in found if not s.parent_span_id]
    assert root.status.message == "status FAILED_FATAL, verdict recovered"
    assert root.name == "run refund-dispute"
    assert [e.name for e in root.events] == [
        "run_started",
        "rollback_triggered",
        "lock_acquired",
        "lock_released",
        "rollback_finished",
        "run_summary",
    ]


def test_a_denied_compensation_is_an_error_span_with_its_follow_up(tmp_path: Path) -> None:
    scenario = tmp_path / "denied.yaml"
    scenario.write_text(
        "version: v1\nkind: scenario\nscenario: denied-undo\nworkflow: refund-dispute\n"
        "faults:\n  - {type: partial, step: notify-finance}\n"
        "  - {type: compensation_denied, step: close-ticket}\n",
        encoding="utf-8",
    )
    path = drill_sample(tmp_path, "--scenario", scenario)
    found = check_against_evidence(export(path), path)
    (undo,) = [
        s
        for s in found
        if attributes(s).get("agentundo.step_id") == "close-ticket"
        and attributes(s).get("agentundo.compensation")
    ]
    assert undo.status.code == ERROR
    assert attributes(undo)["agentundo.decision"] == "deny"
    assert attributes(undo)["agentundo.outcome"] == "compensation_skipped"
    assert [e.name for e in undo.events][-1] == "manual_followup"


# --- the ledger over HTTP, its refunds refused ---------------------------------------------


@pytest.fixture
def ledger() -> Iterator[Any]:
    from tests.cli.test_http_drill import ledger_service

    running = ledger_service.start()
    yield running
    running.stop()


def test_refused_refunds_export_as_failed_compensations(ledger: Any, tmp_path: Path) -> None:
    httpx.post(
        f"{ledger.url}/admin/faults", json={"fail_next": 100, "status": 404, "only": "refund"}
    ).raise_for_status()
    done = agentundo(
        "drill", LEDGER / "workflow.yaml",
        "--catalog", LEDGER / "catalog.yaml",
        "--policy", LEDGER / "policy.yaml",
        "--executor", "http", "--fail-at", "charge_c", "--clock", "virtual",
        "--evidence", tmp_path / "ev",
        env={"LEDGER_URL": ledger.url, "LEDGER_TOKEN": TOKEN},
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    (path,) = (tmp_path / "ev").glob("*.jsonl")
    out = agentundo("timeline", "-f", "otlp", path)
    assert out.returncode == 0, out.stderr
    assert TOKEN not in out.stdout
    found = check_against_evidence([parse_request(json.loads(out.stdout))], path)
    charges = {
        attributes(s)["agentundo.step_id"]: attributes(s)
        for s in found
        if attributes(s).get("gen_ai.operation.name") == "execute_tool"
    }
    assert json.loads(charges["charge_a"]["gen_ai.tool.call.result"]) == {"charge_id": "ch_1"}
    assert json.loads(charges["charge_b"]["gen_ai.tool.call.arguments"]) == {
        "order_id": "B-2002",
        "amount": 3400,
    }
    refunds = [s for s in found if attributes(s).get("agentundo.compensation")]
    assert [attributes(s)["agentundo.step_id"] for s in refunds] == ["charge_b", "charge_a"]
    for refund, charge in zip(refunds, ("ch_2", "ch_1"), strict=True):
        assert refund.status.code == ERROR
        assert f"HTTP 404 from POST {ledger.url}/charges/{charge}/refund" in refund.status.message
    (root,) = [s for s in found if not s.parent_span_id]
    assert attributes(root)["agentundo.verdict"] == "failed"


# --- several runs, filters, determinism, misuse --------------------------------------------


def drill_small(tmp_path: Path) -> Path:
    """A drill of the tests' small project that succeeds (no rollback)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    for name, text in (("wf.yaml", WORKFLOW), ("catalog.yaml", CATALOG), ("policy.yaml", POLICY)):
        write(tmp_path, name, text)
    done = agentundo(
        "drill", tmp_path / "wf.yaml",
        "--catalog", tmp_path / "catalog.yaml",
        "--policy", tmp_path / "policy.yaml",
        "--evidence", tmp_path / "ev",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (path,) = (tmp_path / "ev").glob("*.jsonl")
    return path


def test_one_line_per_run_and_the_same_spans_every_time(tmp_path: Path) -> None:
    first = drill_small(tmp_path / "a")
    second = drill_sample(tmp_path / "b", "--fail-at", "notify-finance")
    done = agentundo("timeline", "-f", "otlp", first, second)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    check_against_evidence([parse_request(json.loads(lines[0]))], first)
    check_against_evidence([parse_request(json.loads(lines[1]))], second)
    assert agentundo("timeline", "-f", "otlp", first, second).stdout == done.stdout
    (root,) = [s for s in spans([parse_request(json.loads(lines[0]))]) if not s.parent_span_id]
    assert root.status.code == UNSET  # the first drill succeeded
    assert root.status.message == ""
    assert attributes(root)["agentundo.verdict"] == "completed"
    assert attributes(root)["agentundo.rollback_triggered"] is False


def test_filters_choose_the_records_and_so_the_spans(tmp_path: Path) -> None:
    path = drill_sample(tmp_path, "--fail-at", "notify-finance")
    (request,) = export(path, extra=("--only-problems",))
    found = list(spans([request]))
    events = [e.name for s in found for e in s.events]
    assert "step_failed_fatal" in events
    assert "step_succeeded" not in events
    assert len(found) < len(jobs(records(path))) + 1


def test_verify_problems_go_to_stderr_and_stdout_stays_otlp(tmp_path: Path) -> None:
    path = drill_sample(tmp_path)
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")  # the summary cut off
    done = agentundo("timeline", "-f", "otlp", "--verify", path)
    assert done.returncode == 1
    assert "EV205" in done.stderr
    (root,) = [s for s in spans([parse_request(json.loads(done.stdout))]) if not s.parent_span_id]
    assert root.status.code == ERROR
    assert root.status.message == "incomplete: no run_summary"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--summary",), "--summary cannot be written as otlp"),
        (
            ("--format", "otel"),
            "unknown format 'otel'; expected one of table, json, markdown, mermaid, otlp",
        ),
    ],
)
def test_misuse_is_a_usage_error(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    path = standard_run(tmp_path / "run-1.jsonl")
    done = invoke("timeline", "-f", "otlp", *args, path, clean_env=True, env=CLEAN_ENV)
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize(
    "junk",
    [b"\x00\xff\xfe binary junk\n" * 10, b"not: evidence\n", b"[1, 2]\n"],
    ids=["binary", "yaml", "json-array"],
)
def test_not_evidence_is_an_input_error(tmp_path: Path, junk: bytes) -> None:
    path = tmp_path / "junk.jsonl"
    path.write_bytes(junk)
    done = invoke("timeline", "-f", "otlp", path, clean_env=True, env=CLEAN_ENV)
    assert done.returncode == 2
    assert str(path) in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_a_drill_exported_as_a_trace_reads_back_with_its_undone_steps_undone(
    tmp_path: Path,
) -> None:
    """A recovered drill exported with --format otlp, read back as a trace: the steps the
    drill compensated are undone, not owed, so `recover --trace` plans no second undo."""
    path = drill_sample(
        tmp_path, "--scenario", SAMPLES / "scenarios" / "weekly-refund-dispute.yaml"
    )
    done = agentundo("timeline", "--format", "otlp", path)
    assert done.returncode == 0, done.stderr
    trace = tmp_path / "drill.otlp.jsonl"
    trace.write_text(done.stdout, encoding="utf-8")
    compensated = {r["step_id"] for r in records(path) if r["event"] == "compensation_succeeded"}
    assert compensated  # the scenario rolls back for real
    catalog = SAMPLES / "catalog.yaml"
    shown = agentundo("timeline", trace, "--catalog", catalog, "--format", "json")
    assert shown.returncode == 0, shown.stderr
    rows = [json.loads(line) for line in shown.stdout.splitlines()]
    effects = {r["effect"] for r in rows if r.get("event") == "tool_call"}
    assert "owed" not in effects, rows
    undone = {r["job_id"] for r in rows if r.get("effect") == "undone"}
    assert len(undone) == len(compensated), (undone, compensated)
    plan = agentundo(
        "recover", "--trace", trace, "--catalog", catalog,
        "--policy", SAMPLES / "policy.yaml", "--dry-run", "--format", "json",
    )  # fmt: skip
    assert plan.returncode in (0, 1), plan.stdout + plan.stderr
    assert json.loads(plan.stdout)["owed"] == []
