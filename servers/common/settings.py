"""Typed settings, read once at the edge.

Each server subclasses `ServerSettings` with its own env prefix (`GORESOLVE_JIRA_READ_`, ...).
Secrets are `SecretStr` and come from the environment or from files: point `GORESOLVE_SECRETS_DIR`
at a directory (a Kubernetes secret mount) holding one file per setting, named like its env var
(e.g. `GORESOLVE_JIRA_READ_TOKEN_KEY`). Library code receives these objects; only `load_settings`
looks at the process environment.

State (audit logs, traces, the code index, models, the local PR store) lives in one per-user data
directory: `GORESOLVE_DATA_DIR` when set, else the platform's user data directory
(`~/.local/share/goresolve` on Linux). `settings_help` renders every setting of a class (env name,
default, description) for a server's `--help`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal, TypeVar

import platformdirs
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_core import PydanticUndefined
from pydantic_settings import SettingsConfigDict, SettingsError

from servers.common.auth_settings import TokenSettings
from servers.common.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_POLICY_DIR = REPO_ROOT / "policies"
DATA_DIR_ENV = "GORESOLVE_DATA_DIR"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# What an HTTP client sends as Host: a DNS name, an IPv4 address or a bracketed IPv6 address, then an
# optional port (or `*`, which the SDK's check reads as "any port").
_HOST_HEADER = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])(?::(?:[0-9]{{1,5}}|\*))?")


def default_data_dir() -> Path:
    """The one per-user data directory: `$GORESOLVE_DATA_DIR`, else the platform's (platformdirs)."""
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override).expanduser().resolve()
    return platformdirs.user_data_path("goresolve", appauthor=False)


class ServerSettings(TokenSettings):
    """Settings every server has (the bearer-token ones come from `TokenSettings`). Subclasses set `env_prefix`."""

    model_config = SettingsConfigDict(env_prefix="GORESOLVE_", extra="forbid", frozen=True)

    transport: Literal["stdio", "http"] = Field(default="stdio", description="stdio (an IDE) or http (a sidecar).")
    host: str = Field(default="127.0.0.1", description="HTTP bind address.")
    port: int = Field(default=8000, ge=1, le=65535, description="HTTP port.")
    allowed_hosts: tuple[str, ...] = Field(
        default=(),
        description="More Host header values the HTTP transport accepts (DNS rebinding protection), as JSON, e.g. "
        '["gr-goresolve-jira-read:8101"] for a Kubernetes Service; `name:*` allows any port. The bind address, '
        "localhost and 127.0.0.1 at the server's port are always accepted.",
    )
    max_sessions: int = Field(
        default=200,
        ge=1,
        le=10_000,
        description="Open MCP sessions over HTTP, all callers together; a new one past it is answered 503.",
    )
    max_sessions_per_identity: int = Field(
        default=50,
        ge=1,
        le=10_000,
        description="Open MCP sessions over HTTP of one caller (a token's subject at its issuer: people an OIDC "
        "group maps to one policy identity count apart); a new one past it is answered 429. The agent opens one "
        "per server per run.",
    )
    session_idle_s: int = Field(
        default=600,
        ge=1,
        le=86_400,
        description="An HTTP session with no request in flight for this long is closed (its id then gets 404).",
    )
    max_connections: int = Field(
        default=256,
        ge=8,
        le=100_000,
        description="Open connections and requests the server takes at once (uvicorn's limit_concurrency); past "
        "it, 503.",
    )
    keep_alive_s: int = Field(
        default=5, ge=1, le=300, description="An idle keep-alive connection is closed after this many seconds."
    )
    header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="A connection that has not sent a request's complete headers this long after it opened (or "
        "after its last answer) is closed.",
    )
    policy_dir: Path = Field(default=DEFAULT_POLICY_DIR, description="Directory of the policy YAML files.")
    stdio_identity: str = Field(default="local-dev", description="Caller identity over stdio (the IDE's user).")
    state_dir: Path = Field(
        default_factory=default_data_dir,
        description=f"Audit logs, traces and server state; defaults to ${DATA_DIR_ENV} or the per-user data dir.",
    )
    audit_log: Path | None = Field(default=None, description="Defaults to <state_dir>/audit/<server>.jsonl")
    trace_file: Path | None = Field(default=None, description="Defaults to <state_dir>/traces/<server>.jsonl")
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None, description="Also read from the standard OTEL_EXPORTER_OTLP_ENDPOINT."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="DEBUG, INFO, WARNING or ERROR (JSON lines on stderr)."
    )

    @field_validator("allowed_hosts")
    @classmethod
    def _host_headers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for host in value:
            if not _HOST_HEADER.fullmatch(host):
                raise ValueError(
                    "each entry is a Host header value: a DNS name or IP address with an optional :port or :* "
                    "(no scheme, path or wildcard name)"
                )
        return value

    @field_validator("state_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        # Relative to the current directory would make every command see a different state.
        return value.expanduser().resolve()

    def secret_values(self) -> list[str]:
        """Every configured secret, for the log redactor."""
        values: list[str] = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                values.append(value.get_secret_value())
        return values


S = TypeVar("S", bound=ServerSettings)


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build settings from env (+ secrets dir) and explicit overrides (CLI flags win).

    Raises:
        ConfigError: a value is invalid; the message names the variable, never its value.
    """
    secrets_dir = os.environ.get("GORESOLVE_SECRETS_DIR")
    given: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    if given.get("otel_exporter_otlp_endpoint") is None and os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        given["otel_exporter_otlp_endpoint"] = os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"]
    try:
        if secrets_dir:
            return cls(_secrets_dir=secrets_dir, **given)  # type: ignore[call-arg]
        return cls(**given)
    except ValidationError as exc:
        prefix = str(cls.model_config.get("env_prefix", ""))
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"setting {prefix}{field.upper()}: {first['msg']}") from exc
    except SettingsError as exc:  # a list or map setting whose text is not JSON; pydantic-settings names the field
        prefix = str(cls.model_config.get("env_prefix", ""))
        named = re.search(r'field "(\w+)"', str(exc))
        variable = f"{prefix}{named.group(1).upper()}" if named else f"{prefix}*"
        raise ConfigError(f"setting {variable}: not valid JSON (this setting is a JSON list or object)") from exc


def settings_help(cls: type[ServerSettings]) -> list[tuple[str, str, str]]:
    """(environment name, default, description) of every setting of `cls`, in declaration order."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    rows: list[tuple[str, str, str]] = []
    for name, field in cls.model_fields.items():
        annotation = str(field.annotation)
        if "SecretStr" in annotation:
            default = "(secret, unset)"
        elif field.default_factory is not None:
            default = str(field.default_factory())  # type: ignore[call-arg]
        elif field.default is PydanticUndefined:
            default = "(required)"
        elif field.default is None:
            default = "(unset)"
        else:
            default = str(field.default)
        base = ServerSettings.model_fields.get(name)  # a subclass that only changes a default keeps the text
        description = field.description or (base.description if base is not None else None) or ""
        rows.append((f"{prefix}{name.upper()}", default, description))
    return rows
