"""OIDC bearer tokens: RS256/ES256 JWTs from the caller's identity provider, checked against its JWKS.

    verifier = OidcTokenVerifier(OidcConfig(issuer=..., audience="goresolve:jira-read"), is_identity=...)

A token is accepted when its signature verifies with a key from the issuer's JWKS, and `iss`, `aud`,
`exp` (and `nbf`/`iat` when present) hold, within `leeway_s`. The JWKS URL comes from the setting or
from the issuer's discovery document (`/.well-known/openid-configuration`, whose `issuer` must match).
Neither is fetched in plaintext: both are https (plain http only to a loopback host), and the key set
an https issuer's discovery document names is https too.
Kubernetes projected ServiceAccount tokens are the same kind of token: the cluster's service-account
issuer publishes discovery and JWKS, the pod spec sets the audience, and `sub` is
`system:serviceaccount:<namespace>:<name>`.

Keys are fetched on first use and kept by key id. Before anything is fetched, a token's header must
name a key id (`kid`) and an accepted algorithm; anything else is refused at no cost. A token whose key
id is cached is checked without waiting on the network (a set older than `jwks_cache_s` is refreshed
in the background meanwhile, and kept in use until a fetch replaces it). A key id the cache does not
know (the issuer rotated its keys) triggers one fetch, and only when the last fetch *attempt* —
discovery or key set, failed or not — is at least `min_refresh_s` old; concurrent requests wait for
that one fetch instead of starting their own, and the rest are refused at once. So made-up key ids
cannot flood the issuer with requests, nor queue valid tokens behind them. Each fetch, reading the
whole reply included, ends within `timeout_s`.

The caller's policy identity: the `identity_claim` (default `sub`) when access.yaml knows it; otherwise
the first `group_identities` entry whose group or role the token lists in one of `group_claims`;
otherwise the claim itself (policy then grants it nothing). The audit log and every log line name
that identity; the token's own subject stays in `client_id` and the `sub` claim.

A refused token is `None` (answered 401 by the SDK); the reason is logged, the token never is.
"""

from __future__ import annotations

import asyncio
import json
import math
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import jwt
from mcp.server.auth.provider import AccessToken

from servers.common.auth_settings import plaintext_refusal
from servers.common.logging import get_logger

log = get_logger(__name__)

MAX_DOCUMENT_BYTES = 1_000_000  # a discovery document or key set is a few KB


