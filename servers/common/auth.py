"""Bearer tokens for the HTTP transport: HS256 JWTs with one audience per server, and OIDC.

A goresolve token carries `sub` (the caller identity that policy knows), `aud` (the one server it
was minted for, e.g. `goresolve:jira-read`) and `exp`. The verifier implements the SDK's
`TokenVerifier` protocol; PyJWT checks the signature in constant time and refuses a wrong audience,
so a token minted for one server is answered 401 by every other. stdio needs no token: the IDE owns
the process.

`build_verifier` picks the verifiers a server's settings ask for: HS256 (`token_key`, for local use
and `goresolve token mint`), OIDC (`oidc_issuer`, tokens from the user's identity provider or a
Kubernetes ServiceAccount, see `servers.common.oidc`), or both, routed by the token's `iss`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import jwt
from mcp.server.auth.provider import AccessToken, TokenVerifier
from pydantic import SecretStr

from servers.common.auth_settings import TOKEN_KEY_MIN_CHARS, TokenSettings, env_prefix_of
from servers.common.errors import ConfigError
from servers.common.logging import get_logger

log = get_logger(__name__)

ISSUER = "goresolve"
_ALGORITHMS = ["HS256"]


def audience_for(server: str) -> str:
    return f"goresolve:{server}"


def mint_token(key: SecretStr, *, subject: str, server: str, ttl_s: int = 3600) -> str:
    """Sign a token for `subject` that only `server` accepts."""
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": subject, "aud": audience_for(server), "iat": now, "exp": now + ttl_s}
    return jwt.encode(claims, key.get_secret_value(), algorithm="HS256")


class AudienceTokenVerifier:
    """`TokenVerifier` for one server: valid signature, unexpired, our audience, known issuer."""

    def __init__(self, key: SecretStr, *, server: str) -> None:
        if len(key.get_secret_value()) < TOKEN_KEY_MIN_CHARS:
            raise ValueError(f"the token signing key must be at least {TOKEN_KEY_MIN_CHARS} characters")
        self._key = key
        self._audience = audience_for(server)

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            claims = jwt.decode(
                token,
                self._key.get_secret_value(),
                algorithms=_ALGORITHMS,
                audience=self._audience,
                issuer=ISSUER,
                options={"require": ["exp", "sub", "aud", "iss"]},
            )
        except jwt.PyJWTError as exc:
            # The reason is safe to log (no token text); the token itself never is.
            log.warning("token refused", reason=type(exc).__name__)
            return None
        subject = str(claims["sub"])
        return AccessToken(
            token=token,
            client_id=subject,
            scopes=[],
            expires_at=int(claims["exp"]),
            resource=self._audience,
            subject=subject,
            claims={"iss": claims["iss"], "aud": claims["aud"]},
        )


class IssuerRouter:
    """`TokenVerifier` that hands each token to the verifier of the issuer it names (`iss`, unverified).

    Routing only chooses; the chosen verifier checks everything, the issuer included.
    """

    def __init__(self, verifiers: Mapping[str, TokenVerifier]) -> None:
        self._verifiers = dict(verifiers)

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError as exc:
            log.warning("token refused", reason=type(exc).__name__)
            return None
        verifier = self._verifiers.get(issuer) if isinstance(issuer, str) else None
        if verifier is None:
            log.warning("token refused", reason="UnknownIssuer")
            return None
        return await verifier.verify_token(token)


def build_verifier(server: str, settings: TokenSettings, *, is_identity: Callable[[str], bool]) -> TokenVerifier:
    """The verifier for `server`'s HTTP transport, from its settings.

    Raises:
        ConfigError: neither a token key nor an OIDC issuer is set, the key is too short, or the OIDC
            settings are invalid; the message names the exact environment variable.
    """
    prefix = env_prefix_of(server)
    verifiers: dict[str, TokenVerifier] = {}
    if settings.token_key is not None:
        try:
            verifiers[ISSUER] = AudienceTokenVerifier(settings.token_key, server=server)
        except ValueError as exc:
            raise ConfigError(f"{server}: setting {prefix}TOKEN_KEY: {exc}") from exc
    if settings.oidc_issuer:
        from servers.common.oidc import OidcConfig, OidcTokenVerifier

        if settings.oidc_issuer == ISSUER:
            raise ConfigError(f"{server}: setting {prefix}OIDC_ISSUER: {ISSUER!r} is goresolve's own issuer")
        config = OidcConfig(
            issuer=settings.oidc_issuer,
            audience=settings.oidc_audience or audience_for(server),
            jwks_url=settings.oidc_jwks_url,
            ca_file=settings.oidc_ca_file,
            algorithms=settings.oidc_algorithms,
            identity_claim=settings.oidc_identity_claim,
            group_claims=settings.oidc_group_claims,
            group_identities=settings.oidc_group_identities,
            jwks_cache_s=settings.oidc_jwks_cache_s,
            leeway_s=settings.oidc_leeway_s,
            timeout_s=settings.oidc_timeout_s,
            min_refresh_s=settings.oidc_min_refresh_s,
        )
        try:
            verifiers[settings.oidc_issuer] = OidcTokenVerifier(config, is_identity=is_identity)
        except ValueError as exc:
            raise ConfigError(f"{server}: setting {prefix}OIDC_ALGORITHMS: {exc}") from exc
    if not verifiers:
        raise ConfigError(
            f"{server}: the http transport needs bearer-token verification: set {prefix}TOKEN_KEY (at least "
            f"{TOKEN_KEY_MIN_CHARS} characters; `goresolve token mint --server {server}` signs with the same "
            f"variable) or {prefix}OIDC_ISSUER"
        )
    return next(iter(verifiers.values())) if len(verifiers) == 1 else IssuerRouter(verifiers)
