"""The bearer-token settings every server has, and the one rule for their environment names.

A server's settings carry its env prefix (`GORESOLVE_JIRA_READ_`, ...), so its HS256 key is
`GORESOLVE_JIRA_READ_TOKEN_KEY`. `goresolve token mint --server jira-read` reads that same variable
(`token_key_env`), so the key that signs a token and the key that checks it have one name.

OIDC (`oidc_*`) lets callers bring a token from their own identity provider, or a Kubernetes
projected ServiceAccount token; see `servers.common.oidc`. Both may be on at once: a token goes to
the verifier whose issuer it names.

This module imports only pydantic(-settings), so that stdio servers (which need no tokens) load no JWT code.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings

TOKEN_KEY_MIN_CHARS = 32


def env_prefix_of(server: str) -> str:
    """`GORESOLVE_JIRA_READ_` for `jira-read`: the prefix of every setting of that server."""
    return "GORESOLVE_" + server.upper().replace("-", "_") + "_"


def token_key_env(server: str) -> str:
    """The environment variable (and secrets-dir file name) holding `server`'s HS256 key."""
    return env_prefix_of(server) + "TOKEN_KEY"


def read_token_key(server: str, environ: Mapping[str, str] | None = None) -> SecretStr | None:
    """`server`'s HS256 key from the environment or, like the servers, from `GORESOLVE_SECRETS_DIR`.

    For the CLI edge only; servers read it through their settings.
    """
    env = os.environ if environ is None else environ
    name = token_key_env(server)
    value = env.get(name)
    if value is None and env.get("GORESOLVE_SECRETS_DIR"):
        path = Path(env["GORESOLVE_SECRETS_DIR"]) / name
        value = path.read_text(encoding="utf-8").strip() if path.is_file() else None
    return SecretStr(value) if value else None


PLAINTEXT_REFUSED = "must be an https URL (plain http only to a loopback host: localhost, 127.0.0.0/8, ::1)"


def is_loopback_host(host: str | None) -> bool:
    """`host` is localhost or a loopback address (127.0.0.0/8, ::1): traffic to it never leaves the machine."""
    if not host:
        return False
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def plaintext_refusal(url: str) -> str | None:
    """Why `url` may not carry a credential or a key set (http to a host other than a loopback one, or another
    scheme than http/https); None when it may."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme == "https" or (scheme == "http" and is_loopback_host(parts.hostname)):
        return None
    return PLAINTEXT_REFUSED


class TokenSettings(BaseSettings):
    """Bearer-token settings, mixed into every server's settings (so they carry its env prefix)."""

    token_key: SecretStr | None = Field(
        default=None,
        description="HS256 key (at least 32 characters) for tokens from `goresolve token mint --server <this "
        "server>`, which reads the same variable. The http transport needs this or oidc_issuer.",
    )
    oidc_issuer: str | None = Field(
        default=None,
        description="OIDC issuer whose RS256/ES256 tokens are accepted (an IdP, or a Kubernetes cluster's "
        "service-account issuer). Tokens must carry it as `iss`.",
    )
    oidc_audience: str | None = Field(
        default=None, description="Required `aud` of OIDC tokens; default goresolve:<server>."
    )
    oidc_jwks_url: str | None = Field(
        default=None, description="JWKS URL; default: jwks_uri from <issuer>/.well-known/openid-configuration."
    )

    @field_validator("oidc_issuer", "oidc_jwks_url")
    @classmethod
    def _https_only(cls, value: str | None) -> str | None:
        # A key set fetched in plaintext can be replaced on the way, and then forged tokens verify. A value that
        # is no URL at all (no scheme) is left to the verifier, which names the setting (e.g. `goresolve`).
        if value and "://" in value and (refusal := plaintext_refusal(value)):
            raise ValueError(refusal)
        return value

    oidc_ca_file: Path | None = Field(
        default=None,
        description="CA bundle for the issuer's TLS (in a pod: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt).",
    )
    oidc_algorithms: tuple[str, ...] = Field(default=("RS256", "ES256"), description="Accepted signature algorithms.")
    oidc_identity_claim: str = Field(
        default="sub", description="Claim naming the caller; used as the policy identity when access.yaml has it."
    )
    oidc_group_claims: tuple[str, ...] = Field(
        default=("groups", "roles"), description="Claims listing the caller's groups or roles."
    )
    oidc_group_identities: dict[str, str] = Field(
        default_factory=dict,
        description='Group or role -> access.yaml identity, as JSON, e.g. {"platform-eng": "ide"}. A caller '
        "whose own identity policy does not know gets the first entry (in this order) whose group they hold.",
    )
    oidc_jwks_cache_s: int = Field(default=300, ge=0, le=86_400, description="How long fetched keys are trusted.")
    oidc_leeway_s: int = Field(default=30, ge=0, le=300, description="Clock skew allowed on exp/nbf/iat.")
    oidc_timeout_s: float = Field(
        default=5.0, gt=0, le=60, description="Time limit of one discovery and JWKS fetch, the whole reply included."
    )
    oidc_min_refresh_s: float = Field(
        default=10.0,
        ge=1,
        le=3600,
        description="At most one discovery or JWKS fetch per this many seconds, failed ones included (a token "
        "with an unknown key id asks for one).",
    )
