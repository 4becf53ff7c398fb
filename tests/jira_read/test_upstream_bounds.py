"""jira-read against a hostile Jira: every body is read up to a cap (also once decompressed), a larger
declared body is not read at all, and a call that is over (its deadline passed) stops its worker reading.
The real `jira` client and the real server over MCP, a small misbehaving HTTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import io
import json
import tracemalloc
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from pydantic import SecretStr

from servers.common.errors import ConfigError, UpstreamFailure
from servers.common.logging import configure_logging
from servers.common.policy import Policies
from servers.common.settings import load_settings
from servers.jira_read.cloud import MAX_COMMENT_PAGES, CloudJiraBackend
from servers.jira_read.server import build_server
from servers.jira_read.settings import JiraReadSettings
from tests.jira_read.hostile_http import declared, echo_credential, endless, growing_comments, gzip_bomb, hostile

MIB = 1 << 20


def backend(url: str, **overrides: Any) -> CloudJiraBackend:
    settings: dict[str, Any] = {
        "url": url,
        "auth": "basic",
        "user": "bot@example.com",
        "token": SecretStr("jira-secret-token"),
        "timeout_s": 10.0,
        "max_retries": 0,
        "max_retry_wait_s": 0.0,
        "deadline_s": 60.0,
        "max_body_bytes": MIB,
    }
    return CloudJiraBackend(**{**settings, **overrides})


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")


async def test_a_long_body_is_cut_at_the_cap() -> None:
    # Before: the whole 64 MiB was read and the issue returned (an endless body grew memory without end).
    with hostile(endless(limit=64 * MIB)) as up:
        with pytest.raises(UpstreamFailure, match=f"larger than {MIB} bytes") as caught:
            await backend(up.url).get_issue("SVC-1")
        assert up.hung_up.wait(30)  # the connection was closed, not drained
    assert up.sent < 16 * MIB  # the cap, plus what the kernel buffers held
    assert "jira-secret-token" not in str(caught.value)


async def test_a_gzip_bomb_is_cut_at_the_cap_once_decoded() -> None:
    # Before: 64 MiB decoded and parsed from under 100 KiB on the wire; a 1 GiB bomb passed 1.1 GB.
    with hostile(gzip_bomb(64)) as up:
        tracemalloc.start()
        try:
            with pytest.raises(UpstreamFailure, match=f"larger than {MIB} bytes"):
                await backend(up.url).get_issue("SVC-1")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 24 * MIB


async def test_a_declared_length_over_the_cap_is_not_read() -> None:
    with hostile(declared(512 * MIB)) as up:
        with pytest.raises(UpstreamFailure, match=f"larger than {MIB} bytes"):
            await backend(up.url).get_issue("SVC-1")
        assert up.hung_up.wait(30)
    assert up.sent < 8 * MIB


async def test_a_search_body_under_the_cap_is_read_whole() -> None:
    with hostile(endless(limit=MIB // 2)) as up:
        issue = await backend(up.url).get_issue("SVC-1")
    assert len(issue.fields["summary"]) >= MIB // 2


async def test_an_abandoned_call_stops_reading() -> None:
    # A body well under the cap that arrives slower than the deadline: the call fails at its deadline and
    # the worker thread it leaves behind closes the connection at its next chunk. Before: the worker kept
    # downloading after the caller was told "did not answer" (measured: 182 -> 538 MB).
    with hostile(endless(chunk=16 * 1024, limit=8 * MIB, pause_s=0.05)) as up:
        slow = backend(up.url, deadline_s=0.5, max_body_bytes=64 * MIB)
        with pytest.raises(UpstreamFailure, match="did not answer within"):
            await slow.get_issue("SVC-1")
        hung_up = await anyio.to_thread.run_sync(up.hung_up.wait, 30)
    assert hung_up
    assert up.sent < 8 * MIB


async def test_the_server_reports_the_cap_as_a_tool_error(tmp_path: Path, policies: Policies) -> None:
    settings = JiraReadSettings(state_dir=tmp_path, max_response_bytes=MIB)
    with hostile(endless(limit=64 * MIB)) as up:
        server = build_server(settings, policies, backend(up.url, max_body_bytes=settings.max_response_bytes))
        async with Client(server) as client:
            result = await client.call_tool("get_issue", {"key": "SVC-1"})
    assert result.is_error
    text = result.content[0].text  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
    assert f"larger than {MIB} bytes" in text
    assert "Traceback" not in text
    assert up.sent < 16 * MIB


async def test_a_refused_permissions_probe_leaves_the_server_serving(tmp_path: Path, policies: Policies) -> None:
    # Before: Jira's 400 on /mypermissions (InvalidInput) escaped the lifespan and jira-read stopped.
    stream = io.StringIO()
    with hostile(echo_credential(400)) as up:
        server = build_server(JiraReadSettings(state_dir=tmp_path), policies, backend(up.url))
        configure_logging(service="jira-read", stream=stream)
        async with Client(server) as client:
            tools = await client.list_tools()
    assert {t.name for t in tools.tools} >= {"get_issue"}
    assert up.requests >= 1
    logged = stream.getvalue()
    warning = next(json.loads(line) for line in logged.splitlines() if "permissions" in line)
    assert warning["level"] == "warning"
    assert "jira-secret-token" not in logged
    assert base64.b64encode(b"bot@example.com:jira-secret-token").decode() not in logged


@pytest.mark.parametrize("url", ["http://jira.example", "http://10.1.2.3:8080", "ftp://jira.example"])
def test_a_plaintext_jira_url_is_refused_naming_the_setting(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    # Before: the API token went to http://jira.example in plaintext, silently.
    monkeypatch.setenv("GORESOLVE_JIRA_READ_URL", url)
    with pytest.raises(ConfigError) as err:
        load_settings(JiraReadSettings)
    assert "GORESOLVE_JIRA_READ_URL" in err.value.message
    assert "https" in err.value.message


@pytest.mark.parametrize("url", ["https://acme.atlassian.net", "http://127.0.0.1:8080", "http://localhost/jira"])
def test_an_https_or_loopback_jira_url_is_accepted(url: str) -> None:
    assert JiraReadSettings(url=url).url == url


async def test_comment_pages_whose_total_keeps_growing_end_after_a_bounded_number_of_pages() -> None:
    """Before, a Jira that raised `total` with every page was asked again and again until the call's deadline:
    15,424 requests in 60 s."""
    with hostile(growing_comments()) as up:
        comments, _total = await backend(up.url).get_comments("SVC-3", 5)
    assert up.requests <= 1 + MAX_COMMENT_PAGES and len(comments) == 5


@pytest.mark.parametrize("key", ["SVC-5\n", "SVC-5\r\n", "svc-5", "SVC-05", "SVC-5 "])
def test_an_issue_key_from_jira_is_a_whole_key_or_none(key: str) -> None:
    """Before, `$` let keys with a trailing newline through (in search results and links)."""
    from jqlscope import is_issue_key

    assert is_issue_key("SVC-5") and not is_issue_key(key)
