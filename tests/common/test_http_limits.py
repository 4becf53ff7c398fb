"""A real jira-read over streamable HTTP under load it should shrug off: an OIDC issuer that is slow or
failing while callers send made-up tokens, a caller opening session after session, connections that
never finish their headers, an IPv6 bind address, and a token just past `exp` within the leeway."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.common.oidc_issuer import LocalIssuer
from tests.support import free_port, serving

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
}
ACCEPT = "application/json, text/event-stream"
KNOWN = "local-dev"  # an identity in the bundled policies/access.yaml


@contextmanager
def jira_http(tmp_path: Path, env: dict[str, str], *, host: str = "127.0.0.1") -> Iterator[int]:
    """`python -m servers.jira_read --transport http` on a free port of `host`, with these settings."""
    port = free_port(host)
    full = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GORESOLVE_")},
        "NO_PROXY": "127.0.0.1,localhost,::1",
        "GORESOLVE_DATA_DIR": str(tmp_path / "data"),
        "GORESOLVE_JIRA_READ_STATE_DIR": str(tmp_path / "state"),
        "GORESOLVE_JIRA_READ_LOG_LEVEL": "WARNING",
        **env,
    }
    argv = [sys.executable, "-m", "servers.jira_read", "--transport", "http", "--host", host, "--port", str(port)]
    with serving(argv, full, tmp_path / f"server-{port}.log", port=port, host=host):
        yield port


def _url(port: int, host: str = "127.0.0.1") -> str:
    return f"http://[{host}]:{port}/mcp" if ":" in host else f"http://{host}:{port}/mcp"


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": ACCEPT}


async def _status(client: httpx.AsyncClient, url: str, token: str) -> int | str:
    try:
        return (await client.post(url, json=INITIALIZE, headers=_headers(token))).status_code
    except httpx.HTTPError as exc:
        return type(exc).__name__


@pytest.fixture
def issuer(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalIssuer]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with LocalIssuer() as local:
        yield local


def _forged(local: LocalIssuer, kid: str) -> str:
    own = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    body = {"iss": local.url, "sub": KNOWN, "aud": "goresolve:jira-read", "exp": int(time.time()) + 300}
    return jwt.encode(body, own, algorithm="RS256", headers={"kid": kid})


# --- 1. an issuer that is slow or failing ---------------------------------------------------------------


def test_made_up_key_ids_neither_queue_valid_tokens_nor_flood_a_slow_issuer(
    issuer: LocalIssuer, tmp_path: Path
) -> None:
    env = {
        "GORESOLVE_JIRA_READ_OIDC_ISSUER": issuer.url,
        "GORESOLVE_JIRA_READ_OIDC_MIN_REFRESH_S": "1",
        "GORESOLVE_JIRA_READ_OIDC_TIMEOUT_S": "60",
    }

    async def scenario(port: int) -> None:
        url = _url(port)
        async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=100)) as client:
            assert await _status(client, url, issuer.token(sub=KNOWN)) == 200  # keys fetched and cached
            await asyncio.sleep(1.5)  # past min_refresh_s: an unknown key id may ask for a refresh
            issuer.held.add("/jwks")  # the issuer's key set stops answering
            attack = [asyncio.create_task(_status(client, url, _forged(issuer, f"made-up-{i}"))) for i in range(12)]
            try:
                for _ in range(1200):
                    if issuer.hits["/jwks"] >= 2:
                        break
                    await asyncio.sleep(0.05)
                valid = await asyncio.wait_for(_status(client, url, issuer.token(sub=KNOWN)), timeout=30)
                assert valid == 200  # a cached key: no waiting on the hanging fetch
                assert await _status(client, url, "x") == 401
                assert issuer.hits["/jwks"] == 2 and not all(t.done() for t in attack)
            finally:
                issuer.release()
            assert await asyncio.gather(*attack) == [401] * 12
            assert issuer.hits["/jwks"] == 2  # twelve made-up key ids, one fetch

    with jira_http(tmp_path, env) as port:
        asyncio.run(scenario(port))


def test_a_failing_issuer_is_not_asked_again_for_every_token(issuer: LocalIssuer, tmp_path: Path) -> None:
    issuer.failing |= {"/.well-known/openid-configuration", "/jwks"}
    env = {"GORESOLVE_JIRA_READ_OIDC_ISSUER": issuer.url, "GORESOLVE_JIRA_READ_OIDC_MIN_REFRESH_S": "600"}

    async def scenario(port: int) -> None:
        async with httpx.AsyncClient(timeout=60) as client:
            plain = [await _status(client, _url(port), "x") for _ in range(20)]
            forged = [await _status(client, _url(port), _forged(issuer, f"k-{i}")) for i in range(20)]
        assert plain + forged == [401] * 40

    with jira_http(tmp_path, env) as port:
        asyncio.run(scenario(port))
    assert issuer.hits["/.well-known/openid-configuration"] == 1  # `Bearer x` cost nothing; one failed discovery


# --- 2. sessions: who may hold them, how many, how long ---------------------------------------------------

HS256_KEY = "s" * 40


def _minted(subject: str) -> str:
    from pydantic import SecretStr

    from servers.common.auth import mint_token

    return mint_token(SecretStr(HS256_KEY), subject=subject, server="jira-read")


def _open(client: httpx.Client, port: int, token: str) -> tuple[int, str | None, str]:
    response = client.post(_url(port), json=INITIALIZE, headers=_headers(token))
    return response.status_code, response.headers.get("mcp-session-id"), response.text


def test_sessions_are_for_callers_policy_knows_and_limited_per_caller_and_in_all(tmp_path: Path) -> None:
    env = {
        "GORESOLVE_JIRA_READ_TOKEN_KEY": HS256_KEY,
        "GORESOLVE_JIRA_READ_MAX_SESSIONS": "5",
        "GORESOLVE_JIRA_READ_MAX_SESSIONS_PER_IDENTITY": "3",
    }
    with jira_http(tmp_path, env) as port, httpx.Client(timeout=30) as client:
        for stranger in ("stranger", ""):  # a valid signature, but policy grants this subject nothing
            status, session, _ = _open(client, port, _minted(stranger))
            assert (status, session) == (401, None)

        triage = [_open(client, port, _minted("triage-bot")) for _ in range(4)]
        assert [s for s, _, _ in triage] == [200, 200, 200, 429]
        assert "too many open sessions for this caller" in triage[3][2]
        assert _open(client, port, _minted(KNOWN))[0] == 200  # another caller is not held up by the first

        ended = client.delete(
            _url(port), headers={**_headers(_minted("triage-bot")), "mcp-session-id": triage[0][1] or ""}
        )
        assert ended.status_code == 200
        assert _open(client, port, _minted("triage-bot"))[0] == 200  # the ended session's place is free again

        assert _open(client, port, _minted("agent"))[0] == 200  # five open: the server's limit
        assert _open(client, port, _minted("agent"))[0] == 503
    log = "".join(p.read_text() for p in tmp_path.glob("server-*.log"))
    assert "UnknownIdentity" in log and "Traceback" not in log


def test_an_oidc_subject_policy_does_not_know_is_refused_unless_a_group_maps_it(
    issuer: LocalIssuer, tmp_path: Path
) -> None:
    env = {
        "GORESOLVE_JIRA_READ_OIDC_ISSUER": issuer.url,
        "GORESOLVE_JIRA_READ_OIDC_GROUP_IDENTITIES": '{"platform-eng": "agent"}',
    }
    with jira_http(tmp_path, env) as port, httpx.Client(timeout=30) as client:
        assert _open(client, port, issuer.token(sub="alice"))[0] == 401
        assert _open(client, port, issuer.token(sub="alice", groups=["unmapped"]))[0] == 401
        assert _open(client, port, issuer.token(sub="alice", groups=["platform-eng"]))[0] == 200
        assert _open(client, port, issuer.token(sub=KNOWN))[0] == 200
        # nobody in a mapped group: before, accepted with an empty client id (no attribution, one shared owner)
        assert _open(client, port, issuer.token(sub="", groups=["platform-eng"]))[0] == 401


def test_people_a_group_maps_to_one_identity_hold_their_own_sessions(issuer: LocalIssuer, tmp_path: Path) -> None:
    """Before, the session quota counted the policy identity: alice's sessions locked bob, of the same group,
    out (429 on his first session). Each person now holds their own places."""
    env = {
        "GORESOLVE_JIRA_READ_OIDC_ISSUER": issuer.url,
        "GORESOLVE_JIRA_READ_OIDC_GROUP_IDENTITIES": '{"platform-eng": "agent"}',
        "GORESOLVE_JIRA_READ_MAX_SESSIONS_PER_IDENTITY": "2",
    }
    with jira_http(tmp_path, env) as port, httpx.Client(timeout=30) as client:
        alice = [_open(client, port, issuer.token(sub="alice", groups=["platform-eng"]))[0] for _ in range(3)]
        assert alice == [200, 200, 429]
        bob = [_open(client, port, issuer.token(sub="bob", groups=["platform-eng"]))[0] for _ in range(3)]
        assert bob == [200, 200, 429]


def test_a_request_with_two_authorization_headers_is_refused(tmp_path: Path) -> None:
    """The SDK read the first header, a proxy in front may read the last: before, the request ran as the
    first one's caller. Now it is a 400, whichever order and whichever tokens."""
    env = {"GORESOLVE_JIRA_READ_TOKEN_KEY": HS256_KEY}
    with jira_http(tmp_path, env) as port, httpx.Client(timeout=30) as client:
        for pair in ((KNOWN, "triage-bot"), (KNOWN, KNOWN)):
            headers = [(k, v) for k, v in _headers(_minted(pair[0])).items() if k.lower() != "authorization"]
            headers += [("Authorization", f"Bearer {_minted(name)}") for name in pair]
            response = client.post(_url(port), json=INITIALIZE, headers=headers)
            assert response.status_code == 400 and response.headers.get("mcp-session-id") is None
            assert response.json()["error"]["message"].startswith("more than one Authorization header")
        assert _open(client, port, _minted(KNOWN))[0] == 200  # one header: as before
    log = "".join(p.read_text() for p in tmp_path.glob("server-*.log"))
    assert "DuplicateAuthorization" in log and "Traceback" not in log


