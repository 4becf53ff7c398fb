"""The GitHub backend as `__main__` builds it: settings -> client -> protection check -> MCP server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from pydantic import SecretStr

from servers.common.errors import FORBIDDEN
from servers.common.policy import AccessPolicy, Identity, Policies, Repo, ReposPolicy, Role, ToolsPolicy
from servers.github_pr.backends import make_backend
from servers.github_pr.github import GitHubBackend
from servers.github_pr.server import build_server
from servers.github_pr.settings import GitHubPrSettings
from tests.fakes.github_fake import FakeGitHub

from .conftest import FIX_PATCH
from .test_github import FILES

OPEN = {"base": "main", "ticket": "SVC-7", "title": "Fix Add", "body": "Add subtracted.", "patch": FIX_PATCH}


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    fake = FakeGitHub().serve()
    fake.add_repo("acme/protected", FILES, required_reviews=1)
    fake.add_repo("acme/open", FILES, required_reviews=None)
    fake.add_repo("acme/accepted", FILES, required_reviews=None)
    yield fake
    fake.close()
    assert fake.violations == []
    assert fake.unexpected == []


def _setup(fake: FakeGitHub, tmp_path: Path) -> tuple[GitHubPrSettings, Policies]:
    names = ("protected", "open", "accepted", "unnamed")
    repos = {n: Repo(github=f"acme/{n}", accept_unprotected_default_branch=n == "accepted") for n in names[:3]}
    repos["unnamed"] = Repo(path="/nowhere")
    policies = Policies(
        access=AccessPolicy(identities={"agent": Identity(roles=("agent",), repos=names)}),
        tools=ToolsPolicy(roles={"agent": Role(scopes=("pr:read", "pr:write"))}),
        repos=ReposPolicy(repos=repos),
    )
    settings = GitHubPrSettings(
        state_dir=tmp_path,
        stdio_identity="agent",
        backend="github",
        token=SecretStr("test-token"),
        base_url=fake.base_url,
        seconds_between_writes=0,
    )
    return settings, policies


async def _call(server: object, tool: str, args: dict[str, object]) -> object:
    error: MCPError | None = None
    async with Client(server) as client:  # type: ignore[arg-type]
        try:
            return await client.call_tool(tool, args)
        except MCPError as exc:
            error = exc
    raise error


def test_start_refuses_repos_without_required_reviews(fake, tmp_path):
    settings, policies = _setup(fake, tmp_path)
    backend, refused = make_backend(settings, policies)
    assert isinstance(backend, GitHubBackend)
    assert refused == {
        "open": "default branch main of acme/open does not require an approving review",
        "unnamed": "no GitHub name in policy (repos.yaml `github`)",
    }


async def test_the_server_opens_prs_only_on_served_repos(fake, tmp_path):
    settings, policies = _setup(fake, tmp_path)
    backend, refused = make_backend(settings, policies)
    server = build_server(settings, policies, backend, refused_repos=refused)
    result = await _call(server, "open_pull_request", {**OPEN, "repo": "protected"})
    assert result.structured_content["url"] == "https://github.example/acme/protected/pull/1"  # type: ignore[attr-defined]
    assert fake.repos["acme/protected"].pulls[1]["draft"] is True
    result = await _call(server, "open_pull_request", {**OPEN, "repo": "accepted"})
    assert not result.is_error  # type: ignore[attr-defined]
    with pytest.raises(MCPError, match="does not require an approving review") as info:
        await _call(server, "open_pull_request", {**OPEN, "repo": "open"})
    assert info.value.error.code == FORBIDDEN
    assert fake.repos["acme/open"].pulls == {}
    assert [r for r in fake.repos["acme/open"].refs if "goresolve" in r] == []


def test_an_unreachable_github_at_start_serves_nothing(fake, tmp_path):
    settings, policies = _setup(fake, tmp_path)
    fake.fail("repos/get-branch-rules", 503, times=20)
    _, refused = make_backend(settings.model_copy(update={"max_retries": 1, "max_retry_wait_s": 0.01}), policies)
    assert refused["protected"] == "branch protection could not be verified at start"
