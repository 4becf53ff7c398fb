"""Helpers shared by the servers' contract tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult


async def call(server: Any, tool: str, args: dict[str, Any]) -> CallToolResult:
    """One tool call on a fresh in-memory session.

    Raises:
        MCPError: the server answered with a protocol error (re-raised outside the client's task group,
            so `pytest.raises(MCPError)` sees it rather than an exception group).
    """
    error: MCPError | None = None
    async with Client(server) as client:
        try:
            return await client.call_tool(tool, args)
        except MCPError as exc:
            error = exc
    raise error


def assert_matches_snapshot(path: Path, surface: dict[str, Any]) -> None:
    """The published tool surface equals the committed snapshot; a missing snapshot is written, and fails.

    A change to the model-facing surface then arrives as a reviewable diff of `path`.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(surface, indent=2, sort_keys=True) + "\n")
        pytest.fail(f"no tool-surface snapshot: wrote {path}; review it and commit it")
    assert json.loads(path.read_text()) == surface, f"tool surface changed: review and update {path}"


def http_initialize_status(port: int, host: str, token: str) -> int:
    """The HTTP status of one MCP `initialize` POST to 127.0.0.1:`port`/mcp with this Host header and token."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
    }
    headers = {"Host": host, "Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"}
    with httpx.Client(timeout=20) as client:
        return client.post(f"http://127.0.0.1:{port}/mcp", json=body, headers=headers).status_code
