"""comment_on_issue: the hand-off on a ticket's issue. A repository in the caller's policy, an issue
and never a pull request, a body without credentials; on the local backend (through the MCP client)
and on GitHub (PyGithub against the fake, whose answers are checked against GitHub's description)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp.shared.exceptions import MCPError

from servers.common.errors import FORBIDDEN, InvalidInput, NotFound, UpstreamFailure
from servers.github_pr.local import LocalBackend
from servers.github_pr.service import PullRequestService
from servers.github_pr.store import PullStore
from tests.fakes.github_fake import FakeGitHub
from tests.support import call

from .conftest import BOT, FIX_PATCH, make_policies, service_on_github
from .test_server_contract import OPEN, make_server

HANDOFF = "## Hand-off\n\n| attempt | result |\n|---|---|\n| 1 | TestAdd fails |\n"


def _issue_file(tmp_path: Path, number: int) -> None:
    """Issue `number` of svc, saved where the local backend reads it (as `gh api` prints it)."""
    path = tmp_path / "state" / "issues" / "svc" / f"{number}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"number": number, "title": "Add subtracts", "body": "Add(2, 3) is -1."}))


async def test_the_local_backend_records_the_comment_on_the_issue(tmp_path: Path, remote: Path, policies) -> None:
    _issue_file(tmp_path, 12)
    server = make_server(tmp_path, remote, policies)
    result = await call(server, "comment_on_issue", {"repo": "svc", "number": 12, "body": HANDOFF})
    assert not result.is_error
    assert result.structured_content == {"id": 1, "url": "local:svc/issues/12#comment-1"}
    assert PullStore(tmp_path / "state" / "prs.sqlite").issue_comments("svc", 12) == [HANDOFF]


async def test_the_local_backend_refuses_an_issue_it_does_not_have_as_the_read_does(
    tmp_path: Path, remote: Path, policies
) -> None:
    _issue_file(tmp_path, 12)
    server = make_server(tmp_path, remote, policies)
    read = await call(server, "get_github_issue", {"repo": "svc", "number": 999})
    posted = await call(server, "comment_on_issue", {"repo": "svc", "number": 999, "body": "hi"})
    assert read.is_error and posted.is_error
    # the same error as the read (FastMCP prefixes each with the tool's name)
    message = read.content[0].text.partition(": ")[2]  # type: ignore[union-attr]
    assert posted.content[0].text == f"Error executing tool comment_on_issue: {message}"  # type: ignore[union-attr]
    assert "no issue #999 in svc" in posted.content[0].text  # type: ignore[union-attr]
    assert "Traceback" not in posted.content[0].text  # type: ignore[union-attr]
    assert PullStore(tmp_path / "state" / "prs.sqlite").issue_comments("svc", 999) == []
    service = PullRequestService(
        LocalBackend({"svc": remote}, PullStore(tmp_path / "state" / "prs.sqlite"), tmp_path / "state"),
        policies,
        prefix="goresolve",
        author=BOT,
    )
    with pytest.raises(NotFound, match="no issue #999 in svc"):
        service.comment_on_issue("agent", policies.identity("agent"), "svc", 999, "hi")
    assert not (await call(server, "comment_on_issue", {"repo": "svc", "number": 12, "body": "hi"})).is_error


async def test_a_pull_request_number_is_not_an_issue(tmp_path: Path, remote: Path, policies) -> None:
    server = make_server(tmp_path, remote, policies)
    await call(server, "open_pull_request", OPEN)
    result = await call(server, "comment_on_issue", {"repo": "svc", "number": 1, "body": HANDOFF})
    assert result.is_error
    assert result.content[0].text.endswith("#1 is a pull request, not an issue")  # type: ignore[union-attr]


async def test_a_repo_outside_policy_or_a_read_only_caller_is_refused(tmp_path: Path, remote: Path, policies) -> None:
    args = {"repo": "elsewhere", "number": 12, "body": HANDOFF}
    with pytest.raises(MCPError) as info:
        await call(make_server(tmp_path, remote, policies), "comment_on_issue", args)
    assert info.value.error.code == FORBIDDEN
    with pytest.raises(MCPError) as info:
        await call(
            make_server(tmp_path, remote, policies, identity="reader"), "comment_on_issue", {**args, "repo": "svc"}
        )
    assert info.value.error.code == FORBIDDEN


async def test_a_credential_in_the_body_is_refused_without_echoing_it(tmp_path: Path, remote: Path, policies) -> None:
    token = "ghp_" + "Q" * 36
    server = make_server(tmp_path, remote, policies)
    result = await call(server, "comment_on_issue", {"repo": "svc", "number": 12, "body": f"see {token}"})
    assert result.is_error
    assert token not in result.content[0].text  # type: ignore[union-attr]
    assert PullStore(tmp_path / "state" / "prs.sqlite").issue_comments("svc", 12) == []


@pytest.fixture
def github_service(fake: FakeGitHub) -> PullRequestService:
    return service_on_github(fake)


def _comment(service: PullRequestService, number: int, body: str = HANDOFF):
    policies = make_policies("svc")
    return service.comment_on_issue("agent", policies.identity("agent"), "svc", number, body)


def test_github_comments_on_the_issue(fake: FakeGitHub, github_service: PullRequestService) -> None:
    number = fake.add_issue("acme/svc", "Add subtracts")
    ref = _comment(github_service, number)
    assert ref.url == f"https://github.example/acme/svc/issues/{number}#issuecomment-{ref.id}"
    (posted,) = fake.repos["acme/svc"].comments
    assert (posted["id"], posted["number"], posted["body"]) == (ref.id, number, HANDOFF)
    assert posted["user"] == "goresolve-bot"
    assert fake.calls[-2:] == ["issues/get", "issues/create-comment"]


def test_github_refuses_a_pull_request_and_posts_nothing(fake: FakeGitHub, github_service: PullRequestService) -> None:
    policies = make_policies("svc")
    pr = github_service.open_pull_request(
        "agent",
        policies.identity("agent"),
        repo="svc",
        base="main",
        ticket="SVC-7",
        title="Fix",
        body="b",
        patch=FIX_PATCH,
    )
    issue = fake.add_issue("acme/svc", "Add subtracts")
    assert issue == pr.number + 1  # one sequence of numbers, as on GitHub
    with pytest.raises(InvalidInput, match=rf"#{pr.number} is a pull request, not an issue"):
        _comment(github_service, pr.number)
    assert fake.repos["acme/svc"].comments == []


def test_github_missing_and_locked_issues(fake: FakeGitHub, github_service: PullRequestService) -> None:
    with pytest.raises(NotFound):
        _comment(github_service, 99)
    locked = fake.add_issue("acme/svc", "Locked", locked=True)
    with pytest.raises(UpstreamFailure, match="refused comment on issue"):
        _comment(github_service, locked)
    assert fake.repos["acme/svc"].comments == []


def test_github_comment_is_not_retried_on_5xx(fake: FakeGitHub, github_service: PullRequestService) -> None:
    number = fake.add_issue("acme/svc", "Add subtracts")
    fake.fail("issues/create-comment", 502)
    with pytest.raises(UpstreamFailure, match="502"):
        _comment(github_service, number)
    assert fake.calls.count("issues/create-comment") == 1
