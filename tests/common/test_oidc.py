"""OIDC bearer tokens, checked against a local issuer: signature by JWKS, issuer, audience, expiry, key
rotation, group mapping, Kubernetes ServiceAccount tokens, and the routing next to HS256 tokens."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from pydantic import SecretStr, ValidationError

from servers.common.auth import IssuerRouter, build_verifier, mint_token
from servers.common.auth_settings import TokenSettings
from servers.common.errors import ConfigError
from servers.common.oidc import OidcConfig, OidcTokenVerifier, OidcUnavailable
from servers.common.settings import load_settings
from servers.jira_read.settings import JiraReadSettings
from tests.common.oidc_issuer import LocalIssuer
from tests.support import self_signed, tls_serving

POLICY_IDENTITIES = {"agent", "reader", "system:serviceaccount:goresolve:agent"}
AUDIENCE = "goresolve:jira-read"


@pytest.fixture
def issuer(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalIssuer]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # a CI proxy must never see the issuer's traffic
    with LocalIssuer() as local:
        yield local


def _verifier(local: LocalIssuer, **overrides: Any) -> OidcTokenVerifier:
    config = OidcConfig(
        issuer=local.url, audience=AUDIENCE, group_identities={"platform-eng": "agent", "support": "reader"}
    )
    for key, value in overrides.items():
        object.__setattr__(config, key, value)
    return OidcTokenVerifier(config, is_identity=POLICY_IDENTITIES.__contains__)


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
async def test_a_token_from_the_issuer_is_accepted_and_its_group_maps_to_a_policy_identity(
    issuer: LocalIssuer, alg: str
) -> None:
    access = await _verifier(issuer).verify_token(issuer.token(alg=alg, groups=["everyone", "support"]))
    assert access is not None
    assert (access.subject, access.client_id) == ("reader", "alice")
    assert access.claims is not None and access.claims["groups"] == ["everyone", "support"]


async def test_a_subject_policy_knows_is_used_as_it_is(issuer: LocalIssuer) -> None:
    access = await _verifier(issuer).verify_token(issuer.token(sub="agent", roles=["support"]))
    assert access is not None and access.subject == "agent"


async def test_group_mapping_follows_the_configured_order(issuer: LocalIssuer) -> None:
    access = await _verifier(issuer).verify_token(issuer.token(roles=["support", "platform-eng"]))
    assert access is not None and access.subject == "agent"  # platform-eng comes first in the mapping


async def test_a_caller_policy_does_not_know_keeps_its_own_name(issuer: LocalIssuer) -> None:
    access = await _verifier(issuer).verify_token(issuer.token(groups=["unmapped"]))
    assert access is not None and access.subject == "alice"  # policy grants "alice" nothing


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": "goresolve:github-pr"},  # minted for another server
        {"issuer": "https://elsewhere.example"},  # another issuer
        {"ttl_s": -120},  # expired beyond the leeway
        {"nbf": int(time.time()) + 3600},  # not yet valid
    ],
)
async def test_tokens_with_a_wrong_claim_are_refused(issuer: LocalIssuer, claims: dict[str, Any]) -> None:
    assert await _verifier(issuer).verify_token(issuer.token(**claims)) is None


async def test_a_token_without_exp_is_refused(issuer: LocalIssuer) -> None:
    now = int(time.time())
    key = issuer._keys[issuer.kid("RS256")][1]  # pyright: ignore[reportPrivateUsage]
    body = {"iss": issuer.url, "sub": "alice", "aud": AUDIENCE, "iat": now}
    token = jwt.encode(body, key, algorithm="RS256", headers={"kid": issuer.kid("RS256")})
    assert await _verifier(issuer).verify_token(token) is None


async def test_hs256_signed_with_the_public_key_is_refused(issuer: LocalIssuer) -> None:
    # The classic algorithm confusion: an HS256 token whose "secret" is the issuer's public key.
    public = issuer._keys[issuer.kid("RS256")][1].public_key()  # pyright: ignore[reportPrivateUsage]
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    body = {"iss": issuer.url, "sub": "agent", "aud": AUDIENCE, "exp": int(time.time()) + 60}
    forged = _hs256(body, pem, issuer.kid("RS256"))
    assert await _verifier(issuer).verify_token(forged) is None


def _hs256(body: dict[str, Any], secret: bytes, kid: str) -> str:
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    payload = b64(json.dumps(body).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


async def test_keys_are_discovered_once_and_cached(issuer: LocalIssuer) -> None:
    verifier = _verifier(issuer)
    for _ in range(3):
        assert await verifier.verify_token(issuer.token()) is not None
    assert issuer.hits["/.well-known/openid-configuration"] == 1
    assert issuer.hits["/jwks"] == 1


async def test_a_rotated_key_is_fetched_and_made_up_key_ids_do_not_flood_the_issuer(issuer: LocalIssuer) -> None:
    verifier = _verifier(issuer, min_refresh_s=0.0)
    assert await verifier.verify_token(issuer.token()) is not None
    issuer.rotate()
    assert await verifier.verify_token(issuer.token()) is not None  # unknown kid: the set is fetched again
    assert issuer.hits["/jwks"] == 2

    throttled = _verifier(issuer, min_refresh_s=600.0)
    assert await throttled.verify_token(issuer.token()) is not None
    for i in range(5):
        assert await throttled.verify_token(issuer.token(kid=f"made-up-{i}")) is None
    assert issuer.hits["/jwks"] == 3  # the flood cost nothing beyond the first fetch


async def test_a_kubernetes_serviceaccount_token_verifies_the_same_way(issuer: LocalIssuer) -> None:
    cluster = "https://kubernetes.default.svc.cluster.local"
    verifier = _verifier(issuer, issuer=cluster, jwks_url=f"{issuer.url}/jwks")
    token = issuer.token(
        issuer=cluster,
        sub="system:serviceaccount:goresolve:agent",
        aud=[AUDIENCE],
        nbf=int(time.time()),
        **{"kubernetes.io": {"namespace": "goresolve", "serviceaccount": {"name": "agent", "uid": "u-1"}}},
    )
    access = await verifier.verify_token(token)
    assert access is not None and access.subject == "system:serviceaccount:goresolve:agent"
    assert issuer.hits["/.well-known/openid-configuration"] == 0  # the configured JWKS URL is used as given


async def test_an_unreachable_issuer_refuses_instead_of_failing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with LocalIssuer() as gone:
        token = gone.token()
        url = gone.url
    config = OidcConfig(issuer=url, audience=AUDIENCE, timeout_s=2.0)
    assert await OidcTokenVerifier(config, is_identity=POLICY_IDENTITIES.__contains__).verify_token(token) is None


def test_symmetric_algorithms_cannot_be_configured_for_oidc() -> None:
    with pytest.raises(ValueError, match="asymmetric"):
        OidcTokenVerifier(OidcConfig(issuer="https://x", audience="a", algorithms=("HS256",)), is_identity=bool)


# --- build_verifier: settings to verifiers ------------------------------------------------------------


async def test_hs256_and_oidc_side_by_side_route_by_issuer(issuer: LocalIssuer) -> None:
    key = SecretStr("k" * 40)
    settings = TokenSettings(token_key=key, oidc_issuer=issuer.url, oidc_group_identities={"support": "reader"})
    verifier = build_verifier("jira-read", settings, is_identity=POLICY_IDENTITIES.__contains__)
    assert isinstance(verifier, IssuerRouter)
    local = await verifier.verify_token(mint_token(key, subject="agent", server="jira-read"))
    assert local is not None and local.subject == "agent"
    remote = await verifier.verify_token(issuer.token(groups=["support"]))
    assert remote is not None and remote.subject == "reader"
    assert await verifier.verify_token(issuer.token(issuer="https://unknown.example")) is None


def test_no_verification_configured_names_both_variables() -> None:
    with pytest.raises(ConfigError) as err:
        build_verifier("jira-read", TokenSettings(), is_identity=bool)
    assert "GORESOLVE_JIRA_READ_TOKEN_KEY" in err.value.message
    assert "GORESOLVE_JIRA_READ_OIDC_ISSUER" in err.value.message


def test_goresolves_own_issuer_cannot_be_the_oidc_issuer() -> None:
    with pytest.raises(ConfigError, match="GORESOLVE_GITHUB_PR_OIDC_ISSUER"):
        build_verifier("github-pr", TokenSettings(oidc_issuer="goresolve"), is_identity=bool)


# --- an unavailable issuer: what a token costs before it is checked -------------------------------------


def _forged(local: LocalIssuer, kid: str = "made-up") -> str:
    """RS256 with a key id the issuer never had, signed by the caller's own key (no secret needed)."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    own = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    body = {"iss": local.url, "sub": "agent", "aud": AUDIENCE, "exp": int(time.time()) + 60}
    return jwt.encode(body, own, algorithm="RS256", headers={"kid": kid})


