"""In a pod the agent reaches each server over streamable HTTP with that server's own token: a real
jira-read over HTTP accepts its token and refuses one minted for another server."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from pydantic import SecretStr

from agent.exits import ServerUnavailable
from agent.servers import HttpServer, ServersConfig, connect, open_servers
from servers.common.auth import mint_token

from .workspace import Workspace

KEY = SecretStr("k" * 40)


@pytest.fixture
def jira_http(workspace: Workspace, tmp_path: Path) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = {
        **{k: v for k, v in __import__("os").environ.items() if not k.startswith("GORESOLVE_")},
        "GORESOLVE_JIRA_READ_POLICY_DIR": str(workspace.policy_dir),
        "GORESOLVE_JIRA_READ_TICKETS_DIR": str(workspace.tickets_dir),
        "GORESOLVE_JIRA_READ_STATE_DIR": str(tmp_path / "jira"),
        "GORESOLVE_JIRA_READ_TOKEN_KEY": KEY.get_secret_value(),
        "GORESOLVE_JIRA_READ_LOG_LEVEL": "WARNING",
    }
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "servers.jira_read", "--transport", "http", "--port", str(port)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        if proc.poll() is not None:
            pytest.fail((tmp_path / "server.log").read_text())
        time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


async def _open(config: ServersConfig) -> None:
    async with open_servers(config):
        pass


async def test_each_server_is_reached_with_its_own_token_and_another_servers_token_is_refused(jira_http: str) -> None:
    own = mint_token(KEY, subject="local-dev", server="jira-read")
    async with AsyncExitStack() as stack:
        box = await connect(
            ServersConfig(servers=(HttpServer(name="jira-read", url=jira_http, token=SecretStr(own)),)), stack
        )
        issue = await box.call("get_issue", {"key": "CALC-1"})
    assert issue.ok and issue.structured is not None
    assert issue.structured["summary"]["text"] == "Add returns the difference instead of the sum"

    foreign = mint_token(KEY, subject="local-dev", server="code-search")
    refused = ServersConfig(servers=(HttpServer(name="jira-read", url=jira_http, token=SecretStr(foreign)),))
    with pytest.raises(ServerUnavailable, match="jira-read did not start or answer"):
        await _open(refused)
