"""`<PREFIX>_ALLOWED_HOSTS`: the Host header values a server's HTTP transport accepts besides its own
address (DNS rebinding protection stays on), e.g. a Kubernetes Service name. Validated at start-up,
listed in every server's --help, and checked on a real server over HTTP."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from servers.common.auth import mint_token
from servers.common.errors import ConfigError
from servers.common.serve import help_epilog
from servers.common.settings import load_settings
from servers.jira_read.settings import JiraReadSettings
from tests.support import free_port, http_initialize_status, serving

VAR = "GORESOLVE_JIRA_READ_ALLOWED_HOSTS"
KEY = SecretStr("h" * 40)
SERVICE = "gr-goresolve-jira-read"


@pytest.mark.parametrize(
    "hosts",
    [
        [f"{SERVICE}:8101"],
        [f"{SERVICE}.goresolve.svc.cluster.local:8101", f"{SERVICE}:*"],
        ["10.0.0.7:8101", "[fd00::7]:8101", "mcp.example.com"],
    ],
)
def test_host_header_values_are_accepted(hosts: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VAR, json.dumps(hosts))
    assert load_settings(JiraReadSettings).allowed_hosts == tuple(hosts)


@pytest.mark.parametrize(
    "bad",
    ["http://svc:8101", "svc:8101/mcp", "*.svc.cluster.local", "svc:port", "-svc:8101", "svc name", ""],
)
def test_anything_but_a_host_header_value_is_refused_naming_the_variable(
    bad: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(VAR, json.dumps(["localhost:1", bad]))
    with pytest.raises(ConfigError) as refused:
        load_settings(JiraReadSettings)
    assert refused.value.message.startswith(f"setting {VAR}: ")
    assert "Host header value" in refused.value.message


def test_a_value_that_is_not_a_json_list_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VAR, f"{SERVICE}:8101")
    with pytest.raises(ConfigError, match=VAR):
        load_settings(JiraReadSettings)


_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)


@given(st.lists(_LABEL, min_size=1, max_size=5).map(".".join), st.integers(1, 65535) | st.just("*"))
def test_any_dns_name_with_a_port_or_any_port_is_accepted(name: str, port: int | str) -> None:
    hosts = (f"{name}:{port}",)
    assert JiraReadSettings(allowed_hosts=hosts).allowed_hosts == hosts


def test_the_setting_is_listed_in_every_servers_help() -> None:
    epilog = help_epilog(JiraReadSettings)
    assert f"  {VAR}=()" in epilog
    assert "DNS rebinding protection" in epilog


@pytest.fixture
def jira_http(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GORESOLVE_")},
        "GORESOLVE_JIRA_READ_STATE_DIR": str(tmp_path / "state"),
        "GORESOLVE_JIRA_READ_TOKEN_KEY": KEY.get_secret_value(),
        "GORESOLVE_JIRA_READ_LOG_LEVEL": "WARNING",
        VAR: json.dumps([f"{SERVICE}:{port}", f"{SERVICE}.goresolve.svc:*"]),
    }
    argv = [sys.executable, "-m", "servers.jira_read", "--transport", "http", "--port", str(port)]
    with serving(argv, env, tmp_path / "server.log", port=port):
        yield port


def _initialize(port: int, host: str) -> int:
    return http_initialize_status(port, host, mint_token(KEY, subject="local-dev", server="jira-read"))


def test_a_real_server_answers_its_service_names_and_refuses_any_other_host(jira_http: int) -> None:
    port = jira_http
    assert _initialize(port, f"127.0.0.1:{port}") == 200
    assert _initialize(port, f"{SERVICE}:{port}") == 200
    assert _initialize(port, f"{SERVICE}.goresolve.svc:8443") == 200  # name:* allows any port
    assert _initialize(port, f"{SERVICE}:{port + 1}") == 421
    assert _initialize(port, f"rebound.attacker.example:{port}") == 421
