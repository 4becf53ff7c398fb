"""OIDC bearer tokens: RS256/ES256 JWTs from the caller's identity provider, checked against its JWKS.

    verifier = OidcTokenVerifier(OidcConfig(issuer=..., audience="goresolve:jira-read"), is_identity=...)

A token is accepted when its signature verifies with a key from the issuer's JWKS, and `iss`, `aud`,
`exp` (and `nbf`/`iat` when present) hold, within `leeway_s`. The JWKS URL comes from the setting or
from the issuer's discovery document (`/.well-known/openid-configuration`, whose `issuer` must match).
Kubernetes projected ServiceAccount tokens are the same kind of token: the cluster's service-account
issuer publishes discovery and JWKS, the pod spec sets the audience, and `sub` is
`system:serviceaccount:<namespace>:<name>`.

Keys are fetched on first use and cached by PyJWT's `PyJWKClient` for `jwks_cache_s`; a token signed
with a key id the cache does not know refreshes the set (the issuer rotated its keys), at most once
per `min_refresh_s` (PyJWT's cooldown), so made-up key ids cannot flood the issuer with requests.

The caller's policy identity: the `identity_claim` (default `sub`) when access.yaml knows it; otherwise
the first `group_identities` entry whose group or role the token lists in one of `group_claims`;
otherwise the claim itself (policy then grants it nothing). The audit log and every log line name
that identity; the token's own subject stays in `client_id` and the `sub` claim.

A refused token is `None` (answered 401 by the SDK); the reason is logged, the token never is.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
import jwt
from jwt import PyJWKClient
from mcp.server.auth.provider import AccessToken

from servers.common.logging import get_logger

log = get_logger(__name__)


class OidcUnavailable(Exception):
    """The issuer's discovery document or key set could not be read."""


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    audience: str
    jwks_url: str | None = None
    ca_file: Path | None = None
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    identity_claim: str = "sub"
    group_claims: tuple[str, ...] = ("groups", "roles")
    group_identities: Mapping[str, str] = field(default_factory=dict[str, str])
    jwks_cache_s: int = 300
    leeway_s: int = 30
    timeout_s: float = 5.0
    min_refresh_s: float = 10.0


def claim_values(claims: Mapping[str, Any], name: str) -> list[str]:
    """A claim as a list of strings: a JSON list, or one space-separated string (the `scope` style)."""
    value = claims.get(name)
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, str | int)]  # pyright: ignore[reportUnknownVariableType]
    return []


class OidcTokenVerifier:
    """`TokenVerifier` for tokens from one OIDC issuer (see the module docstring)."""

    def __init__(self, config: OidcConfig, *, is_identity: Callable[[str], bool]) -> None:
        bad = set(config.algorithms) - {"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "EdDSA"}
        if bad:
            raise ValueError(f"OIDC algorithms must be asymmetric; not allowed: {', '.join(sorted(bad))}")
        self.config = config
        self._is_identity = is_identity
        self._client: PyJWKClient | None = None
        self._lock = threading.Lock()

    # --- keys ---------------------------------------------------------------------------------------

    def _ssl(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.config.ca_file) if self.config.ca_file else None)

    def _discover(self) -> str:
        url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            response = httpx.get(url, timeout=self.config.timeout_s, verify=self._ssl(), follow_redirects=False)
            response.raise_for_status()
            document: Any = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OidcUnavailable(f"discovery failed: {type(exc).__name__}") from exc
        if not isinstance(document, dict) or document.get("issuer") != self.config.issuer:  # pyright: ignore[reportUnknownMemberType]
            raise OidcUnavailable("discovery document names another issuer")
        jwks_uri = document.get("jwks_uri")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if not isinstance(jwks_uri, str):
            raise OidcUnavailable("discovery document has no jwks_uri")
        return jwks_uri

    def _keys(self) -> PyJWKClient:
        with self._lock:
            if self._client is None:
                url = self.config.jwks_url or self._discover()
                self._client = PyJWKClient(
                    url,
                    cache_keys=False,  # the key set is cached (cache_jwk_set); a per-kid LRU would outlive a rotation
                    cache_jwk_set=True,
                    lifespan=max(1, self.config.jwks_cache_s),
                    timeout=round(self.config.timeout_s) or 1,
                    ssl_context=self._ssl(),
                    cooldown_duration=self.config.min_refresh_s,
                )
            return self._client

    # --- verification -------------------------------------------------------------------------------

    def identity_of(self, claims: Mapping[str, Any]) -> str:
        """The policy identity for verified `claims` (see the module docstring)."""
        own = claims.get(self.config.identity_claim)
        own_name = str(own) if isinstance(own, str | int) and str(own) else str(claims.get("sub", ""))
        if self._is_identity(own_name):
            return own_name
        held = {v for name in self.config.group_claims for v in claim_values(claims, name)}
        for group, identity in self.config.group_identities.items():
            if group in held:
                return identity
        return own_name

    def verify_sync(self, token: str) -> AccessToken:
        """Verify `token` (blocking: may fetch keys).

        Raises:
            jwt.PyJWTError: the token is malformed, badly signed, expired, for another audience or issuer.
            OidcUnavailable: the issuer's keys could not be read.
            jwt.PyJWKClientError: the key set could not be fetched or parsed.
        """
        key = self._keys().get_signing_key_from_jwt(token)  # an unknown kid refreshes the set (cooldown)
        if key.algorithm_name not in self.config.algorithms:
            raise jwt.InvalidAlgorithmError(f"key algorithm {key.algorithm_name} is not accepted")
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=[key.algorithm_name],
            audience=self.config.audience,
            issuer=self.config.issuer,
            leeway=self.config.leeway_s,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
        identity = self.identity_of(claims)
        if not identity:
            raise jwt.MissingRequiredClaimError(self.config.identity_claim)
        return AccessToken(
            token=token,
            client_id=str(claims["sub"]),
            scopes=[],
            expires_at=int(claims["exp"]),
            resource=self.config.audience,
            subject=identity,
            claims={k: claims[k] for k in ("iss", "aud", "sub", *self.config.group_claims) if k in claims},
        )

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            access = await anyio.to_thread.run_sync(self.verify_sync, token)
        except (jwt.PyJWTError, OidcUnavailable) as exc:
            log.warning("oidc token refused", reason=type(exc).__name__, detail=str(exc)[:200])
            return None
        log.debug("oidc token accepted", identity=access.subject, sub=access.client_id)
        return access
