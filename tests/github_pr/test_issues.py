"""get_github_issue: a ticket filed on GitHub, read as the agent reads a Jira ticket. A repository in the
caller's policy and the `issue:read` scope; an issue and never a pull request; the author's text cleaned and
marked untrusted. On the local backend (issue files, through the MCP client) and on GitHub (PyGithub against
the fake, whose answers are checked against GitHub's description)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from mcp.shared.exceptions import MCPError

from servers.common.errors import FORBIDDEN, InvalidInput, NotFound
from servers.github_pr.service import Limits, PullRequestService
from tests.fakes.github_fake import FakeGitHub
from tests.support import call

from .conftest import make_policies, service_on_github
from .test_server_contract import OPEN, make_server

BODY = "Add(2, 3) returns -1.\u200b\n\n```\n--- FAIL: TestAdd\n```\n"
# what `gh api repos/acme/svc/issues/12` prints, cut to a few of its fields
GITHUB_JSON = {
    "number": 12,
    "title": "Add subtracts",
    "body": BODY,
    "state": "open",
    "labels": [{"id": 1, "name": "bug", "color": "d73a4a"}],
    "user": {"login": "octocat", "id": 1},
    "html_url": "https://github.com/acme/svc/issues/12",
    "created_at": "2026-11-30T10:00:00Z",
    "updated_at": "2026-12-01T09:00:00Z",
    "comments": 0,
}


def _issue_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / "state" / "github-pr-issues" / "svc" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _server(tmp_path: Path, remote: Path, policies, identity: str = "agent"):
    from servers.github_pr.local import LocalBackend
    from servers.github_pr.server import build_server
    from servers.github_pr.settings import GitHubPrSettings
    from servers.github_pr.store import PullStore

    settings = GitHubPrSettings(state_dir=tmp_path / "state", stdio_identity=identity)
    state = tmp_path / "state"
    backend = LocalBackend({"svc": remote}, PullStore(state / "prs.sqlite"), state, state / "github-pr-issues")
    return build_server(settings, policies, backend)


async def test_the_local_backend_reads_an_issue_saved_from_the_github_api(tmp_path: Path, remote: Path, policies):
    _issue_file(tmp_path, "12.json", json.dumps(GITHUB_JSON))
    result = await call(_server(tmp_path, remote, policies), "get_github_issue", {"repo": "svc", "number": 12})
    assert not result.is_error
    assert result.structured_content == {
        "key": "svc#12",
        "number": 12,
        "summary": {"trust": "untrusted", "text": "Add subtracts", "truncated": False},
        # the zero-width space is gone; the rest is the author's Markdown as written
        "description": {"trust": "untrusted", "text": BODY.replace("\u200b", "").strip(), "truncated": False},
        "status": "open",
        "labels": ["bug"],
        "reporter": "octocat",
        "created": "2026-11-30T10:00:00Z",
        "updated": "2026-12-01T09:00:00Z",
        "url": "https://github.com/acme/svc/issues/12",
        "comment_count": 0,  # no comments file beside it: none to read
    }


async def test_a_yaml_issue_with_plain_labels_and_a_long_body_is_cut(tmp_path: Path, remote: Path, policies):
    body = "\n".join(f"line {n} of the report" for n in range(2000))
    _issue_file(tmp_path, "7.yaml", yaml.safe_dump({"title": "Slow", "body": body, "labels": ["perf"]}))
    result = await call(_server(tmp_path, remote, policies), "get_github_issue", {"repo": "svc", "number": 7})
    issue = result.structured_content
    assert issue is not None and issue["labels"] == ["perf"] and issue["reporter"] is None
    assert issue["description"]["truncated"] and len(issue["description"]["text"]) < 8100
    assert issue["description"]["text"].endswith("characters]") and issue["url"] == "local:svc/issues/7"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("3.json", "{not json", "issue #3 of svc (3.json): not valid JSON"),
        ("3.yaml", "title: [unclosed", "issue #3 of svc (3.yaml): not valid YAML"),
        ("3.json", json.dumps({"body": "no title"}), "issue #3 of svc (3.json): title: Field required"),
        ("3.json", json.dumps({"title": "x", "state": "merged"}), "issue #3 of svc (3.json): state:"),
        ("3.json", json.dumps({"title": "x", "pull_request": {"url": "u"}}), "#3 is a pull request, not an issue"),
    ],
)
async def test_a_bad_issue_file_is_one_clear_tool_error(tmp_path: Path, remote: Path, policies, name, text, message):
    _issue_file(tmp_path, name, text)
    result = await call(_server(tmp_path, remote, policies), "get_github_issue", {"repo": "svc", "number": 3})
    assert result.is_error
    shown = result.content[0].text  # type: ignore[union-attr]
    assert message in shown and "Traceback" not in shown and str(tmp_path) not in shown


async def test_a_missing_issue_says_where_the_local_backend_looks(tmp_path: Path, remote: Path, policies):
    result = await call(_server(tmp_path, remote, policies), "get_github_issue", {"repo": "svc", "number": 99})
    assert result.is_error
    shown = result.content[0].text  # type: ignore[union-attr]
    assert "no issue #99 in svc" in shown and "GORESOLVE_GITHUB_PR_ISSUES_DIR" in shown and str(tmp_path) not in shown


async def test_a_local_pull_request_is_not_an_issue(tmp_path: Path, remote: Path, policies):
    server = make_server(tmp_path, remote, policies)
    await call(server, "open_pull_request", OPEN)
    result = await call(server, "get_github_issue", {"repo": "svc", "number": 1})
    assert result.is_error and "#1 is a pull request, not an issue" in result.content[0].text  # type: ignore[union-attr]


async def test_a_repo_outside_policy_or_a_caller_without_issue_read_is_refused(tmp_path: Path, remote: Path, policies):
    _issue_file(tmp_path, "12.json", json.dumps(GITHUB_JSON))
    with pytest.raises(MCPError) as info:
        await call(_server(tmp_path, remote, policies), "get_github_issue", {"repo": "elsewhere", "number": 12})
    assert info.value.error.code == FORBIDDEN
    with pytest.raises(MCPError) as info:  # the ide role reads pull requests, not issues
        await call(_server(tmp_path, remote, policies, "reader"), "get_github_issue", {"repo": "svc", "number": 12})
    assert info.value.error.code == FORBIDDEN


def _read(service: PullRequestService, number: int):
    return service.get_issue("agent", make_policies("svc").identity("agent"), "svc", number)


def test_github_reads_the_issue_through_pygithub(fake: FakeGitHub) -> None:
    number = fake.add_issue("acme/svc", "Add subtracts\u202e", body=BODY, labels=("bug", "calc"), user="octocat")
    issue = _read(service_on_github(fake), number)
    assert issue.key == f"svc#{number}" and issue.number == number
    assert issue.summary.text == "Add subtracts" and issue.summary.trust == "untrusted"
    assert issue.description.text == BODY.replace("\u200b", "").strip()
    assert (issue.status, issue.labels, issue.reporter) == ("open", ["bug", "calc"], "octocat")
    assert issue.url == f"https://github.example/acme/svc/issues/{number}"
    assert fake.calls[-1] == "issues/get"


def test_github_refuses_a_pull_request_and_a_missing_issue(fake: FakeGitHub) -> None:
    service = service_on_github(fake)
    agent = make_policies("svc").identity("agent")
    pr = service.open_pull_request(
        "agent", agent, repo="svc", base="main", ticket="SVC-7", title="Fix", body="b", patch=OPEN["patch"]
    )
    with pytest.raises(InvalidInput, match=rf"#{pr.number} is a pull request, not an issue"):
        _read(service, pr.number)
    with pytest.raises(InvalidInput, match=rf"#{pr.number} is a pull request, not an issue"):  # nor its comments
        service.get_issue_comments("agent", agent, "svc", pr.number, 20)
    with pytest.raises(NotFound):
        _read(service, 99)


def test_github_cuts_a_long_body_at_the_configured_limit(fake: FakeGitHub) -> None:
    number = fake.add_issue("acme/svc", "Long", body="word " * 5000)
    issue = _read(service_on_github(fake, Limits(issue_chars=500)), number)
    assert issue.description.truncated and len(issue.description.text) < 600


def test_a_credential_pasted_in_an_issue_never_reaches_the_caller(fake: FakeGitHub) -> None:
    token = "AKIA" + "ABCDEFGHIJKLMNOP"
    number = fake.add_issue("acme/svc", "S3 upload fails", body=f"with key {token} the upload gets 403")
    issue = _read(service_on_github(fake), number)
    assert issue.description.text == "with key [credential removed: aws_access_key] the upload gets 403"
    assert token not in issue.model_dump_json()
