"""Tickets and the tests in the index: a test that matches a ticket counts less and points at the code it tests."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servers.code_search.model import Hit
from servers.code_search.query import parse_query
from servers.code_search.search import (
    REPORT_WEIGHTS,
    RRF_K,
    TEST_WEIGHT,
    TICKET_WEIGHTS,
    WEIGHTS,
    Candidates,
    files_under_test,
    fuse,
    rank,
    subjects_of_tests,
)

TICKET = (
    "Exact match cannot be turned off in extended-exact mode\n\n### Steps to reproduce\n\n"
    "Start the finder in extended-exact mode and prefix a word with a quote. The word is still matched "
    "exactly, while the documentation says the quote toggles between fuzzy and exact matching for that "
    "word. Every other option of the mode works as described, and the same input in extended mode "
    "behaves as expected."
)


def unit(path: str, symbol: str, kind: str = "func", start: int = 1) -> Hit:
    return Hit("r", path, start, start + 5, symbol, kind, "", "", 100)


def test_a_test_names_its_file_and_the_function_its_name_starts_with() -> None:
    units = {
        "t1": unit("src/pattern_test.go", "fzf.TestParseTermsExtended"),
        "t2": unit("src/terminal_test.go", "fzf.TestTerminal_Loop"),
        "t3": unit("src/algo/algo_test.go", "algo.TestHelper"),
        "parse": unit("src/options.go", "fzf.parse"),  # a shorter prefix of the test's name: not the one named
        "terms": unit("src/options.go", "fzf.parseTerms", start=20),
        "build": unit("src/pattern.go", "fzf.BuildPattern"),
        "loop": unit("src/terminal_unix.go", "fzf.Terminal.Loop", kind="method"),
        "other_pkg": unit("src/util/util.go", "util.parseTerms"),  # another package: never a subject
    }
    subjects = subjects_of_tests(units)
    # pattern_test.go tests pattern.go (all of its units here), and its name names parseTerms (not parse).
    assert subjects["t1"] == ["build", "terms"]
    assert subjects["t2"] == ["loop"]  # TestType_Method names the method
    assert "t3" not in subjects  # no algo.go unit and no unit named Helper among the candidates


def test_a_ticket_lifts_the_code_a_matching_test_exercises_above_the_test() -> None:
    test = unit("src/pattern_test.go", "fzf.TestParseTermsExtended")
    code = unit("src/pattern.go", "fzf.parseTerms")
    others = [unit(f"src/f{i}.go", f"fzf.F{i}") for i in range(6)]
    lists = {"fts": [test, *others, code], "vector": [test, *others, code], "title": [test, *others, code]}
    plain = [h.path for h in fuse(lists, 10)]
    assert plain[0] == "src/pattern_test.go" and plain.index("src/pattern.go") == 7
    ticket = [h.path for h in fuse(lists, 10, weights=TICKET_WEIGHTS)]
    assert ticket[0] == "src/pattern.go"  # the test's evidence (and its own weight) moved to the code it tests
    assert ticket.index("src/pattern_test.go") > 1
    reported = [h.path for h in fuse(lists, 10, weights=REPORT_WEIGHTS)]
    assert reported[0] == "src/pattern.go"


def test_without_test_units_the_ticket_weights_change_nothing() -> None:
    hits = [unit(f"src/f{i}.go", f"fzf.F{i}") for i in range(8)]
    lists = {"fts": hits, "vector": list(reversed(hits)), "title": hits[2:]}
    same = {k: v for k, v in TICKET_WEIGHTS.items() if k in WEIGHTS}
    assert [h.key for h in fuse(lists, 8, weights=TICKET_WEIGHTS)] == [h.key for h in fuse(lists, 8, weights=same)]


def test_only_tickets_weigh_tests_down() -> None:
    test = unit("src/pattern_test.go", "fzf.TestExact")
    code = unit("src/zzz.go", "fzf.Other")
    found = Candidates({"fts": [test, code], "vector": [test, code]}, [])
    assert parse_query(TICKET).report and not parse_query("exact match toggle").report
    assert rank(parse_query("exact match toggle"), found, 2)[0].path == "src/pattern_test.go"
    assert rank(parse_query(TICKET), found, 2)[0].path == "src/zzz.go"


def test_a_test_the_ticket_names_keeps_its_exact_match() -> None:
    test = unit("internal/auth/handler_test.go", "auth.TestHandlerUnknownToken")
    code = unit("internal/auth/token.go", "auth.Lookup")
    lists = {"fts": [test, code], "vector": [test, code]}
    similar = 2 / (RRF_K + 1)
    plain = {h.symbol: h.score for h in fuse(lists, 2, weights=TICKET_WEIGHTS)}
    assert plain["auth.TestHandlerUnknownToken"] == pytest.approx(TEST_WEIGHT * similar, abs=1e-6)
    # The name match is not weighed down: only what the test shares with the ticket's words is.
    named = fuse({**lists, "symbol": [test]}, 2, weights=TICKET_WEIGHTS)
    by_name = {h.symbol: h.score for h in named}
    assert by_name["auth.TestHandlerUnknownToken"] == pytest.approx(TEST_WEIGHT * similar + 1 / (RRF_K + 1), abs=1e-6)


def test_a_test_the_ticket_names_keeps_its_whole_weight() -> None:
    test = unit("src/pattern_test.go", "fzf.TestExact")
    code = unit("src/zzz.go", "fzf.Other")
    found = Candidates({"fts": [test, code], "vector": [test, code]}, [])
    naming = parse_query(TICKET + " TestExact covers it and fails today.")
    assert "TestExact" in naming.identifiers
    assert rank(naming, found, 2)[0].symbol == "fzf.TestExact"
    assert rank(parse_query(TICKET), found, 2)[0].symbol == "fzf.Other"


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a/x.go", "a/x_test.go", "a/y_test.go", "b/x.go", "b/x_test.go", "z_test.go", "z.go"]),
            st.from_regex(r"(Test|Benchmark|Fuzz|Example)?[A-Za-z_]{0,12}", fullmatch=True),
        ),
        max_size=30,
    )
)
def test_a_test_is_evidence_only_for_code_of_its_own_directory(rows: list[tuple[str, str]]) -> None:
    units = {f"{i}": unit(path, f"p.{name or 'f'}") for i, (path, name) in enumerate(rows)}
    for test, subjects in subjects_of_tests(units).items():
        assert units[test].path.endswith("_test.go")
        for subject in subjects:
            assert not units[subject].path.endswith("_test.go")
            assert units[subject].path.rpartition("/")[0] == units[test].path.rpartition("/")[0]


def test_a_test_file_ranked_as_a_whole_lifts_the_file_it_tests() -> None:
    files = [("r", "src/pattern_test.go"), ("r", "src/core.go"), ("r", "src/pattern.go"), ("r", "src/x_test.go")]
    assert files_under_test(files) == [("r", "src/pattern.go"), ("r", "src/core.go"), ("r", "src/x.go")]
    code, other = unit("src/pattern.go", "fzf.parseTerms"), unit("src/core.go", "fzf.Run")
    lists = {"fts": [other, code]}
    ranked = [("r", "src/pattern_test.go")]
    assert fuse(lists, 2, files=ranked)[0].symbol == "fzf.Run"  # without test weights the test file's rank is its own
    assert fuse(lists, 2, files=ranked, weights=REPORT_WEIGHTS)[0].symbol == "fzf.parseTerms"
