"""Record real pydantic-ai agent runs as OTLP JSON: the fixtures of tests/fixtures/otlp/.

Each scenario runs a pydantic-ai ``Agent`` offline: a ``FunctionModel`` decides the tool
calls from a fixed script (no LLM, no network) and the tools act on an in-memory ledger
shaped like examples/ledger/ledger_service.py (charge ids ``ch_N``, refund ids ``re_N``).
``Agent.instrument_all()`` turns on pydantic-ai's OpenTelemetry GenAI instrumentation; the
OpenTelemetry SDK's ``InMemorySpanExporter`` records the spans, and
``opentelemetry.exporter.otlp.proto.common.trace_encoder.encode_spans`` encodes them into
an ``ExportTraceServiceRequest``, written as OTLP JSON (``google.protobuf.json_format``).

The output is deterministic for given package versions:

* trace and span ids come from :class:`FixedIds` (sha256 of the scenario's name and a count);
* the SDK's clock is replaced by :class:`FixedClock` (1 ms per reading from a fixed instant);
* pydantic-ai's run and conversation ids are passed in (``run_id=``, ``conversation_id=``);
* an exception's stack trace (file paths and line numbers of this machine and of the
  installed packages) is cut to its last line, the only part a reader of the trace needs.

OTLP JSON differs from protobuf's canonical JSON in two ways, applied here as the
OpenTelemetry Collector's file exporter writes it: trace and span ids are hex (not base64),
and enums (span kind, status code) are integers.

The packages are in the ``test`` extra of pyproject.toml, pinned to a minor (pydantic-ai-slim
2.68, opentelemetry-sdk, -exporter-otlp-proto-common and -proto 1.45): pydantic-ai-slim 2.68
needs ``pydantic`` 2 and ``httpx2`` (not ``httpx``), so it resolves next to agentundo's
``pydantic<3`` and ``httpx<1`` (``pip check`` finds no conflict). Only the tests use them:
reading OTLP JSON needs none of them.

Run from the repository root::

    python tests/traces/generate_traces.py            # (re)write tests/fixtures/otlp/
    python tests/traces/generate_traces.py --check    # exit 1 if a fixture would change
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace.id_generator import IdGenerator

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "otlp"
"""Where the fixtures are written."""

EPOCH_NS = 1_790_000_000_000_000_000
"""The fixed clock's first reading: 2026-09-21T14:13:20Z, in unix nanoseconds."""

TICK_NS = 1_000_000
"""How far the fixed clock moves on each reading (1 ms)."""

BATCH = 4
"""Spans per line of a ``.otlp.jsonl`` fixture: one export of a batching span processor."""

SERVICE = "ledger-agent"
"""The ``service.name`` of every fixture's resource, and the agent's name."""


# --- deterministic ids and clock --------------------------------------------------------


class FixedIds(IdGenerator):
    """An OpenTelemetry ``IdGenerator`` whose ids are a function of a seed and a count."""

    def __init__(self, seed: str) -> None:
        self.seed = seed
        self.traces = 0
        self.spans = 0

    def _digest(self, kind: str, count: int) -> bytes:
        return hashlib.sha256(f"{self.seed}:{kind}:{count}".encode()).digest()

    def generate_trace_id(self) -> int:
        self.traces += 1
        return int.from_bytes(self._digest("trace", self.traces)[:16], "big")

    def generate_span_id(self) -> int:
        self.spans += 1
        return int.from_bytes(self._digest("span", self.spans)[:8], "big")

    def is_trace_id_random(self) -> bool:
        return False  # derived from a seed: no W3C "random" trace flag


class FixedClock:
    """A clock that starts at :data:`EPOCH_NS` and moves :data:`TICK_NS` per reading."""

    def __init__(self, start: int = EPOCH_NS) -> None:
        self.now = start

    def __call__(self) -> int:
        self.now += TICK_NS
        return self.now


@contextmanager
def fixed_clock(clock: FixedClock) -> Iterator[None]:
    """Make the OpenTelemetry SDK read span and event times from ``clock``."""
    import opentelemetry.sdk.trace as sdk_trace

    saved = sdk_trace.time_ns
    sdk_trace.time_ns = clock
    try:
        yield
    finally:
        sdk_trace.time_ns = saved


# --- the ledger the tools act on -------------------------------------------------------


