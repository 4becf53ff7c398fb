"""Tool declarations: privilege and behaviour live on the tool, errors leave through two channels.

A server declares each tool with a `ToolSpec`: its scope (what policy must grant the caller) and all
four MCP annotations, explicitly — there are no defaults to forget. `guard_errors` wraps the tool
function so that what escapes it is exactly one of:

* `ToolError` (a tool result with is_error) for a `ToolFailure`: short, redacted text the model can act on;
* `MCPError(FORBIDDEN)` for `AccessDenied`;
* `MCPError(INTERNAL)` for anything else, logged with its traceback; the client sees the trace id only.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp_types import Tool, ToolAnnotations

from servers.common.errors import FORBIDDEN, INTERNAL, AccessDenied, ToolFailure
from servers.common.logging import get_logger, redactor
from servers.common.policy import Scope
from servers.common.tracing import current_trace_id, tracer

log = get_logger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class ToolSpec:
    """Everything policy and clients need to know about a tool, declared where the tool is."""

    name: str
    description: str
    scope: Scope
    read_only: bool
    destructive: bool
    idempotent: bool
    open_world: bool
    title: str | None = None

    @classmethod
    def reader(cls, scope: Scope, *, name: str, description: str, open_world: bool = True) -> ToolSpec:
        """A read-only, idempotent, non-destructive tool (the common case)."""
        return cls(
            name=name,
            description=description,
            scope=scope,
            read_only=True,
            destructive=False,
            idempotent=True,
            open_world=open_world,
        )

    def annotations(self) -> ToolAnnotations:
        return ToolAnnotations(
            title=self.title,
            read_only_hint=self.read_only,
            destructive_hint=self.destructive,
            idempotent_hint=self.idempotent,
            open_world_hint=self.open_world,
        )


def guard_errors(spec: ToolSpec, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Wrap a tool function: a span per call and the two error channels (see module docstring)."""

    @functools.wraps(fn)
    async def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        with tracer().start_as_current_span(f"tool.{spec.name}") as span:
            span.set_attribute("goresolve.tool", spec.name)
            try:
                return await fn(*args, **kwargs)
            except ToolFailure as exc:
                span.set_attribute("goresolve.tool_error", exc.kind)
                log.info("tool failed", tool=spec.name, kind=exc.kind, error=exc.message, detail=exc.detail)
                raise ToolError(redactor().text(exc.message)) from None
            except AccessDenied as exc:
                log.warning("access denied", tool=spec.name, error=exc.message)
                raise MCPError(code=FORBIDDEN, message=redactor().text(exc.message)) from None
            except MCPError:
                raise
            except Exception:  # the outermost handler of a tool call: log it, answer without detail
                log.exception("tool crashed", tool=spec.name)
                raise MCPError(code=INTERNAL, message=f"internal error (trace {current_trace_id()})") from None

    return wrapped


def check_surface(tools: Iterable[Tool]) -> None:
    """Refuse a tool surface that clients mishandle.

    Raises:
        ValueError: a tool lacks one of the four annotations, or its input schema has a top-level
            anyOf/oneOf/allOf (several MCP clients reject those).
    """
    for tool in tools:
        ann = tool.annotations
        if ann is None or None in (
            ann.read_only_hint,
            ann.destructive_hint,
            ann.idempotent_hint,
            ann.open_world_hint,
        ):
            raise ValueError(f"tool {tool.name!r} must declare all four annotations")
        for key in ("anyOf", "oneOf", "allOf"):
            if key in tool.input_schema:
                raise ValueError(f"tool {tool.name!r}: top-level {key} in its input schema")


def surface_document(tools: Iterable[Tool]) -> list[dict[str, Any]]:
    """The model-facing surface (name, description, schemas, annotations), sorted by name."""
    return [
        tool.model_dump(
            mode="json",
            by_alias=True,
            exclude_none=True,
            include={"name", "title", "description", "input_schema", "output_schema", "annotations"},
        )
        for tool in sorted(tools, key=lambda t: t.name)
    ]


def fingerprint(tools: Iterable[Tool]) -> str:
    """sha256 of the canonical surface document: clients pin it to notice any surface change."""
    canonical = json.dumps(surface_document(tools), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
