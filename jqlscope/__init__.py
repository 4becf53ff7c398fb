"""Confining JQL to Jira projects: the one rule jira-read and the agent both apply.

jira-read never runs a caller's JQL as given, and the agent confines a model's query to its own ticket's
project before jira-read confines it to every project the identity may read. Both run

    project in ("A", "B") AND (<caller's condition>) [ORDER BY <caller's ordering>]

and refuse, before anything reaches Jira, any string that could step outside the parentheses:
unbalanced parentheses or quotes, a second or misplaced ORDER BY, an ORDER BY clause that is not a
plain field list, control characters, an over-long query, parentheses nested deeper than
`MAX_DEPTH` (a parser downstream would recurse once per level), and a backslash outside a quoted
string. Atlassian's JQL reference allows backslash escapes only inside quoted values and for
reserved characters in unquoted values; the scanner here cannot tell those apart from a backslash
that changes how the quotes and parentheses it counted are read, so it refuses them (quote the value
instead). Both sides use it, so it depends on nothing of ours.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MAX_JQL = 2000
MAX_DEPTH = 32


class JQLError(ValueError):
    """The JQL could step outside the confinement, or is too long; the message says why in the caller's terms."""


_ORDER_BY = re.compile(r"\border\s+by\b", re.I)
# a quoted field name holds no parenthesis (none has one), so no parenthesis follows the condition at all
_ORDER_TERM = re.compile(r"""^\s*(?:[A-Za-z][A-Za-z0-9_.]*|cf\[\d+\]|"[^"\\()]+")(?:\s+(?:asc|desc))?\s*$""", re.I)


