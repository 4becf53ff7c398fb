"""Bearer tokens for the HTTP transport: HS256 JWTs with one audience per server.

A token carries `sub` (the caller identity that policy knows), `aud` (the one server it was minted
for, e.g. `goresolve:jira-read`) and `exp`. The verifier implements the SDK's `TokenVerifier`
protocol; PyJWT checks the signature in constant time and refuses a wrong audience, so a token minted
for one server is answered 401 by every other. stdio needs no token: the IDE owns the process.
"""

from __future__ import annotations

import time

import jwt
from mcp.server.auth.provider import AccessToken
from pydantic import SecretStr

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
        if len(key.get_secret_value()) < 32:
            raise ValueError("the token signing key must be at least 32 characters")
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
