"""Shared fixtures. The default test run cannot reach the network: see `_no_network`."""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from servers.common.policy import Policies, load_policies

# Speed is measured by the benchmarks under bench/, not by tests: on a loaded 2-core machine a
# per-example deadline only measures the load (property tests keep their example counts).
settings.register_profile("goresolve", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("goresolve")

REPO_ROOT = Path(__file__).resolve().parents[1]

TEST_POLICIES = {
    "access.yaml": """
        identities:
          local-dev: {roles: [agent], repos: [sample-service], jira_projects: [SVC]}
          reader:    {roles: [triage], jira_projects: [SVC]}
          ops-only:  {roles: [triage], jira_projects: [OPS]}
          no-jira:   {roles: [triage]}
          coder:     {roles: [coder], repos: [sample-service]}
    """,
    "tools.yaml": """
        roles:
          agent:  {scopes: [jira:read, issue:read, code:read, tests:run, pr:read, pr:write]}
          triage: {scopes: [jira:read]}
          coder:  {scopes: [code:read]}
    """,
    "repos.yaml": """
        repos:
          sample-service: {path: ../sample-service}
    """,
}


def write_policies(directory: Path, files: dict[str, str] = TEST_POLICIES) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        (directory / name).write_text(textwrap.dedent(body).lstrip(), encoding="utf-8")
    return directory


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    return write_policies(tmp_path / "policies")


@pytest.fixture
def policies(policy_dir: Path) -> Policies:
    return load_policies(policy_dir)


_real_connect = socket.socket.connect


def _guarded_connect(self: socket.socket, address: object) -> object:
    host = address[0] if isinstance(address, tuple) else address
    inet = self.family in (socket.AF_INET, socket.AF_INET6)
    if inet and isinstance(host, str) and not (host.startswith("127.") or host in ("::1", "localhost")):
        raise RuntimeError(f"test tried to reach the network: {host}")
    return _real_connect(self, address)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail loudly when a test tries to reach anything but loopback."""
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
