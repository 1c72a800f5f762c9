"""Verdicts of single drills that did not rehearse what they were asked to.

1. A forward step that fails for real (not by an injected fault) with ``--executor http``:
   a 401, 403, 404 or a 3xx redirect is no rehearsal, so the drill fails (exit 1).
2. An injected fault aimed at a step the run never dispatched (an earlier step was
   denied, say) was never rehearsed: the drill fails (exit 1), outside ``--sweep`` too.

Every test runs the ``agentundo`` CLI (in this process, tests/cli_runner.py); the HTTP tests talk to a real
server on 127.0.0.1 started by the test.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import invoke
from tests.saga_helpers import CATALOG, DENY_EMAIL, POLICY, WORKFLOW, write

# -- a small HTTP service: /charge/<step> answers what the test says, /refund/<step> 200


@dataclass
class Service:
    url: str = ""
    answers: dict[str, int] = field(default_factory=dict)  # step -> status of its charge
    calls: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    charged: set[str] = field(default_factory=set)  # steps charged and not refunded


def _handler(service: Service) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            service.calls.append(("POST", self.path))
            kind, _, step = self.path.strip("/").partition("/")
            status = service.answers.get(step, 200) if kind == "charge" else 200
            if status >= 300:
                body = json.dumps({"error": "no"})
            elif kind == "charge":
                service.charged.add(step)
                body = json.dumps({"applied": True})
            else:  # a refund undoes a charge that landed, and only that
                body = json.dumps({"applied": step in service.charged})
                service.charged.discard(step)
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", f"{service.url}/elsewhere/{step}")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, format: str, *args: Any) -> None:
            del format, args

    return Handler


@pytest.fixture
def service() -> Iterator[Service]:
    state = Service()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


HTTP_WORKFLOW = """
version: v1
workflow: pay
env: staging
steps:
  - {id: s1, topic: pay.charge}
  - {id: s2, topic: pay.charge}
  - {id: s3, topic: pay.charge}
"""

HTTP_CATALOG = """
version: v1
topics:
  pay.charge:
    side_effect: true
    rollback: compensatable
    idempotency_key: "{run_id}:{step_id}:charge"
    http:
      method: POST
      url: "${SERVICE_URL}/charge/{step_id}"
      body: {step: "{step_id}"}
      timeout: 5s
    compensation:
      topic: pay.refund
      idempotency_key: "{run_id}:{step_id}:refund"
      http:
        method: POST
        url: "${SERVICE_URL}/refund/{step_id}"
        body: {step: "{step_id}"}
        timeout: 5s
  pay.refund:
    side_effect: true
    rollback: irreversible
