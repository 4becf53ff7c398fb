"""Overhead of one jira-read tool call: in memory and over streamable HTTP on loopback.

    .venv/bin/python bench/mcp_overhead.py [--calls 1000]

Measures `get_issue` on the local backend (bundled samples), p50/p95 over N calls each:
  direct   - the backend call plus output conversion, no MCP (the baseline, same run)
  memory   - through the in-memory MCP client (platform middleware, policy, audit, tracing included)
  http     - through `jira-read-mcp --transport http` in a subprocess, bearer token, one session
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from pydantic import SecretStr

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from servers.common.app import Caller, _caller  # noqa: E402
from servers.common.auth import mint_token  # noqa: E402
from servers.common.policy import load_policies  # noqa: E402
from servers.jira_read.local import LocalJiraBackend  # noqa: E402
from servers.jira_read.server import JiraReadService, build_server  # noqa: E402
from servers.jira_read.settings import JiraReadSettings  # noqa: E402

KEY = "bench-signing-key-" + "z" * 32


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(name: str, samples: list[float], base: float | None = None) -> float:
    p50, p95 = statistics.median(samples) * 1e3, pct(samples, 0.95) * 1e3
    extra = f"  (+{p50 - base:.3f} ms over direct)" if base is not None else ""
    print(f"{name:<8} p50 {p50:7.3f} ms   p95 {p95:7.3f} ms   n={len(samples)}{extra}")
    return p50


async def direct(n: int, state: Path) -> list[float]:
    settings = JiraReadSettings(state_dir=state)
    policies = load_policies(REPO / "policies")
    service = JiraReadService(LocalJiraBackend(settings.tickets_dir), settings)
    ident = policies.identity("local-dev")
    token = _caller.set(Caller("local-dev", ident, policies.scopes_of("local-dev")))
    samples = []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            raw = await service.backend.get_issue(service.check_key("SVC-1"))
            service.issue(raw, service.allowed_projects()).model_dump(mode="json")
            samples.append(time.perf_counter() - t0)
    finally:
        _caller.reset(token)
    return samples


async def timed_calls(client: Client, n: int) -> list[float]:
    """One warm-up call, then `n` timed `get_issue` calls on an open session."""
    await client.call_tool("get_issue", {"key": "SVC-1"})
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        result = await client.call_tool("get_issue", {"key": "SVC-1"})
        samples.append(time.perf_counter() - t0)
        assert not result.is_error
    return samples


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def memory(n: int, state: Path) -> list[float]:
    settings = JiraReadSettings(state_dir=state, log_level="WARNING")
    server = build_server(settings, load_policies(REPO / "policies"), LocalJiraBackend(settings.tickets_dir))
    async with Client(server) as client:
        return await timed_calls(client, n)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def http(n: int, state: Path) -> list[float]:
    port = free_port()
    env = {
        **os.environ,
        "GORESOLVE_JIRA_READ_STATE_DIR": str(state),
        "GORESOLVE_JIRA_READ_TOKEN_KEY": KEY,
        "GORESOLVE_JIRA_READ_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "servers.jira_read", "--transport", "http", "--port", str(port)],
        env=env,
        stdin=subprocess.DEVNULL,
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 30
        while not port_open(port):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("server did not start")
            await anyio.sleep(0.05)
        token = mint_token(SecretStr(KEY), subject="local-dev", server="jira-read")
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as client_http,
            Client(streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=client_http)) as client,
        ):
            return await timed_calls(client, n)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        base = report("direct", await direct(n, state / "d"))
        report("memory", await memory(n, state / "m"), base)
        report("http", await http(n, state / "h"), base)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1000)
    anyio.run(main, parser.parse_args().calls)
