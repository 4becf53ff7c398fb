"""Structured JSON logs (structlog) with redaction and trace ids.

Every log line is one JSON object on stderr (stdout belongs to the stdio transport) carrying the
current OpenTelemetry trace_id/span_id. Before anything is rendered, the `Redactor` replaces every
configured secret value, bearer token, `Authorization` header value and well-known token shape with
`[REDACTED]` — in log lines and, through `Redactor.text`, in every error message sent to a client.
The standard library's `logging` (used by the mcp SDK, httpx, uvicorn) goes through the same chain.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog
from opentelemetry import trace

from credentials import CREDENTIAL_SHAPES, substitute

REDACTED = "[REDACTED]"

# Log lines are redacted more eagerly than published text is scanned: on top of every credential
# shape, any value after an auth scheme or a secret-sounding key goes.
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----")
_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(
        r"(?i)(authorization|proxy-authorization|x-api-key|api[_-]?key|password|secret)(['\"]?\s*[:=]\s*)"
        r"['\"]?[^\s'\",}]{4,}"
    ),
    _PRIVATE_KEY,
    *(pattern for _kind, pattern in CREDENTIAL_SHAPES),
)
# Every pattern is matched through `credentials.substitute`, which skips what a failed start rules out (the
# catalogue's JWT, OpenAI and npm rules were quadratic: "sk-" 13,000 times took 3 s). A BEGIN line with no END
# line after it rules out every later one (a later header ends later), so the rest of the text is skipped: as one
# regex, each of n BEGIN lines read on to the end.
_SKIPS: dict[re.Pattern[str], tuple[str, re.Pattern[str]]] = {_PRIVATE_KEY: ("-----BEGIN ", re.compile(r"[\s\S]*"))}


class Redactor:
    """Replaces secrets in text. Configured secrets are matched literally; shapes by pattern."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        # Short values would redact ordinary words; a real secret is longer than 5 characters.
        # Longest first, so a secret that contains another is replaced whole; each value once.
        known = set(self._secrets)
        self._secrets = sorted(known | {s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        for pattern in _PATTERNS:
            value = substitute(pattern, _keep_label, value, _SKIPS.get(pattern))
        return value

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: (REDACTED if _sensitive_key(k) else self.value(v)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value

    def processor(self, _logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        for key in list(event):
            event[key] = REDACTED if _sensitive_key(key) else self.value(event[key])
        return event


def _keep_label(match: re.Match[str]) -> str:
    # Keep "Authorization: " / "Bearer " so a reader still knows what was removed.
    groups = match.groups()
    if len(groups) >= 2 and groups[1] is not None:
        return f"{groups[0]}{groups[1]}{REDACTED}"
    if groups and groups[0] is not None:
        return f"{groups[0]} {REDACTED}"
    return REDACTED


def _sensitive_key(key: object) -> bool:
    return isinstance(key, str) and key.lower() in {
        "authorization",
        "proxy-authorization",
        "token",
        "password",
        "secret",
        "api_key",
        "cookie",
        "set-cookie",
    }


def _add_trace(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event.setdefault("trace_id", format(ctx.trace_id, "032x"))
        event.setdefault("span_id", format(ctx.span_id, "016x"))
    return event


_REDACTOR = Redactor()


def redactor() -> Redactor:
    """The process-wide redactor (configured secrets are added by `configure_logging`)."""
    return _REDACTOR


# Loggers whose INFO lines are library chatter, not events: the root logger (onnxruntime's quantizer
# logs every tensor there) and persist-queue (its import logs which optional extras it lacks).
_CHATTY = ("root", "persistqueue")


def _quiet_library_chatter(record: logging.LogRecord) -> bool:
    # Our own code always logs through a named logger of its own, so these never hide a real line.
    if record.levelno >= logging.WARNING:
        return True
    return not any(record.name == name or record.name.startswith(name + ".") for name in _CHATTY)


def configure_logging(
    *,
    service: str,
    level: str = "INFO",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
    console: bool = False,
) -> Redactor:
    """Install logging for this process (JSON lines; `console`: one readable line each, for a CLI).

    Either way lines go to stderr (or `stream`), never stdout, and pass the redactor. Returns the
    redactor holding `secrets`.
    """
    _REDACTOR.add(secrets)
    out = stream if stream is not None else sys.stderr
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_trace,
        structlog.processors.format_exc_info,
        _REDACTOR.processor,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _REDACTOR.processor,  # the rendered message of foreign (stdlib) records too
            structlog.dev.ConsoleRenderer(colors=False)
            if console
            else structlog.processors.JSONRenderer(sort_keys=False),
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    handler.addFilter(_quiet_library_chatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    structlog.contextvars.bind_contextvars(service=service)
    return _REDACTOR


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)
