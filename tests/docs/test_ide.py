"""docs/ide.md: every configuration snippet parses, and the command it names serves the tools over MCP.

Each JSON block is a client's configuration. For a stdio entry the test starts the entry's command
with its args and env (the console scripts of this installation on PATH) and lists the tools; for
an HTTP entry it starts the server with the command the doc gives, mints a token for that server,
fills the entry's placeholder with it, and lists the tools through the entry's URL and headers.
Entries that launch exactly the same thing are started once. Ports are remapped to free ones.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from pydantic import SecretStr

from servers.common.auth import mint_token

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "ide.md"
BIN = Path(sys.executable).parent
SNAPSHOTS = ROOT / "tests" / "snapshots"


def documented_tools() -> dict[str, set[str]]:
    """The doc's table of tools per server (what it promises the assistant gets)."""
    table = DOC.read_text().split("## What the assistant can then do", 1)[1]
    tools: dict[str, set[str]] = {}
    for m in re.finditer(r"^\| (jira-read|code-search|go-test-runner|github-pr) \| (.+?) \|", table, re.MULTILINE):
        tools[m.group(1)] = set(re.findall(r"`([a-z_]+)`", m.group(2))) - {"jira", "code", "tests", "pr"}
    return tools


TOOLS = documented_tools()
PLACEHOLDER = re.compile(r"\$\{(?:env:|input:)?[A-Za-z0-9_-]*TOKEN[A-Za-z0-9_-]*\}|<[a-z-]+ token>", re.IGNORECASE)


def env_name(server: str) -> str:
    return server.upper().replace("-", "_")


def blocks(lang: str) -> list[tuple[str, str]]:
    """(section heading, block text) for every fenced block of `lang`."""
    out: list[tuple[str, str]] = []
    section = ""
    for m in re.finditer(rf"^## ([^\n]+)$|^```{lang}\n(.*?)^```$", DOC.read_text(), re.MULTILINE | re.DOTALL):
        if m.group(1):
            section = m.group(1)
        else:
            out.append((section, m.group(2)))
    return out


def entries() -> list[tuple[str, str, dict[str, Any]]]:
    """(client section, server name, entry) for every server entry of every JSON snippet."""
    found: list[tuple[str, str, dict[str, Any]]] = []
    for section, text in blocks("json"):
        config = json.loads(text)
        servers = config.get("mcpServers") or config.get("servers")
        assert isinstance(servers, dict) and servers, f"{section}: no servers in a snippet"
        found += [(section, name, entry) for name, entry in servers.items()]
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def go_env(name: str) -> str:
    return subprocess.run(["go", "env", name], capture_output=True, text=True, timeout=30, check=True).stdout.strip()


@pytest.fixture(scope="module")
def base_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GORESOLVE_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["GORESOLVE_DATA_DIR"] = str(tmp_path_factory.mktemp("data"))
    env["GORESOLVE_GO_TEST_RUNNER_GOCACHE"] = go_env("GOCACHE")  # its exec wrapper builds in seconds
    for server in TOOLS:
        env[f"GORESOLVE_{env_name(server)}_TOKEN_KEY"] = f"{server}-signing-key-" + "k" * 32
    return env


@pytest.fixture(scope="module")
def http_servers(base_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, int]]:
    """The doc's HTTP start commands, each on a free port; yields doc port -> real port."""
    starts = re.findall(r"^(\S+-mcp) --transport http --port (\d+) &$", blocks("sh")[0][1], re.MULTILINE)
    assert {cmd.removesuffix("-mcp") for cmd, _ in starts} == set(TOOLS)
    logs = tmp_path_factory.mktemp("logs")
    procs: list[subprocess.Popen[bytes]] = []
    ports: dict[int, int] = {}
    try:
        for cmd, doc_port in starts:
            port = free_port()
            while port in ports.values():  # the kernel may hand out a port it just gave another server
                port = free_port()
            ports[int(doc_port)] = port
            procs.append(
                subprocess.Popen(
                    [str(BIN / cmd), "--transport", "http", "--port", str(port)],
                    env=base_env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=open(logs / f"{cmd}.log", "w"),  # noqa: SIM115 - closed with the process
                )
            )
        deadline = time.monotonic() + 90
        for (cmd, _), proc, port in zip(starts, procs, ports.values(), strict=True):
            while True:
                with socket.socket() as sock:
                    if sock.connect_ex(("127.0.0.1", port)) == 0:
                        break
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"{cmd} did not start: {(logs / f'{cmd}.log').read_text()[-2000:]}")
                time.sleep(0.1)
        # A server that lost its port to another process exits, while the port answers for that process
        # (whose tokens have another audience: 401): every server must still be running once all answer.
        time.sleep(0.5)
        for (cmd, _), proc in zip(starts, procs, strict=True):
            if proc.poll() is not None:
                pytest.fail(f"{cmd} exited after its port answered: {(logs / f'{cmd}.log').read_text()[-2000:]}")
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def token_for(server: str, env: dict[str, str]) -> str:
    key = env[f"GORESOLVE_{env_name(server)}_TOKEN_KEY"]
    return mint_token(SecretStr(key), subject="local-dev", server=server)  # type: ignore[arg-type]


