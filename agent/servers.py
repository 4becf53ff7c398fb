"""The agent's side of MCP: connect to the four servers, pin their surfaces, call tools behind breakers.

A server is reached over stdio (the agent starts its command; locally), over streamable HTTP with
that server's own bearer token (sidecars in a pod), or in process (tests, benchmarks). On connect the
agent reads `goresolve://surface` and refuses a server whose fingerprint differs from the pinned one:
a tool description or schema that changed underneath is a reviewable event, not a silent one.

Tool calls go through a per-server circuit breaker: closed → (N consecutive failures) → open, which
refuses at once → after `cooldown_s`, half-open lets one trial through. Transport failures and
timeouts count; a tool error (the server answered, the model can act on it) does not. The breaker is
the pattern's few lines, kept here so its state is visible in a run's exit reason.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncGenerator, Mapping
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, TextContent, TextResourceContents, Tool
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent.exits import BreakerOpen, RunExit, ServerUnavailable, SurfaceChanged
from agent.handoff import one_line
from agent.llm.errors import remember_secret

SURFACE_URI = "goresolve://surface"
FORBIDDEN = -32003  # the JSON-RPC code the platform uses for policy denials


class StdioServer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    command: str
    args: tuple[str, ...] = ()
    env: dict[str, str] = Field(default_factory=dict[str, str])
    pin: str | None = Field(default=None, description="Expected surface fingerprint (sha256:...).")
    stderr_file: Path | None = Field(
        default=None, description="Append the server's stderr (its log lines) to this file instead of the agent's."
    )


class HttpServer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    url: str
    token: SecretStr = Field(description="This server's own bearer token (audience = the server).")
    pin: str | None = None


SERVER_NAMES = ("jira-read", "code-search", "go-test-runner", "github-pr")

# What a locally started server may read of the environment besides its own settings (its prefix): where state lives
# (GORESOLVE_DATA_DIR), the debug switch, the prebuilt tools; and the secrets directory, which it reads by its own
# variables' names only. go-test-runner runs the repository's test code and holds no credential, so it is not told
# where the others' secret files are.
SHARED_SETTINGS = ("GORESOLVE_DATA_DIR", "GORESOLVE_DEBUG", "GORESOLVE_TOOLS_DIR")
SECRETS_DIR = "GORESOLVE_SECRETS_DIR"
NO_SECRETS = frozenset({"go-test-runner"})
# Credentials under names of their own (not GORESOLVE_*) that no server reads: a model provider's key is the agent's;
# forges and trackers are reached with each server's own prefixed setting.
FOREIGN_CREDENTIALS = frozenset(
    {
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "GH_ENTERPRISE_TOKEN",
        "GITHUB_ENTERPRISE_TOKEN",
        "JIRA_API_TOKEN",
    }
)
# An object store's credentials (code-search's LanceDB index on s3://, gs://, az://): code-search's alone.
STORE_CREDENTIALS = frozenset(
    {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "AZURE_STORAGE_ACCOUNT_KEY",
        "AZURE_STORAGE_SAS_TOKEN",
        "AZURE_CLIENT_SECRET",
    }
)


def env_prefix(server: str) -> str:
    """`GORESOLVE_JIRA_READ_` for `jira-read`: the prefix of that server's settings."""
    return "GORESOLVE_" + server.upper().replace("-", "_") + "_"


def server_env(server: str, environ: Mapping[str, str], *, own_settings: bool = True) -> dict[str, str]:
    """The environment a server started here as a subprocess gets: `environ` without any other process's settings or
    credentials. Kept: everything not goresolve's (PATH, HOME, proxies, OTEL_*), SHARED_SETTINGS, and with
    `own_settings` the server's own `GORESOLVE_<SERVER>_*` and (but for go-test-runner) GORESOLVE_SECRETS_DIR.
    Dropped: every other GORESOLVE_* (the other servers' tokens, the agent's GORESOLVE_AGENT_API_KEY, the webhook
    secrets), FOREIGN_CREDENTIALS, and STORE_CREDENTIALS for any server but code-search. So go-test-runner, which
    runs the repository's test code, holds no credential, nor the directory of anyone's (docs/security.md).
    """
    own = env_prefix(server)
    kept: dict[str, str] = {}
    for name, value in environ.items():
        if name.startswith("GORESOLVE_"):
            mine = own_settings and (name.startswith(own) or (name == SECRETS_DIR and server not in NO_SECRETS))
            if not (mine or name in SHARED_SETTINGS):
                continue
        elif name in FOREIGN_CREDENTIALS or (name in STORE_CREDENTIALS and server != "code-search"):
            continue
        kept[name] = value
    return kept


