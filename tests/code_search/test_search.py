"""Hybrid search: code-aware full text, names from the query first, access as a prefilter, budget packing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servers.code_search.embed import HashingEmbedder
from servers.code_search.filters import RepoView, narrow, visible
from servers.code_search.index import CodeIndex
from servers.code_search.indexer import index_repo
from servers.code_search.model import Hit, code_text, split_identifier
from servers.code_search.query import MAX_QUERY_CHARS, parse_query
from servers.code_search.search import Searcher, frame_hits, fuse, pack

TRACE = """panic: runtime error: index out of range [3] with length 3

goroutine 7 [running]:
example.com/shapes.(*Circle).Area(0xc000012345)
\t/build/src/shapes/shapes.go:33 +0x1d
example.com/shapes.NewCircle(...)
\t/build/src/shapes/shapes.go:40
main.main()
\t/build/src/main.go:9 +0x25
"""


@pytest.fixture
def searcher(shapes: Path, index: CodeIndex, hashing: HashingEmbedder) -> Searcher:
    index_repo(index, hashing, shapes, "shapes")
    return Searcher(index, hashing)


def test_identifiers_are_split_for_full_text() -> None:
    assert split_identifier("parseHTTPHeader") == ["parse", "http", "header"]
    assert split_identifier("new_conn2") == ["new", "conn", "2"]
    assert code_text("x := parseHTTPHeader(l)") == "x parsehttpheader parse http header l"


def test_words_find_an_identifier_by_its_parts(searcher: Searcher) -> None:
    hits = searcher.search("parse http header", searcher.index.views(), k=3, mode="fts")
    assert hits[0].symbol == "shapes.parseHTTPHeader"


def test_a_ticket_that_names_a_function_finds_it_first(searcher: Searcher) -> None:
    hits = searcher.search("NewCircle accepts a negative radius sometimes", searcher.index.views(), k=5)
    assert hits[0].symbol == "shapes.NewCircle"
    hits = searcher.search("Circle.Perimeter is off by a factor", searcher.index.views(), k=5)
    assert hits[0].symbol == "shapes.Circle.Perimeter"


def test_a_stack_trace_finds_its_frames(searcher: Searcher) -> None:
    parsed = parse_query(TRACE)
    assert [(f.receiver, f.function, f.line) for f in parsed.frames] == [("Circle", "Area", 33), ("", "NewCircle", 40)]
    assert parsed.errors == ["runtime error: index out of range [3] with length 3"]
    top = [h.symbol for h in searcher.search(TRACE, searcher.index.views(), k=3)]
    assert top[:2] == ["shapes.Circle.Area", "shapes.NewCircle"]


def test_kinds_and_path_prefix_narrow_inside_the_query(searcher: Searcher) -> None:
    views = searcher.index.views()
    assert {h.kind for h in searcher.search("circle", views, k=20, kinds=["type"])} == {"type"}
    assert {h.path for h in searcher.search("classify code", views, k=20, path_prefix="internal/")} == {
        "internal/geom/big.go"
    }
    with pytest.raises(ValueError, match="unknown kind"):
        narrow("true", ["nope"])


def test_access_filter_is_a_prefilter_so_top_k_fills_from_allowed_repos(
    make_repo: Callable[[str, dict[str, str]], Path], index: CodeIndex, hashing: HashingEmbedder
) -> None:
    many = "".join(
        f"// Handler{i} handles the widget request number {i}.\nfunc Handler{i}() {{}}\n\n" for i in range(30)
    )
    index_repo(index, hashing, make_repo("public", {"h.go": "package p\n\n" + many}), "public")
    index_repo(
        index, hashing, make_repo("secret", {"s.go": "package s\n\n" + many.replace("Handler", "Secret")}), "secret"
    )
    searcher = Searcher(index, hashing, candidates=10)
    for mode in ("fts", "vector", "hybrid"):
        hits = searcher.search("widget request handler", index.views(["secret"]), k=10, mode=mode)
        assert len(hits) == 10 and {h.repo for h in hits} == {"secret"}, mode
    assert searcher.search("widget", index.views(["missing"]), k=10) == []
    with pytest.raises(ValueError, match="invalid repo"):
        visible([RepoView("x' OR '1'='1", 1, "c")])


def _hit(name: str, tokens: int, kind: str = "func") -> Hit:
    return Hit("r", f"{name}.go", 1, 2, name, kind, "", "", tokens)


def test_pack_fills_the_budget_with_whole_units_in_rank_order() -> None:
    packed = pack([_hit("a", 300), _hit("b", 900), _hit("c", 500), _hit("d", 200)], 1000)
    assert [h.symbol for h in packed.hits] == ["a", "c", "d"] and packed.tokens == 1000 and packed.omitted == 1


def test_fusion_rewards_agreement() -> None:
    a, b, c = _hit("a", 1), _hit("b", 1), _hit("c", 1)
    fused = fuse({"fts": [a, b, c], "vector": [c, b, a], "symbol": [b]}, 3)
    assert [h.symbol for h in fused] == ["b", "a", "c"]


def test_priors_demote_declarations_and_favour_long_units_for_bug_reports() -> None:
    short, long, decl = _hit("short", 20), _hit("long", 800), _hit("decl", 800, kind="type")
    lists = {"fts": [decl, short, long], "vector": [decl, short, long]}
    # A description: declarations count half, length does not matter.
    assert [h.symbol for h in fuse(lists, 3)] == ["short", "long", "decl"]
    # A bug report: longer functions and methods are likelier to hold the fault.
    assert [h.symbol for h in fuse(lists, 3, bug_report=True)] == ["long", "decl", "short"]
    # Exact matches are not weighed: the short function a traceback frame names still leads.
    assert fuse({**lists, "frame": [short]}, 3, bug_report=True)[0].symbol == "short"


def test_bug_report_queries_are_recognised() -> None:
    assert parse_query("Fix panic when the radius is negative").bug_report
    assert parse_query("area is wrong for large circles").bug_report
    assert parse_query(TRACE).bug_report
    assert not parse_query("how long is the edge around a circle").bug_report
    assert not parse_query("prefix matching of routes").bug_report  # words, not substrings


@given(st.text(max_size=300))
def test_query_parser_never_fails_and_caps(text: str) -> None:
    parsed = parse_query(text * 50)
    assert len(parsed.text) <= MAX_QUERY_CHARS and "\0" not in parsed.text
    assert all(i.isidentifier() for i in parsed.identifiers)


def test_ann_index_keeps_the_prefilter_and_the_top_hits(
    make_repo: Callable[[str, dict[str, str]], Path], tmp_path: Path, hashing: HashingEmbedder
) -> None:
    index = CodeIndex(tmp_path / "ann", hashing.model_id, hashing.dim, create=True, ann_min_rows=50)
    funcs = "".join(f"// F{i} handles widget {i % 7} of the store.\nfunc F{i}() {{}}\n\n" for i in range(80))
    index_repo(index, hashing, make_repo("a", {"f.go": "package a\n\n" + funcs}), "a")
    index_repo(index, hashing, make_repo("b", {"f.go": "package b\n\n" + funcs}), "b")
    assert {"vector", "text", "repo"} <= index.indexed_columns()
    where = visible(index.views(["b"]))
    vec = hashing.embed(["widget 3 of the store"])[0]
    ann = index.vector(vec, where, 10)
    exact = index.vector(vec, where, 10, exact=True)
    assert {h.repo for h in ann} == {"b"} and len(ann) == 10
    assert len({h.key for h in ann} & {h.key for h in exact}) >= 8


def test_a_file_ranked_first_as_a_whole_lifts_its_units() -> None:
    loud, quiet = _hit("loud", 100), _hit("quiet", 100)
    quiet.path = "everywhere.go"
    lists = {"fts": [loud, quiet], "vector": [loud, quiet]}
    assert [h.symbol for h in fuse(lists, 2)] == ["loud", "quiet"]
    assert [h.symbol for h in fuse(lists, 2, files=[("r", "everywhere.go")])] == ["quiet", "loud"]


def test_whole_files_are_ranked_by_their_text_inside_the_access_filter(
    make_repo: Callable[[str, dict[str, str]], Path], index: CodeIndex, hashing: HashingEmbedder
) -> None:
    spread = "package p\n\n" + "".join(
        f"// f{i} handles the {w} of the lease\nfunc F{i}() {{}}\n\n"
        for i, w in enumerate(["renewal", "expiry", "keepalive"])
    )
    one = "package p\n\n// G mentions the lease once.\nfunc G() {}\n"
    for name in ("a", "b"):
        index_repo(
            index, hashing, make_repo(name, {"spread.go": spread, "one.go": one, "other.go": "package p\n"}), name
        )
    where = visible(index.views(["a"]))
    ranked = index.file_fts("lease renewal expiry keepalive", where, 10)
    assert [(repo, path) for repo, path, _ in ranked] == [("a", "spread.go"), ("a", "one.go")]
    report = "lease renewal breaks\n\n### What did you see?\n\nthe lease renewal, expiry and keepalive " * 5
    hits = Searcher(index, hashing).search(report, index.views(["a"]), 3)
    assert {h.repo for h in hits} == {"a"}


VALUE_TRACE = """panic: runtime error: invalid memory address or nil pointer dereference