def _scan(jql: str) -> list[tuple[int, int]]:
    """Return (start, end) of each ORDER BY at paren depth 0, outside quotes.

    Raises:
        JQLError: unbalanced or too deeply nested parentheses, unterminated quote, ORDER BY
            inside parentheses, a backslash outside quotes.
    """
    depth = 0
    quote: str | None = None
    i = 0
    order_spans: list[tuple[int, int]] = []
    while i < len(jql):
        ch = jql[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "\\":
            raise JQLError("JQL has a backslash outside a quoted string; put the value in quotes")
        elif ch == "(":
            depth += 1
            if depth > MAX_DEPTH:
                raise JQLError(f"JQL nests parentheses deeper than {MAX_DEPTH} levels")
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise JQLError("JQL has an unmatched ')'")
        elif ch in "oO" and (m := _ORDER_BY.match(jql, i)) and (i == 0 or not jql[i - 1].isalnum()):
            if depth:
                raise JQLError("ORDER BY is only allowed at the end of the query, outside parentheses")
            order_spans.append((m.start(), m.end()))
            i = m.end()
            continue
        i += 1
    if quote:
        raise JQLError("JQL has an unterminated string")
    if depth:
        raise JQLError("JQL has an unmatched '('")
    return order_spans


PROJECT_KEY = re.compile(r"[A-Z][A-Z0-9_]{0,49}")
"""A Jira project key: an upper-case letter, then upper-case letters, digits or underscores (Atlassian's rule; at
most 50 here), so a key quotes as is. The policy's `jira_projects` are checked against it too."""
ISSUE_KEY = re.compile(PROJECT_KEY.pattern + r"-[1-9][0-9]{0,9}")


def is_issue_key(text: str) -> bool:
    """A whole Jira issue key (`SVC-7`): matched whole, as `^...$` with `match` let a trailing newline through."""
    return ISSUE_KEY.fullmatch(text) is not None


def _quote_key(key: str) -> str:
    if not PROJECT_KEY.fullmatch(key):
        raise JQLError(
            f"{key[:40]!r} is not a Jira project key (an upper-case letter, then upper-case letters, digits or "
            "underscores)"
        )
    return '"' + key + '"'


# JQL functions that return values of the caller's own Jira (people, dates, versions, sprints) and never issues
# of another project: any other (linkedIssues("OPS-1"), ScriptRunner's linkedIssuesOf("project = OPS ...")) could
# tell what lies outside the projects, one yes or no at a time.
SAFE_FUNCTIONS = frozenset(
    f.lower()
    for f in (
        *("currentUser", "currentLogin", "lastLogin", "membersOf", "now", "updatedBy", "cascadeOption"),
        *("startOfDay", "endOfDay", "startOfWeek", "endOfWeek", "startOfMonth", "endOfMonth", "startOfYear"),
        *("endOfYear", "openSprints", "closedSprints", "futureSprints", "releasedVersions", "unreleasedVersions"),
        *("latestReleasedVersion", "earliestUnreleasedVersion", "componentsLeadByUser", "projectsLeadByUser"),
        *("votedIssues", "watchedIssues", "issueHistory", "standardIssueTypes", "subTaskIssueTypes"),
    )
)
_KEYWORDS = frozenset(
    ("in", "not", "and", "or", "was", "changed", "to", "from", "by", "during", "on", "after", "before", "is")
)
_CALL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_ISSUE_KEY = re.compile(r"(?<![A-Za-z0-9_.-])([A-Za-z][A-Za-z0-9_]*)-[0-9]+(?![A-Za-z0-9_.-])")
_QUOTED = re.compile(r""""((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'""")


def _outside(condition: str, allowed: set[str]) -> None:
    """Refuse a function that could reach issues of other projects, and an issue key of a project not `allowed`
    (`parent = OPS-1`, `issuekey in ("OPS-1")`: which of the caller's issues link to it, or whether it exists).

    Raises:
        JQLError: the condition calls such a function or names such an issue.
    """
    quoted = [a if a is not None else b for a, b in _QUOTED.findall(condition)]
    bare = _QUOTED.sub(" ", condition)
    for name in _CALL.findall(bare):
        if name.lower() not in SAFE_FUNCTIONS and name.lower() not in _KEYWORDS:
            raise JQLError(
                f"JQL function {name}() is not allowed here: it could reach issues of projects you may not read "
                "(functions of people, dates, versions and sprints are)"
            )
    keys = [m.group(0) for m in _ISSUE_KEY.finditer(bare)]
    # a quoted value is a key only when written as one (upper case): `text ~ "utf-8"` is text
    keys += [q.strip() for q in quoted if _ISSUE_KEY.fullmatch(q.strip()) and q.strip().split("-")[0].isupper()]
    for key in keys:
        if key.rsplit("-", 1)[0].upper() not in allowed:
            raise JQLError(f"JQL names issue {key[:40]}, of a project you may not read")


def restrict(jql: str, projects: Iterable[str]) -> str:
    """Wrap `jql` so that it can only match issues in `projects`.

    Raises:
        JQLError: the JQL is too long, holds control characters, or could escape the wrapping, or a project
            is not a Jira project key.
    """
    allowed = sorted(set(projects))
    if not allowed:
        raise JQLError("no Jira project is readable")
    if len(jql) > MAX_JQL:
        raise JQLError(f"JQL is longer than {MAX_JQL} characters")
    if any(ord(ch) < 32 and ch not in "\t\n\r" for ch in jql) or "\u2028" in jql or "\u2029" in jql:
        raise JQLError("JQL contains control characters")
    jql = " ".join(jql.split())
    spans = _scan(jql)
    if len(spans) > 1:
        raise JQLError("JQL has more than one ORDER BY")
    condition, ordering = jql, ""
    if spans:
        start, end = spans[0]
        condition, ordering = jql[:start].strip(), jql[end:].strip()
        terms = ordering.split(",")
        if not ordering or not all(_ORDER_TERM.match(t) for t in terms):
            raise JQLError("ORDER BY must be a list of fields, each optionally ASC or DESC")
        ordering = ", ".join(" ".join(t.split()) for t in terms)
    _outside(condition, set(allowed))
    scope = f"project in ({', '.join(_quote_key(p) for p in allowed)})"
    query = f"{scope} AND ({condition})" if condition.strip() else scope
    return f"{query} ORDER BY {ordering}" if ordering else query
