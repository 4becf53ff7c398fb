"""The agent pod in the shared-key fallback, run from the rendered chart: the `tokens` init container's
own script mints one token per server with the real `goresolve token mint`, a real jira-read started
with its sidecar's settings accepts the agent's token for it, and the agent container holds tokens only.
Also: the agent's HTTP settings refuse an incomplete configuration naming the variable."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from agent.servers import (
    HttpEndpoints,
    ServersConfig,
    ServersConfigError,
    http_servers,
    http_servers_from_env,
    open_servers,
)
from tests.charts.pod import base_env, free_port, local_env, mount_dirs, run_server, write_projected_secrets
from tests.charts.render import job_template, render

pytestmark = pytest.mark.timeout(600)

KEY = "shared-" + "k" * 40


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.fixture(scope="module")
def pod(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    port = free_port()
    sets = ("auth.mode=sharedKey", f"auth.sharedKey.value={KEY}", f"jiraRead.port={port}")
    manifests = render(sets=sets)
    spec = job_template(manifests)["spec"]["template"]["spec"]
    return {"spec": spec, "manifests": manifests, "port": port, "root": tmp_path_factory.mktemp("pod")}


def container(spec: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in [*spec["initContainers"], *spec["containers"]] if c["name"] == name)


@pytest.fixture(scope="module")
def minted(pod: dict[str, Any]) -> Path:
    """The `tokens` init container's script, run as written (mount paths pointed at local directories)."""
    spec = pod["spec"]
    tokens = container(spec, "tokens")
    mounts = mount_dirs(tokens, pod["root"])
    write_projected_secrets(spec, "token-key", pod["manifests"], mounts["/var/run/secrets/goresolve/key"])
    paths = "|".join(re.escape(m) for m in sorted(mounts, key=len, reverse=True))
    script = re.sub(rf"(?<![\w/])(?:{paths})(?=/|\b)", lambda m: str(mounts[m.group(0)]), tokens["args"][0])
    done = subprocess.run(
        [*tokens["command"], script],
        env={**base_env(), **local_env(tokens, mounts)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == ""  # the tokens go to their files only
    return mounts["/var/run/secrets/goresolve/tokens"]


@pytest.fixture(scope="module")
def jira_read(pod: dict[str, Any]) -> Generator[None]:
    spec = pod["spec"]
    sidecar = container(spec, "jira-read")
    mounts = mount_dirs(sidecar, pod["root"])
    write_projected_secrets(spec, "jira-read-secrets", pod["manifests"], mounts["/var/run/secrets/goresolve"])
    (mounts["/etc/goresolve/policies"]).rmdir()
    mounts["/etc/goresolve/policies"] = Path(__file__).resolve().parents[2] / "policies"  # the bundled files
    with run_server("servers.jira_read", sidecar, mounts, pod["port"], pod["root"] / "jira-read.log"):
        yield


def agent_endpoints(pod: dict[str, Any], tokens: Path, monkeypatch: pytest.MonkeyPatch) -> HttpEndpoints:
    agent = container(pod["spec"], "agent")
    mounts = {**mount_dirs(agent, pod["root"] / "agent"), "/var/run/secrets/goresolve/tokens": tokens}
    for name, value in local_env(agent, mounts).items():
        monkeypatch.setenv(name, value)
    return HttpEndpoints()


def test_each_minted_token_is_for_one_server_and_lives_as_long_as_a_run(minted: Path) -> None:
    for server in ("jira-read", "code-search", "go-test-runner", "github-pr"):
        token = claims((minted / server).read_text(encoding="utf-8").strip())
        assert (token["aud"], token["sub"]) == (f"goresolve:{server}", "agent")
        assert token["exp"] - token["iat"] == 2400  # the Job's deadline (1800 + 300) plus 300 s


async def test_the_agent_reaches_jira_read_with_its_minted_token(
    pod: dict[str, Any], minted: Path, jira_read: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    specs = http_servers(agent_endpoints(pod, minted, monkeypatch))
    async with open_servers(ServersConfig(servers=tuple(s for s in specs if s.name == "jira-read"))) as box:
        issue = await box.call("get_issue", {"key": "SVC-1"})
    assert issue.ok and issue.structured is not None and issue.structured["key"] == "SVC-1"


def test_the_agent_container_holds_no_key(pod: dict[str, Any]) -> None:
    agent = container(pod["spec"], "agent")
    assert not any("TOKEN_KEY" in e["name"] for e in agent["env"])
    assert {m["name"] for m in agent["volumeMounts"]} == {"policies", "agent-state", "agent-tmp", "agent-tokens"}


def test_an_incomplete_http_configuration_names_the_missing_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("JIRA_READ", "CODE_SEARCH", "GO_TEST_RUNNER", "GITHUB_PR"):
        (tmp_path / name).write_text("token\n", encoding="utf-8")
        monkeypatch.setenv(f"GORESOLVE_AGENT_{name}_URL", f"http://127.0.0.1:1/{name}")
        monkeypatch.setenv(f"GORESOLVE_AGENT_{name}_TOKEN_FILE", str(tmp_path / name))
    monkeypatch.setenv("GORESOLVE_AGENT_MCP_TRANSPORT", "http")
    assert [s.token.get_secret_value() for s in http_servers(HttpEndpoints())] == ["token"] * 4

    monkeypatch.delenv("GORESOLVE_AGENT_GO_TEST_RUNNER_URL")
    with pytest.raises(ServersConfigError, match=r"^GORESOLVE_AGENT_GO_TEST_RUNNER_URL is not set"):
        http_servers(HttpEndpoints())
    monkeypatch.setenv("GORESOLVE_AGENT_GO_TEST_RUNNER_URL", "http://127.0.0.1:1/mcp")
    (tmp_path / "CODE_SEARCH").write_text("  \n", encoding="utf-8")
    with pytest.raises(ServersConfigError, match=r"^GORESOLVE_AGENT_CODE_SEARCH_TOKEN_FILE: .* is empty"):
        http_servers(HttpEndpoints())
    monkeypatch.setenv("GORESOLVE_AGENT_CODE_SEARCH_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(ServersConfigError, match=r"CODE_SEARCH_TOKEN_FILE: cannot read .*No such file"):
        http_servers(HttpEndpoints())


def test_the_cli_edge_reads_http_servers_only_when_asked_and_names_a_bad_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GORESOLVE_AGENT_MCP_TRANSPORT", raising=False)
    assert http_servers_from_env() is None  # stdio: the CLI starts the servers itself
    monkeypatch.setenv("GORESOLVE_AGENT_MCP_TRANSPORT", "http")
    monkeypatch.setenv("GORESOLVE_AGENT_JIRA_READ_URL", "not a url")
    with pytest.raises(ServersConfigError, match=r"^GORESOLVE_AGENT_JIRA_READ_URL: "):
        http_servers_from_env()
    monkeypatch.setenv("GORESOLVE_AGENT_MCP_TRANSPORT", "grpc")
    with pytest.raises(ServersConfigError, match=r"^GORESOLVE_AGENT_MCP_TRANSPORT: "):
        http_servers_from_env()
