"""Gateway settings (env prefix GORESOLVE_WEBHOOKS_); the secrets also come from GORESOLVE_SECRETS_DIR."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from servers.common.settings import ServerSettings

# GitHub caps webhook payloads at 25 MB; anything larger is not from GitHub.
GITHUB_MAX_PAYLOAD = 25 * 1024 * 1024
# Bytes of bodies not yet verified held at once, across requests: with a 256Mi pod, room for two
# bodies at GitHub's cap while the rest of the process (about 70 MB) and one verified body fit.
UNVERIFIED_BUDGET = 64 * 1024 * 1024


class WebhookSettings(ServerSettings):
    model_config = SettingsConfigDict(env_prefix="GORESOLVE_WEBHOOKS_", extra="forbid", frozen=True)

    port: int = Field(default=8110, ge=1, le=65535)
    # At least one of the two: a source without its secret is not served (its route answers 403 saying so).
    github_secret: SecretStr | None = Field(
        default=None, description="The GitHub webhook's secret (HMAC-SHA256); unset: /webhooks/github is not served."
    )
    jira_secret: SecretStr | None = Field(
        default=None, description="The Jira webhook's secret (HMAC-SHA256); unset: /webhooks/jira is not served."
    )
    branches: tuple[str, ...] = Field(default=(), description="Branches followed besides each repo's default.")
    commands: tuple[str, ...] = Field(
        default=("/goresolve retry",),
        description="Issue-comment commands accepted; each one (re)starts the issue's run.",
    )
    command_roles: tuple[str, ...] = Field(
        default=("OWNER", "MEMBER", "COLLABORATOR"),
        description="Who may give a command: the comment's author_association (GitHub). Anyone else's is ignored.",
    )
    max_body_bytes: int = Field(default=GITHUB_MAX_PAYLOAD, ge=1024, le=GITHUB_MAX_PAYLOAD)
    unverified_budget_bytes: int = Field(
        default=UNVERIFIED_BUDGET,
        ge=1024,
        le=1024 * 1024 * 1024,
        description="Bytes of not-yet-verified bodies held at once across requests; past it, 503 (a body "
        "alone above it: 413).",
    )
    body_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="Deadline for a request's whole body to arrive; past it, 408 and its bytes go back to the "
        "budget (GitHub sends a delivery within its own 10 s timeout).",
    )
    max_unverified_per_client: int = Field(
        default=16,
        ge=1,
        le=4096,
        description="Requests from one client address reading a not-yet-verified body at once; past it, 429. "
        "Behind a reverse proxy every request comes from the proxy's address: raise it, or let the proxy buffer.",
    )
    github_token: SecretStr | None = Field(default=None, description="For `webhooks redeliver` (admin:repo_hook).")
    github_api_url: str = Field(default="https://api.github.com", description="GitHub's REST API (GHES: .../api/v3).")
    retry_after_s: int = Field(default=30, ge=1, le=3600, description="Retry-After on a 503.")
    queue_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="Deadline of a queue operation (enqueue, /readyz, /metrics); past it, 503. GitHub gives up "
        "after 10 s.",
    )