class ServersConfigError(ValueError):
    """The HTTP endpoints are incomplete, or a token file cannot be read; the message names the variable."""


class HttpEndpoints(BaseSettings):
    """Where the agent reaches each server over streamable HTTP, and the file holding that server's token.

    Environment (prefix GORESOLVE_AGENT_): `MCP_TRANSPORT=http`, then per server `<SERVER>_URL` and
    `<SERVER>_TOKEN_FILE` (e.g. `JIRA_READ_URL=http://127.0.0.1:8101/mcp`,
    `JIRA_READ_TOKEN_FILE=/var/run/secrets/goresolve/tokens/jira-read`). A token file holds one bearer
    token whose audience is that server only: a projected ServiceAccount token (the kubelet rewrites it
    before it expires, so it is read again for every run) or one minted by `goresolve token mint`.
    """

    model_config = SettingsConfigDict(env_prefix="GORESOLVE_AGENT_", extra="ignore", frozen=True)

    mcp_transport: Literal["stdio", "http"] = "stdio"
    jira_read_url: HttpUrl | None = None
    jira_read_token_file: Path | None = None
    code_search_url: HttpUrl | None = None
    code_search_token_file: Path | None = None
    go_test_runner_url: HttpUrl | None = None
    go_test_runner_token_file: Path | None = None
    github_pr_url: HttpUrl | None = None
    github_pr_token_file: Path | None = None


def http_servers(endpoints: HttpEndpoints, pins: Mapping[str, str] | None = None) -> tuple[HttpServer, ...]:
    """The four servers as HTTP specs, each with the token read from its own file.

    Raises:
        ServersConfigError: a URL or token file is not set, or a token file is unreadable or empty.
    """
    specs: list[HttpServer] = []
    for name in SERVER_NAMES:
        key = name.replace("-", "_")
        url: HttpUrl | None = getattr(endpoints, f"{key}_url")
        token_file: Path | None = getattr(endpoints, f"{key}_token_file")
        if url is None or token_file is None:
            missing = "URL" if url is None else "TOKEN_FILE"
            raise ServersConfigError(
                f"GORESOLVE_AGENT_{key.upper()}_{missing} is not set (GORESOLVE_AGENT_MCP_TRANSPORT=http needs a "
                "URL and a token file for each server)"
            )
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ServersConfigError(
                f"GORESOLVE_AGENT_{key.upper()}_TOKEN_FILE: cannot read {token_file}: {exc.strerror}"
            ) from None
        if not token:
            raise ServersConfigError(f"GORESOLVE_AGENT_{key.upper()}_TOKEN_FILE: {token_file} is empty")
        remember_secret(token)  # a model error quoting it is saved and published without it
        specs.append(HttpServer(name=name, url=str(url), token=SecretStr(token), pin=(pins or {}).get(name)))
    return tuple(specs)


def http_servers_from_env(pins: Mapping[str, str] | None = None) -> tuple[HttpServer, ...] | None:
    """For the CLI edge: the HTTP servers when GORESOLVE_AGENT_MCP_TRANSPORT=http, else None (stdio).

    Raises:
        ServersConfigError: a setting is invalid or missing, or a token file is unreadable or empty.
    """
    try:
        endpoints = HttpEndpoints()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]).upper()
        raise ServersConfigError(f"GORESOLVE_AGENT_{field}: {first['msg']}") from None
    return http_servers(endpoints, pins) if endpoints.mcp_transport == "http" else None


@dataclass(frozen=True)
class InProcessServer:
    name: str
    server: Any  # an MCPServer
    pin: str | None = None


ServerSpec = StdioServer | HttpServer | InProcessServer


@dataclass(frozen=True)
class ServersConfig:
    servers: tuple[ServerSpec, ...]
    call_timeout_s: float = 240.0
    breaker_failures: int = 3
    breaker_cooldown_s: float = 30.0


@dataclass
class Breaker:
    failures_to_open: int
    cooldown_s: float
    state: Literal["closed", "open", "half-open"] = "closed"
    failures: int = 0
    opened_at: float = 0.0

    def allow(self, now: float) -> bool:
        if self.state == "open" and now - self.opened_at >= self.cooldown_s:
            self.state = "half-open"
        return self.state != "open"

    def record(self, ok: bool, now: float) -> None:
        if ok:
            self.state, self.failures = "closed", 0
            return
        self.failures += 1
        if self.state == "half-open" or self.failures >= self.failures_to_open:
            self.state, self.opened_at = "open", now


@dataclass(frozen=True)
class ToolOutcome:
    ok: bool  # False: a tool error the model can act on
    text: str
    structured: dict[str, Any] | None


