"""OpenTelemetry set-up: spans to a local JSONL file, or over OTLP when an endpoint is configured.

The mcp SDK already opens a SERVER span per request and continues the caller's trace from the
request's `_meta` (W3C traceparent). goresolve adds child spans per tool call and backend call
through `tracer()`. The exporter choice is made once, at the edge, from `TracingConfig`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)


@dataclass(frozen=True)
class TracingConfig:
    service: str
    jsonl_path: Path | None = None
    otlp_endpoint: str | None = None


class JsonlSpanExporter(SpanExporter):
    """Appends one JSON object per finished span to a file (the local, account-free default)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = []
        for span in spans:
            ctx = span.get_span_context()
            if ctx is None:
                continue
            lines.append(
                json.dumps(
                    {
                        "name": span.name,
                        "trace_id": format(ctx.trace_id, "032x"),
                        "span_id": format(ctx.span_id, "016x"),
                        "parent_id": format(span.parent.span_id, "016x") if span.parent else None,
                        "start_ns": span.start_time,
                        "end_ns": span.end_time,
                        "status": span.status.status_code.name,
                        "attributes": dict(span.attributes or {}),
                    },
                    default=str,
                )
            )
        try:
            with self._lock, self._path.open("a", encoding="utf-8") as fh:
                fh.write("".join(line + "\n" for line in lines))
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


_configured: TracerProvider | None = None


def configure_tracing(config: TracingConfig) -> TracerProvider:
    """Install the global tracer provider once per process (later calls return the first one)."""
    global _configured
    if _configured is not None:
        return _configured
    provider = TracerProvider(resource=Resource.create({"service.name": config.service}))
    if config.otlp_endpoint:
        # Imported lazily: the OTLP exporter is only needed where a collector exists.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=_traces_url(config.otlp_endpoint))))
    elif config.jsonl_path is not None:
        provider.add_span_processor(SimpleSpanProcessor(JsonlSpanExporter(config.jsonl_path)))
    trace.set_tracer_provider(provider)
    _configured = provider
    return provider


def _traces_url(endpoint: str) -> str:
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else f"{endpoint}/v1/traces"


def tracer(name: str = "goresolve") -> trace.Tracer:
    return trace.get_tracer(name)


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None
