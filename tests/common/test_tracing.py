"""A caller's trace continues through the server: span, log lines and audit record share its trace id."""

from __future__ import annotations

import http.server
import io
import json
import os
import sys
import threading
from pathlib import Path
from typing import ClassVar

import anyio
from mcp import Client, StdioServerParameters
from opentelemetry import trace

from servers.common.logging import configure_logging
from servers.common.policy import Policies
from servers.common.tracing import JsonlSpanExporter
from servers.jira_read.local import LocalJiraBackend
from servers.jira_read.server import build_server
from servers.jira_read.settings import JiraReadSettings

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


async def test_trace_context_in_request_meta_is_continued(tmp_path: Path, policies: Policies) -> None:
    settings = JiraReadSettings(state_dir=tmp_path / "state")
    server = build_server(settings, policies, LocalJiraBackend(settings.tickets_dir))
    async with Client(server) as client:
        result = await client.call_tool("get_issue", {"key": "SVC-1"}, meta={"traceparent": TRACEPARENT})
    assert not result.is_error
    audit = [json.loads(line) for line in (tmp_path / "state" / "audit" / "jira-read.jsonl").read_text().splitlines()]
    assert audit[-1]["trace_id"] == TRACE_ID


def test_jsonl_exporter_writes_one_line_per_span(tmp_path: Path) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JsonlSpanExporter(tmp_path / "spans.jsonl")))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("outer"), tracer.start_as_current_span("inner") as inner:
        inner.set_attribute("goresolve.tool", "get_issue")
    spans = [json.loads(line) for line in (tmp_path / "spans.jsonl").read_text().splitlines()]
    assert [s["name"] for s in spans] == ["inner", "outer"]
    assert spans[0]["parent_id"] == spans[1]["span_id"]
    assert spans[0]["trace_id"] == spans[1]["trace_id"]
    assert spans[0]["attributes"] == {"goresolve.tool": "get_issue"}
    assert trace.get_current_span() is not inner


class _Collector(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, int]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        _Collector.received.append((self.path, len(body)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


async def test_spans_go_over_otlp_when_an_endpoint_is_set(tmp_path: Path, policy_dir: Path) -> None:
    collector = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GORESOLVE_", "OTEL_"))}
    env.update(
        GORESOLVE_JIRA_READ_STATE_DIR=str(tmp_path),
        GORESOLVE_JIRA_READ_POLICY_DIR=str(policy_dir),
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{collector.server_address[1]}",
    )
    params = StdioServerParameters(command=sys.executable, args=["-m", "servers.jira_read"], env=env)
    try:
        async with Client(params) as client:
            await client.call_tool("get_issue", {"key": "SVC-1"}, meta={"traceparent": TRACEPARENT})
        with anyio.fail_after(20):  # the server flushes its batch when it exits
            while not _Collector.received:
                await anyio.sleep(0.05)
    finally:
        collector.shutdown()
    assert _Collector.received[0][0] == "/v1/traces"
    assert _Collector.received[0][1] > 0
    assert not (tmp_path / "traces").exists(), "with OTLP configured, no local span file is written"


async def test_log_lines_during_a_call_carry_its_trace_id(tmp_path: Path, policies: Policies) -> None:
    settings = JiraReadSettings(state_dir=tmp_path / "state")
    server = build_server(settings, policies, LocalJiraBackend(settings.tickets_dir))
    stream = io.StringIO()
    configure_logging(service="jira-read", stream=stream)
    async with Client(server) as client:
        await client.call_tool("get_issue", {"key": "SVC-404"}, meta={"traceparent": TRACEPARENT})
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    failed = [line for line in lines if line.get("event") == "tool failed"]
    assert failed
    assert all(line["trace_id"] == TRACE_ID for line in failed)