"""

HTTP_POLICY = """
version: v1
default_decision: allow
rules: []
"""


def _run(tmp_path: Path, *extra: str, env: dict[str, str] | None = None, **files: str) -> Any:
    """``agentundo drill`` on the files given (workflow, catalog, policy, scenario)."""
    args = [
        "drill",
        str(write(tmp_path, "wf.yaml", files.get("workflow", WORKFLOW))),
        "--catalog",
        str(write(tmp_path, "catalog.yaml", files.get("catalog", CATALOG))),
        "--policy",
        str(write(tmp_path, "policy.yaml", files.get("policy", POLICY))),
        "--evidence",
        str(tmp_path / "evidence"),
        *extra,
    ]
    if "scenario" in files:
        args += ["--scenario", str(write(tmp_path, "s.yaml", files["scenario"]))]
    return invoke(*args, cwd=tmp_path, env=env)


def _json(done: Any) -> dict[str, Any]:
    out = json.loads(done.stdout)
    assert isinstance(out, dict)
    return out


def _evidence_summary(tmp_path: Path) -> dict[str, Any]:
    (path,) = (tmp_path / "evidence").glob("*.jsonl")
    records = [json.loads(line) for line in path.read_text().splitlines()]
    (summary,) = [r for r in records if r["event"] == "run_summary"]
    assert isinstance(summary, dict)
    return summary


def _http_drill(tmp_path: Path, service: Service, *extra: str) -> Any:
    return _run(
        tmp_path,
        "--executor",
        "http",
        "--clock",
        "virtual",
        "--format",
        "json",
        *extra,
        env={"SERVICE_URL": service.url},
        workflow=HTTP_WORKFLOW,
        catalog=HTTP_CATALOG,
        policy=HTTP_POLICY,
    )


# -- 1. real forward failures with --executor http ------------------------------------


@pytest.mark.parametrize("status", [401, 403, 404, 302, 307])
def test_a_real_non_transient_failure_fails_the_drill(
    tmp_path: Path, service: Service, status: int
) -> None:
    service.answers["s2"] = status
    done = _http_drill(tmp_path, service)
    assert done.returncode == 1, done.stdout + done.stderr
    out = _json(done)
    assert out["summary"]["status"] == "FAILED_FATAL"
    assert out["verdict"] == "failed"
    assert out["exit_code"] == 1
    (problem,) = out["problems"]
    assert problem.startswith("step 's2': it failed for real (")
    assert f"HTTP {status} from POST {service.url}/charge/s2" in problem
    assert "did not rehearse" in problem
    # the rollback still ran, and the evidence says the same as the report
    assert ("POST", "/refund/s1") in service.calls
    summary = _evidence_summary(tmp_path)
    assert summary["verdict"] == "failed"
    assert summary["problems"] == out["problems"]
    # a redirect is not followed: it is an answer, not the charge
    assert not any(path.startswith("/elsewhere") for _method, path in service.calls)


def test_a_real_failure_is_shown_in_the_text_report(tmp_path: Path, service: Service) -> None:
    service.answers["s1"] = 401
    done = _run(
        tmp_path,
        "--executor",
        "http",
        "--clock",
        "virtual",
        env={"SERVICE_URL": service.url, "COLUMNS": "200"},
        workflow=HTTP_WORKFLOW,
        catalog=HTTP_CATALOG,
        policy=HTTP_POLICY,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "step 's1': it failed for real (HTTP 401" in done.stdout
    assert "recovered" not in done.stdout.split("problem")[-1]


def test_a_real_failure_after_injected_transient_ones_fails_the_drill(
    tmp_path: Path, service: Service
) -> None:
    service.answers["s2"] = 403
    done = _http_drill(tmp_path, service, "--transient", "s2=2")
    assert done.returncode == 1, done.stdout + done.stderr
    out = _json(done)
    assert out["verdict"] == "failed"
    assert any("step 's2': it failed for real (HTTP 403" in p for p in out["problems"])


def test_an_injected_failure_against_real_endpoints_still_recovers(
    tmp_path: Path, service: Service
) -> None:
    done = _http_drill(tmp_path, service, "--fail-at", "s3", "--no-compensate-failed-step")
    assert done.returncode == 0, done.stdout + done.stderr
    out = _json(done)
    assert (out["summary"]["status"], out["verdict"], out["problems"]) == (
        "FAILED_FATAL",
        "recovered",
        [],
    )
    assert ("POST", "/refund/s2") in service.calls
    assert ("POST", "/refund/s1") in service.calls


def test_a_real_failure_at_the_step_a_fault_targets_is_still_real(
    tmp_path: Path, service: Service
) -> None:
    """``--fail-at s3`` is never injected when s2 fails for real first: both are named."""
    service.answers["s2"] = 401
    done = _http_drill(tmp_path, service, "--fail-at", "s3")
    assert done.returncode == 1, done.stdout + done.stderr
    problems = _json(done)["problems"]
    assert problems[0].startswith("step 's2': it failed for real (HTTP 401")
    assert problems[1] == (
        "fatal fault at 's3' was never reached (the run stopped at 's2'): "
        "the drill did not rehearse it"
    )


# -- 2. injected faults that are never reached ----------------------------------------

"""Denies ``notify`` (step 4 of 5), so ``ship`` (step 5) is never dispatched."""


def _denied_drill(tmp_path: Path, *extra: str, scenario: str | None = None) -> Any:
    files = {"policy": DENY_EMAIL}
    if scenario is not None:
        files["scenario"] = scenario
    return _run(tmp_path, "--format", "json", *extra, **files)


@pytest.mark.parametrize(
    ("flags", "fault"),
    [
        (("--fail-at", "ship"), "fatal"),
        (("--partial", "ship"), "partial"),
        (("--transient", "ship=2"), "transient"),
    ],
)
def test_a_flag_fault_never_reached_fails_the_drill(
    tmp_path: Path, flags: tuple[str, str], fault: str
) -> None:
    done = _denied_drill(tmp_path, *flags)
    assert done.returncode == 1, done.stdout + done.stderr
    out = _json(done)
    assert (out["summary"]["status"], out["verdict"]) == ("DENIED", "failed")
    assert out["problems"] == [
        f"{fault} fault at 'ship' was never reached (the run stopped at 'notify'): "
        "the drill did not rehearse it"
    ]
    assert _evidence_summary(tmp_path)["problems"] == out["problems"]


def test_without_the_unreached_fault_the_same_run_recovers(tmp_path: Path) -> None:
    done = _denied_drill(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (_json(done)["verdict"], _json(done)["problems"]) == ("recovered", [])


@pytest.mark.parametrize(
    "fault",
    [
        "{type: fatal, step: ship}",
        "{type: compensation_failure, step: ship, count: 1}",
        "{type: compensation_denied, step: ship}",
        "{type: duplicate_delivery, step: ship}",
        "{type: policy_unavailable, step: ship, phase: forward}",
    ],
)
def test_a_scenario_fault_never_reached_fails_the_drill(tmp_path: Path, fault: str) -> None:
    scenario = f"version: v1\nkind: scenario\nscenario: late\nfaults:\n  - {fault}\n"
    done = _denied_drill(tmp_path, scenario=scenario)
    assert done.returncode == 1, done.stdout + done.stderr
    (problem,) = _json(done)["problems"]
    kind = fault.split(",")[0].split(": ")[1]
    assert problem == (
        f"{kind} fault at 'ship' was never reached (the run stopped at 'notify'): "
        "the drill did not rehearse it"
    )


def test_a_fault_at_the_denied_step_itself_was_never_injected(tmp_path: Path) -> None:
    done = _denied_drill(tmp_path, "--fail-at", "notify")
    assert done.returncode == 1, done.stdout + done.stderr
    assert _json(done)["problems"] == [
        "fatal fault at 'notify' was never reached (the step was denied before it was "
        "dispatched): the drill did not rehearse it"
    ]


def test_the_text_report_names_the_unreached_fault(tmp_path: Path) -> None:
    done = _run(tmp_path, "--fail-at", "ship", policy=DENY_EMAIL, env={"COLUMNS": "200"})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "fatal fault at 'ship' was never reached (the run stopped at 'notify')" in done.stdout


def test_faults_on_steps_that_ran_are_reached(tmp_path: Path) -> None:
    """Compensation faults on dispatched steps count as reached; the rollback reached them."""
    scenario = """
    version: v1
    kind: scenario
    scenario: early
    faults:
      - {type: compensation_failure, step: charge, count: 1}
      - {type: transient, step: reserve, count: 2}
      - {type: policy_unavailable, step: notify, phase: forward}
    """
    done = _run(tmp_path, "--format", "json", policy=DENY_EMAIL, scenario=scenario)
    assert done.returncode == 0, done.stdout + done.stderr
    out = _json(done)
    assert (out["verdict"], out["problems"]) == ("recovered", [])


def test_a_compensation_fault_on_a_step_that_ran_without_a_rollback_is_not_a_failure(
    tmp_path: Path,
) -> None:
    """The step ran; the run succeeded, so no compensation was due: documented as legitimate."""
    scenario = """
    version: v1
    kind: scenario
    scenario: no-rollback
    faults:
      - {type: compensation_failure, step: charge}
    """
    done = _run(tmp_path, "--format", "json", scenario=scenario)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _json(done)["verdict"] == "completed"


def test_the_sweep_still_marks_unreached_runs_not_reached(tmp_path: Path) -> None:
    scenario = """
    version: v1
    kind: scenario
    scenario: sweep
    faults:
      - {type: transient, step: ship, count: 1}
    """
    done = _run(tmp_path, "--sweep", "--format", "json", policy=DENY_EMAIL, scenario=scenario)
    assert done.returncode == 1, done.stdout + done.stderr
    runs = _json(done)["runs"]
    assert [r["verdict"] for r in runs] == [
        "recovered",
        "recovered",
        "recovered",
        "not_reached",
        "not_reached",
    ]
