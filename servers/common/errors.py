"""The one exception tree of goresolve's servers.

Two channels, chosen on purpose (STYLE.md rule 3):

    GoresolveError
     ├── ToolFailure            -> a *tool error* (CallToolResult.is_error): the model can act on it.
     │    ├── InvalidInput      bad argument: hostile JQL, `..` in a path, a flag not allowed
     │    ├── NotFound          no such issue / file / symbol (also: forbidden resource, no existence leak)
     │    ├── Conflict          the thing exists in another state (branch exists, patch does not apply)
     │    └── UpstreamFailure   Jira/GitHub/go said no: 401/403/404/429/5xx, timeout, malformed body
     │         └── RateLimited  429 after the bounded retries; carries retry_after
     ├── AccessDenied           -> a *protocol error* (JSON-RPC code FORBIDDEN): policy refused the caller
     └── ConfigError            -> never reaches a client: a bad policy/settings file stops the process

Every message of a ToolFailure is short and sanitized (secrets redacted, no traceback, no upstream
body) because it is shown to the model. Full detail goes to logs and spans, through `detail`.
Anything not in this tree that escapes a tool is an internal error: logged with its traceback,
answered with a protocol error that carries only the trace id.
"""

from __future__ import annotations

# JSON-RPC server-defined error codes (-32000..-32099 are reserved for implementations).
FORBIDDEN = -32003
INTERNAL = -32603


class GoresolveError(Exception):
    """Base of every error goresolve raises on purpose."""

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        # Upstream or diagnostic detail: logged and put on the span, never sent to a client.
        self.detail = detail


class ToolFailure(GoresolveError):
    """A failure the model can act on; becomes a tool error with `message` as its text."""

    kind = "failed"


class InvalidInput(ToolFailure):
    kind = "invalid_input"


class NotFound(ToolFailure):
    kind = "not_found"


class Conflict(ToolFailure):
    kind = "conflict"


class UpstreamFailure(ToolFailure):
    kind = "upstream"

    def __init__(self, message: str, *, status: int | None = None, detail: str | None = None) -> None:
        super().__init__(message, detail=detail)
        self.status = status


class RateLimited(UpstreamFailure):
    kind = "rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None, detail: str | None = None) -> None:
        super().__init__(message, status=429, detail=detail)
        self.retry_after = retry_after


class AccessDenied(GoresolveError):
    """Policy refused this caller this tool or resource; a protocol error with code FORBIDDEN."""


class ConfigError(GoresolveError):
    """A settings or policy file is invalid; raised at start-up, names the file and the field."""
