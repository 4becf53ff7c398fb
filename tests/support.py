"""Helpers shared by the servers' contract tests."""

from __future__ import annotations

from typing import Any

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


def surface_of(tools: list[Any]) -> list[dict[str, Any]]:
    """The snapshot form of a tools/list answer."""
    return [
        t.model_dump(
            mode="json",
            by_alias=True,
            exclude_none=True,
            include={"name", "title", "description", "input_schema", "output_schema", "annotations"},
        )
        for t in tools
    ]
