"""Running a server: the shared `--transport stdio|http --host --port` command line.

Each server's `__main__` hands its settings class and its builder to `main_for`, which:

1. configures logging before anything else runs, so every log line (the builder's too) is a
   redacted JSON line on stderr and stdout carries only JSON-RPC;
2. lists every setting (environment name, default) and the HTTP path in `--help`;
3. ends start-up faults (a bad policy file, a missing setting, a port in use) with one clear line
   on stderr and exit code 2 — never a traceback; `--debug` (or `GORESOLVE_DEBUG=1`) adds the stack.
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
import typer
from mcp.server.mcpserver import MCPServer

from servers.common.errors import ConfigError, GoresolveError
from servers.common.logging import configure_logging
from servers.common.policy import Policies, load_policies
from servers.common.settings import S, ServerSettings, load_settings, settings_help
from servers.common.stdio import run_stdio

Builder = Callable[[S, Policies], MCPServer[Any]]

HTTP_PATH = "/mcp"
EXIT_CONFIG = 2
EXIT_INTERNAL = 1


def server_name(settings_cls: type[ServerSettings]) -> str:
    """`GORESOLVE_GO_TEST_RUNNER_` -> `go-test-runner`: a server's name from its env prefix."""
    prefix = str(settings_cls.model_config.get("env_prefix", "GORESOLVE_"))
    return prefix.removeprefix("GORESOLVE_").strip("_").lower().replace("_", "-") or "goresolve"


def serve(server: MCPServer[Any], settings: ServerSettings) -> None:
    """Serve until stdin closes (stdio: `stdio.run_stdio`, which answers a line it cannot decode) or the
    process is signalled (http)."""
    if settings.transport == "stdio":
        anyio.run(run_stdio, server)
        return
    import uvicorn  # only the http transport needs it

    from servers.common.app import OneAuthorization, limit_sessions_per_identity, transport_security

    app = server.streamable_http_app(
        streamable_http_path=HTTP_PATH,
        transport_security=transport_security(settings),
        host=settings.host,
        max_sessions=settings.max_sessions,
        session_idle_timeout=settings.session_idle_s,
    )
    limit_sessions_per_identity(app, server.session_manager, path=HTTP_PATH, limit=settings.max_sessions_per_identity)
    sock = listening_socket(settings.host, settings.port)
    anyio.run(functools.partial(uvicorn.Server(uvicorn_config(OneAuthorization(app), settings)).serve, [sock]))


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to `host`:`port`, for uvicorn (`Server.serve(sockets)`): bound here, a port in use or an
    address this host cannot listen on is one line and exit 2, not uvicorn's log line and exit 3.

    Raises:
        ConfigError: it cannot be bound (the message names the address and why).
    """
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else "not a host name"
        raise ConfigError(f"cannot listen on {host[:100]!r}: {reason} (--host: an address of this host)") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc} (--host, --port)") from None
    sock.set_inheritable(True)
    return sock


def uvicorn_config(app: Any, settings: ServerSettings) -> Any:
    """The `uvicorn.Config` of every goresolve HTTP service (the MCP servers and the webhook gateway).

    At most `max_connections` connections and requests at once (uvicorn's `limit_concurrency`: 503 past
    it), idle keep-alive connections closed after `keep_alive_s`, and a connection that has not sent a
    request's complete headers within `header_timeout_s` closed, which uvicorn alone never does.
    """
    import uvicorn

    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        limit_concurrency=settings.max_connections,
        timeout_keep_alive=settings.keep_alive_s,
        http=_headers_in_time(settings.header_timeout_s),
    )


def _headers_in_time(timeout_s: float) -> type[Any]:
    """uvicorn's h11 protocol, closing a connection whose client is still before a request's end of headers
    `timeout_s` after the connection opened or its last answer was sent (slowloris)."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeadersInTime(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(timeout_s, self._overdue)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _overdue(self) -> None:
            self._header_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def handle_events(self) -> None:
            super().handle_events()
            if self.conn.their_state is not h11.IDLE:
                self._disarm()  # the headers are in: the request is the app's now

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeadersInTime


