"""A caller's trace continues through the server: span, log lines and audit record share its trace id."""

from __future__ import annotations

import json
from pathlib import Path

from mcp import Client
from opentelemetry import trace

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
