"""Deterministic ticket reading: what a ticket names, and that any text is read without an error."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.chains.extract import TicketText, extract_facts

TRACE = """Since v1.8 the service crashes. See mux.go and internal/auth/token.go:42.

panic: runtime error: invalid memory address or nil pointer dereference

goroutine 7 [running]:
github.com/gorilla/mux.(*Router).ServeHTTP.func1(0xc0000a2000, {0x7f1, 0xc0000b4000})
\t/home/u/go/pkg/mod/github.com/gorilla/mux@v1.8.0/mux.go:210 +0x2c5
net/http.serverHandler.ServeHTTP({0xc000090000?}, {0x7f1, 0xc0000b4000}, 0xc0000c8000)
\t/usr/local/go/src/net/http/server.go:2936 +0x316

Expected: a 404, not a crash. TestRouterNotFound fails; parseHTTPHeader() is fine.
Error: "route not found for path /x"
"""


def test_a_ticket_with_a_traceback_yields_frames_errors_names_paths_and_tests() -> None:
    facts = extract_facts(TicketText(title="Router.ServeHTTP panics when NotFoundHandler is nil", body=TRACE))
    assert [(f.symbol, f.file, f.line) for f in facts.frames] == [
        ("mux.Router.ServeHTTP", "mux.go", 210),
        ("http.serverHandler.ServeHTTP", "http/server.go", 2936),
    ]
    assert facts.errors == [
        "runtime error: invalid memory address or nil pointer dereference",
        "route not found for path /x",
    ]
    assert facts.identifiers[:2] == ["mux.Router.ServeHTTP", "Router.ServeHTTP"]
    assert {"parseHTTPHeader", "NotFoundHandler"} <= set(facts.identifiers)
    assert not any("func1" in i or i.startswith("http.") for i in facts.identifiers)  # frames are not prose
    assert facts.paths == ["mux.go", "internal/auth/token.go"]
    assert facts.tests == ["TestRouterNotFound"]
    assert facts.symptoms[0] == "Router.ServeHTTP panics when NotFoundHandler is nil"
    assert "Expected: a 404, not a crash." in facts.symptoms


def test_prose_with_dots_and_urls_names_no_code() -> None:
    facts = extract_facts(TicketText(title="Docs", body="See https://example.com/docs/a.md, e.g. the file.txt notes."))
    assert facts.identifiers == [] and facts.frames == [] and facts.paths == []


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=2000), st.text(max_size=200))
def test_any_text_is_read_without_error_into_bounded_lists(body: str, title: str) -> None:
    facts = extract_facts(TicketText(title=title, body=body))
    assert len(facts.frames) <= 12 and len(facts.errors) <= 6 and len(facts.identifiers) <= 24
    assert len(facts.paths) <= 12 and len(facts.symptoms) <= 4 and len(facts.tests) <= 12
    assert all(len(e) <= 300 for e in facts.errors)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.from_regex(r"[a-z]{2,8}(/[a-z]{2,8}){0,2}\.(\(\*[A-Z][a-z]{1,6}\)\.)?[A-Z][a-z]{1,8}", fullmatch=True),
        min_size=1,
        max_size=5,
    )
)
def test_every_well_formed_frame_is_found(calls: list[str]) -> None:
    trace = "".join(f"{c}(0x1, 0x2)\n\t/src/x/file{i}.go:{i + 1} +0x1f\n" for i, c in enumerate(calls))
    facts = extract_facts(TicketText(title="crash", body=trace))
    assert [f.line for f in facts.frames] == list(range(1, len(calls) + 1))
    assert [f.function for f in facts.frames] == [c.rsplit(".", 1)[-1] for c in calls]
    assert [f.receiver for f in facts.frames] == [c.split("(*")[1].split(")")[0] if "(*" in c else None for c in calls]


TEMPLATE = """<!-- Check the man page first: "see the error message section below" -->

- [x] I have read through the manual page (`man fzf`)
- [ ] I have searched through the existing issues
* [x] Error: "checked the box for errors"

## Info

The preview window stays blank when the command fails with "exit status 127 from preview".
Error: preview command not found
"""


def test_template_comments_and_checklists_give_no_errors_or_symptoms() -> None:
    facts = extract_facts(TicketText(title="Preview window is blank", body=TEMPLATE))
    assert facts.errors == ["preview command not found", "exit status 127 from preview"]
    assert not any("man fzf" in s or "checked the box" in s or "error message section" in s for s in facts.symptoms)
    assert "The preview window stays blank when the command fails with" in " ".join(facts.symptoms)
