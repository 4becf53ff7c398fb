"""The Jira backend for Cloud and Data Center: the real `jira` package talking to the fake Jira."""

# pyright: reportPrivateUsage=false
# (the guard tests reach for the jira client and its session on purpose)

from __future__ import annotations

import base64
import json
import time

import anyio
import pytest
import requests
from pydantic import SecretStr
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from servers.common.errors import ConfigError, InvalidInput, NotFound, RateLimited, UpstreamFailure
from servers.jira_read.cloud_http import WriteRefused, retry_after_seconds
from tests.fakes import jira_contract
from tests.fakes.jira_fake import FakeJira, RecordingSleep, cloud_backend_for


def paths(fake: FakeJira) -> list[str]:
    return [f"{s.method} {s.path}" for s in fake.seen]


async def test_get_issue_on_cloud_is_v3_with_adf_and_basic_auth(jira_fake: FakeJira) -> None:
    issue = await cloud_backend_for(jira_fake).get_issue("SVC-1")
    assert issue.key == "SVC-1"
    assert issue.fields["description"]["type"] == "doc"
    assert issue.fields["status"] == {"name": "Open"}
    assert issue.fields["issuelinks"][0]["outwardIssue"]["key"] == "SVC-4"
    assert issue.self_url is not None
    assert issue.self_url.startswith(jira_fake.url)
    assert paths(jira_fake) == ["GET /rest/api/3/issue/SVC-1"]
    assert jira_fake.seen[0].authorization is not None
    assert jira_fake.seen[0].authorization.startswith("Basic ")
    assert "fields=summary%2Cdescription" in jira_fake.seen[0].query


async def test_get_issue_on_data_center_is_v2_with_wiki_text_and_a_pat(jira_fake_dc: FakeJira) -> None:
    issue = await cloud_backend_for(jira_fake_dc).get_issue("svc-2")
    assert isinstance(issue.fields["description"], str)
    assert "{code:go}" in issue.fields["description"]
    assert paths(jira_fake_dc) == ["GET /rest/api/2/issue/SVC-2"]
    assert jira_fake_dc.seen[0].authorization == "Bearer fake-token"


async def test_missing_issue_is_not_found_without_retries(any_jira_fake: FakeJira) -> None:
    with pytest.raises(NotFound, match="SVC-99"):
        await cloud_backend_for(any_jira_fake).get_issue("SVC-99")
    assert len(any_jira_fake.seen) == 1


@pytest.mark.parametrize("key", ["../../myself", "SVC-1/comment", "SVC-0", "", "SVC-1?x=1"])
async def test_only_real_issue_keys_reach_a_url(jira_fake: FakeJira, key: str) -> None:
    with pytest.raises(InvalidInput, match="not a Jira issue key"):
        await cloud_backend_for(jira_fake).get_issue(key)
    assert jira_fake.seen == []


async def test_comments_are_the_most_recent_ones_across_jira_pages(any_jira_fake: FakeJira) -> None:
    backend = cloud_backend_for(any_jira_fake)
    comments, total = await backend.get_comments("SVC-1", 3)  # the fake pages by 2
    assert total == 4
    assert [c.id for c in comments] == ["10101", "10102", "10103"]
    assert comments[0].author == "Priya Raman"
    assert [s.query for s in any_jira_fake.seen] == ["startAt=0&maxResults=3", "startAt=2&maxResults=3"]
    everything, _ = await backend.get_comments("SVC-1", 50)
    assert [c.id for c in everything] == ["10100", "10101", "10102", "10103"]
    (last,), _ = await backend.get_comments("SVC-1", 1)
    assert last.id == "10103"
    assert (await backend.get_comments("SVC-4", 5)) == ([], 0)


async def test_comment_bodies_are_adf_on_cloud_and_text_on_data_center(any_jira_fake: FakeJira) -> None:
    comments, _ = await cloud_backend_for(any_jira_fake).get_comments("SVC-5", 1)
    expected = dict if any_jira_fake.deployment == "cloud" else str
    assert isinstance(comments[0].body, expected)


