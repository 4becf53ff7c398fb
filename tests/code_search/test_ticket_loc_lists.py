"""The extra whole-file lists of bench/ticket_loc_lists.py, on an in-memory commit (no mirror needed)."""

from __future__ import annotations

from typing import Any

from servers.code_search.model import Hit
from tests.code_search.test_ticket_localization import load

lists = load("ticket_loc_lists")

TEXT = {
    "cache/store.go": "package cache\n\nfunc Evict(key string) { purgeEntry(key) }\n",
    "cache/lru.go": "package cache\n\nfunc purgeEntry(key string) { lruList.remove(key) }\n",
    "cache/lru_test.go": 'package cache\n\nfunc TestEvict(t *testing.T) { Evict("eviction") }\n',
    "http/server.go": "package http\n\nfunc Serve() { listenSocket() }\n",
    "http/listen.go": "package http\n\n// listenSocket opens the server socket\nfunc listenSocket() {}\n",
}


def state() -> Any:
    repo = lists.Repo()
    repo.key = ("acme/svc", "abc")
    repo.text = dict(TEXT)
    return repo


def hit(path: str, symbol: str, score: float) -> Hit:
    return Hit("acme/svc", path, 3, 3, symbol, "function", "", "", 10, score=score)


RECORD = {"stripped": {"query": "the cache keeps entries after evict"}}


def test_package_lists_other_files_beside_the_top_hits_by_bm25() -> None:
    units = [hit("cache/store.go", "Evict", 1.0), hit("cache/lru_test.go", "TestEvict", 0.9)]
    # store.go is the top file, so it is left out; its test file is never listed; http/ is not beside it.
    assert lists.package(state(), RECORD, units) == ["cache/lru.go"]


def test_prf_expands_the_query_with_the_top_files_terms() -> None:
    units = [hit("http/server.go", "Serve", 1.0)]
    record = {"stripped": {"query": "serve"}}
    ranked = lists.prf(state(), record, units)
    # "serve" alone matches server.go; its terms (listen, socket) bring listen.go in, and nothing else.
    assert ranked[0] == "http/server.go"
    assert set(ranked) == {"http/server.go", "http/listen.go"}


def test_lists_are_empty_for_an_empty_query() -> None:
    units = [hit("cache/store.go", "Evict", 1.0)]
    record = {"stripped": {"query": ""}}
    assert lists.prf(state(), record, units) == []
    assert lists.package(state(), record, units) == []


def test_fused_lifts_every_unit_of_a_listed_file() -> None:
    units = [hit("a.go", "A", 0.020), hit("b.go", "B", 0.019)]
    files, funcs = lists.fused(units, ["b.go"], 1.0)
    assert files == ["b.go", "a.go"]
    assert funcs[0] == "b.go::B"
    assert lists.fused(units, ["b.go"], 0.0)[0] == ["a.go", "b.go"]


def test_field_lists_rank_files_by_their_string_literals_or_their_comments() -> None:
    repo = state()
    repo.text["cli/flags.go"] = 'package cli\n\nvar help = "evict every entry when the cache is full" // flags\n'
    repo.text["cli/doc.go"] = "package cli\n\n// Entries are evicted when the cache is full.\nfunc Doc() {}\n"
    repo.text["cli/flags_test.go"] = 'package cli\n\nvar want = "evict every entry when the cache is full"\n'
    record = {"stripped": {"query": "the cache is full"}}
    assert lists.literals(repo, record, []) == ["cli/flags.go"]  # the test file says it too, but is not listed
    assert lists.comments(repo, record, [])[0] == "cli/doc.go"
