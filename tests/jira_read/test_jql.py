"""The project restriction cannot be escaped by any JQL string (hostile examples + property test)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from servers.common.errors import InvalidInput
from servers.jira_read.jql import MAX_DEPTH, restrict
from servers.jira_read.local_jql import parse

PREFIX = 'project in ("SVC") AND ('


def condition_is_enclosed(query: str) -> bool:
    """True when the caller's condition sits inside the parenthesis opened after AND, and nothing
    but an ORDER BY follows its matching close."""
    if not query.startswith(PREFIX):
        return query == 'project in ("SVC")' or query.startswith('project in ("SVC") ORDER BY ')
    depth, quote, i = 1, "", len(PREFIX)
    while i < len(query):
        ch = query[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                rest = query[i + 1 :]
                return rest == "" or (rest.startswith(" ORDER BY ") and "(" not in rest and ")" not in rest)
        i += 1
    return False


def test_plain_condition_is_wrapped() -> None:
    assert restrict("status = Open", ["SVC"]) == 'project in ("SVC") AND (status = Open)'


def test_order_by_stays_outside() -> None:
    assert restrict("status = Open order by created desc, key", ["SVC", "ABC"]) == (
        'project in ("ABC", "SVC") AND (status = Open) ORDER BY created desc, key'
    )


def test_empty_condition_is_only_the_restriction() -> None:
    assert restrict("  ", ["SVC"]) == 'project in ("SVC")'
    assert restrict("ORDER BY updated DESC", ["SVC"]) == 'project in ("SVC") ORDER BY updated DESC'


def test_parentheses_inside_strings_are_data() -> None:
    out = restrict("summary ~ \"a) OR (b\" AND text ~ 'x('", ["SVC"])
    assert condition_is_enclosed(out)


@pytest.mark.parametrize(
    "jql",
    [
        "status = Open) OR (project = OPS",
        ") OR project = OPS OR (",
        "((status = Open)",
        "status = Open)",
        'summary ~ "open',
        "status = Open ORDER BY created ORDER BY key",
        "(status = Open ORDER BY created) OR project = OPS",
        "status = Open ORDER BY created) OR (project = OPS",
        "status = Open ORDER BY created; DROP TABLE",
        "status = Open ORDER BY (project)",
        "status = Open ORDER BY",
        "status = Open\x00",
        "status = Open\u2028OR project = OPS",
        "x" * 2001,
    ],
)
def test_escapes_are_refused(jql: str) -> None:
    with pytest.raises(InvalidInput):
        restrict(jql, ["SVC"])


def test_no_projects_means_no_search() -> None:
    with pytest.raises(InvalidInput):
        restrict("status = Open", [])


JQL_ALPHABET = st.sampled_from(
    [*list("()\"'\\ ,;=~!<>"), "ORDER BY", "order by", " OR ", " AND ", "project", "OPS", "status", "x", "\n", "\t"]
)


def test_a_quoted_order_by_field_holds_no_parenthesis() -> None:
    """Found by the property test below: `,ORDER BY"("` put a parenthesis after the condition (inside quotes)."""
    with pytest.raises(InvalidInput, match="ORDER BY must be a list of fields"):
        restrict(',ORDER BY"("', ["SVC"])
    assert restrict('status = Open ORDER BY "Story Points" DESC', ["SVC"]).endswith('ORDER BY "Story Points" DESC')


@settings(max_examples=1500, deadline=None)
@given(st.lists(JQL_ALPHABET, max_size=40).map("".join))
def test_any_accepted_query_keeps_the_condition_enclosed(jql: str) -> None:
    try:
        out = restrict(jql, ["SVC"])
    except InvalidInput:
        return
    assert condition_is_enclosed(out), out


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes(jql: str) -> None:
    try:
        out = restrict(jql, ["SVC"])
    except InvalidInput:
        return
    assert condition_is_enclosed(out), out


@pytest.mark.parametrize("jql", ["summary ~ a\\) OR (project = OPS", "status = Open \\", "labels = a\\,b"])
def test_a_backslash_outside_quotes_is_refused(jql: str) -> None:
    with pytest.raises(InvalidInput, match="backslash outside a quoted string"):
        restrict(jql, ["SVC"])


def test_a_backslash_inside_quotes_is_data() -> None:
    assert condition_is_enclosed(restrict('summary ~ "a\\" OR (b"', ["SVC"]))


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=600))
def test_nesting_is_bounded_before_any_parser_recurses(depth: int) -> None:
    jql = "(" * depth + "status = Open" + ")" * depth
    if depth > MAX_DEPTH:
        with pytest.raises(InvalidInput, match="deeper than"):
            restrict(jql, ["SVC"])
    else:  # the local backend's recursive parser copes with every depth the scanner lets through
        parse(restrict(jql, ["SVC"]))


@pytest.mark.parametrize("key", ["SVC", "A1_B", "X" * 50, "svc", "Svc", "1SVC", "_SVC", "X" * 51, "SV-C", ""])
def test_the_policy_and_the_jql_scope_accept_the_same_project_keys(key: str) -> None:
    """Before, the scope took lower case and 255 characters that the policy's jira_projects refused."""
    from pydantic import ValidationError

    from servers.common.policy import Identity

    try:
        Identity(roles=("agent",), jira_projects=(key,))
        in_policy = True
    except ValidationError:
        in_policy = False
    try:
        restrict("status = Open", [key])
        in_scope = True
    except InvalidInput:
        in_scope = False
    assert in_policy == in_scope == (key in ("SVC", "A1_B", "X" * 50))


@pytest.mark.parametrize(
    ("jql", "complaint"),
    [
        # before: passed as they were; their answers (inside SVC) told which SVC issues link to an OPS issue, and
        # ScriptRunner's linkedIssuesOf ran a whole query over OPS, one yes or no at a time
        ('issue in linkedIssues("OPS-1")', "function linkedIssues() is not allowed"),
        ('issueFunction in linkedIssuesOf("project = OPS AND summary ~ secret")', "function linkedIssuesOf()"),
        ("parent = OPS-1", "names issue OPS-1, of a project you may not read"),
        ('issuekey in ("OPS-1")', "names issue OPS-1"),
        ("issuekey = ops-1", "names issue ops-1"),
    ],
)
def test_what_reaches_other_projects_issues_is_refused(jql: str, complaint: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(complaint)):
        restrict(jql, ["SVC"])


@pytest.mark.parametrize(
    "jql",
    [
        "assignee = currentUser() AND updated > startOfDay(-7d)",
        "fixVersion in unreleasedVersions() AND sprint in openSprints()",
        "key = SVC-3 OR parent = SVC-1",
        'text ~ "utf-8 decoding" AND text ~ "covid-19"',
        "labels in (backend, api) AND status was in (Open, Done)",
        'status changed before ("2026/01/01") AND assignee was in (membersOf("devs"))',
    ],
)
def test_functions_of_people_dates_versions_and_keys_of_the_projects_pass(jql: str) -> None:
    assert restrict(jql, ["SVC"]).startswith('project in ("SVC") AND (')