def test_an_idle_session_is_closed_after_session_idle_s(tmp_path: Path) -> None:
    env = {"GORESOLVE_JIRA_READ_TOKEN_KEY": HS256_KEY, "GORESOLVE_JIRA_READ_SESSION_IDLE_S": "2"}
    token = _minted(KNOWN)
    with jira_http(tmp_path, env) as port, httpx.Client(timeout=30) as client:
        status, session, _ = _open(client, port, token)
        assert status == 200 and session
        ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
        headers = {**_headers(token), "mcp-session-id": session, "mcp-protocol-version": "2025-06-18"}
        assert client.post(_url(port), json=ping, headers=headers).status_code == 200
        time.sleep(12)  # idle five times over (any request, even a poll, would count as activity)
        assert client.post(_url(port), json=ping, headers=headers).status_code == 404


# --- 3. connections that never finish their headers ---------------------------------------------------


def test_connections_that_never_finish_their_headers_are_closed_and_connections_are_bounded(tmp_path: Path) -> None:
    env = {
        "GORESOLVE_JIRA_READ_TOKEN_KEY": HS256_KEY,
        "GORESOLVE_JIRA_READ_HEADER_TIMEOUT_S": "5",
        "GORESOLVE_JIRA_READ_MAX_CONNECTIONS": "16",
    }
    with jira_http(tmp_path, env) as port, httpx.Client(timeout=30) as client:
        held: list[socket.socket] = []
        try:
            for _ in range(40):  # more than max_connections
                sock = socket.create_connection(("127.0.0.1", port), timeout=60)
                sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # and nothing more, ever
                held.append(sock)
            assert _open(client, port, _minted(KNOWN))[0] == 503  # past the connection limit: refused, not queued
            for sock in held:  # each is closed by the server (EOF), long before the 60 s socket timeout
                assert sock.recv(1024) == b""
        finally:
            for sock in held:
                sock.close()
        assert _open(client, port, _minted(KNOWN))[0] == 200


