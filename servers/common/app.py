"""The one app factory every server uses.

    platform = Platform.create("jira-read", settings, policies)
    @platform.tool(ToolSpec(...))
    async def get_issue(key: str) -> Issue: ...
    server = platform.finish()          # checks the surface, publishes its fingerprint
    serve(server, settings)             # stdio, or streamable HTTP behind bearer auth

`Platform` installs one SDK middleware that, for every `tools/call`, knows the caller (token subject
over HTTP, the configured identity over stdio or in memory), refuses a tool whose declared scope
policy does not grant (a protocol error, logged), binds caller/tool/trace to every log line, and
appends the outcome to the hash-chained audit log. `tools/list` shows a caller only the tools it may
call, sorted by name, so the order is deterministic.
"""

from __future__ import annotations

import contextvars
import hashlib
import importlib.metadata
import json
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import structlog
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, AuthorizationContext, authorization_context
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.tools import Tool as RegisteredTool
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_REQUEST, CallToolResult, TextContent, Tool
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from servers.common.audit import AuditLog
from servers.common.errors import FORBIDDEN
from servers.common.logging import configure_logging, get_logger, redactor
from servers.common.policy import Identity, Policies
from servers.common.settings import ServerSettings
from servers.common.tools import ToolSpec, check_surface, fingerprint, guard_errors, surface_document
from servers.common.tracing import TracingConfig, configure_tracing, current_trace_id

log = get_logger(__name__)


def _version() -> str:
    try:
        return importlib.metadata.version("goresolve")
    except importlib.metadata.PackageNotFoundError:  # a source tree without install
        return "0+unknown"


F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


@dataclass(frozen=True)
class Caller:
    """Who is calling, and what policy grants them."""

    name: str
    identity: Identity | None
    scopes: frozenset[str]


_caller: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("goresolve_caller", default=None)


def current_caller() -> Caller:
    """The caller of the tool call being served.

    Raises:
        RuntimeError: called outside a tool call (a programming error, not a client's).
    """
    caller = _caller.get()
    if caller is None:
        raise RuntimeError("current_caller() used outside a tool call")
    return caller