def help_epilog(settings_cls: type[ServerSettings]) -> str:
    """The settings section of a server's `--help`: one line per setting, then the HTTP endpoint."""
    rows = settings_help(settings_cls)
    port = settings_cls.model_fields["port"].default
    lines = [
        "Settings (environment variables; a flag above wins over its variable; secrets may also be files named "
        "like the variable in $GORESOLVE_SECRETS_DIR):",
        "",
        "\b",  # click: keep this paragraph's lines as they are
    ]
    for env, default, description in rows:
        lines.append(f"  {env}={default}")
        if description:
            lines.append(f"      {description}")
    lines += ["", "\b", f"HTTP endpoint: http://<host>:<port>{HTTP_PATH} (default port {port}), bearer token required."]
    return "\n".join(lines)


def fail(message: str, *, exc: BaseException | None = None, debug: bool = False, code: int = EXIT_CONFIG) -> typer.Exit:
    """Print one line (and, with `debug`, the stack) to stderr; return the Exit to raise."""
    if debug and exc is not None:
        traceback.print_exception(exc, file=sys.stderr)
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(code=code)


def _debug_from_env() -> bool:
    return os.environ.get("GORESOLVE_DEBUG", "").lower() in ("1", "true", "yes")


def main_for(
    settings_cls: type[S], build: Builder[S], *, name: str | None = None, more_help: str = ""
) -> Callable[[], None]:
    """A console-script entry point for one server (`name` defaults to the one its env prefix gives; `more_help`
    is added to its `--help`, e.g. for an option its entry point handles itself)."""

    def main() -> None:
        cli_for(settings_cls, build, name=name, more_help=more_help)()

    return main


def cli_for(settings_cls: type[S], build: Builder[S], *, name: str | None = None, more_help: str = "") -> typer.Typer:
    """The typer app behind `main_for`: `--transport/--host/--port/--policy-dir/--debug`, settings in `--help`."""
    service = name or server_name(settings_cls)

    def command(
        transport: Annotated[Literal["stdio", "http"] | None, typer.Option(help="stdio or http")] = None,
        host: Annotated[str | None, typer.Option(help="HTTP bind address")] = None,
        port: Annotated[int | None, typer.Option(help="HTTP port")] = None,
        policy_dir: Annotated[Path | None, typer.Option(help="Directory of policy YAML files")] = None,
        debug: Annotated[bool, typer.Option("--debug", help="Print the stack of a start-up failure.")] = False,
    ) -> None:
        debug = debug or _debug_from_env()
        # Before anything can log: structlog's default would print to stdout, the JSON-RPC channel.
        configure_logging(service=service)
        try:
            settings = load_settings(settings_cls, transport=transport, host=host, port=port, policy_dir=policy_dir)
            configure_logging(service=service, level=settings.log_level, secrets=settings.secret_values())
            policies = load_policies(settings.policy_dir)
            server = build(settings, policies)
        except GoresolveError as exc:
            raise fail(exc.message, exc=exc, debug=debug) from None
        except Exception as exc:  # noqa: BLE001 - the outermost handler: one line, the stack only with --debug
            raise fail(
                f"{service} could not start: {type(exc).__name__}: {str(exc)[:300]} (run with --debug for the stack)",
                exc=exc,
                debug=debug,
            ) from None
        try:
            serve(server, settings)
        except KeyboardInterrupt:
            raise typer.Exit(code=130) from None
        except GoresolveError as exc:  # it cannot listen where it was told to
            raise fail(f"{service}: {exc.message}", exc=exc, debug=debug) from None
        except OSError as exc:  # e.g. the port is taken
            raise fail(f"{service}: {exc.strerror or exc}", exc=exc, debug=debug) from None
        except Exception as exc:  # noqa: BLE001 - the outermost handler of a running server
            raise fail(
                f"{service} stopped: {type(exc).__name__}: {str(exc)[:300]} (run with --debug for the stack)",
                exc=exc,
                debug=debug,
                code=EXIT_INTERNAL,
            ) from None

    cli = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
    cli.command(
        help=f"The {service} MCP server (stdio by default; streamable HTTP with --transport http)."
        + (f"\n\n{more_help}" if more_help else ""),
        epilog=help_epilog(settings_cls),
    )(command)
    return cli