# --- 4. an IPv6 bind address ----------------------------------------------------------------------------


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_host_port_brackets_ipv6() -> None:
    from servers.common.app import host_port, transport_security
    from servers.jira_read.settings import JiraReadSettings

    assert host_port("::1", 8101) == "[::1]:8101" and host_port("127.0.0.1", 8101) == "127.0.0.1:8101"
    assert "[::1]:8101" in transport_security(JiraReadSettings(host="::1", port=8101)).allowed_hosts


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_a_server_bound_to_ipv6_loopback_serves_its_own_host_header(tmp_path: Path) -> None:
    env = {"GORESOLVE_JIRA_READ_TOKEN_KEY": HS256_KEY}
    with jira_http(tmp_path, env, host="::1") as port, httpx.Client(timeout=30) as client:
        answered = client.post(_url(port, "::1"), json=INITIALIZE, headers=_headers(_minted(KNOWN)))
        assert answered.status_code == 200  # the client sends Host: [::1]:<port>


# --- 5. the OIDC leeway reaches the SDK's own expiry check ---------------------------------------------


def test_a_token_just_past_exp_within_the_leeway_is_accepted_over_http(issuer: LocalIssuer, tmp_path: Path) -> None:
    env = {"GORESOLVE_JIRA_READ_OIDC_ISSUER": issuer.url, "GORESOLVE_JIRA_READ_OIDC_LEEWAY_S": "120"}
    with jira_http(tmp_path, env) as port, httpx.Client(timeout=30) as client:
        assert _open(client, port, issuer.token(sub=KNOWN, ttl_s=-20))[0] == 200  # 20 s past exp, leeway 120 s
        assert _open(client, port, issuer.token(sub=KNOWN, ttl_s=-600))[0] == 401  # beyond the leeway
