"""A real jira-read over streamable HTTP under load it should shrug off: an OIDC issuer that is slow or
failing while callers send made-up tokens, a caller opening session after session, connections that
never finish their headers, an IPv6 bind address, and a token just past `exp` within the leeway."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
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

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
}
ACCEPT = "application/json, text/event-stream"
KNOWN = "local-dev"  # an identity in the bundled policies/access.yaml


def _free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextmanager
def jira_http(tmp_path: Path, env: dict[str, str], *, host: str = "127.0.0.1") -> Iterator[int]:
    """`python -m servers.jira_read --transport http` on a free port of `host`, with these settings."""
    port = _free_port(host)
    full = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GORESOLVE_")},
        "NO_PROXY": "127.0.0.1,localhost,::1",
        "GORESOLVE_DATA_DIR": str(tmp_path / "data"),
        "GORESOLVE_JIRA_READ_STATE_DIR": str(tmp_path / "state"),
        "GORESOLVE_JIRA_READ_LOG_LEVEL": "WARNING",
        **env,
    }
    log_path = tmp_path / f"server-{port}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "servers.jira_read", "--transport", "http", "--host", host, "--port", str(port)],
            env=full,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        deadline = time.monotonic() + 90
        while True:
            with socket.socket(family) as sock:
                if sock.connect_ex((host, port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(log_path.read_text())
            time.sleep(0.1)
        try:
            yield port
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)


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
