"""Topology "services", run from the rendered chart: jira-read started with its Deployment's own env and
args answers a request addressed to its Service name (DNS rebinding protection on) with the agent's
token, and refuses any other Host with 421."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest
from pydantic import SecretStr

from servers.common.auth import mint_token
from tests.charts.pod import free_port, mount_dirs, run_server, write_projected_secrets
from tests.charts.render import CHART, render
from tests.support import http_initialize_status

pytestmark = pytest.mark.timeout(300)

VALUES = CHART / "ci" / "services-topology.yaml"
SERVICE = "gr-goresolve-jira-read"


@pytest.fixture(scope="module")
def jira_read(tmp_path_factory: pytest.TempPathFactory) -> Generator[dict[str, Any]]:
    port = free_port()
    manifests = render(values=VALUES, sets=(f"jiraRead.port={port}",))
    deployment = next(d for d in manifests if d["kind"] == "Deployment" and d["metadata"]["name"] == SERVICE)
    spec = deployment["spec"]["template"]["spec"]
    [container] = spec["containers"]
    root = tmp_path_factory.mktemp("services")
    mounts = mount_dirs(container, root)
    files = write_projected_secrets(spec, "jira-read-secrets", manifests, mounts["/var/run/secrets/goresolve"])
    key = files["GORESOLVE_JIRA_READ_TOKEN_KEY"]  # jira-read's own key, derived by the chart
    mounts["/etc/goresolve/policies"].rmdir()
    mounts["/etc/goresolve/policies"] = CHART.parents[1] / "policies"
    with run_server("servers.jira_read", container, mounts, port, root / "jira-read.log"):
        yield {"port": port, "token": mint_token(SecretStr(key), subject="agent", server="jira-read")}


def initialize(server: dict[str, Any], host: str) -> int:
    return http_initialize_status(server["port"], host, server["token"])


def test_jira_read_answers_its_service_names_and_refuses_other_hosts(jira_read: dict[str, Any]) -> None:
    port = jira_read["port"]
    for name in (SERVICE, f"{SERVICE}.goresolve", f"{SERVICE}.goresolve.svc", f"{SERVICE}.goresolve.svc.cluster.local"):
        assert initialize(jira_read, f"{name}:{port}") == 200, name
    assert initialize(jira_read, f"gr-goresolve-github-pr:{port}") == 421  # another Service's name
    assert initialize(jira_read, f"attacker.example:{port}") == 421
