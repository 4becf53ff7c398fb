"""The agent pod's tokens, end to end against a real kube-apiserver: the API server issues the agent's
ServiceAccount tokens (one audience per server, as the projected volume asks), a real jira-read started
with the chart's own settings verifies them against the cluster's JWKS, and the agent, configured from
the chart's env, reaches it over streamable HTTP. A token for another server's audience is refused."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
from collections.abc import Generator
from contextlib import AsyncExitStack
from typing import Any

import pytest
from pydantic import SecretStr

from agent.exits import ServerUnavailable
from agent.servers import (
    SERVER_NAMES,
    HttpEndpoints,
    HttpServer,
    ServersConfig,
    connect,
    http_servers,
    open_servers,
)
from tests.charts.pod import free_port, local_env, mount_dirs, policies_with, run_server
from tests.charts.render import job_template, render
from tests.kube.cluster import Cluster
from tests.kube.kubeapi import NS, RELEASE, api_client, call, service_account_token

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

AGENT_SA = f"{RELEASE}-goresolve-agent"
IDENTITY = f"system:serviceaccount:{NS}:{AGENT_SA}"


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.fixture(scope="module")
def pod(cluster: Cluster, installed: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The Job's pod spec rendered for this API server's key set, and the agent's four tokens from it."""
    port = free_port()
    manifests = render(
        namespace=NS, release=RELEASE, sets=(f"auth.jwksUrl={cluster.url}/openid/v1/jwks", f"jiraRead.port={port}")
    )
    spec = job_template(manifests)["spec"]["template"]["spec"]
    audiences = {
        s["serviceAccountToken"]["path"]: s["serviceAccountToken"]["audience"]
        for v in spec["volumes"]
        if v["name"] == "agent-tokens"
        for s in v["projected"]["sources"]
    }

    async def issue() -> dict[str, str]:
        async with api_client(cluster, cluster.admin_token) as api:
            # What docs/operations.md asks of a cluster whose issuer is the API server itself.
            binding = {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "service-account-issuer-discovery-unauthenticated"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "system:service-account-issuer-discovery",
                },
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:unauthenticated"}
                ],
            }
            answer = await call(api, "POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", binding)
            assert answer.status in (201, 409), answer.json
            return {p: await service_account_token(api, NS, AGENT_SA, [a]) for p, a in audiences.items()}

    tokens = asyncio.run(issue())
    return {"spec": spec, "tokens": tokens, "port": port, "root": tmp_path_factory.mktemp("pod")}


@pytest.fixture(scope="module")
def jira_read(pod: dict[str, Any], cluster: Cluster) -> Generator[None]:
    """jira-read with the sidecar's own env and args; its volumes are local directories."""
    [container] = [c for c in pod["spec"]["initContainers"] if c["name"] == "jira-read"]
    mounts = mount_dirs(container, pod["root"])
    policies_with(mounts["/etc/goresolve/policies"], IDENTITY)
    shutil.copy(cluster.ca_file, mounts["/etc/goresolve/oidc-ca"] / "ca.crt")  # the kube-root-ca.crt ConfigMap
    with run_server("servers.jira_read", container, mounts, pod["port"], pod["root"] / "jira-read.log"):
        yield


def endpoints(pod: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tokens: dict[str, str]) -> HttpEndpoints:
    """The agent's transport settings exactly as the chart sets them, token files written as the kubelet would."""
    [agent] = pod["spec"]["containers"]
    mounts = mount_dirs(agent, pod["root"] / "agent")
    for server, token in tokens.items():
        (mounts["/var/run/secrets/goresolve/tokens"] / server).write_text(token, encoding="utf-8")
    for name, value in local_env(agent, mounts).items():
        monkeypatch.setenv(name, value)
    return HttpEndpoints()


def jira(specs: tuple[HttpServer, ...]) -> ServersConfig:
    return ServersConfig(servers=tuple(s for s in specs if s.name == "jira-read"))


async def test_the_agent_reaches_jira_read_with_its_projected_token_and_the_server_knows_its_identity(
    pod: dict[str, Any], jira_read: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = endpoints(pod, monkeypatch, pod["tokens"])
    assert settings.mcp_transport == "http"
    specs = http_servers(settings)
    assert [s.name for s in specs] == list(SERVER_NAMES)
    assert {s.name: s.url for s in specs}["jira-read"] == f"http://127.0.0.1:{pod['port']}/mcp"
    for spec in specs:  # each file holds a token for that server only, naming the agent's ServiceAccount
        token = claims(spec.token.get_secret_value())
        assert (token["aud"], token["sub"]) == ([f"goresolve:{spec.name}"], IDENTITY)
    assert os.environ["GORESOLVE_AGENT_IDENTITY"] == IDENTITY  # the agent checks policy as the servers see it
    async with AsyncExitStack() as stack:
        box = await connect(jira(specs), stack)
        issue = await box.call("get_issue", {"key": "SVC-1"})
    assert issue.ok, issue.text
    assert issue.structured is not None and issue.structured["key"] == "SVC-1"


async def test_a_token_for_another_servers_audience_is_refused(
    pod: dict[str, Any], jira_read: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    swapped = {**pod["tokens"], "jira-read": pod["tokens"]["code-search"]}
    specs = http_servers(endpoints(pod, monkeypatch, swapped))
    log = pod["root"] / "jira-read.log"
    with pytest.raises(ServerUnavailable, match="jira-read did not start or answer"):
        async with open_servers(jira(specs)):
            pass
    assert "InvalidAudienceError" in log.read_text()  # refused for its audience, not for anything else
    forged = SecretStr(pod["tokens"]["jira-read"][:-4] + "AAAA")  # the right audience, a broken signature
    bad = tuple(s.model_copy(update={"token": forged}) if s.name == "jira-read" else s for s in specs)
    with pytest.raises(ServerUnavailable, match="jira-read did not start or answer"):
        async with open_servers(jira(bad)):
            pass
    assert "InvalidSignatureError" in log.read_text()
    assert pod["tokens"]["code-search"] not in log.read_text()  # no token is ever logged
