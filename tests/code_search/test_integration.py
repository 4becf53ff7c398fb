"""End to end with the real offline model: index a Go package with MiniLM, ask in words, get the unit."""

from __future__ import annotations

from pathlib import Path

from servers.code_search.index import CodeIndex
from servers.code_search.indexer import index_repo
from servers.code_search.minilm import MiniLMEmbedder
from servers.code_search.search import Searcher


def test_minilm_hybrid_search_finds_units_described_in_words(shapes: Path, tmp_path: Path) -> None:
    embedder = MiniLMEmbedder()
    index = CodeIndex(tmp_path / "db", embedder.model_id, embedder.dim, create=True)
    report = index_repo(index, embedder, shapes, "shapes")
    assert report.embedded == report.chunks > 10
    searcher = Searcher(index, embedder)
    views = index.views(["shapes"])
    cases = {
        "how long is the edge around a circle": "shapes.Circle.Perimeter",
        "reject a negative radius when making a circle": "shapes.NewCircle",
        "split a header line at the colon": "shapes.parseHTTPHeader",
        "which unit of length is the default": "ADR 1: Units of length > Decision",
    }
    for query, expected in cases.items():
        for mode in ("hybrid", "vector"):
            assert searcher.search(query, views, k=1, mode=mode)[0].symbol == expected, (query, mode)