@dataclass
class Ledger:
    """The example ledger service's state, in memory: ids as the service makes them."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    grants: list[dict[str, Any]] = field(default_factory=list)
    mails: list[dict[str, Any]] = field(default_factory=list)
    fail_charges_for: frozenset[str] = frozenset()

    def balance(self) -> dict[str, Any]:
        charged = sum(e["amount"] for e in self.entries if e["type"] == "charge")
        refunded = sum(e["amount"] for e in self.entries if e["type"] == "refund")
        return {"charged": charged, "refunded": refunded, "balance": charged - refunded}

    def charge(self, order_id: str, amount: int) -> dict[str, Any]:
        if order_id in self.fail_charges_for:
            # A built-in type, so the span's exception.type does not depend on how this
            # script was started (``__main__.X`` or ``tests.traces.generate_traces.X``).
            raise RuntimeError(f"ledger answered 502 Bad Gateway to POST /charges ({order_id})")
        entry = {"type": "charge", "id": f"ch_{len(self.entries) + 1}", "amount": amount}
        self.entries.append(entry | {"order_id": order_id})
        return {"charge_id": entry["id"], "order_id": order_id, "amount": amount}

    def refund(self, charge_id: str, amount: int) -> dict[str, Any]:
        entry = {"type": "refund", "id": f"re_{len(self.entries) + 1}", "amount": amount}
        self.entries.append(entry | {"charge_id": charge_id})
        return {"refund_id": entry["id"], "charge_id": charge_id, "amount": amount, "applied": True}

    def grant(self, user: str, role: str) -> dict[str, Any]:
        grant = {"grant_id": f"gr_{len(self.grants) + 1}", "user": user, "role": role}
        self.grants.append(grant)
        return grant

    def send(self, to: str, subject: str) -> dict[str, Any]:
        mail = {"message_id": f"msg_{len(self.mails) + 1}", "to": to, "subject": subject}
        self.mails.append(mail)
        return {"message_id": mail["message_id"], "accepted": True}


# --- scenarios -------------------------------------------------------------------------

Call = tuple[str, dict[str, Any]]
"""A tool call the model decides on: the tool's name and its arguments."""


@dataclass(frozen=True)
class Run:
    """One agent run: the user's prompt and the tool calls the model makes, in order."""

    prompt: str
    calls: Sequence[Call]
    fail_charges_for: frozenset[str] = frozenset()
    answer: str = "Done."


ONBOARD = Run(
    prompt="Onboard customer ana@example.com: charge order o-1001, give access, welcome mail, then charge o-1002.",
    calls=(
        ("get_balance", {}),
        ("charge_card", {"order_id": "o-1001", "amount": 1200}),
        ("grant_access", {"user": "ana@example.com", "role": "premium"}),
        (
            "send_email",
            {
                "to": "ana@example.com",
                "subject": "Welcome to premium",
                "body": "Your access is ready.",
            },
        ),
        ("charge_card", {"order_id": "o-1002", "amount": 800}),
    ),
    fail_charges_for=frozenset({"o-1002"}),
)
"""The failed run: a read, a charge and a grant that land, a mail (irreversible), a charge that fails."""

REFUND = Run(
    prompt="Charge order o-2001 and refund it at once: the customer cancelled.",
    calls=(
        ("charge_card", {"order_id": "o-2001", "amount": 450}),
        ("refund_charge", {"charge_id": "ch_1", "amount": 450}),
        ("get_balance", {}),
    ),
    answer="Charged ch_1 and refunded it; the balance is 0.",
)
"""A successful run: a charge, its refund, a read."""

COUPON = Run(
    prompt="Charge order o-3001 with the spring coupon.",
    calls=(
        ("get_balance", {}),
        ("apply_coupon", {"order_id": "o-3001", "code": "SPRING10"}),
        ("charge_card", {"order_id": "o-3001", "amount": 900}),
    ),
    answer="Charged ch_1 (900) after coupon SPRING10.",
)
"""A successful run with ``apply_coupon``, a tool no catalog topic names."""


@dataclass(frozen=True)
class Scenario:
    """A fixture: its file name, the runs it holds, and how it is recorded and written."""

    name: str
    runs: Sequence[Run]
    include_content: bool = True
    jsonl: bool = True


SCENARIOS = (
    Scenario("failed-run.otlp.jsonl", (ONBOARD,)),
    Scenario("two-runs.otlp.json", (REFUND, ONBOARD), jsonl=False),
    Scenario("no-content.otlp.jsonl", (ONBOARD,), include_content=False),
    Scenario("unknown-tool.otlp.jsonl", (COUPON,)),
)


