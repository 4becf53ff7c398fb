"""The local Jira backend: bundled sample tickets, the JQL subset, cursors, and load-time validation."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servers.common.errors import ConfigError, InvalidInput, NotFound
from servers.jira_read import local_jql
from servers.jira_read.local import LocalJiraBackend

SAMPLES = Path(__file__).resolve().parents[2] / "servers" / "jira_read" / "samples"


@pytest.fixture(scope="module")
def backend(reference_tickets: Path) -> LocalJiraBackend:
    return LocalJiraBackend(reference_tickets)


async def keys(backend: LocalJiraBackend, jql: str, limit: int = 50) -> list[str]:
    page = await backend.search(jql, limit, None)
    assert page.next_cursor is None
    return [issue.key for issue in page.issues]


async def test_get_issue_returns_raw_fields_and_only_the_comments_count(backend: LocalJiraBackend) -> None:
    issue = await backend.get_issue("SVC-1")
    assert issue.key == "SVC-1"
    assert issue.fields["summary"] == "Rate limiter lets bursts through after a config reload"
    assert issue.fields["description"]["type"] == "doc"  # ADF stays raw: the server converts it
    assert issue.fields["issuelinks"][0]["outwardIssue"]["key"] == "SVC-4"
    total = (await backend.get_comments("SVC-1", 100))[1]
    assert total > 0 and issue.fields["comment"] == {"total": total, "comments": []}  # get_comments serves them


async def test_wiki_markup_description_stays_a_string(backend: LocalJiraBackend) -> None:
    issue = await backend.get_issue("svc-2")  # keys are matched case-insensitively
    assert isinstance(issue.fields["description"], str)
    assert "{code:go}" in issue.fields["description"]


async def test_hostile_sample_keeps_its_invisible_characters_for_the_server_to_strip(backend: LocalJiraBackend) -> None:
    issue = await backend.get_issue("SVC-3")
    assert "\u200b" in issue.fields["summary"]
    assert "\u202e" in issue.fields["description"]
    assert "Ignore all previous instructions" in issue.fields["description"]


async def test_unknown_issue_is_not_found(backend: LocalJiraBackend) -> None:
    with pytest.raises(NotFound):
        await backend.get_issue("SVC-999")


async def test_comments_are_the_most_recent_oldest_first_with_total(backend: LocalJiraBackend) -> None:
    comments, total = await backend.get_comments("SVC-1", 2)
    assert total == 4
    assert [c.id for c in comments] == ["10102", "10103"]
    assert comments[0].author == "Ana Sousa"
    assert isinstance(comments[0].body, dict)
    everything, _ = await backend.get_comments("SVC-1", 100)
    assert [c.id for c in everything] == ["10100", "10101", "10102", "10103"]
    assert (await backend.get_comments("SVC-4", 10)) == ([], 0)


async def test_comments_limit_below_one_is_refused(backend: LocalJiraBackend) -> None:
    with pytest.raises(InvalidInput):
        await backend.get_comments("SVC-1", 0)


@pytest.mark.parametrize(
    ("jql", "expected"),
    [
        ('project in ("SVC") AND (status = Open) ORDER BY key ASC', ["SVC-1", "SVC-2", "SVC-3"]),
        ("project in (SVC, OPS) AND (labels = ops)", ["OPS-1"]),
        ('project = SVC AND status = "In Progress" ORDER BY key', ["SVC-5", "SVC-8"]),
        ('text ~ "data race"', ["SVC-5"]),
        ('summary ~ "config" ORDER BY created ASC', ["SVC-1", "SVC-3", "SVC-8"]),
        ('comment ~ "payments backend"', ["SVC-1"]),
        ("key = SVC-7", ["SVC-7"]),
        (
            "project = SVC AND NOT (status = Open OR status = Done) ORDER BY key DESC",
            ["SVC-8", "SVC-6", "SVC-5", "SVC-4"],
        ),
        ("component = cache AND labels != race ORDER BY key", ["SVC-3", "SVC-4"]),
        ("status not in (Open, Done, 'To Do') ORDER BY key", ["SVC-5", "SVC-8"]),
        ("project = SVC AND assignee is EMPTY ORDER BY key", ["SVC-1", "SVC-3", "SVC-4", "SVC-6"]),
        ("labels = ratelimit ORDER BY updated DESC", ["SVC-1", "SVC-7"]),
        ("issuetype = Story OR priority = Highest ORDER BY key", ["SVC-5", "SVC-8"]),
        ("text !~ config AND project = SVC ORDER BY key", ["SVC-2", "SVC-5", "SVC-6", "SVC-7"]),
    ],
)
async def test_search_understands_the_documented_subset(
    backend: LocalJiraBackend, jql: str, expected: list[str]
) -> None:
    assert await keys(backend, jql) == expected


async def test_search_without_order_by_is_newest_created_first(backend: LocalJiraBackend) -> None:
    assert (await keys(backend, "project = SVC"))[:3] == ["SVC-8", "SVC-6", "SVC-5"]


async def test_cursor_pages_through_every_hit_once(backend: LocalJiraBackend) -> None:
    jql = "project = SVC ORDER BY key"
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        page = await backend.search(jql, 3, cursor)
        seen += [i.key for i in page.issues]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [f"SVC-{n}" for n in range(1, 9)]


async def test_cursor_from_another_query_or_forged_is_refused(backend: LocalJiraBackend) -> None:
    page = await backend.search("project = SVC", 2, None)
    assert page.next_cursor is not None
    with pytest.raises(InvalidInput, match="different query"):
        await backend.search("project = OPS", 2, page.next_cursor)
    with pytest.raises(InvalidInput, match="Invalid cursor"):
        await backend.search("project = SVC", 2, "not-a-cursor!")


@pytest.mark.parametrize(
    ("jql", "message"),
    [
        ("assignee = currentUser()", "functions"),
        ("created > -7d", "not supported"),
        ("fixVersion = 1.0", "'fixversion' is not supported"),
        ("project = SVC ORDER BY priority", "ORDER BY 'priority'"),
        ("project = SVC AND (status = Open", "ends early"),
        ("project = SVC) OR (project = OPS", r"Unexpected '\)'"),
        ('summary ~ "unterminated', "unterminated"),
        ("(status = Open ORDER BY key)", "ORDER BY is only allowed"),
        ("status ~ Open", "not supported for 'status'"),
        ("summary = x", "only supports '~'"),
        ("status = Open status = Done", "Unexpected 'status'"),
    ],
)
async def test_unsupported_or_malformed_jql_is_refused_with_a_reason(
    backend: LocalJiraBackend, jql: str, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        await backend.search(jql, 10, None)


@pytest.mark.parametrize("limit", [0, 101])
async def test_search_limit_is_bounded(backend: LocalJiraBackend, limit: int) -> None:
    with pytest.raises(InvalidInput):
        await backend.search("project = SVC", limit, None)


async def test_permissions_are_not_applicable(backend: LocalJiraBackend) -> None:
    assert await backend.permissions() is None


@given(st.text(max_size=60))
def test_parser_raises_only_invalid_input(jql: str) -> None:
    with contextlib.suppress(InvalidInput):
        local_jql.parse(jql)


def test_malformed_ticket_file_is_a_config_error_naming_file_and_field(tmp_path: Path) -> None:
    (tmp_path / "SVC-1.yaml").write_text("key: SVC-1\nfields:\n  summary: x\n  status: Open\n")
    with pytest.raises(ConfigError, match=r"SVC-1\.yaml: field fields\.status"):
        LocalJiraBackend(tmp_path)


def test_bad_yaml_bad_timestamp_and_duplicate_keys_are_config_errors(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("key: [unclosed\n")
    with pytest.raises(ConfigError, match=r"a\.yaml"):
        LocalJiraBackend(tmp_path)
    (tmp_path / "a.yaml").unlink()
    good = (SAMPLES / "SVC-7.yaml").read_text()
    (tmp_path / "b.yaml").write_text(good.replace('"2026-01-02T14:00:00.000+0000"', '"yesterday"'))
    with pytest.raises(ConfigError, match=r"b\.yaml: field fields\.created"):
        LocalJiraBackend(tmp_path)
    (tmp_path / "b.yaml").write_text(good)
    (tmp_path / "c.yaml").write_text(good)
    with pytest.raises(ConfigError, match="already defined"):
        LocalJiraBackend(tmp_path)


def test_missing_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        LocalJiraBackend(tmp_path / "nope")
