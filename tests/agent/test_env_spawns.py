"""The other places that start a server as a process give it only its own settings (`agent.servers.server_env`):
`goresolve route` reading a ticket through jira-read or github-pr, the eval harness's go-test-runner, and the
eval agent's four servers. Checked on the started process's /proc/<pid>/environ where one is started.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml

import agent.servers
from agent.eval.agent_solver import AgentOptions, _servers  # pyright: ignore[reportPrivateUsage]
from agent.eval.runner_client import RunnerConfig, start_runner
from agent.router import cli as router_cli
from tests.agent.procs import matching

from .test_env_servers import MARKERS, OWN, POLICIES


def _environ_of(needle: str, command: bytes) -> list[bytes]:
    """The environments of this user's processes running `command` whose environment holds `needle`."""
    found: list[bytes] = []
    for pid in matching(needle, environ=True):
        try:
            if command in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(Path(f"/proc/{pid}/environ").read_bytes())
        except OSError:  # gone
            continue
    return found


@pytest.fixture
def secrets_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every marker credential and a secrets directory in this process's environment; the data dir is the needle."""
    (tmp_path / "secrets").mkdir()
    for name, value in MARKERS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GORESOLVE_SECRETS_DIR", str(tmp_path / "secrets"))
    monkeypatch.setenv("GORESOLVE_DATA_DIR", str(tmp_path / "data"))
    return f"GORESOLVE_DATA_DIR={tmp_path / 'data'}"


def test_goresolve_route_reads_a_ticket_through_a_jira_read_holding_only_its_own_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secrets_env: str
) -> None:
    ticket = tmp_path / "SVC-7.yaml"
    fields = {
        "summary": "Export fails",
        "description": "x",
        "issuetype": {"name": "Bug"},
        "status": {"name": "Open"},
        "priority": {"name": "Medium"},
        "labels": [],
        "components": [],
        "created": "2026-01-01T00:00:00.000+0000",
        "updated": "2026-01-01T00:00:00.000+0000",
    }
    ticket.write_text(yaml.safe_dump({"key": "SVC-7", "fields": fields}))
    found: list[bytes] = []
    real = agent.servers.open_servers

    @asynccontextmanager
    async def spying(*args: Any, **kwargs: Any) -> AsyncGenerator[Any]:
        async with real(*args, **kwargs) as box:
            found.extend(_environ_of(secrets_env, b"jira-read-mcp"))
            yield box

    monkeypatch.setattr(agent.servers, "open_servers", spying)
    facts = router_cli.load_ticket(str(ticket), POLICIES)
    assert facts.key == "SVC-7" and found, "no jira-read-mcp process with this test's data dir"
    for environ in found:
        for name, value in MARKERS.items():
            assert (value.encode() in environ) == (name in OWN["jira-read"]), name
        assert b"GORESOLVE_JIRA_READ_BACKEND=local" in environ and b"GORESOLVE_SECRETS_DIR=" in environ


def test_the_eval_harness_go_test_runner_holds_no_credential_nor_the_secrets_dir(
    tmp_path: Path, secrets_env: str
) -> None:
    config = RunnerConfig(policy_dir=POLICIES, state_dir=tmp_path / "state", identity="local-dev", max_concurrency=1)
    env = config.env()
    assert not any(name in env for name in MARKERS) and "GORESOLVE_SECRETS_DIR" not in env
    found: list[bytes] = []

    async def main() -> None:
        async with start_runner(config):
            found.extend(_environ_of(secrets_env, b"servers.go_test_runner"))

    anyio.run(main)
    assert found, "no go-test-runner process with this test's data dir"
    for environ in found:
        assert not any(value.encode() in environ for value in MARKERS.values())
        assert (
            b"GORESOLVE_SECRETS_DIR=" not in environ and b"GORESOLVE_GO_TEST_RUNNER_STDIO_IDENTITY=local-dev" in environ
        )


def test_the_eval_agents_servers_are_hermetic(
    tmp_path: Path, secrets_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GORESOLVE_CODE_SEARCH_EMBEDDER", "hashing")
    monkeypatch.setenv("GORESOLVE_DEBUG", "1")

    def no_model(_task: Any) -> Any:
        raise AssertionError("no model is asked")

    config = _servers(tmp_path, tmp_path / "policies", tmp_path / "tickets", tmp_path / "gtr", AgentOptions(no_model))
    for spec in config.servers:
        assert isinstance(spec, agent.servers.StdioServer)
        kept = {name for name in MARKERS if name in spec.env}
        assert kept == ({"AWS_SECRET_ACCESS_KEY"} if spec.name == "code-search" else set()), spec.name
        assert "GORESOLVE_SECRETS_DIR" not in spec.env and spec.env["GORESOLVE_DEBUG"] == "1"
        assert spec.env["GORESOLVE_DATA_DIR"] == str(tmp_path / "data")
        assert ("GORESOLVE_CODE_SEARCH_EMBEDDER" in spec.env) == (spec.name == "code-search"), spec.name
