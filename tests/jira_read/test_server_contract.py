"""Contract tests: jira-read through the public MCP client, in memory, on the bundled sample tickets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from servers.common.audit import verify_chain
from servers.common.errors import FORBIDDEN
from servers.common.policy import Policies
from servers.common.tools import surface_document
from servers.jira_read.local import LocalJiraBackend
from servers.jira_read.server import build_server
from servers.jira_read.settings import JiraReadSettings
from tests.support import assert_matches_snapshot, call

SNAPSHOT = Path(__file__).resolve().parents[1] / "snapshots" / "jira-read.tools.json"


def make_server(tmp_path: Path, policies: Policies, identity: str = "local-dev", **overrides: Any) -> Any:
    settings = JiraReadSettings(state_dir=tmp_path / "state", stdio_identity=identity, **overrides)
    return build_server(settings, policies, LocalJiraBackend(settings.tickets_dir))


async def test_get_issue_returns_clean_fenced_fields(tmp_path: Path, policies: Policies) -> None:
    result = await call(make_server(tmp_path, policies), "get_issue", {"key": "SVC-1"})
    assert not result.is_error
    issue = result.structured_content
    assert issue["key"] == "SVC-1"
    assert issue["summary"]["trust"] == "untrusted"
    assert issue["description"]["trust"] == "untrusted"
    assert issue["status"] and issue["type"] and issue["created"] and issue["updated"]
    assert isinstance(issue["labels"], list) and isinstance(issue["components"], list)
    assert "internal/ratelimit/limiter.go" in issue["description"]["text"]
    comments = (await call(make_server(tmp_path, policies), "get_comments", {"key": "SVC-1"})).structured_content
    assert issue["comment_count"] == comments["total"] > 0


async def test_lower_case_key_is_normalised(tmp_path: Path, policies: Policies) -> None:
    result = await call(make_server(tmp_path, policies), "get_issue", {"key": " svc-2 "})
    assert not result.is_error and result.structured_content["key"] == "SVC-2"


async def test_missing_issue_is_a_tool_error(tmp_path: Path, policies: Policies) -> None:
    result = await call(make_server(tmp_path, policies), "get_issue", {"key": "SVC-999"})
    assert result.is_error
    assert "SVC-999" in result.content[0].text
    assert "Traceback" not in result.content[0].text


@pytest.mark.parametrize("key", ["SVC", "svc-0", "../SVC-1", "SVC-1; DROP", "SVC-1\nOPS-1", "-1", "S" * 70 + "-1"])
async def test_malformed_keys_are_tool_errors(tmp_path: Path, policies: Policies, key: str) -> None:
    result = await call(make_server(tmp_path, policies), "get_issue", {"key": key})
    assert result.is_error
    assert "Traceback" not in result.content[0].text


async def test_other_project_is_denied_with_a_protocol_error(tmp_path: Path, policies: Policies) -> None:
    server = make_server(tmp_path, policies)
    with pytest.raises(MCPError) as err:
        await call(server, "get_issue", {"key": "OPS-1"})
    assert err.value.error.code == FORBIDDEN
    with pytest.raises(MCPError):
        await call(server, "get_comments", {"key": "OPS-1"})


async def test_denial_does_not_depend_on_existence(tmp_path: Path, policies: Policies) -> None:
    server = make_server(tmp_path, policies)
    messages = []
    for key in ("OPS-1", "OPS-424242"):
        with pytest.raises(MCPError) as err:
            await call(server, "get_issue", {"key": key})
        messages.append(err.value.error.message)
    assert messages[0] == messages[1]


async def test_get_comments_limit_and_order(tmp_path: Path, policies: Policies) -> None:
    server = make_server(tmp_path, policies)
    full = (await call(server, "get_comments", {"key": "SVC-1", "limit": 100})).structured_content
    assert full["total"] >= 2 and len(full["comments"]) == full["total"]
    one = (await call(server, "get_comments", {"key": "SVC-1", "limit": 1})).structured_content
    assert len(one["comments"]) == 1
    assert one["comments"][0]["body"]["trust"] == "untrusted"


async def test_get_comments_rejects_out_of_range_limit(tmp_path: Path, policies: Policies) -> None:
    result = await call(make_server(tmp_path, policies), "get_comments", {"key": "SVC-1", "limit": 0})
    assert result.is_error


async def test_search_is_restricted_to_allowed_projects(tmp_path: Path, policies: Policies) -> None:
    server = make_server(tmp_path, policies)
    page = (await call(server, "search_issues", {"jql": "project = OPS OR status = Open"})).structured_content
    assert page["jql"].startswith('project in ("SVC") AND (')
    assert page["issues"], "open SVC issues exist in the samples"
    assert all(issue["key"].startswith("SVC-") for issue in page["issues"])


async def test_search_pages_with_a_cursor(tmp_path: Path, policies: Policies) -> None:
    server = make_server(tmp_path, policies)
    seen: list[str] = []
    cursor = None
    for _ in range(20):
        args: dict[str, Any] = {"jql": "ORDER BY created ASC", "limit": 2}
        if cursor:
            args["cursor"] = cursor
        page = (await call(server, "search_issues", args)).structured_content
        seen.extend(issue["key"] for issue in page["issues"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) >= 5
    assert all(key.startswith("SVC-") for key in seen)


HOSTILE = [
    "status = Open) OR (project = OPS",
    "status = Open ORDER BY created) OR project = OPS ORDER BY key",
    ") OR project = OPS OR (",
    "status = Open ORDER BY created; DELETE",
    'summary ~ "unterminated',
    "status = Open ORDER BY created ORDER BY key",
    "(status = Open ORDER BY created)",
    "status = Open\x00 OR project = OPS",
    "x" * 5000,
]


@pytest.mark.parametrize("jql", HOSTILE)
async def test_hostile_jql_is_refused_before_reaching_jira(tmp_path: Path, policies: Policies, jql: str) -> None:
    result = await call(make_server(tmp_path, policies), "search_issues", {"jql": jql})
    assert result.is_error
    assert "OPS-" not in json.dumps(result.model_dump(mode="json"))


async def test_caller_without_projects_is_denied_search(tmp_path: Path, policies: Policies) -> None:
    with pytest.raises(MCPError) as err:
        await call(make_server(tmp_path, policies, identity="no-jira"), "search_issues", {"jql": ""})
    assert err.value.error.code == FORBIDDEN


async def test_unknown_identity_sees_no_tools_and_is_denied(tmp_path: Path, policies: Policies) -> None:
    server = make_server(tmp_path, policies, identity="stranger")
    async with Client(server) as client:
        assert (await client.list_tools()).tools == []
        with pytest.raises(MCPError) as err:
            await client.call_tool("get_issue", {"key": "SVC-1"})
    assert err.value.error.code == FORBIDDEN


async def test_role_without_scope_is_denied(tmp_path: Path, policies: Policies) -> None:
    with pytest.raises(MCPError) as err:
        await call(make_server(tmp_path, policies, identity="coder"), "get_issue", {"key": "SVC-1"})
    assert err.value.error.code == FORBIDDEN


async def test_every_call_is_audited_in_a_valid_chain(tmp_path: Path, policies: Policies) -> None:
    server = make_server(tmp_path, policies)
    async with Client(server) as client:
        await client.call_tool("get_issue", {"key": "SVC-1"})
        await client.call_tool("get_issue", {"key": "SVC-999"})
        with pytest.raises(MCPError):
            await client.call_tool("get_issue", {"key": "OPS-1"})
    log = tmp_path / "state" / "audit" / "jira-read.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["outcome"] for r in records] == ["ok", "tool_error", "protocol_error:-32003"]
    assert all(r["caller"] == "local-dev" and r["tool"] == "get_issue" and r["trace_id"] for r in records)
    assert "SVC-1" not in log.read_text(), "arguments are digested, not stored"
    assert verify_chain(log) == (True, None)


async def test_description_is_truncated_with_a_marker(tmp_path: Path, policies: Policies) -> None:
    server = make_server(tmp_path, policies, max_description_chars=200)
    issue = (await call(server, "get_issue", {"key": "SVC-1"})).structured_content
    assert issue["description"]["truncated"] is True
    assert "[… truncated" in issue["description"]["text"]


async def test_invisible_characters_never_reach_the_client(tmp_path: Path, policies: Policies) -> None:
    server = make_server(tmp_path, policies)
    page = (await call(server, "search_issues", {"jql": "", "limit": 100})).structured_content
    bad = {
        chr(c)
        for c in (
            0x200B,
            0x200C,
            0x200D,
            0x202A,
            0x202B,
            0x202C,
            0x202D,
            0x202E,
            0x2066,
            0x2067,
            0x2068,
            0x2069,
            0xFEFF,
        )
    }
    for summary in page["issues"]:
        full = (await call(server, "get_issue", {"key": summary["key"]})).structured_content
        comments = (await call(server, "get_comments", {"key": summary["key"]})).structured_content
        text = json.dumps([full, comments], ensure_ascii=False)
        assert not bad & set(text), summary["key"]


async def test_tool_surface_matches_snapshot(tmp_path: Path, policies: Policies) -> None:
    server = make_server(tmp_path, policies)
    async with Client(server) as client:
        tools = (await client.list_tools()).tools
        surface = json.loads((await client.read_resource("goresolve://surface")).contents[0].text)
    current = surface_document(tools)
    assert [t.name for t in tools] == ["get_comments", "get_issue", "search_issues"]
    assert surface["tools"] == current
    assert_matches_snapshot(SNAPSHOT, surface)


async def test_a_credential_pasted_in_a_ticket_or_comment_never_reaches_the_client(
    tmp_path: Path, policies: Policies
) -> None:
    token = "ghp_" + "aB3x" * 9
    tickets = tmp_path / "tickets"
    tickets.mkdir()
    (tickets / "SVC-9.yaml").write_text(
        "key: SVC-9\n"
        "fields:\n"
        "  summary: Deploy fails with 401\n"
        "  issuetype: {name: Bug}\n"
        "  status: {name: Open}\n"
        "  created: '2026-01-09T11:00:00.000+0000'\n"
        "  updated: '2026-01-09T11:00:00.000+0000'\n"
        f"  description: 'the CI job uses GITHUB_TOKEN={token} and gets 401 from the API'\n"
        "  comment:\n"
        "    comments:\n"
        f"      - {{id: '1', author: {{displayName: Ana}}, body: 'same with Bearer {token}'}}\n"
    )
    server = make_server(tmp_path, policies, tickets_dir=tickets)
    issue = (await call(server, "get_issue", {"key": "SVC-9"})).structured_content
    comments = (await call(server, "get_comments", {"key": "SVC-9"})).structured_content
    assert issue is not None and comments is not None
    text = json.dumps([issue, comments])
    assert token not in text and "aB3x" not in text
    assert issue["description"]["text"] == (
        "the CI job uses GITHUB_TOKEN=[credential removed: github_token] and gets 401 from the API"
    )
    assert "[credential removed: " in comments["comments"][0]["body"]["text"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"key": 123}, "invalid arguments: key: Input should be a valid string"),
        ({}, "invalid arguments: key: Field required"),
        ({"key": "SVC-1", "limit": 0}, "invalid arguments: limit: Input should be greater than or equal to 1"),
        ({"key": "SVC-1", "limt": 5}, "unknown argument(s) 'limt'; this tool takes: key, limit"),
    ],
)
async def test_bad_arguments_get_one_short_line_naming_the_field(
    tmp_path: Path, policies: Policies, args: dict[str, Any], expected: str
) -> None:
    result = await call(make_server(tmp_path, policies), "get_comments", args)
    assert result.is_error
    text = result.content[0].text
    assert text == f"Error executing tool get_comments: {expected}"


async def test_a_bad_argument_is_not_echoed_nor_a_credential_in_an_argument_name(
    tmp_path: Path, policies: Policies
) -> None:
    """pydantic's own report would carry the value back (a megabyte of it) and a link to its docs."""
    huge = "ghp_" + "A" * 36 + "x" * 1_000_000
    result = await call(make_server(tmp_path, policies), "get_issue", {"key": ["SVC-1", huge]})
    text = result.content[0].text
    assert result.is_error and len(text) < 300 and "AAAA" not in text and "pydantic.dev" not in text
    token = "ghp_" + "B" * 36
    result = await call(make_server(tmp_path, policies), "get_issue", {"key": "SVC-1", token: 1})
    assert result.is_error and token not in result.content[0].text


async def test_refused_arguments_are_audited_as_a_tool_error(tmp_path: Path, policies: Policies) -> None:
    server = make_server(tmp_path, policies)
    async with Client(server) as client:
        await client.call_tool("get_issue", {"key": 1})
    log = tmp_path / "state" / "audit" / "jira-read.jsonl"
    assert [json.loads(line)["outcome"] for line in log.read_text().splitlines()] == ["tool_error"]
