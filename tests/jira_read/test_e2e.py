"""End to end: `jira-read-mcp` as a real subprocess, over stdio and over streamable HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from pydantic import SecretStr

from servers.common.auth import mint_token
from tests.common.oidc_issuer import LocalIssuer

KEY = "test-signing-key-" + "x" * 32
SCRIPT = Path(sys.executable).parent / "jira-read-mcp"


def _env(tmp_path: Path, policy_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GORESOLVE_")}
    env.update(
        GORESOLVE_JIRA_READ_STATE_DIR=str(tmp_path / "state"),
        GORESOLVE_JIRA_READ_POLICY_DIR=str(policy_dir),
        GORESOLVE_JIRA_READ_TOKEN_KEY=KEY,
    )
    return env


async def test_stdio_console_script(tmp_path: Path, policy_dir: Path) -> None:
    command = str(SCRIPT) if SCRIPT.exists() else sys.executable
    args = [] if SCRIPT.exists() else ["-m", "servers.jira_read"]
    params = StdioServerParameters(command=command, args=args, env=_env(tmp_path, policy_dir))
    async with Client(params) as client:
        names = [t.name for t in (await client.list_tools()).tools]
        result = await client.call_tool("get_issue", {"key": "SVC-1"})
    assert names == ["get_comments", "get_issue", "search_issues"]
    assert result.structured_content["key"] == "SVC-1"


def test_bad_policy_stops_the_process_with_a_clear_message(tmp_path: Path, policy_dir: Path) -> None:
    (policy_dir / "access.yaml").write_text("identities:\n  a: {roles: [triage], typo: 1}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "servers.jira_read"],
        env=_env(tmp_path, policy_dir),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert proc.returncode == 2
    assert "access.yaml" in proc.stderr
    assert "identities.a.typo" in proc.stderr
    assert "Traceback" not in proc.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _serve_http(tmp_path: Path, policy_dir: Path, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "servers.jira_read", "--transport", "http", "--port", str(port)],
        env={**_env(tmp_path, policy_dir), **(extra_env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "server.log", "w"),  # noqa: SIM115 - closed with the process
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        if proc.poll() is not None:
            pytest.fail((tmp_path / "server.log").read_text())
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("server did not start within 30 s")
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        assert KEY not in (tmp_path / "server.log").read_text()


@pytest.fixture
def http_server(tmp_path: Path, policy_dir: Path) -> Iterator[str]:
    with _serve_http(tmp_path, policy_dir) as url:
        yield url


async def test_http_with_a_token_for_this_server(http_server: str) -> None:
    token = mint_token(SecretStr(KEY), subject="reader", server="jira-read")
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http,
        Client(streamable_http_client(http_server, http_client=http)) as client,
    ):
        result = await client.call_tool("search_issues", {"jql": "status = Open", "limit": 5})
    assert not result.is_error
    assert all(issue["key"].startswith("SVC-") for issue in result.structured_content["issues"])


INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def test_http_without_a_token_is_401(http_server: str) -> None:
    response = httpx.post(http_server, json=INIT, headers=HEADERS, timeout=10)
    assert response.status_code == 401


def test_http_with_another_servers_token_is_401(http_server: str) -> None:
    token = mint_token(SecretStr(KEY), subject="reader", server="github-pr")
    response = httpx.post(http_server, json=INIT, headers={**HEADERS, "Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 401
    assert "get_issue" not in response.text


def test_http_with_a_forged_token_is_401(http_server: str) -> None:
    token = mint_token(SecretStr("another-key-" + "y" * 32), subject="local-dev", server="jira-read")
    response = httpx.post(http_server, json=INIT, headers={**HEADERS, "Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 401


async def test_http_identity_is_the_token_subject(http_server: str) -> None:
    token = mint_token(SecretStr(KEY), subject="ops-only", server="jira-read")
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http,
        Client(streamable_http_client(http_server, http_client=http)) as client,
    ):
        try:
            await client.call_tool("get_issue", {"key": "SVC-1"})
        except Exception as exc:  # the protocol error, not a tool result
            denied = str(exc)
        else:
            denied = ""
    assert "not readable" in denied


async def test_http_with_a_token_from_the_users_identity_provider(
    tmp_path: Path, policy_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with LocalIssuer() as idp:
        oidc = {
            "NO_PROXY": "127.0.0.1",
            "GORESOLVE_JIRA_READ_OIDC_ISSUER": idp.url,
            "GORESOLVE_JIRA_READ_OIDC_GROUP_IDENTITIES": '{"support": "reader"}',
        }
        with _serve_http(tmp_path, policy_dir, oidc) as url:
            token = idp.token(alg="ES256", sub="alice@example.com", groups=["support"])
            async with (
                httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http,
                Client(streamable_http_client(url, http_client=http)) as client,
            ):
                result = await client.call_tool("search_issues", {"jql": "status = Open", "limit": 5})
            other = idp.token(aud="goresolve:github-pr", groups=["support"])
            refused = httpx.post(url, json=INIT, headers={**HEADERS, "Authorization": f"Bearer {other}"}, timeout=10)
            hs256 = mint_token(SecretStr(KEY), subject="reader", server="jira-read")  # local tokens still work
            local = httpx.post(url, json=INIT, headers={**HEADERS, "Authorization": f"Bearer {hs256}"}, timeout=10)
    assert not result.is_error and result.structured_content["issues"]
    assert refused.status_code == 401
    assert local.status_code == 200
    audit = (tmp_path / "state" / "audit" / "jira-read.jsonl").read_text()
    assert '"caller": "reader"' in audit