class Platform:
    """A server's MCPServer plus its declared tools, policy, audit log and identity rules."""

    def __init__(self, name: str, server: MCPServer[Any], settings: ServerSettings, policies: Policies) -> None:
        self.name = name
        self.server = server
        self.settings = settings
        self.policies = policies
        self.specs: dict[str, ToolSpec] = {}
        audit_path = settings.audit_log or settings.state_dir / "audit" / f"{name}.jsonl"
        self.audit = AuditLog(audit_path)
        self.surface_fingerprint: str | None = None
        server.middleware.append(self._middleware)

    @classmethod
    def create(
        cls,
        name: str,
        settings: ServerSettings,
        policies: Policies,
        *,
        instructions: str,
        lifespan: Callable[[MCPServer[Any]], AbstractAsyncContextManager[Any]] | None = None,
    ) -> Platform:
        """Build the MCPServer for `name`, with bearer auth when it will serve HTTP.

        Raises:
            ConfigError: HTTP transport without a token key or OIDC issuer (the message names the variables).
        """
        configure_logging(service=name, level=settings.log_level, secrets=settings.secret_values())
        trace_file = settings.trace_file or settings.state_dir / "traces" / f"{name}.jsonl"
        configure_tracing(
            TracingConfig(service=name, jsonl_path=trace_file, otlp_endpoint=settings.otel_exporter_otlp_endpoint)
        )
        kwargs: dict[str, Any] = {}
        if settings.transport == "http":
            # Imported here so that stdio servers never load JWT code.
            from servers.common.auth import build_verifier

            known = policies.access.identities
            verifier = build_verifier(name, settings, is_identity=known.__contains__)
            kwargs["token_verifier"] = KnownCallersOnly(verifier, is_identity=known.__contains__)
            kwargs["auth"] = AuthSettings(
                issuer_url="https://goresolve.invalid",  # type: ignore[arg-type]
                resource_server_url=f"http://{host_port(settings.host, settings.port)}/mcp",  # type: ignore[arg-type]
                validate_token_resource=False,  # the verifier checks the audience itself
            )
        server: MCPServer[Any] = MCPServer(
            name,
            version=_version(),
            instructions=instructions,
            log_level=settings.log_level,
            lifespan=lifespan,
            **kwargs,
        )
        return cls(name, server, settings, policies)

    def tool(self, spec: ToolSpec) -> Callable[[F], F]:
        """Register a tool function under its declaration (decorator)."""

        def register(fn: F) -> F:
            if spec.name in self.specs:
                raise ValueError(f"tool {spec.name!r} registered twice")
            self.specs[spec.name] = spec
            self.server.add_tool(
                guard_errors(spec, fn),
                name=spec.name,
                title=spec.title,
                description=spec.description,
                annotations=spec.annotations(),
                structured_output=True,
            )
            return fn

        return register

    def mcp_tools(self) -> list[Tool]:
        """The registered tools as clients see them (before per-caller filtering)."""
        return [
            Tool(
                name=info.name,
                title=info.title,
                description=info.description,
                input_schema=info.parameters,
                output_schema=info.output_schema,
                annotations=info.annotations,
            )
            for info in self.server._tool_manager.list_tools()  # pyright: ignore[reportPrivateUsage]
        ]

    def finish(self) -> MCPServer[Any]:
        """Check the surface and publish its fingerprint as the `goresolve://surface` resource.

        Raises:
            ValueError: the surface breaks a rule of `check_surface`.
        """
        tools = self.mcp_tools()
        check_surface(tools)
        self.surface_fingerprint = fingerprint(tools)
        document = surface_json(tools)

        @self.server.resource(
            "goresolve://surface",
            name="tool-surface",
            description="Fingerprint (sha256) and full description of this server's tool surface.",
            mime_type="application/json",
        )
        def surface() -> str:  # pyright: ignore[reportUnusedFunction]
            return document

        log.info("server ready", server=self.name, tools=sorted(self.specs), surface=self.surface_fingerprint)
        return self.server

    # --- the middleware ----------------------------------------------------------------------------

    def _resolve_caller(self, ctx: ServerRequestContext[Any, Any]) -> Caller:
        name = self.settings.stdio_identity
        if self.settings.transport == "http":
            scope = getattr(ctx.request, "scope", None)
            user = scope.get("user") if isinstance(scope, dict) else None
            if not isinstance(user, AuthenticatedUser) or not user.access_token.subject:
                # The bearer middleware normally answers 401 before we get here.
                raise MCPError(code=FORBIDDEN, message="unauthenticated")
            name = user.access_token.subject
        return Caller(name=name, identity=self.policies.identity(name), scopes=self.policies.scopes_of(name))

    async def _middleware(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method == "tools/list":
            return self._filter_tools(await call_next(ctx), self._resolve_caller(ctx))
        if ctx.method != "tools/call":
            return await call_next(ctx)
        caller = self._resolve_caller(ctx)
        params = dict(ctx.params or {})
        tool = str(params.get("name", ""))
        arguments = params.get("arguments") or {}
        spec = self.specs.get(tool)
        registered = self.server._tool_manager.get_tool(tool)  # pyright: ignore[reportPrivateUsage]
        # A name this server has no tool by is the caller's text: recorded by its digest only (it could be long,
        # or hold a credential), in the audit log and the log line.
        known = spec is not None or registered is not None
        recorded = tool if known else f"<unknown {hashlib.sha256(tool.encode()).hexdigest()[:16]}>"
        with structlog.contextvars.bound_contextvars(caller=caller.name, tool=recorded):
            if spec is not None and spec.scope not in caller.scopes:
                log.warning("tool call denied", scope=spec.scope)
                self._audit(caller, recorded, arguments, "denied")
                raise MCPError(code=FORBIDDEN, message=f"caller {caller.name!r} may not use tool {tool!r}")
            if registered is not None and (problem := argument_problem(registered, arguments)):
                log.info("tool arguments refused", error=problem)
                self._audit(caller, recorded, arguments, "tool_error")
                text = TextContent(type="text", text=f"Error executing tool {tool}: {problem}")
                return CallToolResult(content=[text], is_error=True).model_dump(
                    mode="json", by_alias=True, exclude_none=True
                )
            token = _caller.set(caller)
            outcome = "error"
            try:
                result = await call_next(ctx)
                outcome = "tool_error" if _is_error(result) else "ok"
                return result
            except MCPError as exc:
                outcome = f"protocol_error:{exc.error.code}"
                raise
            except anyio.get_cancelled_exc_class():
                outcome = "cancelled"
                raise
            finally:
                _caller.reset(token)
                self._audit(caller, recorded, arguments, outcome)

    def _audit(self, caller: Caller, tool: str, arguments: Any, outcome: str) -> None:
        args = arguments if isinstance(arguments, dict) else {"_": arguments}
        self.audit.append(caller=caller.name, tool=tool, arguments=args, outcome=outcome, trace_id=current_trace_id())

    def _filter_tools(self, result: HandlerResult, caller: Caller) -> HandlerResult:
        """Only the tools this caller may call, sorted by name (the runner hands us the wire dict)."""

        def allowed(name: object) -> bool:
            spec = self.specs.get(str(name))
            return spec is None or spec.scope in caller.scopes

        if isinstance(result, dict) and isinstance(result.get("tools"), list):
            listed: list[Any] = result["tools"]
            kept: list[dict[str, Any]] = [t for t in listed if isinstance(t, dict) and allowed(t.get("name"))]
            return {**result, "tools": sorted(kept, key=lambda t: str(t.get("name")))}
        return result


MAX_ARGUMENT_PROBLEMS = 5


def argument_problem(tool: RegisteredTool, arguments: object) -> str | None:
    """Why `arguments` cannot be this tool's, in a few short redacted lines; None when they can.

    The SDK would answer pydantic's own report, which echoes each bad value (a 1 MB string included) and
    links to pydantic's docs, and it quietly drops arguments the tool does not have. A model that
    misspells one gets a result for a call it did not mean; here it is told the names it may use.
    """
    if not isinstance(arguments, dict):
        return "invalid arguments: expected an object of named arguments"
    given: dict[str, Any] = arguments  # pyright: ignore[reportUnknownVariableType]
    fields = tool.fn_metadata.arg_model.model_fields
    names = {f.alias or n for n, f in fields.items()} | set(fields)
    if unknown := sorted(str(k) for k in given if k not in names):
        shown = ", ".join(repr(k[:60]) for k in unknown[:MAX_ARGUMENT_PROBLEMS])
        return redactor().text(f"unknown argument(s) {shown}; this tool takes: {', '.join(sorted(names))}")
    try:
        tool.fn_metadata.validate_arguments(given)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        lines = [f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in errors]
        more = len(lines) - MAX_ARGUMENT_PROBLEMS
        text = "; ".join(lines[:MAX_ARGUMENT_PROBLEMS]) + (f"; and {more} more" if more > 0 else "")
        return redactor().text(f"invalid arguments: {text}")
    except Exception:  # noqa: BLE001 - a validator that crashes is the SDK's to report (an internal error)
        return None
    return None


def _is_error(result: HandlerResult) -> bool:
    """Whether a tools/call answer is a tool error (the runner hands middleware the wire dict)."""
    return isinstance(result, dict) and bool(result.get("isError"))


def surface_json(tools: list[Tool]) -> str:
    return json.dumps({"fingerprint": fingerprint(tools), "tools": surface_document(tools)}, indent=2)


class KnownCallersOnly:
    """`TokenVerifier` that refuses (401, like a bad token) a verified token whose identity policy does not
    know: a subject access.yaml does not list, with no group mapping to one, would be granted nothing, and
    must not hold sessions either."""

    def __init__(self, verifier: TokenVerifier, *, is_identity: Callable[[str], bool]) -> None:
        self._verifier = verifier
        self._is_identity = is_identity

    async def verify_token(self, token: str) -> AccessToken | None:
        access = await self._verifier.verify_token(token)
        if access is None:
            return None
        if not access.subject or not self._is_identity(access.subject):
            log.warning("token refused", reason="UnknownIdentity", identity=(access.subject or "")[:100])
            return None
        return access


class SessionQuota:
    """ASGI wrapper of the MCP endpoint: a caller that already holds `limit` sessions gets 429 for a new one.

    A caller is a principal as the SDK records the owner of each session (client id, issuer and subject):
    the people an OIDC group maps to one policy identity count apart, so one of them cannot use up the
    others' places. Counted from that record, so a session that ends (DELETE, idle timeout) frees its place
    at once. Requests racing to open sessions may pass the limit by the few in flight.
    """

    def __init__(self, app: ASGIApp, manager: StreamableHTTPSessionManager, limit: int) -> None:
        self._app = app
        self._manager = manager
        self._limit = limit

    def held_by(self, owner: AuthorizationContext) -> int:
        owners = self._manager._session_owners.values()  # pyright: ignore[reportPrivateUsage]
        return sum(1 for held in owners if held == owner)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        user = scope.get("user")
        if (
            scope["type"] == "http"
            and scope.get("method") == "POST"
            and isinstance(user, AuthenticatedUser)
            and not Headers(scope=scope).get("mcp-session-id")
            and self.held_by(authorization_context(user)) >= self._limit
        ):
            log.warning(
                "session refused",
                reason="TooManySessions",
                caller=user.access_token.subject,
                client_id=user.access_token.client_id[:100],
                limit=self._limit,
            )
            message = f"too many open sessions for this caller (at most {self._limit}); close one first"
            await _refuse(scope, receive, send, 429, message)
            return
        await self._app(scope, receive, send)


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
    """Answer an HTTP request before the MCP endpoint sees it: `status`, with a JSON-RPC error saying `message`."""
    body = {"jsonrpc": "2.0", "id": None, "error": {"code": INVALID_REQUEST, "message": message}}
    await JSONResponse(body, status_code=status)(scope, receive, send)


class OneAuthorization:
    """ASGI wrapper of a whole MCP service: a request with more than one Authorization header is answered 400.

    The SDK reads the first; a proxy in front may read (or add) the last, and the two would then disagree
    about who is calling.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and len(Headers(scope=scope).getlist("authorization")) > 1:
            log.warning("request refused", reason="DuplicateAuthorization", path=str(scope.get("path", ""))[:100])
            message = "more than one Authorization header: send exactly one bearer token"
            await _refuse(scope, receive, send, 400, message)
            return
        await self._app(scope, receive, send)


def limit_sessions_per_identity(
    app: Starlette, manager: StreamableHTTPSessionManager, *, path: str, limit: int
) -> None:
    """Put `SessionQuota` in front of the MCP endpoint at `path` (inside the SDK's bearer authentication)."""
    routes = [r for r in app.router.routes if isinstance(r, Route) and r.path == path]
    if len(routes) != 1:
        raise RuntimeError(f"expected one MCP route at {path}, found {len(routes)}")
    routes[0].app = SessionQuota(routes[0].app, manager, limit)


def host_port(host: str, port: int) -> str:
    """`host:port` as a URL and a Host header spell it: an IPv6 address in brackets (`[::1]:8101`)."""
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def transport_security(settings: ServerSettings) -> TransportSecuritySettings:
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[
            host_port(settings.host, settings.port),
            f"localhost:{settings.port}",
            f"127.0.0.1:{settings.port}",
            *settings.allowed_hosts,
        ],
    )


__all__ = [
    "Caller",
    "KnownCallersOnly",
    "Platform",
    "SessionQuota",
    "current_caller",
    "limit_sessions_per_identity",
    "transport_security",
]