@pytest.mark.parametrize(
    "token",
    [
        "x",
        "a.b.c",
        jwt.encode({"sub": "agent"}, "k" * 40, algorithm="HS256", headers={"kid": "k"}),  # not an accepted algorithm
        "eyJhbGciOiJub25lIiwia2lkIjoiayJ9.eyJzdWIiOiJhIn0.",  # alg none
        "__no_kid__",
    ],
)
async def test_a_token_whose_header_cannot_be_ours_costs_no_fetch(issuer: LocalIssuer, token: str) -> None:
    if token == "__no_kid__":
        key = issuer._keys[issuer.kid("RS256")][1]  # pyright: ignore[reportPrivateUsage]
        token = jwt.encode({"iss": issuer.url, "sub": "agent", "aud": AUDIENCE, "exp": time.time() + 60}, key, "RS256")
    verifier = _verifier(issuer, min_refresh_s=0.0)
    assert await verifier.verify_token(token) is None
    assert sum(issuer.hits.values()) == 0 and verifier.fetches == 0


async def test_a_failing_issuer_is_asked_once_per_interval_whatever_the_tokens(issuer: LocalIssuer) -> None:
    issuer.failing |= {"/.well-known/openid-configuration", "/jwks"}
    verifier = _verifier(issuer, min_refresh_s=600.0)
    results = [await verifier.verify_token(_forged(issuer, f"made-up-{i}")) for i in range(20)]
    results += [await verifier.verify_token(issuer.token()) for _ in range(5)]  # valid, but no keys to be had
    assert results == [None] * 25
    assert issuer.hits["/.well-known/openid-configuration"] == 1  # discovery failed once and was not retried
    assert verifier.fetches == 1

    issuer.failing.clear()  # discovery fine, the key set failing: also one attempt per interval
    issuer.failing.add("/jwks")
    keyset = _verifier(issuer, min_refresh_s=600.0)
    assert [await keyset.verify_token(_forged(issuer, f"k-{i}")) for i in range(20)] == [None] * 20
    assert issuer.hits["/jwks"] == 1


