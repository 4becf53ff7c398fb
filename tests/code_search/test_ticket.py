"""Ticket reading: the template and the reporter's setup are dropped; title, prose, code, logs and linked paths kept."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from servers.code_search.query import MAX_FTS_WORDS, parse_query
from servers.code_search.ticket import is_ticket, log_message, read_ticket

GO_TEMPLATE = """x/tools/gopls: hover panics on a generic alias

<!--
Please answer these questions before submitting your issue. Thanks!
-->

### What version of Go are you using (`go version`)?

<pre>
$ go version
go version go1.22.1 linux/amd64
</pre>

### Does this issue reproduce with the latest release?

Yes, with v0.15.2 as well.

### What operating system and processor architecture are you using (`go env`)?

<details><summary><code>go env</code> Output</summary><br><pre>
GO111MODULE=''
GOARCH='amd64'
GOFLAGS=''
</pre></details>

### What did you do?

Hovered over `Set[int]` where Set is declared as a type alias of a generic map.
See https://github.com/golang/tools/blob/0123abc/gopls/internal/golang/hover.go#L120 for the code.

### What did you expect to see?

The alias's documentation.

### What did you see instead?

```
2024/03/01 10:11:12 ERROR hover failed: unexpected nil type for alias
panic: runtime error: invalid memory address or nil pointer dereference
```

- [x] I searched existing issues
"""


def test_a_go_issue_template_keeps_what_the_reporter_wrote() -> None:
    ticket = read_ticket(GO_TEMPLATE)
    assert ticket.title == "x/tools/gopls: hover panics on a generic alias"
    assert "Hovered over `Set[int]` where Set is declared as a type alias of a generic map." in ticket.prose
    assert "The alias's documentation." in ticket.prose
    for gone in ("v0.15.2", "GOARCH", "go1.22.1", "Please answer", "searched existing", "What did you", "github.com"):
        assert gone not in ticket.prose, gone
    assert ticket.paths == ["gopls/internal/golang/hover.go"]
    assert ticket.logs == ["hover failed: unexpected nil type for alias"]
    assert any("panic: runtime error" in block for block in ticket.code)
    assert len(ticket.dropped_sections) == 3


def test_a_parsed_ticket_takes_names_from_what_it_kept_only() -> None:
    parsed = parse_query(GO_TEMPLATE)
    assert parsed.ticket is not None
    assert "GOARCH" not in parsed.identifiers and "GO111MODULE" not in parsed.identifiers
    assert "gopls/internal/golang/hover.go" in parsed.paths
    assert parsed.logs == ["hover failed: unexpected nil type for alias"]
    assert "runtime error: invalid memory address or nil pointer dereference" in parsed.errors
    assert parsed.title_text.split() == ["x", "tools", "gopls", "hover", "panics", "generic", "alias"]
    assert "goarch" not in parsed.fts_text.split()


def test_a_filed_report_is_told_from_a_long_commit_message() -> None:
    assert parse_query(GO_TEMPLATE).report
    message = "Fix the lease renewal loop\n\n" + "The keepalive goroutine stops renewing when the server restarts. " * 6
    parsed = parse_query(message)
    assert parsed.ticket is not None and not parsed.report


def test_short_queries_are_not_tickets() -> None:
    assert not is_ticket("Router.Match ignores the host")
    assert parse_query("Router.Match ignores the host").ticket is None
    assert is_ticket("a title\n\nsome words about a bug that happens\nwhen the router matches a host with a port")


def test_a_long_ticket_gives_each_word_once_and_at_most_the_cap() -> None:
    words = " ".join(f"word{i} word{i}" for i in range(400))
    fts = parse_query(f"title here\n\n{words}").fts_text.split()
    assert len(fts) == MAX_FTS_WORDS and len(set(fts)) == len(fts)


def test_log_lines_of_common_formats_give_their_message() -> None:
    assert log_message("2023-05-01T10:00:00.123Z INFO server started on port") == "server started on port"
    assert log_message('time="2023-05-01T10:00:00Z" level=error msg="cannot load config" err=EOF') == (
        "cannot load config EOF"
    )
    assert log_message('{"level":"error","msg":"dial tcp failed","ts":1.5}') == "dial tcp failed"
    assert log_message("E0501 10:00:00.123456   12345 controller.go:88] sync failed for pod") == ("sync failed for pod")
    assert log_message("[ERROR] upstream connection refused") == ""  # no timestamp: not recognisably a log line
    assert log_message("just a sentence about logs") == ""


_KEEP = ["What did you do?", "Steps to reproduce", "Expected behavior", "Actual behavior", "Description"]
_DROP = ["What version of Go are you using?", "Environment", "Operating system", "Checklist", "Client version"]
_SENTENCE = st.lists(st.sampled_from(["alpha", "beta", "gamma", "delta", "router", "cache", "flush"]), min_size=3)


@settings(max_examples=60, deadline=None)
@given(
    sections=st.lists(st.tuples(st.sampled_from(_KEEP + _DROP), _SENTENCE, st.integers(1, 6)), min_size=1, max_size=6)
)
def test_kept_sections_survive_and_dropped_ones_do_not(sections: list[tuple[str, list[str], int]]) -> None:
    parts = ["the title of the ticket", ""]
    expected_kept, expected_dropped = [], []
    for n, (heading, words, level) in enumerate(sections):
        body = " ".join([*words, f"marker{n}"])
        parts += [f"{'#' * level} {heading}", body, ""]
        (expected_dropped if heading in _DROP else expected_kept).append(f"marker{n}")
    ticket = read_ticket("\n".join(parts))
    prose = set(re.findall(r"\w+", ticket.prose))
    assert ticket.title == "the title of the ticket"
    assert all(m in prose for m in expected_kept)
    assert not any(m in prose for m in expected_dropped)
    assert not any(h in ticket.prose for h, _, _ in sections)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=3000))
def test_reading_never_fails_and_invents_no_words(text: str) -> None:
    ticket = read_ticket(text)
    source = set(re.findall(r"\w+", text))
    for part in (ticket.title, ticket.prose, *ticket.logs, *ticket.code):
        assert set(re.findall(r"\w+", part)) <= source
    parsed = parse_query(text)
    assert len(parsed.fts_text.split()) <= max(MAX_FTS_WORDS, len(text))
