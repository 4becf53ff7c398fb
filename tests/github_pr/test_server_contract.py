"""Contract tests: github-pr through the public MCP client, in memory, on the local backend (real git)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from servers.common.errors import FORBIDDEN
from servers.common.policy import Policies
from servers.github_pr.local import LocalBackend
from servers.github_pr.server import build_server
from servers.github_pr.settings import GitHubPrSettings
from servers.github_pr.store import PullStore
from tests.support import assert_matches_snapshot, call

from .conftest import FIX_PATCH, TAMPER_PATCH, git

SNAPSHOT = Path(__file__).resolve().parents[1] / "snapshots" / "github-pr.tools.json"
OPEN = {
    "repo": "svc",
    "base": "main",
    "ticket": "SVC-7",
    "title": "Fix Add",
    "body": "Add subtracted.",
    "patch": FIX_PATCH,
}


def make_server(tmp_path: Path, remote: Path, policies: Policies, identity: str = "agent", **kw: Any) -> Any:
    settings = GitHubPrSettings(state_dir=tmp_path / "state", stdio_identity=identity)
    backend = LocalBackend({"svc": remote}, PullStore(tmp_path / "state" / "prs.sqlite"), tmp_path / "state")
    return build_server(settings, policies, backend, **kw)


async def test_open_pull_request_returns_the_ref_and_is_idempotent(tmp_path, remote, policies):
    server = make_server(tmp_path, remote, policies)
    first = await call(server, "open_pull_request", OPEN)
    assert not first.is_error
    ref = first.structured_content
    head = git("rev-parse", "goresolve/SVC-7-fix-add", cwd=remote)
    assert ref == {
        "number": 1,
        "url": "local:svc/pull/1",
        "branch": "goresolve/SVC-7-fix-add",
        "head_sha": head,
        "base": "main",
        "created": True,
    }
    again = (await call(server, "open_pull_request", {**OPEN, "title": "Fix Add again"})).structured_content
    assert (again["number"], again["branch"], again["created"]) == (1, "goresolve/SVC-7-fix-add", False)


async def test_a_tampering_patch_is_a_tool_error_naming_the_rule(tmp_path, remote, policies):
    result = await call(make_server(tmp_path, remote, policies), "open_pull_request", {**OPEN, "patch": TAMPER_PATCH})
    assert result.is_error
    assert "removed_assertion" in result.content[0].text
    assert git("for-each-ref", "--format=%(refname)", cwd=remote) == "refs/heads/main"


async def test_a_credential_in_the_body_is_refused_without_echoing_it(tmp_path, remote, policies):
    token = "ghp_" + "Z" * 36
    result = await call(make_server(tmp_path, remote, policies), "open_pull_request", {**OPEN, "body": token})
    assert result.is_error
    assert "github_token in body line 1" in result.content[0].text
    assert token not in result.content[0].text


async def test_get_comment_review_assign_on_the_bots_pr(tmp_path, remote, policies):
    server = make_server(tmp_path, remote, policies)
    await call(server, "open_pull_request", OPEN)
    info = (await call(server, "get_pull_request", {"repo": "svc", "number": 1})).structured_content
    assert (info["state"], info["draft"], info["branch"]) == ("open", True, "goresolve/SVC-7-fix-add")
    note = (await call(server, "comment", {"repo": "svc", "number": 1, "body": "Tests pass."})).structured_content
    assert note == {"id": 1, "url": "local:svc/pull/1#comment-1"}
    reviewed = await call(server, "request_review", {"repo": "svc", "number": 1, "reviewers": ["alice"]})
    assert reviewed.structured_content["requested_reviewers"] == ["alice"]
    assigned = await call(server, "assign", {"repo": "svc", "number": 1, "assignees": ["bob"]})
    assert assigned.structured_content["assignees"] == ["bob"]


async def test_missing_pr_is_a_tool_error(tmp_path, remote, policies):
    result = await call(make_server(tmp_path, remote, policies), "get_pull_request", {"repo": "svc", "number": 5})
    assert result.is_error
    assert result.content[0].text.endswith("no pull request #5 in svc")


async def test_bad_arguments_are_rejected_by_the_schema(tmp_path, remote, policies):
    server = make_server(tmp_path, remote, policies)
    result = await call(server, "assign", {"repo": "svc", "number": 1, "assignees": ["not a login"]})
    assert result.is_error
    result = await call(server, "open_pull_request", {**OPEN, "ticket": "rm -rf /"})
    assert result.is_error


async def test_a_repo_outside_the_callers_policy_is_a_protocol_error(tmp_path, remote, policies):
    with pytest.raises(MCPError) as info:
        await call(make_server(tmp_path, remote, policies), "open_pull_request", {**OPEN, "repo": "elsewhere"})
    assert info.value.error.code == FORBIDDEN


async def test_a_refused_repo_is_never_written(tmp_path, remote, policies):
    server = make_server(tmp_path, remote, policies, refused_repos={"svc": "default branch main lacks reviews"})
    with pytest.raises(MCPError, match="lacks reviews") as info:
        await call(server, "open_pull_request", OPEN)
    assert info.value.error.code == FORBIDDEN
    assert git("for-each-ref", "--format=%(refname)", cwd=remote) == "refs/heads/main"


async def test_a_read_only_caller_sees_and_may_call_only_the_reader(tmp_path, remote, policies):
    server = make_server(tmp_path, remote, policies, identity="reader")
    async with Client(server) as client:
        names = [t.name for t in (await client.list_tools()).tools]
    assert names == ["get_pull_request"]
    with pytest.raises(MCPError) as info:
        await call(server, "open_pull_request", OPEN)
    assert info.value.error.code == FORBIDDEN


async def test_tool_surface_matches_snapshot(tmp_path, remote, policies):
    async with Client(make_server(tmp_path, remote, policies)) as client:
        tools = (await client.list_tools()).tools
        surface = json.loads((await client.read_resource("goresolve://surface")).contents[0].text)
    assert [t.name for t in tools] == [
        "assign",
        "comment",
        "comment_on_issue",
        "get_github_issue",
        "get_github_issue_comments",
        "get_pull_request",
        "open_pull_request",
        "request_review",
    ]
    for tool in tools:
        assert tool.annotations is not None
        assert tool.annotations.destructive_hint is False
    assert_matches_snapshot(SNAPSHOT, surface)
