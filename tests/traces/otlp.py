"""Read OTLP JSON in tests: parse it back with the OpenTelemetry protobuf types.

OTLP JSON is protobuf's JSON mapping with two changes (hex trace and span ids, integer
enums); :func:`parse_request` undoes the first so ``google.protobuf.json_format.Parse``
accepts the document, and rejects anything that is not an ``ExportTraceServiceRequest``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from google.protobuf.json_format import Parse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def _base64_ids(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: (
                base64.b64encode(bytes.fromhex(value)).decode()
                if key in ID_FIELDS and isinstance(value, str)
                else _base64_ids(value)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_base64_ids(item) for item in node]
    return node


def parse_request(document: dict[str, Any]) -> ExportTraceServiceRequest:
    """One OTLP JSON document as the protobuf message (unknown fields rejected)."""
    message = ExportTraceServiceRequest()
    Parse(json.dumps(_base64_ids(document)), message)
    return message


def documents(path: Path) -> list[dict[str, Any]]:
    """The OTLP JSON documents of a file: one per line (``.jsonl``) or one in all."""
    text = path.read_text(encoding="utf-8")
    if path.name.endswith(".jsonl"):
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return [json.loads(text)]


def spans(requests: list[ExportTraceServiceRequest]) -> Iterator[Span]:
    """Every span of ``requests``, in file order."""
    for request in requests:
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                yield from scope_spans.spans


def attributes(span: Span) -> dict[str, Any]:
    """A span's attributes as a plain dict (string, bool, int or double values)."""
    found: dict[str, Any] = {}
    for attribute in span.attributes:
        kind = attribute.value.WhichOneof("value")
        found[attribute.key] = getattr(attribute.value, kind) if kind else None
    return found
