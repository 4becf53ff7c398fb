"""jira-read settings (env prefix GORESOLVE_JIRA_READ_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from servers.common.auth_settings import plaintext_refusal
from servers.common.settings import ServerSettings

SAMPLES = Path(__file__).resolve().parent / "samples"


class JiraReadSettings(ServerSettings):
    model_config = SettingsConfigDict(env_prefix="GORESOLVE_JIRA_READ_", extra="forbid", frozen=True)

    port: int = Field(default=8101, ge=1, le=65535)
    backend: Literal["local", "cloud", "datacenter"] = "local"
    tickets_dir: Path = Field(default=SAMPLES, description="Ticket files for the local backend.")
    url: str | None = Field(
        default=None,
        description="Jira base URL, e.g. https://acme.atlassian.net (https; plain http only to a loopback host).",
    )
    user: str | None = Field(default=None, description="Account e-mail (Cloud API token auth).")
    api_token: SecretStr | None = Field(default=None, description="Cloud API token, or Data Center PAT.")
    timeout_s: float = Field(default=15.0, gt=0, le=120)
    max_retries: int = Field(default=3, ge=0, le=10)
    max_retry_wait_s: float = Field(default=30.0, ge=0, le=300)
    max_response_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=64 * 1024,
        le=256 * 1024 * 1024,
        description="Largest Jira response body read (after decompression); a larger one fails the call.",
    )
    max_description_chars: int = Field(default=8000, ge=200, le=200_000)
    max_comment_chars: int = Field(default=2000, ge=100, le=50_000)

    @field_validator("url")
    @classmethod
    def _url_https_only(cls, value: str | None) -> str | None:
        # The API token goes with every request: never in plaintext off the machine.
        if value and (refusal := plaintext_refusal(value)):
            raise ValueError(refusal)
        return value