def fill(value: str, server: str, env: dict[str, str], ports: dict[int, int]) -> str:
    value = PLACEHOLDER.sub(lambda _: token_for(server, env), value)
    return re.sub(r"127\.0\.0\.1:(\d+)", lambda m: f"127.0.0.1:{ports.get(int(m.group(1)), m.group(1))}", value)


def test_the_documented_tools_match_the_committed_tool_snapshots() -> None:
    assert set(TOOLS) == {"jira-read", "code-search", "go-test-runner", "github-pr"}
    for server, tools in TOOLS.items():
        snapshot = SNAPSHOTS / f"{server}.tools.json"
        if snapshot.exists():
            data = json.loads(snapshot.read_text())
            listed = data if isinstance(data, list) else data.get("tools", data)
            names = {t["name"] for t in (listed if isinstance(listed, list) else listed.values())}
            assert tools == names, server


def test_every_snippet_is_valid_json_for_each_client_and_names_known_servers() -> None:
    found = entries()
    sections = {section for section, _, _ in found}
    assert sections == {"Claude Desktop", "Claude Code", "Cursor", "VS Code"}
    for section in sections:
        names = {name for s, name, entry in found if s == section and "command" in entry and entry["command"] != "npx"}
        assert names == set(TOOLS), section  # all four over stdio
        http = [e for s, _, e in found if s == section and ("url" in e or e.get("command") == "npx")]
        assert http, f"{section}: no HTTP snippet"
    assert {name for _, name, _ in found} == set(TOOLS)


async def list_tools_stdio(command: str, args: list[str], env: dict[str, str]) -> set[str]:
    exe = shutil.which(command, path=env["PATH"])
    assert exe is not None, f"{command} is not on PATH"
    async with Client(StdioServerParameters(command=exe, args=args, env=env), read_timeout_seconds=120) as client:
        return {t.name for t in (await client.list_tools()).tools}


async def test_every_stdio_entry_starts_and_lists_its_tools(base_env: dict[str, str]) -> None:
    launches: dict[str, tuple[str, str, dict[str, Any]]] = {}
    for section, name, entry in entries():
        if "command" in entry and entry["command"] != "npx":
            assert entry.get("type", "stdio") == "stdio", (section, name)
            key = json.dumps([entry["command"], entry.get("args", []), entry.get("env", {})], sort_keys=True)
            launches.setdefault(key, (section, name, entry))
    assert len(launches) == len(TOOLS)  # the four clients launch the same four commands
    listed: dict[str, set[str]] = {}

    async def launch(name: str, entry: dict[str, Any]) -> None:
        listed[name] = await list_tools_stdio(entry["command"], entry.get("args", []), base_env | entry.get("env", {}))

    async with anyio.create_task_group() as tg:  # the four start-ups overlap
        for _, name, entry in launches.values():
            tg.start_soon(launch, name, entry)
    assert listed == TOOLS


async def test_every_http_entry_reaches_its_server_with_its_token(
    base_env: dict[str, str], http_servers: dict[int, int]
) -> None:
    checked = 0
    for section, name, entry in entries():
        if "url" not in entry:
            continue
        assert entry.get("type", "http") == "http", (section, name)
        url = fill(entry["url"], name, base_env, http_servers)
        headers = {k: fill(v, name, base_env, http_servers) for k, v in entry["headers"].items()}
        assert "${" not in json.dumps(headers) and "<" not in json.dumps(headers)
        async with (
            httpx2.AsyncClient(headers=headers, timeout=60) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            tools = {t.name for t in (await client.list_tools()).tools}
        assert tools == TOOLS[name], (section, name)
        checked += 1
    assert checked == 12  # Claude Code, Cursor and VS Code, four servers each


@pytest.mark.slow
async def test_the_claude_desktop_bridge_entries_reach_their_servers(
    base_env: dict[str, str], http_servers: dict[int, int]
) -> None:
    bridged = [(s, n, e) for s, n, e in entries() if e.get("command") == "npx"]
    assert bridged
    if shutil.which("npx") is None:
        pytest.skip("Node.js (npx) is not installed")
    for section, name, entry in bridged:
        args = [fill(a, name, base_env, http_servers) for a in entry["args"]]
        env = base_env | {k: fill(v, name, base_env, http_servers) for k, v in entry["env"].items()}
        assert await list_tools_stdio("npx", args, env) == TOOLS[name], (section, name)
