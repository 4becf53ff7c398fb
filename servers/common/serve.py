"""Running a server: the shared `--transport stdio|http --host --port` command line.

Each server's `__main__` is three lines: it hands its settings class and its builder to `main_for`.
Start-up faults (a bad policy file, a missing setting) end the process with exit code 2 and one
clear line on stderr — never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
import typer
import uvicorn
from mcp.server.mcpserver import MCPServer

from servers.common.app import transport_security
from servers.common.errors import ConfigError
from servers.common.policy import Policies, load_policies
from servers.common.settings import S, ServerSettings, load_settings

Builder = Callable[[S, Policies], MCPServer[Any]]


def serve(server: MCPServer[Any], settings: ServerSettings) -> None:
    """Serve until stdin closes (stdio) or the process is signalled (http)."""
    if settings.transport == "stdio":
        anyio.run(server.run_stdio_async)
        return
    app = server.streamable_http_app(
        streamable_http_path="/mcp",
        transport_security=transport_security(settings),
        host=settings.host,
    )
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None, access_log=False)
    anyio.run(uvicorn.Server(config).serve)


def main_for(settings_cls: type[S], build: Builder[S]) -> Callable[[], None]:
    """A console-script entry point for one server."""

    def command(
        transport: Annotated[Literal["stdio", "http"] | None, typer.Option(help="stdio or http")] = None,
        host: Annotated[str | None, typer.Option(help="HTTP bind address")] = None,
        port: Annotated[int | None, typer.Option(help="HTTP port")] = None,
        policy_dir: Annotated[Path | None, typer.Option(help="Directory of policy YAML files")] = None,
    ) -> None:
        try:
            settings = load_settings(settings_cls, transport=transport, host=host, port=port, policy_dir=policy_dir)
            policies = load_policies(settings.policy_dir)
            server = build(settings, policies)
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(code=2) from None
        serve(server, settings)

    def main() -> None:
        typer.run(command)

    return main