@pytest.mark.parametrize("reply", [b"not json", b"[" * 200_000 + b"]" * 200_000, b"\xff\xfe{"])
async def test_a_key_set_that_is_not_usable_json_is_a_refusal_not_an_error(issuer: LocalIssuer, reply: bytes) -> None:
    issuer.replies["/jwks"] = reply  # nested too deep for the JSON parser, or not JSON at all
    assert await _verifier(issuer).verify_token(issuer.token()) is None
    assert issuer.hits["/jwks"] == 1


async def test_a_slow_key_set_fetch_holds_up_neither_cached_keys_nor_a_second_fetch(issuer: LocalIssuer) -> None:
    import asyncio

    verifier = _verifier(issuer, min_refresh_s=0.0, timeout_s=60.0)
    assert await verifier.verify_token(issuer.token()) is not None  # keys fetched and cached
    issuer.held.add("/jwks")  # from now on the issuer's key set does not answer
    attack = [asyncio.create_task(verifier.verify_token(_forged(issuer, f"made-up-{i}"))) for i in range(12)]
    try:
        for _ in range(600):  # the one refresh the made-up key ids asked for is under way
            if issuer.hits["/jwks"] == 2:
                break
            await asyncio.sleep(0.05)
        for _ in range(3):  # a cached key: answered while that fetch hangs
            valid = await asyncio.wait_for(verifier.verify_token(issuer.token()), timeout=30)
            assert valid is not None
        assert await verifier.verify_token("x") is None
        assert issuer.hits["/jwks"] == 2 and not all(t.done() for t in attack)
    finally:
        issuer.release()
    assert await asyncio.gather(*attack) == [None] * 12
    assert issuer.hits["/jwks"] == 2  # twelve made-up key ids, one fetch between them