async def test_search_pages_through_every_hit_with_an_opaque_cursor(any_jira_fake: FakeJira) -> None:
    backend = cloud_backend_for(any_jira_fake)
    jql = 'project in ("SVC") AND (status != Done) ORDER BY key'
    keys: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        page = await backend.search(jql, 3, cursor)
        keys += [i.key for i in page.issues]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert keys == ["SVC-1", "SVC-2", "SVC-3", "SVC-4", "SVC-5", "SVC-6", "SVC-8"]
    endpoint = "/rest/api/3/search/jql" if any_jira_fake.deployment == "cloud" else "/rest/api/2/search"
    assert all(p == f"GET {endpoint}" for p in paths(any_jira_fake) if "search" in p)


async def test_search_cursor_is_bound_to_its_query(jira_fake: FakeJira) -> None:
    backend = cloud_backend_for(jira_fake)
    page = await backend.search("project = SVC", 2, None)
    assert page.next_cursor is not None
    with pytest.raises(InvalidInput, match="different query"):
        await backend.search("project = OPS", 2, page.next_cursor)
    with pytest.raises(InvalidInput, match="Invalid cursor"):
        await backend.search("project = SVC", 2, "garbage!")


@pytest.mark.parametrize("position", ["abc", "1e3", "-5", "99999999999"])
async def test_a_data_center_cursor_holds_a_page_position_or_is_refused(jira_fake_dc: FakeJira, position: str) -> None:
    """The cursor's check is the hash of the query, which a caller can compute: before, "abc" or "1e3" ended in an
    internal error and -5 went to Jira as startAt=-5."""
    backend = cloud_backend_for(jira_fake_dc)
    page = await backend.search("project = SVC", 2, None)
    assert page.next_cursor is not None
    data = json.loads(base64.urlsafe_b64decode(page.next_cursor + "=" * (-len(page.next_cursor) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps({**data, "o": position}).encode()).decode().rstrip("=")
    with pytest.raises(InvalidInput, match="Invalid cursor"):
        await backend.search("project = SVC", 2, forged)


async def test_jql_rejected_by_jira_is_invalid_input_with_its_message(any_jira_fake: FakeJira) -> None:
    with pytest.raises(InvalidInput, match="Field 'fixversion' is not supported") as caught:
        await cloud_backend_for(any_jira_fake).search("fixVersion = 1.0", 5, None)
    assert "\n" not in caught.value.message


async def test_429_waits_as_retry_after_says_then_succeeds(jira_fake: FakeJira) -> None:
    sleep = RecordingSleep()
    jira_fake.fail(429, times=2, retry_after="2", path_contains="/issue/")
    issue = await cloud_backend_for(jira_fake, sleep=sleep).get_issue("SVC-1")
    assert issue.key == "SVC-1"
    assert sleep.waits == [2.0, 2.0]
    assert len(jira_fake.seen) == 3


async def test_429_on_the_real_clock_is_honoured_and_bounded(jira_fake: FakeJira) -> None:
    jira_fake.fail(429, retry_after="1")
    backend = cloud_backend_for(jira_fake, sleep=anyio.sleep)
    started = time.monotonic()
    await backend.get_issue("SVC-1")
    assert 0.9 <= time.monotonic() - started < 5


async def test_429_that_persists_becomes_rate_limited_after_bounded_retries(jira_fake: FakeJira) -> None:
    sleep = RecordingSleep()
    jira_fake.fail(429, times=100, retry_after="1")
    with pytest.raises(RateLimited) as caught:
        await cloud_backend_for(jira_fake, sleep=sleep, max_retries=2).get_issue("SVC-1")
    assert caught.value.retry_after == 1.0
    assert sleep.waits == [1.0, 1.0]
    assert len(jira_fake.seen) == 3


async def test_retry_after_beyond_the_wait_budget_is_not_waited_for(jira_fake: FakeJira) -> None:
    sleep = RecordingSleep()
    jira_fake.fail(429, retry_after="3600")
    with pytest.raises(RateLimited) as caught:
        await cloud_backend_for(jira_fake, sleep=sleep, max_retry_wait_s=30).get_issue("SVC-1")
    assert caught.value.retry_after == 3600
    assert sleep.waits == []


async def test_5xx_is_retried_with_backoff_then_reported(any_jira_fake: FakeJira) -> None:
    sleep = RecordingSleep()
    any_jira_fake.fail(502, times=100)
    with pytest.raises(UpstreamFailure, match="HTTP 502") as caught:
        await cloud_backend_for(any_jira_fake, sleep=sleep, max_retries=3, backoff_s=0.5).get_issue("SVC-1")
    assert caught.value.status == 502
    assert sleep.waits == [0.5, 1.0, 2.0]
    assert len(any_jira_fake.seen) == 4


async def test_a_transient_503_is_absorbed(jira_fake: FakeJira) -> None:
    jira_fake.fail(503, path_contains="/comment")
    comments, total = await cloud_backend_for(jira_fake).get_comments("SVC-7", 5)
    assert (len(comments), total) == (1, 1)


async def test_wrong_credential_is_an_upstream_auth_failure_without_retries(any_jira_fake: FakeJira) -> None:
    backend = cloud_backend_for(any_jira_fake, token=SecretStr("wrong"))
    with pytest.raises(UpstreamFailure, match="rejected the credential") as caught:
        await backend.get_issue("SVC-1")
    assert caught.value.status == 401
    assert "wrong" not in caught.value.message
    assert "wrong" not in (caught.value.detail or "")
    assert len(any_jira_fake.seen) == 1


async def test_403_is_an_upstream_auth_failure(jira_fake: FakeJira) -> None:
    jira_fake.fail(403)
    with pytest.raises(UpstreamFailure, match="refused access") as caught:
        await cloud_backend_for(jira_fake).search("project = SVC", 5, None)
    assert caught.value.status == 403


async def test_malformed_json_is_an_upstream_failure_without_retries(jira_fake: FakeJira) -> None:
    jira_fake.malformed(times=5)
    with pytest.raises(UpstreamFailure, match="malformed"):
        await cloud_backend_for(jira_fake).get_issue("SVC-1")
    assert len(jira_fake.seen) == 1


async def test_a_slow_answer_hits_the_request_timeout(jira_fake: FakeJira) -> None:
    jira_fake.slow(10)
    started = time.monotonic()
    with pytest.raises(UpstreamFailure, match="in time"):
        await cloud_backend_for(jira_fake, timeout_s=0.3).get_issue("SVC-1")
    assert time.monotonic() - started < 3


async def test_the_deadline_bounds_the_whole_call(jira_fake: FakeJira) -> None:
    jira_fake.slow(10, times=5)
    started = time.monotonic()
    with pytest.raises(UpstreamFailure, match=r"within 0\.4s"):
        await cloud_backend_for(jira_fake, timeout_s=5, deadline_s=0.4).get_comments("SVC-1", 10)
    assert time.monotonic() - started < 2


async def test_connection_refused_is_retried_then_reported() -> None:
    with FakeJira() as fake:
        url = fake.url  # a port nothing listens on once the fake stops
    sleep = RecordingSleep()
    backend = cloud_backend_for(fake, url=url, sleep=sleep, max_retries=2)
    with pytest.raises(UpstreamFailure, match="connect"):
        await backend.get_issue("SVC-1")
    assert sleep.waits == [0.5, 1.0]


async def test_permissions_report_what_the_credential_may_do(any_jira_fake: FakeJira) -> None:
    any_jira_fake.granted = frozenset({"BROWSE_PROJECTS", "ADD_COMMENTS"})
    granted = await cloud_backend_for(any_jira_fake).permissions()
    assert granted is not None
    assert granted["BROWSE_PROJECTS"] is True
    assert granted["ADD_COMMENTS"] is True
    assert granted["EDIT_ISSUES"] is False
    assert granted["CREATE_ISSUES"] is False
    assert "permissions=BROWSE_PROJECTS" in any_jira_fake.seen[0].query


async def test_permissions_are_none_where_jira_has_no_such_api(jira_fake_dc: FakeJira) -> None:
    jira_fake_dc.fail(404, path_contains="mypermissions")
    assert await cloud_backend_for(jira_fake_dc).permissions() is None


def test_the_guard_refuses_writes_before_they_leave_the_process(jira_fake: FakeJira) -> None:
    client = cloud_backend_for(jira_fake)._client
    session = client._session
    assert session is not None
    with pytest.raises(WriteRefused, match="PUT"):
        client.issue("SVC-1").update(summary="pwned")
    with pytest.raises(WriteRefused, match="POST /rest/api/3/issue/SVC-1/comment"):
        client.add_comment("SVC-1", "pwned")
    with pytest.raises(WriteRefused, match="POST /rest/api/3/issue"):
        client.create_issue(fields={"project": {"id": "10000"}, "summary": "pwned", "issuetype": {"id": "1"}})
    for method in ("DELETE", "PATCH", "HEAD", "OPTIONS"):
        with pytest.raises(WriteRefused, match=method):
            session.request(method, f"{jira_fake.url}/rest/api/3/issue/SVC-1")
    with pytest.raises(WriteRefused):
        requests.Session.post(session, f"{jira_fake.url}/rest/api/3/search/jql/../../issue", data="{}")
    assert [s.method for s in jira_fake.seen] == ["GET"]  # only the issue() that preceded update()


def test_the_packages_own_sleeping_retries_are_off(jira_fake: FakeJira) -> None:
    session = cloud_backend_for(jira_fake)._client._session
    assert session is not None
    assert session.max_retries == 0
    assert session.timeout == 5.0


def test_basic_auth_without_a_user_is_a_config_error(jira_fake: FakeJira) -> None:
    with pytest.raises(ConfigError, match="e-mail"):
        cloud_backend_for(jira_fake, user=None)


def test_the_guard_lets_the_jql_search_post_through(jira_fake: FakeJira) -> None:
    client = cloud_backend_for(jira_fake)._client
    page = client.enhanced_search_issues("project = SVC", maxResults=2, json_result=True, use_post=True)
    assert len(page["issues"]) == 2
    assert "POST /rest/api/3/search/jql" in paths(jira_fake)


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after_seconds({"Retry-After": "7"}) == 7.0
    assert retry_after_seconds({"Retry-After": "-3"}) == 0.0
    dated = {"Retry-After": "Wed, 21 Oct 2026 07:28:30 GMT", "Date": "Wed, 21 Oct 2026 07:28:00 GMT"}
    assert retry_after_seconds(dated) == 30.0
    assert retry_after_seconds({"Retry-After": "soon"}) is None
    assert retry_after_seconds({}) is None
    assert retry_after_seconds(None) is None


def _exchange(path: str, body: object, status: int = 200, method: str = "GET") -> list[str]:
    request = Request(EnvironBuilder(path=path, method=method, base_url="http://127.0.0.1:1").get_environ())
    return jira_contract.violations(request, Response(json.dumps(body), status, content_type="application/json"))


def test_the_contract_check_catches_a_drifting_fake() -> None:
    assert _exchange("/rest/api/3/serverInfo", {"version": "1", "deploymentType": "Cloud"}) == []
    assert _exchange("/rest/api/2/serverInfo", {"version": "1", "colour": "red"})  # no such property
    assert _exchange("/rest/api/3/issue/SVC-1/comment", {"total": "four"})  # wrong type
    assert _exchange("/rest/api/3/search/jql", {"issues": [], "isLast": True}) == []
    assert _exchange("/rest/api/3/search/jql", {"issues": [], "startAt": 0, "total": 0})  # the old paging
    assert _exchange("/rest/api/3/search/jql", {"errorMessages": ["bad"]}, 400) == []
    assert _exchange("/rest/api/3/myself", {"errorMessages": ["slow down"]}, 429) == []
    assert _exchange("/rest/api/3/myself", {"message": "slow down"}, 429)  # not an ErrorCollection
