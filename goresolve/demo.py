"""The embedded-default main job: a real MCP session with jira-read over stdio.

It starts `python -m servers.jira_read` as a subprocess (local backend, bundled sample tickets,
state in the per-user data directory), makes one `get_issue` call through the `mcp` client, and
returns the structured result. Until the agent exists this is what `goresolve demo` shows.
The server's log goes to a temporary file; when the session fails, its last error line is what
the user sees, not a stack.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from typing import Any, TextIO

from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError
from mcp_types import TextContent
from rich.console import Console
from rich.markdown import Markdown
from rich.panel import Panel

from servers.common.errors import FORBIDDEN, GoresolveError


class DemoError(GoresolveError):
    """The demo session failed; the message says why and what to try."""


async def run_demo(key: str) -> dict[str, Any]:
    """One stdio MCP round trip to jira-read.

    Raises:
        DemoError: the server could not start, refused the request, or answered with a tool error.
    """
    env = dict(os.environ)
    env.setdefault("GORESOLVE_JIRA_READ_BACKEND", "local")
    env.setdefault("GORESOLVE_JIRA_READ_LOG_LEVEL", "WARNING")
    params = StdioServerParameters(command=sys.executable, args=["-m", "servers.jira_read"], env=env)
    with tempfile.TemporaryFile("w+", encoding="utf-8") as errlog:
        try:
            async with Client(stdio_client(params, errlog=errlog)) as client:
                tools = [t.name for t in (await client.list_tools()).tools]
                result = await client.call_tool("get_issue", {"key": key})
        except Exception as exc:  # noqa: BLE001 - re-raised as one DemoError line; the server log has the rest
            refused = _find(exc, MCPError)
            if refused is not None and refused.code == FORBIDDEN:
                raise DemoError(f"jira-read refused the request: {refused}{_hint(key)}") from None
            # The session died: the server's own last error says why.
            raise DemoError(f"jira-read stopped: {_last_error(errlog) or type(exc).__name__}") from None
    if result.is_error or result.structured_content is None:
        first = result.content[0] if result.content else None
        text = first.text if isinstance(first, TextContent) else "no result"
        raise DemoError(f"jira-read answered with an error: {text}{_hint(key)}")
    return {"tools": tools, "issue": result.structured_content}


def _find(exc: BaseException, kind: type[MCPError]) -> MCPError | None:
    """`exc` itself or the first `kind` inside (the client's task groups wrap errors in groups)."""
    if isinstance(exc, kind):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:  # pyright: ignore[reportUnknownVariableType]
            found = _find(inner, kind)  # pyright: ignore[reportUnknownArgumentType]
            if found is not None:
                return found
    return None


def _hint(key: str) -> str:
    return (
        f" — the demo's identity (GORESOLVE_JIRA_READ_STDIO_IDENTITY, default local-dev) may read the projects "
        f"granted in policies/access.yaml; sample tickets are in servers/jira_read/samples/ (asked for {key[:40]!r})"
    )


def _last_error(errlog: TextIO) -> str | None:
    errlog.seek(0)
    last: str | None = None
    for line in errlog:
        line = line.strip()
        if not line:
            continue
        try:
            event = json.loads(line)
        except ValueError:
            last = line.removeprefix("error: ")  # the one-line start-up error
            continue
        if isinstance(event, dict) and event.get("level") in ("error", "critical"):
            last = str(event.get("event"))
    return last[:500] if last else None


def render_issue(console: Console, result: dict[str, Any]) -> None:
    issue = result["issue"]
    components = ", ".join(issue.get("components") or []) or "-"
    labels = ", ".join(issue.get("labels") or []) or "-"
    meta = (
        f"[bold]{issue['key']}[/bold] · {issue.get('type')} · {issue.get('status')} · "
        f"priority {issue.get('priority')}\ncomponents: {components} · labels: {labels}"
    )
    console.print(Panel(meta, title=issue["summary"]["text"], subtitle="untrusted ticket text below"))
    console.print(Markdown(issue["description"]["text"] or "_(no description)_"))
    for link in issue.get("links") or []:
        summary = (link.get("summary") or {}).get("text", "")  # untrusted text, like the issue's own
        console.print(f"  ↳ {link['type']} {link['key']}: {summary}")
    console.print(f"\n[dim]served by jira-read over stdio; tools: {', '.join(result['tools'])}[/dim]")