def _scripted_model(run: Run) -> Any:
    """A ``FunctionModel`` that makes ``run``'s tool calls one per response, then answers."""
    from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    def decide(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        made = sum(1 for message in messages if isinstance(message, ModelResponse))
        if made < len(run.calls):
            name, args = run.calls[made]
            return ModelResponse(parts=[ToolCallPart(name, args, tool_call_id=f"call_{made + 1}")])
        return ModelResponse(parts=[TextPart(run.answer)])

    return FunctionModel(decide, model_name="scripted-ledger-agent")


def _agent(run: Run, ledger: Ledger) -> Any:
    """The agent of the fixtures: the ledger's tools, named as an agent would name them."""
    from pydantic_ai import Agent

    agent = Agent(
        _scripted_model(run),
        name=SERVICE,
        instructions="You run payments on the ledger. Use the tools; never guess ids.",
    )

    @agent.tool_plain
    def get_balance() -> dict[str, Any]:
        """Read the ledger's balance."""
        return ledger.balance()

    @agent.tool_plain
    def charge_card(order_id: str, amount: int) -> dict[str, Any]:
        """Charge an order (amount in cents)."""
        return ledger.charge(order_id, amount)

    @agent.tool_plain
    def refund_charge(charge_id: str, amount: int) -> dict[str, Any]:
        """Refund one charge by its id."""
        return ledger.refund(charge_id, amount)

    @agent.tool_plain
    def grant_access(user: str, role: str) -> dict[str, Any]:
        """Give a user a role."""
        return ledger.grant(user, role)

    @agent.tool_plain
    def send_email(to: str, subject: str, body: str) -> dict[str, Any]:
        """Send an email (it cannot be unsent)."""
        return ledger.send(to, subject)

    @agent.tool_plain
    def apply_coupon(order_id: str, code: str) -> dict[str, Any]:
        """Apply a coupon code to an order."""
        return {"order_id": order_id, "code": code, "discount_percent": 10}

    return agent


def record(scenario: Scenario) -> list[Any]:
    """Run ``scenario``'s agent runs instrumented; their finished spans, in the order they ended."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.version import __version__ as sdk_version
    from pydantic_ai import Agent
    from pydantic_ai.models.instrumented import InstrumentationSettings

    exporter = InMemorySpanExporter()
    resource = Resource(
        {
            "service.name": SERVICE,
            "telemetry.sdk.language": "python",
            "telemetry.sdk.name": "opentelemetry",
            "telemetry.sdk.version": sdk_version,
        }
    )
    provider = TracerProvider(resource=resource, id_generator=FixedIds(scenario.name))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    Agent.instrument_all(
        InstrumentationSettings(tracer_provider=provider, include_content=scenario.include_content)
    )
    try:
        with fixed_clock(FixedClock()):
            for index, run in enumerate(scenario.runs, start=1):
                _run_one(run, index=index, scenario=scenario)
    finally:
        Agent.instrument_all(False)
        provider.shutdown()
    return list(exporter.get_finished_spans())


def _run_one(run: Run, *, index: int, scenario: Scenario) -> None:
    """Run one agent run; a tool that fails fails the run, as it would in production."""
    ledger = Ledger(fail_charges_for=run.fail_charges_for)
    agent = _agent(run, ledger)
    seed = hashlib.sha256(f"{scenario.name}:{index}".encode()).hexdigest()
    ids = {
        "run_id": f"{seed[:8]}-{seed[8:12]}-7{seed[13:16]}-8{seed[17:20]}-{seed[20:32]}",
        "conversation_id": f"{seed[32:40]}-{seed[40:44]}-7{seed[45:48]}-8{seed[49:52]}-{seed[52:64]}",
    }
    try:
        agent.run_sync(run.prompt, **ids)
    except RuntimeError as error:
        if not (run.fail_charges_for and "502 Bad Gateway" in str(error)):
            raise


# --- encoding --------------------------------------------------------------------------


def _hex_ids(node: Any) -> Any:
    """Protobuf JSON (base64 ids, named enums as numbers already) made OTLP JSON: hex ids."""
    if isinstance(node, dict):
        return {
            key: (
                base64.b64decode(value).hex()
                if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str)
                else _hex_ids(value)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_hex_ids(item) for item in node]
    return node


def _short_stacktraces(node: Any) -> Any:
    """Each ``exception.stacktrace`` cut to its last line (``Type: message``)."""
    if isinstance(node, dict):
        if node.get("key") == "exception.stacktrace":
            text = node["value"]["stringValue"].rstrip("\n")
            return {"key": node["key"], "value": {"stringValue": text.rsplit("\n", 1)[-1]}}
        return {key: _short_stacktraces(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_short_stacktraces(item) for item in node]
    return node


def encode(spans: Sequence[Any]) -> dict[str, Any]:
    """``spans`` as one OTLP JSON ``ExportTraceServiceRequest`` (``{"resourceSpans": [...]}``)."""
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    message = encode_spans(spans)
    as_dict = MessageToDict(message, use_integers_for_enums=True)
    return _short_stacktraces(_hex_ids(as_dict))  # type: ignore[no-any-return]


def render(scenario: Scenario) -> str:
    """The text of ``scenario``'s fixture file."""
    spans = record(scenario)
    if not scenario.jsonl:
        return json.dumps(encode(spans), indent=2, ensure_ascii=False) + "\n"
    batches = [spans[i : i + BATCH] for i in range(0, len(spans), BATCH)]
    lines = [
        json.dumps(encode(batch), separators=(",", ":"), ensure_ascii=False) for batch in batches
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None, *, out: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--check", action="store_true", help="compare, do not write; exit 1 on a difference"
    )
    parser.add_argument(
        "--dir", type=Path, default=FIXTURES, help="where the fixtures are (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    changed = 0
    for scenario in SCENARIOS:
        path = args.dir / scenario.name
        text = render(scenario)
        same = path.is_file() and path.read_text(encoding="utf-8") == text
        if args.check:
            if not same:
                changed += 1
                out(f"{path}: differs from a fresh generation")
            continue
        if not same:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        out(f"{path}: {'unchanged' if same else 'written'}")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