class OidcUnavailable(Exception):
    """The issuer's discovery document or key set could not be read (or may not be fetched yet)."""


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
    """`TokenVerifier` for tokens from one OIDC issuer (see the module docstring).

    Everything runs on the server's event loop: a token with a cached key needs no thread and no lock,
    and a fetch is one `httpx.AsyncClient` request under `anyio.fail_after(timeout_s)`.
    """

    def __init__(self, config: OidcConfig, *, is_identity: Callable[[str], bool]) -> None:
        bad = set(config.algorithms) - {"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "EdDSA"}
        if bad:
            raise ValueError(f"OIDC algorithms must be asymmetric; not allowed: {', '.join(sorted(bad))}")
        self.config = config
        self._is_identity = is_identity
        self._ssl_context: ssl.SSLContext | None = None
        self._jwks_url: str | None = config.jwks_url
        self._keys: dict[str, jwt.PyJWK] = {}  # kid -> key, replaced whole by each successful fetch
        self._fetched_at = -math.inf  # monotonic time of the last successful key-set fetch
        self._attempted_at = -math.inf  # monotonic time of the last fetch attempt, failed ones included
        self._fetching: anyio.Lock | None = None  # created on the loop that first needs it
        self._background: set[asyncio.Task[None]] = set()
        self.fetches = 0  # fetch attempts (discovery and key set count as one), for tests and logs

    # --- keys ---------------------------------------------------------------------------------------

    def _ssl(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            ca = str(self.config.ca_file) if self.config.ca_file else None
            self._ssl_context = ssl.create_default_context(cafile=ca)
        return self._ssl_context

    async def _get_json(self, client: httpx.AsyncClient, url: str, what: str) -> Any:
        try:
            async with client.stream("GET", url) as response:
                response.raise_for_status()
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_DOCUMENT_BYTES:
                        raise OidcUnavailable(f"{what}: reply over {MAX_DOCUMENT_BYTES} bytes")
            return json.loads(body)
        except (httpx.HTTPError, ValueError, RecursionError) as exc:  # RecursionError: JSON nested too deep
            raise OidcUnavailable(f"{what} failed: {type(exc).__name__}") from exc

    async def _discover(self, client: httpx.AsyncClient) -> str:
        url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = await self._get_json(client, url, "discovery")
        if not isinstance(document, dict) or document.get("issuer") != self.config.issuer:  # pyright: ignore[reportUnknownMemberType]
            raise OidcUnavailable("discovery document names another issuer")
        jwks_uri = document.get("jwks_uri")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if not isinstance(jwks_uri, str):
            raise OidcUnavailable("discovery document has no jwks_uri")
        self._check_scheme(jwks_uri, "discovery document's key set", discovered=True)
        return jwks_uri

    def _check_scheme(self, url: str, what: str, *, discovered: bool = False) -> None:
        """Refuse to fetch `what` in plaintext: https, or http to a loopback host; and a key set an https issuer's
        discovery document names must be https (one read in plaintext can be replaced on the way, and then forged
        tokens verify). A configured `jwks_url` may be a loopback copy of an https issuer's key set.

        Raises:
            OidcUnavailable: `url` may not be fetched.
        """
        refusal = plaintext_refusal(url)
        if refusal is None and discovered and urlsplit(self.config.issuer).scheme.lower() == "https":
            refusal = None if urlsplit(url).scheme.lower() == "https" else "must be https, as the issuer is"
        if refusal is not None:
            raise OidcUnavailable(f"{what} URL refused: {refusal}")

    async def _fetch(self) -> None:
        """Discover (once) and fetch the key set, all within `timeout_s`; replace the cached keys.

        Raises:
            OidcUnavailable: the issuer or key set URL is refused (`_check_scheme`), or either could not be read.
        """
        timeout = self.config.timeout_s
        self._check_scheme(self.config.issuer, "issuer")
        if self._jwks_url is not None:
            self._check_scheme(self._jwks_url, "key set")
        try:
            with anyio.fail_after(timeout):
                async with httpx.AsyncClient(timeout=timeout, verify=self._ssl(), follow_redirects=False) as client:
                    if self._jwks_url is None:
                        self._jwks_url = await self._discover(client)
                    document = await self._get_json(client, self._jwks_url, "key set")
        except TimeoutError as exc:
            raise OidcUnavailable(f"the issuer did not answer within {timeout:g} s") from exc
        try:
            keys = jwt.PyJWKSet.from_dict(document).keys if isinstance(document, dict) else []  # pyright: ignore[reportUnknownArgumentType]
        except jwt.PyJWTError as exc:
            raise OidcUnavailable(f"key set unusable: {type(exc).__name__}") from exc
        self._keys = {k.key_id: k for k in keys if isinstance(k.key_id, str)}
        self._fetched_at = time.monotonic()

    def _due(self) -> bool:
        """Whether a fetch may be attempted now: the last attempt is at least `min_refresh_s` old."""
        return time.monotonic() - self._attempted_at >= self.config.min_refresh_s

    async def _refresh(self) -> None:
        """Fetch the key set unless the last attempt is too recent; at most one fetch at a time.

        A caller that finds a fetch under way waits for it (at most `timeout_s` and a little) and then
        uses its result; it never starts a second one.

        Raises:
            OidcUnavailable: the fetch failed, or waiting for another one took too long.
        """
        if self._fetching is None:
            self._fetching = anyio.Lock()
        seen = self.fetches
        with anyio.move_on_after(self.config.timeout_s + 1):
            async with self._fetching:
                if self.fetches != seen or not self._due():
                    return  # a fetch was made while this caller waited: its result is the answer
                self._attempted_at = time.monotonic()
                self.fetches += 1
                await self._fetch()
                return
        raise OidcUnavailable("waited too long for the key set being fetched")

    async def _refresh_quietly(self) -> None:
        try:
            await self._refresh()
        except OidcUnavailable as exc:
            log.warning("oidc key set refresh failed; the cached keys stay in use", reason=str(exc)[:200])

    def _refresh_in_background(self) -> None:
        if not self._due() or (self._fetching is not None and self._fetching.locked()):
            return
        task = asyncio.get_running_loop().create_task(self._refresh_quietly())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def signing_key(self, token: str) -> jwt.PyJWK:
        """The cached or freshly fetched key `token` names, after checking its header (no fetch for a bad one).

        Raises:
            jwt.PyJWTError: the header cannot be parsed, names no key id, or an algorithm not accepted;
                or the key id is unknown even after a refresh.
            OidcUnavailable: the key set could not be fetched, or a fetch is not allowed yet.
        """
        header = jwt.get_unverified_header(token)
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in self.config.algorithms:
            raise jwt.InvalidAlgorithmError("the token's algorithm is not accepted")
        if not isinstance(kid, str) or not kid:
            raise jwt.InvalidTokenError("the token names no key id (kid)")
        key = self._keys.get(kid)
        if key is not None:
            if time.monotonic() - self._fetched_at >= self.config.jwks_cache_s:
                self._refresh_in_background()
            return key
        if not self._due() and not (self._fetching is not None and self._fetching.locked()):
            raise OidcUnavailable(
                f"unknown key id; the key set was fetched less than {self.config.min_refresh_s:g} s ago"
            )
        await self._refresh()  # an unknown kid: the issuer may have rotated its keys
        key = self._keys.get(kid)
        if key is None:
            raise jwt.InvalidKeyError("no key with the token's key id")
        return key

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

    def check(self, token: str, key: jwt.PyJWK) -> AccessToken:
        """Verify `token` with `key` (no I/O).

        Raises:
            jwt.PyJWTError: badly signed, expired, for another audience or issuer, or no identity.
        """
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
        if not str(claims["sub"]).strip():  # nobody: no attribution, and every such caller one session owner
            raise jwt.MissingRequiredClaimError("sub")
        identity = self.identity_of(claims)
        if not identity:
            raise jwt.MissingRequiredClaimError(self.config.identity_claim)
        return AccessToken(
            token=token,
            client_id=str(claims["sub"]),
            scopes=[],
            # The SDK refuses a token once `expires_at` has passed, with no leeway of its own.
            expires_at=int(claims["exp"]) + self.config.leeway_s,
            resource=self.config.audience,
            subject=identity,
            claims={k: claims[k] for k in ("iss", "aud", "sub", *self.config.group_claims) if k in claims},
        )

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            access = self.check(token, await self.signing_key(token))
        except (jwt.PyJWTError, OidcUnavailable) as exc:
            log.warning("oidc token refused", reason=type(exc).__name__, detail=str(exc)[:200])
            return None
        log.debug("oidc token accepted", identity=access.subject, sub=access.client_id)
        return access
