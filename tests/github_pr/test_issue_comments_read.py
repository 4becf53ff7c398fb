"""get_github_issue_comments: the discussion under a ticket filed on GitHub, as the model reads a Jira
ticket's comments. The newest `limit`, oldest first; each body cleaned, cut and marked untrusted; an issue
and never a pull request; `issue:read` and a repository in policy. On the local backend (comments saved
beside the issue's file, plus what this backend posted on it) and on GitHub (PyGithub against the fake,
across its pages)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp.shared.exceptions import MCPError

from servers.common.errors import FORBIDDEN
from servers.github_pr.service import Limits, PullRequestService
from tests.fakes.github_fake import FakeGitHub
from tests.support import call

from .conftest import make_policies, service_on_github
from .test_issues import GITHUB_JSON, _issue_file, _server
from .test_server_contract import OPEN, make_server

# what `gh api repos/acme/svc/issues/12/comments` prints, cut to a few of its fields
COMMENTS_JSON = [
    {
        "id": 501,
        "user": {"login": "octocat", "id": 1},
        "created_at": "2026-11-30T11:00:00Z",
        "body": "Also fails with Add(-1, 1).\u200b",
        "author_association": "OWNER",
    },
    {"id": 502, "user": {"login": "hubot"}, "created_at": "2026-11-30T12:00:00Z", "body": "Seen on v1.4 too."},
]


def _comments(result) -> list[tuple[int, str | None, str]]:
    data = result.structured_content
    return [(c["id"], c["author"], c["body"]["text"]) for c in data["comments"]]


async def test_the_local_backend_reads_comments_saved_beside_the_issue(tmp_path: Path, remote: Path, policies):
    _issue_file(tmp_path, "12.json", json.dumps(GITHUB_JSON))
    _issue_file(tmp_path, "12.comments.json", json.dumps(COMMENTS_JSON))
    server = _server(tmp_path, remote, policies)
    result = await call(server, "get_github_issue_comments", {"repo": "svc", "number": 12})
    assert not result.is_error
    assert result.structured_content["key"] == "svc#12" and result.structured_content["total"] == 2
    assert _comments(result) == [(501, "octocat", "Also fails with Add(-1, 1)."), (502, "hubot", "Seen on v1.4 too.")]
    assert result.structured_content["comments"][0]["body"]["trust"] == "untrusted"

    # a comment the bot posts on the issue (a run's hand-off) is read back after them, as on GitHub
    posted = await call(server, "comment_on_issue", {"repo": "svc", "number": 12, "body": "Handed to a person."})
    assert not posted.is_error
    newest = await call(server, "get_github_issue_comments", {"repo": "svc", "number": 12, "limit": 2})
    assert newest.structured_content["total"] == 3
    issue = await call(server, "get_github_issue", {"repo": "svc", "number": 12})
    assert issue.structured_content["comment_count"] == 3  # the count get_github_issue_comments reads
    assert [(a, b) for _, a, b in _comments(newest)] == [
        ("hubot", "Seen on v1.4 too."),
        ("goresolve[bot]", "Handed to a person."),
    ]


async def test_every_page_saved_by_gh_paginate_slurp_is_read_as_one_list(tmp_path: Path, remote: Path, policies):
    _issue_file(tmp_path, "12.json", json.dumps(GITHUB_JSON))
    pages = [[{**COMMENTS_JSON[1], "id": n, "body": f"comment {n}"} for n in range(p, p + 30)] for p in (1, 31)]
    _issue_file(tmp_path, "12.comments.json", json.dumps(pages))  # gh api --paginate --slurp …/comments
    server = _server(tmp_path, remote, policies)
    result = await call(server, "get_github_issue_comments", {"repo": "svc", "number": 12, "limit": 3})
    assert not result.is_error and result.structured_content["total"] == 60
    assert [text for _, _, text in _comments(result)] == ["comment 58", "comment 59", "comment 60"]


async def test_an_issue_without_comments_has_none(tmp_path: Path, remote: Path, policies):
    _issue_file(tmp_path, "12.json", json.dumps(GITHUB_JSON))
    result = await call(_server(tmp_path, remote, policies), "get_github_issue_comments", {"repo": "svc", "number": 12})
    assert not result.is_error and result.structured_content["comments"] == []
    assert result.structured_content["total"] == 0


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "no issue #12 in svc"),  # no issue: no comments either
        ({"12.json": json.dumps(GITHUB_JSON), "12.comments.json": "{"}, "12.comments.json): not valid JSON"),
        ({"12.json": json.dumps(GITHUB_JSON), "12.comments.yaml": "- body: x\n"}, "0.id: Field required"),
        ({"12.json": json.dumps(GITHUB_JSON), "12.comments.json": "{}"}, "Input should be a valid list"),
    ],
)
async def test_bad_comment_files_are_one_clear_tool_error(tmp_path: Path, remote: Path, policies, files, message):
    for name, text in files.items():
        _issue_file(tmp_path, name, text)
    server = _server(tmp_path, remote, policies)
    result = await call(server, "get_github_issue_comments", {"repo": "svc", "number": 12})
    assert result.is_error
    shown = result.content[0].text  # type: ignore[union-attr]
    assert message in shown and "Traceback" not in shown and str(tmp_path) not in shown


async def test_a_pull_request_another_repo_or_a_caller_without_issue_read_is_refused(
    tmp_path: Path, remote: Path, policies
):
    server = make_server(tmp_path, remote, policies)
    await call(server, "open_pull_request", OPEN)
    result = await call(server, "get_github_issue_comments", {"repo": "svc", "number": 1})
    assert result.is_error and "#1 is a pull request, not an issue" in result.content[0].text  # type: ignore[union-attr]
    _issue_file(tmp_path, "12.json", json.dumps(GITHUB_JSON))
    with pytest.raises(MCPError) as info:
        await call(_server(tmp_path, remote, policies), "get_github_issue_comments", {"repo": "other", "number": 12})
    assert info.value.error.code == FORBIDDEN
    with pytest.raises(MCPError) as info:
        await call(
            _server(tmp_path, remote, policies, "reader"), "get_github_issue_comments", {"repo": "svc", "number": 12}
        )
    assert info.value.error.code == FORBIDDEN


def _read(service: PullRequestService, number: int, limit: int = 20):
    return service.get_issue_comments("agent", make_policies("svc").identity("agent"), "svc", number, limit)


def test_github_reads_the_newest_comments_across_pages(fake: FakeGitHub) -> None:
    number = fake.add_issue("acme/svc", "Add subtracts", body="Add(2, 3) returns -1.")
    for n in range(1, 131):  # two pages of 100; the newest 20 straddle nothing, the newest 40 straddle both
        fake.add_issue_comment("acme/svc", number, f"comment {n}", user=f"user{n % 3}")
    service = service_on_github(fake)

    newest = _read(service, number)
    assert newest.key == f"svc#{number}" and newest.total == 130
    assert [c.body.text for c in newest.comments] == [f"comment {n}" for n in range(111, 131)]
    assert newest.comments[-1].author == "user1" and newest.comments[-1].created is not None
    assert fake.calls[-2:] == ["issues/get", "issues/list-comments"]  # the last page only
    issue = service.get_issue("agent", make_policies("svc").identity("agent"), "svc", number)
    assert issue.comment_count == 130  # the issue's own count

    straddling = _read(service, number, limit=40)
    assert [c.body.text for c in straddling.comments] == [f"comment {n}" for n in range(91, 131)]
    assert fake.calls[-3:] == ["issues/get", "issues/list-comments", "issues/list-comments"]


def test_github_issue_without_comments_makes_no_list_call(fake: FakeGitHub) -> None:
    number = fake.add_issue("acme/svc", "Quiet")
    found = _read(service_on_github(fake), number)
    assert (found.comments, found.total) == ([], 0) and fake.calls[-1] == "issues/get"


def test_github_comments_are_cleaned_cut_and_redacted(fake: FakeGitHub) -> None:
    number = fake.add_issue("acme/svc", "S3 upload fails")
    token = "AKIA" + "ABCDEFGHIJKLMNOP"
    fake.add_issue_comment("acme/svc", number, f"try key {token}\u202e please")
    fake.add_issue_comment("acme/svc", number, "log line\n" * 1000)
    found = _read(service_on_github(fake, Limits(comment_chars=300)), number)
    assert found.comments[0].body.text == "try key [credential removed: aws_access_key] please"
    assert found.comments[1].body.truncated and len(found.comments[1].body.text) < 400
    assert token not in found.model_dump_json()
