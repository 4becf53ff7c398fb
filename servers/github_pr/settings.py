"""github-pr settings (env prefix GORESOLVE_GITHUB_PR_)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import SettingsConfigDict

from servers.common.auth_settings import plaintext_refusal
from servers.common.errors import ConfigError
from servers.common.settings import ServerSettings
from servers.common.yamlfile import load_yaml_file
from servers.github_pr.models import LOGIN_PATTERN


class GitHubPrSettings(ServerSettings):
    model_config = SettingsConfigDict(env_prefix="GORESOLVE_GITHUB_PR_", extra="forbid", frozen=True)

    port: int = Field(default=8104, ge=1, le=65535)
    backend: Literal["local", "github"] = "local"
    branch_prefix: str = Field(default="goresolve", description="Every branch the bot creates starts with this + '/'.")
    bot_name: str = "goresolve[bot]"
    bot_email: str = "goresolve-bot@users.noreply.github.com"
    ticket_url: str | None = Field(default=None, description="e.g. https://acme.atlassian.net/browse/{ticket}")
    image_prefixes: tuple[Annotated[str, Field(pattern=r"^[a-z0-9-]+(\.[a-z0-9-]+)+/([^\s?#]*/)?$")], ...] = Field(
        default=(),
        max_length=50,
        description="Where images in published text may point besides the repository's own GitHub pages and "
        "GitHub's user-content hosts: `host/` or `host/path/` (https only); any other image becomes a placeholder.",
    )
    notify_logins: tuple[Annotated[str, Field(pattern=LOGIN_PATTERN)], ...] = Field(
        default=(),
        max_length=100,
        description="Logins whose mentions in published text still notify, besides the owners named in the "
        "policy set's escalation.yaml (the people hand-offs are for); every other mention is neutralised.",
    )
    # local backend
    remotes_dir: Path | None = Field(
        default=None, description="Bare repos named <repo>.git; default <state_dir>/github-pr/remotes."
    )
    issues_dir: Path | None = Field(
        default=None,
        description="GitHub issues as files <repo>/<number>.json or .yaml in GitHub's REST shape (what "
        "`gh api repos/OWNER/REPO/issues/N` prints); default <state_dir>/github-pr/issues.",
    )
    max_issue_chars: int = Field(
        default=8000, ge=200, le=200_000, description="An issue body longer than this is cut, with a marker."
    )
    max_comment_chars: int = Field(
        default=2000, ge=100, le=50_000, description="An issue comment longer than this is cut, with a marker."
    )
    # github backend
    token: SecretStr | None = Field(
        default=None, description="Fine-grained token: contents, pull requests and issues, write."
    )
    base_url: str = Field(
        default="https://api.github.com",
        description="GitHub Enterprise: https://HOST/api/v3 (https; plain http only to a loopback host).",
    )
    github_login: str | None = Field(
        default=None,
        description="The login GitHub records for the bot's pushes (branch ownership is checked against it); "
        "default: the token's user (GET /user). A GitHub App must set it: <app-slug>[bot].",
    )
    timeout_s: float = Field(default=15.0, gt=0, le=120)
    max_retries: int = Field(default=3, ge=0, le=10)
    max_retry_wait_s: float = Field(default=30.0, ge=0, le=300)
    deadline_s: float = Field(
        default=120.0,
        gt=0,
        le=900,
        description="Wall-clock budget of one GitHub request, retries included, and of one tool call.",
    )
    max_response_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=1024 * 1024,
        le=512 * 1024 * 1024,
        description="Largest GitHub response body read (after decompression); a larger one fails the call.",
    )
    seconds_between_writes: float = Field(
        default=1.0, ge=0, le=10, description="GitHub asks integrations to space writes to avoid secondary limits."
    )

    @field_validator("base_url")
    @classmethod
    def _base_url_https_only(cls, value: str) -> str:
        # The token goes with every request: never in plaintext off the machine.
        if refusal := plaintext_refusal(value):
            raise ValueError(refusal)
        return value

    def web_host(self) -> str:
        """The code host's web address: github.com for the public API, the Enterprise host otherwise."""
        host = (urlsplit(self.base_url).hostname or "github.com").lower()
        return "github.com" if host == "api.github.com" else host

    def work_dir(self) -> Path:
        return self.state_dir / "github-pr"


class _Owner(BaseModel):
    model_config = ConfigDict(extra="ignore")
    owner: str = Field(pattern=LOGIN_PATTERN)


class _Escalation(BaseModel):
    # escalation.yaml belongs to the agent (agent/policy.py validates all of it); github-pr reads who it names.
    model_config = ConfigDict(extra="ignore")
    default_owner: str = Field(pattern=LOGIN_PATTERN)
    owners: tuple[_Owner, ...] = ()


def mentionable(settings: GitHubPrSettings) -> tuple[str, ...]:
    """The logins whose mentions stay live in what the bot publishes: `notify_logins` and the owners of
    `<policy_dir>/escalation.yaml` when the policy set has one (a hand-off posted as an issue comment
    reaches its owner only through that mention).

    Raises:
        ConfigError: escalation.yaml is there but not YAML (or holds a repeated key, is too deep, is not UTF-8
            text: the strict loader's line naming the file), or names an owner that is not a login.
    """
    found = list(settings.notify_logins)
    path = settings.policy_dir / "escalation.yaml"
    if path.is_file():
        try:
            escalation = _Escalation.model_validate(load_yaml_file(path))
        except ValidationError as exc:
            raise ConfigError(f"{path.name}: cannot read its owners ({type(exc).__name__})") from None
        found += [escalation.default_owner, *(o.owner for o in escalation.owners)]
    return tuple(dict.fromkeys(found))