@dataclass
class Toolbox:
    """The connected servers' tools by name, and the way to call them."""

    config: ServersConfig
    clients: dict[str, Client] = field(default_factory=dict[str, Client])
    tools: dict[str, tuple[str, Tool]] = field(default_factory=dict[str, tuple[str, Tool]])
    fingerprints: dict[str, str] = field(default_factory=dict[str, str])
    breakers: dict[str, Breaker] = field(default_factory=dict[str, Breaker])

    def reset_breakers(self) -> None:
        for name in self.breakers:
            self.breakers[name] = Breaker(self.config.breaker_failures, self.config.breaker_cooldown_s)

    def server_of(self, tool: str) -> str:
        return self.tools[tool][0]

    async def call(self, tool: str, arguments: Mapping[str, Any]) -> ToolOutcome:
        """Call a server tool. A call whose caller is being cancelled (Ctrl-C, a signal, the run's wall clock)
        counts toward no breaker and raises the cancellation, whatever the transport made of it.

        Raises:
            BreakerOpen: the tool's server failed repeatedly (this call or earlier ones).
            PermissionError: the server refused the call by policy (a protocol error, not a failure).
        """
        server, _ = self.tools[tool]
        breaker = self.breakers[server]
        if not breaker.allow(time.monotonic()):
            raise BreakerOpen(server, f"{server} is failing; its circuit breaker is open")
        try:
            with anyio.fail_after(self.config.call_timeout_s):
                result = await self.clients[server].call_tool(tool, dict(arguments))
        except MCPError as exc:
            if exc.error.code == FORBIDDEN:  # policy said no: not a failing server
                breaker.record(True, time.monotonic())
                raise PermissionError(exc.error.message) from None
            return self._after_failure(server, f"{server} failed: {exc.error.message}")
        except (TimeoutError, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            return self._after_failure(server, f"{server} did not answer ({type(exc).__name__})")
        if _cancelled():  # an answer that arrives while the caller is being cancelled is not taken
            raise anyio.get_cancelled_exc_class()()
        breaker.record(True, time.monotonic())
        return outcome_of(result)

    def _after_failure(self, server: str, message: str) -> ToolOutcome:
        """A failed call: counted on the server's breaker, unless the caller is being cancelled (Ctrl-C, a
        signal, the run's wall clock): then the transport's failure was the cancellation's doing, not the
        server's, and the cancellation goes on."""
        if _cancelled():
            raise anyio.get_cancelled_exc_class()()
        self.breakers[server].record(False, time.monotonic())
        if self.breakers[server].state == "open":
            raise BreakerOpen(server, message)
        return ToolOutcome(False, message, None)


def _cancelled() -> bool:
    """Whether the current task is being cancelled: its anyio scope, or the event loop (Ctrl-C cancels asyncio's main
    task), whatever a library in between made of the cancellation."""
    if anyio.current_effective_deadline() == -math.inf:
        return True
    try:
        task = asyncio.current_task()
    except RuntimeError:  # not on asyncio
        return False
    return task is not None and task.cancelling() > 0


def outcome_of(result: CallToolResult) -> ToolOutcome:
    text = "\n".join(c.text for c in result.content if isinstance(c, TextContent))
    structured = result.structured_content if isinstance(result.structured_content, dict) else None
    return ToolOutcome(not result.is_error, text, structured)


def _client(spec: ServerSpec, timeout_s: float, errlog: TextIO | None = None) -> Client:
    if isinstance(spec, StdioServer):
        params = StdioServerParameters(command=spec.command, args=list(spec.args), env=spec.env)
        if errlog is not None:  # the server's log lines go to a file, not the agent's terminal
            return Client(stdio_client(params, errlog=errlog), read_timeout_seconds=timeout_s)
        return Client(params, read_timeout_seconds=timeout_s)
    if isinstance(spec, HttpServer):
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        http = httpx2.AsyncClient(headers={"authorization": f"Bearer {spec.token.get_secret_value()}"})
        return Client(streamable_http_client(spec.url, http_client=http), read_timeout_seconds=timeout_s)
    return Client(spec.server, read_timeout_seconds=timeout_s)


async def _surface(client: Client) -> str:
    result = await client.read_resource(SURFACE_URI)
    for content in result.contents:
        if isinstance(content, TextResourceContents):
            return str(json.loads(content.text)["fingerprint"])
    raise SurfaceChanged("?", "the server publishes no goresolve://surface fingerprint")


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first  # pyright: ignore[reportUnknownArgumentType]


def _why(exc: BaseException) -> str:
    return exc.error.message if isinstance(exc, MCPError) else type(exc).__name__


async def _hold(spec: ServerSpec, timeout_s: float, stop: anyio.Event, *, task_status: Any) -> None:
    """Keep one client open in its own task until `stop` (so servers start in parallel)."""
    with ExitStack() as files:
        errlog = None
        if isinstance(spec, StdioServer) and spec.stderr_file is not None:
            errlog = files.enter_context(spec.stderr_file.open("a", encoding="utf-8"))
        async with _client(spec, timeout_s, errlog) as client:
            fingerprint = await _surface(client)
            tools = (await client.list_tools()).tools
            task_status.started((client, fingerprint, tools))
            await stop.wait()


async def connect(config: ServersConfig, stack: AsyncExitStack) -> Toolbox:
    """Start/connect every server at once, check pins, list tools (the servers filter them by policy).

    The clients live until `stack` closes; stdio servers are then stopped with their whole process group.

    Raises:
        SurfaceChanged: a pinned server's fingerprint differs, or two servers offer the same tool name.
        ServerUnavailable: a server did not start, or did not answer the surface request; a stdio server that logs
            to a file is named with the error line it wrote there as it stopped.
    """
    box = Toolbox(config)
    holders = await stack.enter_async_context(anyio.create_task_group())
    stop = anyio.Event()
    stack.callback(stop.set)  # runs first on close: every holder leaves its client, then the group ends
    opened: dict[str, tuple[Client, str, list[Tool]]] = {}
    failed: dict[str, str] = {}

    async def start(spec: ServerSpec) -> None:
        try:
            opened[spec.name] = await holders.start(_hold, spec, config.call_timeout_s, stop)
        except (MCPError, OSError, anyio.BrokenResourceError, RuntimeError) as exc:
            failed[spec.name] = _why(exc)
        except ExceptionGroup as group:  # the client's own task group wraps what went wrong while connecting
            failed[spec.name] = _why(_first_leaf(group))

    logs = {s.stderr_file for s in config.servers if isinstance(s, StdioServer) and s.stderr_file is not None}
    log_sizes = {path: _size(path) for path in logs}
    async with anyio.create_task_group() as starters:
        for spec in config.servers:
            starters.start_soon(start, spec)
    for spec in config.servers:  # in configuration order, so errors and tool ownership are deterministic
        if spec.name in failed:
            said = None
            if isinstance(spec, StdioServer) and spec.stderr_file is not None:
                said = _last_error(spec.stderr_file, log_sizes[spec.stderr_file], spec.name, alone=len(failed) == 1)
            if said is not None:  # what it said as it stopped: its log file is not on the screen
                raise ServerUnavailable(spec.name, f"{spec.name} did not start: {said}")
            raise ServerUnavailable(spec.name, f"{spec.name} did not start or answer: {failed[spec.name]}")
        client, fingerprint, tools = opened[spec.name]
        if spec.pin is not None and fingerprint != spec.pin:
            raise SurfaceChanged(
                spec.name, f"{spec.name}: tool surface {fingerprint[:19]}… differs from the pinned {spec.pin[:19]}…"
            )
        box.clients[spec.name] = client
        box.fingerprints[spec.name] = fingerprint
        box.breakers[spec.name] = Breaker(config.breaker_failures, config.breaker_cooldown_s)
        for tool in tools:
            if tool.name in box.tools:
                raise SurfaceChanged(
                    spec.name, f"tool {tool.name!r} offered by both {box.tools[tool.name][0]} and {spec.name}"
                )
            box.tools[tool.name] = (spec.name, tool)
    return box


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _last_error(path: Path, since: int, name: str, *, alone: bool) -> str | None:
    """The last `error: ` line a server that did not start wrote to its log file `path` after offset `since`, one
    line without credentials or control characters; None when there is none it surely wrote (the servers share the
    file: with others failing too, only a line naming `name` is taken)."""
    try:
        with path.open("rb") as log:
            log.seek(since)
            data = log.read(1 << 20)
    except OSError:
        return None
    said = [line for line in data.decode("utf-8", "replace").splitlines() if line.startswith("error: ")]
    if not alone:
        said = [line for line in said if name in line]
    return one_line(said[-1].removeprefix("error: "), 400) if said else None


@asynccontextmanager
async def open_servers(config: ServersConfig) -> AsyncGenerator[Toolbox]:
    """Connected servers that outlive one run (a worker running many tickets, a test module).

    Raises:
        SurfaceChanged, ServerUnavailable: as `connect`.
    """
    failure: RunExit | None = None
    async with AsyncExitStack() as stack:
        try:
            box = await connect(config, stack)
        except RunExit as exc:  # raised here, not through the holders' task group (which would wrap it)
            failure = exc
        else:
            yield box
    if failure is not None:
        raise failure