goroutine 1 [running]:
github.com/acme/site/helpers.NewContentSpec({0x26084c0, 0xc0009f2700})
\t/src/helpers/content.go:87 +0x291
github.com/acme/site/hugolib.configLoader.applyDeps({{0x0, 0x0}}, ...)
\t/src/hugolib/hugo_sites.go:519 +0x31e
github.com/acme/site/hugolib.Build.func1()
\t/src/hugolib/build.go:12 +0x1
"""


def _unit(symbol: str, parent: str = "") -> Hit:
    return Hit("r", f"{symbol.split('.')[0]}/x.go", 1, 2, symbol, "func", "", "", 10, parent)


def test_value_receivers_and_closures_in_a_trace_name_their_function() -> None:
    frames = [(f.package, f.receiver, f.function) for f in parse_query(VALUE_TRACE).frames]
    assert frames == [
        ("github.com/acme/site/helpers", "", "NewContentSpec"),
        ("github.com/acme/site/hugolib", "configLoader", "applyDeps"),
        ("github.com/acme/site/hugolib", "", "Build"),  # the closure's enclosing function
    ]


def test_a_frame_matches_only_the_unit_of_its_own_package() -> None:
    parsed = parse_query(TRACE)  # example.com/shapes.NewCircle
    named = [_unit("other.NewCircle"), _unit("shapes.NewCircle"), _unit("shapes.Circle.Area", "shapes.Circle")]
    assert [h.symbol for h in frame_hits(parsed, named)] == ["shapes.Circle.Area", "shapes.NewCircle"]
