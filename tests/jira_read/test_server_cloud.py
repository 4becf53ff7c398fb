"""jira-read over the real `jira` package and a fake Jira: the whole path, and the start-up permission report."""

from __future__ import annotations

import io
import json
from pathlib import Path

from mcp import Client

from servers.common.logging import configure_logging
from servers.common.policy import Policies
from servers.jira_read.server import build_server
from servers.jira_read.settings import JiraReadSettings
from tests.fakes.jira_fake import FakeJira, cloud_backend_for


async def test_tools_through_the_jira_package(tmp_path: Path, policies: Policies, any_jira_fake: FakeJira) -> None:
    settings = JiraReadSettings(state_dir=tmp_path)
    server = build_server(settings, policies, cloud_backend_for(any_jira_fake))
    async with Client(server) as client:
        issue = (await client.call_tool("get_issue", {"key": "SVC-1"})).structured_content
        comments = (await client.call_tool("get_comments", {"key": "SVC-1", "limit": 3})).structured_content
        page = (await client.call_tool("search_issues", {"jql": "ORDER BY created ASC", "limit": 2})).structured_content
        missing = await client.call_tool("get_issue", {"key": "SVC-999"})
    assert issue["key"] == "SVC-1"
    assert issue["description"]["text"]
    assert issue["description"]["trust"] == "untrusted"
    assert 1 <= len(comments["comments"]) <= 3
    assert issue["comment_count"] == comments["total"]  # from the issue's own `comment` field
    assert page["jql"].startswith('project in ("SVC")')
    assert page["issues"]
    assert all(i["key"].startswith("SVC-") for i in page["issues"])
    assert missing.is_error


async def test_rate_limit_past_the_budget_is_a_clear_tool_error(
    tmp_path: Path, policies: Policies, jira_fake: FakeJira
) -> None:
    jira_fake.fail(429, times=100, retry_after="1")
    server = build_server(JiraReadSettings(state_dir=tmp_path), policies, cloud_backend_for(jira_fake))
    async with Client(server) as client:
        result = await client.call_tool("get_issue", {"key": "SVC-1"})
    assert result.is_error
    assert "rate" in result.content[0].text.lower()
    assert jira_fake.token not in result.content[0].text


async def test_start_up_reports_a_credential_that_could_write(
    tmp_path: Path, policies: Policies, jira_fake: FakeJira
) -> None:
    jira_fake.granted = frozenset({"BROWSE_PROJECTS", "ADD_COMMENTS", "EDIT_ISSUES"})
    server = build_server(JiraReadSettings(state_dir=tmp_path), policies, cloud_backend_for(jira_fake))
    stream = io.StringIO()
    configure_logging(service="jira-read", stream=stream)
    async with Client(server) as client:
        await client.list_tools()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    report = next(line for line in lines if line["event"] == "jira credential permissions")
    assert report["permissions"]["BROWSE_PROJECTS"] is True
    warning = next(line for line in lines if line["event"].startswith("the Jira credential can write"))
    assert warning["write_permissions"] == ["ADD_COMMENTS", "EDIT_ISSUES"]
    assert jira_fake.token not in stream.getvalue()
