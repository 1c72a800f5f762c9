"""The engine and its helpers stay sound whatever they are given: no overflow, a deadline
that holds, plans checked, malformed endpoints refused before any call."""

from __future__ import annotations

import math

import pytest

from agentundo.errors import UsageError
from agentundo.model.catalog import Catalog
from agentundo.model.scenario import Fault, FaultType
from agentundo.saga.clock import MAX_WAIT_S, VirtualClock, bounded_wait, rfc3339
from agentundo.saga.drills import HTTP_DEADLINE_S, Options, settings_from
from agentundo.saga.faults import FaultPlan
from agentundo.saga.http import HttpExecutor
from agentundo.saga.plan import check_plan
from agentundo.saga.setup import Settings
from tests.saga_helpers import catalog, ledger, of, policy, run, workflow

REQUIRE_HUMAN_EMAIL = """
version: v1
rules:
  - id: email-needs-a-human
    when: {topic: email.send, is_compensation: false}
    decision: require_human
  - id: prod-writes
    when: {env: production, side_effect: true, is_compensation: false}
    decision: allow
  - id: compensations
    when: {is_compensation: true}
    decision: allow
"""


# -- the clock -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timestamp", "shown"),
    [
        (1e30, "9999-12-31T23:59:59.999Z"),
        (math.inf, "9999-12-31T23:59:59.999Z"),
        (-1e30, "0001-01-01T00:00:00.000Z"),
        (math.nan, "0001-01-01T00:00:00.000Z"),
        (-62135596800.0, "0001-01-01T00:00:00.000Z"),
        (1774964418.25, "2026-03-31T13:40:18.250Z"),
    ],
)
def test_any_time_can_be_shown(timestamp: float, shown: str) -> None:
    assert rfc3339(timestamp) == shown


@pytest.mark.parametrize(
    ("seconds", "waited"),
    [(1e30, MAX_WAIT_S), (math.inf, MAX_WAIT_S), (math.nan, 0.0), (-5.0, 0.0), (2.5, 2.5)],
)
def test_a_virtual_wait_is_between_nothing_and_a_week(seconds: float, waited: float) -> None:
    clock = VirtualClock(start=0.0)
    clock.sleep(seconds)
    assert clock.now() == waited == bounded_wait(seconds)


# -- the engine ----------------------------------------------------------------------


def test_absurd_settings_still_end_in_a_summary() -> None:
    settings = Settings(
        backoff_initial_s=1e30,
        backoff_max_s=math.inf,
        approval_timeout_s=math.inf,
        lock_ttl_s=1e300,
        rollback_window_s=math.inf,
        compensation_timeout_s=math.nan,
    )
    result, records = run(
        {"type": "transient", "step": "charge", "count": 3},
        {"type": "fatal", "step": "ship"},
        pol=policy(REQUIRE_HUMAN_EMAIL),
        approvals=("notify",),
        settings=settings,
    )
    assert records[-1]["event"] == "run_summary"
    assert result.verdict.value == "recovered"
    delays = [r["delay_s"] for r in of(records, "retry_scheduled")]
    assert delays == [MAX_WAIT_S] * 3
    assert records[0]["settings"]["rollback_window_s"] == str(MAX_WAIT_S)


def test_the_deadline_cuts_retries_short_and_fails_the_drill() -> None:
    result, records = run(
        {"type": "transient", "step": "charge", "count": 40},
        settings=Settings(deadline_s=10.0),
    )
    assert result.status.value == "FAILED_FATAL"
    assert result.verdict.value == "failed"
    fatal = of(records, "step_failed_fatal")[0]
    assert fatal["error"].startswith("gave up after 4 attempts: the next retry (in ")
    assert "would start after the drill deadline of 10s: injected transient" in fatal["error"]
    assert result.problems[0].startswith("step 'charge': gave up after 4 attempts")
    assert result.problems[0].endswith("; the run was cut short")
    waited = sum(r["delay_s"] for r in of(records, "retry_scheduled"))
    assert waited < 10


def test_the_deadline_ends_an_approval_wait() -> None:
    result, records = run(pol=policy(REQUIRE_HUMAN_EMAIL), settings=Settings(deadline_s=60.0))
    assert result.status.value == "DENIED"
    assert result.verdict.value == "failed"
    denied = of(records, "step_denied")[0]
    assert denied["reason"].startswith("no approval before the drill deadline of 60s")
    assert result.problems[0] == (
        "step 'notify': no approval before the drill deadline of 60s; the run was cut short"
    )
    assert ledger(result) == {"lookup": "read", "reserve": "undone", "charge": "undone"}


def test_without_a_deadline_injected_retries_recover_as_before() -> None:
    result, _records = run(
        {"type": "transient", "step": "charge", "count": 60},
        settings=Settings(max_retries=3),
    )
    assert result.verdict.value == "recovered"
    assert result.problems == []


# -- plan checks --------------------------------------------------


def _faults(*specs: dict[str, object]) -> list[Fault]:
    return [Fault.model_validate(s) for s in specs]


def test_a_lock_fault_may_not_name_a_step() -> None:
    plan = FaultPlan.of(_faults({"type": "lock_expires", "step": "nope"}))
    problems = check_plan(workflow(), catalog(), plan)
    assert [(p.fault_index, p.message) for p in problems] == [
        (
            0,
            "a lock_expires fault is about the workflow's rollback lock, not a step; "
            "remove 'step: nope'",
        )
    ]