async def test_a_key_set_that_trickles_in_is_given_up_on_after_timeout_s(issuer: LocalIssuer) -> None:
    issuer.trickle.add("/jwks")  # the whole reply would take minutes; each byte comes well within a read timeout
    verifier = _verifier(issuer, timeout_s=2.0)
    started = time.monotonic()
    assert await verifier.verify_token(issuer.token()) is None
    assert time.monotonic() - started < 30


async def test_stale_keys_stay_in_use_while_a_refresh_runs_in_the_background(issuer: LocalIssuer) -> None:
    import asyncio

    verifier = _verifier(issuer, jwks_cache_s=0, min_refresh_s=0.0, timeout_s=60.0)
    assert await verifier.verify_token(issuer.token()) is not None
    issuer.held.add("/jwks")
    try:
        assert await asyncio.wait_for(verifier.verify_token(issuer.token()), timeout=30) is not None
        for _ in range(600):
            if issuer.hits["/jwks"] == 2:
                break
            await asyncio.sleep(0.05)
        assert issuer.hits["/jwks"] == 2  # the refresh was started, and the token did not wait for it
    finally:
        issuer.release()


# --- no key set in plaintext -------------------------------------------------------------------------------


async def test_an_https_issuer_naming_a_plaintext_key_set_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An attacker on the path serves the http key set with their own key. Before: the forged token was accepted.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    attacker = LocalIssuer()
    plaintext: list[str] = []
    urls: dict[str, str] = {}

    def reply(h: BaseHTTPRequestHandler, document: dict[str, Any]) -> None:
        body = json.dumps(document).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    class Plain(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            plaintext.append(self.path)
            reply(self, attacker.jwks())

        def log_message(self, format: str, *args: Any) -> None:
            return

    class Discovery(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            reply(self, {"issuer": urls["issuer"], "jwks_uri": urls["jwks"]})

        def log_message(self, format: str, *args: Any) -> None:
            return

    cert, key = self_signed(tmp_path)
    with tls_serving(Plain) as plain, tls_serving(Discovery, (cert, key)) as issuer_url:
        urls.update(issuer=issuer_url, jwks=f"{plain}/jwks")
        verifier = OidcTokenVerifier(
            OidcConfig(issuer=issuer_url, audience=AUDIENCE, ca_file=cert), is_identity=POLICY_IDENTITIES.__contains__
        )
        assert await verifier.verify_token(attacker.token(issuer=issuer_url, sub="agent")) is None
        with pytest.raises(OidcUnavailable, match="must be https"):
            await verifier._fetch()  # pyright: ignore[reportPrivateUsage]
    assert plaintext == []


@pytest.mark.parametrize("setting", ["oidc_issuer", "oidc_jwks_url"])
@pytest.mark.parametrize("url", ["http://idp.example", "http://10.0.0.5/keys", "ftp://idp.example"])
def test_a_plaintext_issuer_or_key_set_setting_is_refused(setting: str, url: str) -> None:
    with pytest.raises(ValidationError, match="must be an https URL"):
        TokenSettings.model_validate({setting: url})


@pytest.mark.parametrize(
    "url", ["https://idp.example", "http://127.0.0.1:8080", "http://localhost/realms/x", "http://[::1]:9000"]
)
def test_https_or_a_loopback_issuer_is_allowed(url: str) -> None:
    assert TokenSettings(oidc_issuer=url, oidc_jwks_url=url).oidc_issuer == url


def test_the_refusal_names_the_variable_not_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GORESOLVE_JIRA_READ_OIDC_ISSUER", "http://idp.example/secret-path")
    with pytest.raises(ConfigError) as err:
        load_settings(JiraReadSettings)
    assert "GORESOLVE_JIRA_READ_OIDC_ISSUER" in err.value.message
    assert "secret-path" not in err.value.message
