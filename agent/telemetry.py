"""OpenTelemetry for runs: one trace per run (continued from the webhook's traceparent when given),
GenAI semantic-convention attributes on model calls, and every finished span of a run kept for its
run directory (`goresolve trace RUN_ID` renders them). MCP carries the context to the servers in
each request's `_meta` (the SDK's dispatcher injects the current span), so their spans join the trace.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagate import extract
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider

from agent.ledger import open_private

TRACER = "goresolve.agent"


class RunSpans(SpanProcessor):
    """Keeps finished spans by trace id until the run collects them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: dict[int, list[dict[str, Any]]] = defaultdict(list)

    def on_end(self, span: ReadableSpan) -> None:
        ctx = span.get_span_context()
        if ctx is None:
            return
        record = {
            "name": span.name,
            "trace_id": format(ctx.trace_id, "032x"),
            "span_id": format(ctx.span_id, "016x"),
            "parent_id": format(span.parent.span_id, "016x") if span.parent else None,
            "start_ns": span.start_time,
            "end_ns": span.end_time,
            "status": span.status.status_code.name,
            "attributes": {k: _plain(v) for k, v in (span.attributes or {}).items()},
        }
        with self._lock:
            self._spans[ctx.trace_id].append(record)

    def collect(self, trace_id: int) -> list[dict[str, Any]]:
        with self._lock:
            return self._spans.pop(trace_id, [])


def _plain(value: object) -> Any:
    if isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]  # pyright: ignore[reportUnknownVariableType]
    return str(value)


_sink: RunSpans | None = None


def run_spans() -> RunSpans:
    """The process's span sink, installed on the global SDK provider (creating one when none is set)."""
    global _sink
    if _sink is not None:
        return _sink
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider(resource=Resource.create({"service.name": "goresolve-agent"}))
        trace.set_tracer_provider(provider)
    provider = trace.get_tracer_provider()
    sink = RunSpans()
    if isinstance(provider, TracerProvider):
        provider.add_span_processor(sink)
    _sink = sink
    return sink


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER)


def parent_context(traceparent: str | None) -> Context | None:
    """The webhook's W3C traceparent as a parent context (None: start a new trace)."""
    if not traceparent:
        return None
    ctx = extract({"traceparent": traceparent})
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


def write_spans(path: Path, spans: list[dict[str, Any]]) -> None:
    """The run's spans as JSON lines; a new file is 0600 (the user's alone, like the rest of the run)."""
    with open_private(path) as fh:
        fh.write("".join(json.dumps(s, default=str) + "\n" for s in spans))