def test_an_unknown_approval_on_the_command_line_is_a_usage_problem() -> None:
    problems = check_plan(workflow(), catalog(), FaultPlan(), ["nope"])
    assert [p.usage for p in problems] == [True]


# -- settings ------------------------------------------------------------------------


def test_the_http_executor_gets_a_deadline_by_default() -> None:
    assert settings_from(None, Options()).deadline_s is None
    assert settings_from(None, Options(executor="http")).deadline_s == HTTP_DEADLINE_S
    assert settings_from(None, Options(executor="http", deadline="5s")).deadline_s == 5.0


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("soon", "--deadline expects a duration such as 90s, 2m or 1h, got 'soon'"),
        ("169h", "--deadline 169h is longer than 168h (7 days)"),
        ("0ms", "--deadline must be longer than 0s"),
    ],
)
def test_a_bad_deadline_is_a_usage_error(value: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        settings_from(None, Options(deadline=value))
    assert str(caught.value) == message


# -- the http executor's endpoints ---------------------------------------------------


def _http_catalog(url: str, headers: dict[str, str] | None = None) -> Catalog:
    return Catalog.model_validate(
        {
            "version": "v1",
            "environment": ["BASE", "TOKEN"],
            "topics": {
                "payments.charge": {
                    "side_effect": True,
                    "http": {"method": "POST", "url": url, "headers": headers or {}},
                }
            },
        }
    )


@pytest.mark.parametrize(
    ("value", "shown", "why"),
    [
        ("http://[::1", "http://[::1/charges", "Invalid IPv6 URL"),
        ("http://ops:hunter2@[::1", "http://***@[::1/charges", "Invalid IPv6 URL"),
        ("http://127.0.0.1:70000", "http://127.0.0.1:70000/charges", "Port out of range"),
    ],
)
def test_a_malformed_url_from_the_environment_is_a_usage_error(
    value: str, shown: str, why: str
) -> None:
    with pytest.raises(UsageError) as caught:
        HttpExecutor(_http_catalog("${BASE}/charges"), env={"BASE": value})
    message = str(caught.value)
    assert message.startswith(
        f"topic 'payments.charge': url '${{BASE}}/charges' (it resolved to '{shown}') "
        f"is malformed: {why}"
    )
    assert "hunter2" not in message


@pytest.mark.parametrize("value", ["Bearer ${TOKEN", "Bearer ${}", "x ${TOKEN} ${"])
def test_a_dollar_brace_that_is_no_variable_is_a_usage_error(value: str) -> None:
    catalog_ = _http_catalog("http://127.0.0.1:1/x", {"Authorization": value})
    with pytest.raises(UsageError) as caught:
        HttpExecutor(catalog_, env={"TOKEN": "t0ken"})
    assert str(caught.value) == (
        "topic 'payments.charge': header 'Authorization' has a '${' that does not start a "
        "variable: write ${NAME} or ${NAME:-default}"
    )


def test_a_templated_port_is_left_to_the_call() -> None:
    with HttpExecutor(_http_catalog("http://127.0.0.1:{params.port}/x"), env={}) as executor:
        assert executor.topics == {"payments.charge"}


@pytest.mark.parametrize(
    "token",
    ["t\u00f6ken", "a\nb", "a\x00b", "", "t0ken-with-a-trailing-space ", "t0k\r\nX-Evil: 1"],
)
def test_a_header_value_http_cannot_carry_is_a_usage_error(token: str) -> None:
    catalog_ = _http_catalog("http://127.0.0.1:1/x", {"Authorization": "Bearer ${TOKEN}"})
    with pytest.raises(UsageError) as caught:
        HttpExecutor(catalog_, env={"TOKEN": token})
    assert str(caught.value) == (
        "topic 'payments.charge': header 'Authorization' has characters an HTTP header "
        "cannot carry (line breaks, control or non-ASCII characters, or a space at either "
        "end; an empty variable in 'Bearer ${VAR}' leaves one)"
    )
    assert token.strip() == "" or token.strip() not in str(caught.value)


def test_a_bad_header_name_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="'X Token' is not a valid HTTP header name"):
        HttpExecutor(_http_catalog("http://127.0.0.1:1/x", {"X Token": "v"}), env={})


def test_credentials_in_a_url_never_reach_a_result() -> None:
    from agentundo.saga.executor import Call, CallKind

    catalog_ = _http_catalog("${BASE}/charges")
    with HttpExecutor(catalog_, env={"BASE": "http://ops:hunter2@127.0.0.1:1"}) as executor:
        result = executor.execute(
            Call(
                kind=CallKind.FORWARD,
                run_id="r",
                workflow_id="w",
                job_id="j",
                step_id="s",
                step_index=0,
                topic="payments.charge",
                timeout_s=2.0,
            )
        )
    assert result.outcome.value == "transient"
    assert "hunter2" not in f"{result.error} {result.detail}"
    assert result.detail["url"] == "[REDACTED]/charges"  # a value from the environment


def test_every_fault_type_is_a_step_fault_a_lock_fault_or_policy_unavailable() -> None:
    from agentundo.model.scenario import STEP_FAULTS, WORKFLOW_FAULTS

    for kind in FaultType:
        homes = [kind in STEP_FAULTS, kind in WORKFLOW_FAULTS, kind is FaultType.POLICY_UNAVAILABLE]
        assert homes.count(True) == 1, kind
