"""Each locally started server holds only its own settings: no other server's token, not the agent's model key.

`goresolve resolve` (through `build_run`) and `goresolve demo` start the four servers over stdio; go-test-runner
runs the repository's test code, so whatever is in its environment is one /proc/<pid>/environ away from it.
"""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest

from agent.servers import ServersConfig, StdioServer, open_servers, server_env
from tests.agent.procs import matching

POLICIES = Path(__file__).resolve().parents[2] / "policies"
MARKERS = {
    "GORESOLVE_GITHUB_PR_TOKEN": "ghp_MARKERgithubprtoken",
    "GORESOLVE_JIRA_READ_API_TOKEN": "MARKER-jira-token",
    "GORESOLVE_AGENT_API_KEY": "sk-MARKERmodelkey",
    "GORESOLVE_CODE_SEARCH_OPENAI_API_KEY": "sk-MARKERembedderkey",
    "GORESOLVE_WEBHOOKS_GITHUB_SECRET": "MARKER-webhook-secret",
    "OPENAI_API_KEY": "sk-MARKERprovider",
    "GITHUB_TOKEN": "ghp_MARKERforge",
    "AWS_SECRET_ACCESS_KEY": "MARKER-store-secret",
}
OWN = {
    "jira-read": {"GORESOLVE_JIRA_READ_API_TOKEN"},
    "code-search": {"GORESOLVE_CODE_SEARCH_OPENAI_API_KEY", "AWS_SECRET_ACCESS_KEY"},
    "go-test-runner": set[str](),
    "github-pr": {"GORESOLVE_GITHUB_PR_TOKEN"},
}


def test_server_env_keeps_a_server_its_own_settings_and_nothing_of_another_process() -> None:
    environ = {**MARKERS, "PATH": "/usr/bin", "GORESOLVE_DATA_DIR": "/d", "GORESOLVE_DEBUG": "1"}
    environ |= {"GORESOLVE_SECRETS_DIR": "/s", "GORESOLVE_GO_TEST_RUNNER_WORK_DIR": "/w", "HTTPS_PROXY": "http://p"}
    for server, own in OWN.items():
        env = server_env(server, environ)
        assert {name for name in MARKERS if name in env} == own, server
        assert env["PATH"] == "/usr/bin" and env["HTTPS_PROXY"] == "http://p"
        assert env["GORESOLVE_DATA_DIR"] == "/d" and env["GORESOLVE_DEBUG"] == "1"
        # go-test-runner runs the repository's test code and holds no credential: not even where the others' files are
        assert ("GORESOLVE_SECRETS_DIR" in env) == (server != "go-test-runner"), server
        assert ("GORESOLVE_GO_TEST_RUNNER_WORK_DIR" in env) == (server == "go-test-runner")
    hermetic = server_env("github-pr", environ, own_settings=False)  # the demo: the user's own settings do not apply
    assert not any(name.startswith("GORESOLVE_GITHUB_PR_") for name in hermetic)
    assert "GORESOLVE_SECRETS_DIR" not in hermetic and hermetic["GORESOLVE_DATA_DIR"] == "/d"


def _specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, StdioServer]:
    """The stdio servers `goresolve resolve` starts, given the environment it gives `build_run`."""
    from agent.cli import AgentSettings, build_run

    (tmp_path / "secrets").mkdir(exist_ok=True)
    for name, value in {**MARKERS, "GORESOLVE_DATA_DIR": str(tmp_path / "data")}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GORESOLVE_SECRETS_DIR", str(tmp_path / "secrets"))
    monkeypatch.setenv("GORESOLVE_AGENT_PROVIDER", "openai")
    monkeypatch.setenv("GORESOLVE_AGENT_MODEL", "m")
    monkeypatch.setenv("GORESOLVE_AGENT_BASE_URL", "http://127.0.0.1:9/v1")
    env = {**os.environ, "GORESOLVE_JIRA_READ_BACKEND": "local"}  # as resolve_command: os.environ + the run's
    run = build_run(AgentSettings(state_dir=tmp_path / "data"), POLICIES, "sample-service", env, None)
    specs = {spec.name: spec for spec in run.servers.servers if isinstance(spec, StdioServer)}
    assert set(specs) == set(OWN)
    return specs


def test_build_run_gives_each_stdio_server_only_its_own_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, spec in _specs(tmp_path, monkeypatch).items():
        assert {marker for marker in MARKERS if marker in spec.env} == OWN[name], name
        assert not any(value in spec.env.values() for marker, value in MARKERS.items() if marker not in OWN[name])
        assert ("GORESOLVE_JIRA_READ_BACKEND" in spec.env) == (name == "jira-read")
        assert spec.env["GORESOLVE_DATA_DIR"] == str(tmp_path / "data")
        assert ("GORESOLVE_SECRETS_DIR" in spec.env) == (name != "go-test-runner"), name


def test_the_demo_servers_hold_no_credential_of_the_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from goresolve.demo import World, servers_config

    for name, value in MARKERS.items():
        monkeypatch.setenv(name, value)
    world = World(tmp_path, tmp_path, tmp_path / "remote", POLICIES, tmp_path / "state", "0" * 40, tmp_path / "gtr")
    for spec in servers_config(world).servers:
        assert isinstance(spec, StdioServer)
        kept = OWN[spec.name] - {name for name in OWN[spec.name] if name.startswith("GORESOLVE_")}
        assert {name for name in MARKERS if name in spec.env} == kept, spec.name  # only code-search's store key


def test_a_started_go_test_runner_process_holds_none_of_the_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real process, started as `goresolve resolve` starts it: its /proc/<pid>/environ, read while it serves."""
    spec = _specs(tmp_path, monkeypatch)["go-test-runner"]
    found: dict[str, bytes] = {}

    async def main() -> None:
        async with open_servers(ServersConfig(servers=(spec,), call_timeout_s=120)) as box:
            assert box.tools  # it started and answered
            for pid in matching(f"GORESOLVE_DATA_DIR={tmp_path / 'data'}", environ=True):
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                if b"go-test-runner-mcp" in cmdline:
                    found[str(pid)] = Path(f"/proc/{pid}/environ").read_bytes()

    anyio.run(main)
    assert found, "no go-test-runner-mcp process with this test's data dir"
    for environ in found.values():
        for value in MARKERS.values():
            assert value.encode() not in environ
        assert b"GORESOLVE_GO_TEST_RUNNER_POLICY_DIR=" in environ and b"GORESOLVE_SECRETS_DIR=" not in environ
