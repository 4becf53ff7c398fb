"""The embedded-default main job: a real MCP session with jira-read over stdio.

It starts `python -m servers.jira_read` as a subprocess (local backend, bundled sample tickets,
state under ./.goresolve), makes one `get_issue` call through the `mcp` client, and returns the
structured result. Until the agent exists this is what `goresolve demo` shows.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from mcp import Client, StdioServerParameters
from mcp_types import TextContent
from rich.console import Console
from rich.markdown import Markdown
from rich.panel import Panel

from servers.common.errors import ConfigError


async def run_demo(key: str) -> dict[str, Any]:
    """One stdio MCP round trip to jira-read.

    Raises:
        ConfigError: the server refused the request (its message says why).
    """
    env = dict(os.environ)
    env.setdefault("GORESOLVE_JIRA_READ_BACKEND", "local")
    env.setdefault("GORESOLVE_JIRA_READ_LOG_LEVEL", "WARNING")
    params = StdioServerParameters(command=sys.executable, args=["-m", "servers.jira_read"], env=env)
    async with Client(params) as client:
        tools = [t.name for t in (await client.list_tools()).tools]
        result = await client.call_tool("get_issue", {"key": key})
    if result.is_error or result.structured_content is None:
        first = result.content[0] if result.content else None
        text = first.text if isinstance(first, TextContent) else "no result"
        raise ConfigError(f"jira-read answered with an error: {text}")
    return {"tools": tools, "issue": result.structured_content}


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
        console.print(f"  ↳ {link['type']} {link['key']}: {link.get('summary') or ''}")
    console.print(f"\n[dim]served by jira-read over stdio; tools: {', '.join(result['tools'])}[/dim]")
