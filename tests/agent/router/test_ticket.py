"""Tickets from jira-read answers and from files; bad files get one clear message; path extraction never fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.router.errors import TicketError
from agent.router.ticket import TicketFacts, load_ticket_file, named_paths


def test_a_jira_read_issue_becomes_facts() -> None:
    issue = {
        "key": "SVC-3",
        "summary": {"trust": "untrusted", "text": "Cache: stale entries after reload"},
        "description": {"trust": "untrusted", "text": "internal/cache/lru.go keeps the old map"},
        "type": "Bug",
        "labels": ["cache"],
        "components": ["cache"],
    }
    t = TicketFacts.from_issue(issue)
    assert (t.key, t.title, t.issue_type, t.labels, t.components) == (
        "SVC-3",
        "Cache: stale entries after reload",
        "Bug",
        ("cache",),
        ("cache",),
    )
    assert t.paths == ("internal/cache/lru.go",)
    with pytest.raises(TicketError, match="no summary"):
        TicketFacts.from_issue({"key": "SVC-3", "summary": {"text": ""}})


def test_json_and_markdown_files(tmp_path: Path) -> None:
    j = tmp_path / "T-1.json"
    j.write_text(json.dumps({"title": "Race in pool", "body": "see pool.go", "labels": ["bug"], "type": "Bug"}))
    t = load_ticket_file(j)
    assert (t.key, t.title, t.labels, t.issue_type, t.paths) == ("T-1", "Race in pool", ("bug",), "Bug", ("pool.go",))
    m = tmp_path / "t.md"
    m.write_text("---\nkey: SVC-9\nlabels: [docs-only]\ncomponents: [docs]\n---\n# Fix the README\n\nTwo typos.\n")
    t = load_ticket_file(m)
    assert (t.key, t.title, t.body, t.labels, t.components) == (
        "SVC-9",
        "Fix the README",
        "Two typos.",
        ("docs-only",),
        ("docs",),
    )


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.json", "{not json", "not valid JSON (line 1)"),
        ("a.json", '{"body": "no title"}', "title: Field required"),
        ("a.json", '{"title": "x", "colour": "red"}', "colour: Extra inputs"),
        ("a.json", "[1, 2]", "a ticket is an object"),
        ("a.md", "no heading here", "no '# ' title line"),
        ("a.md", "---\n[unclosed\n---\n# T\n", "front matter is not valid YAML"),
        ("a.txt", "x", "a ticket file is .json or .md"),
    ],
)
def test_a_bad_ticket_file_gets_one_clear_message(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(TicketError) as caught:
        load_ticket_file(path)
    assert message in caught.value.message and str(tmp_path) not in caught.value.message


def test_a_missing_or_huge_file(tmp_path: Path) -> None:
    with pytest.raises(TicketError, match=r"cannot read nope\.json"):
        load_ticket_file(tmp_path / "nope.json")
    big = tmp_path / "big.md"
    big.write_bytes(b"# t\n" + b"x" * (1 << 20))
    with pytest.raises(TicketError, match="larger than"):
        load_ticket_file(big)


@given(st.text(max_size=200), st.text(max_size=400))
def test_named_paths_never_fail_and_come_from_the_text(title: str, body: str) -> None:
    paths = named_paths(title, body)
    assert len(set(paths)) == len(paths)
    for path in paths:
        assert path and (path in title or path in body)
