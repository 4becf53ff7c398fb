"""Benchmark 4: retrieval quality, CodeSearchNet style — doc comments as queries, docs removed from the index.

    .venv/bin/python bench/code_search_quality.py [--queries 300]

Five pinned modules are indexed without doc comments (non-test .go files). Each query is the doc
comment of a documented func/method (comment markers dropped, and the leading symbol name dropped
too, since Go doc comments start with it); the gold is that unit. Reported: unit-level MRR@10 and
recall@5 for full-text only, vector only and hybrid, and file-level MRR@10 / recall@5 for them and
for the baseline — plain BM25 over whole files (doc comments removed as well), in the same run.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil

from code_search_bugs import bm25_files
from code_search_common import WORK, checkout, save

from servers.code_search.chunker import GoChunker, GoOptions
from servers.code_search.index import CodeIndex
from servers.code_search.indexer import index_repo
from servers.code_search.minilm import MiniLMEmbedder
from servers.code_search.model import Chunk
from servers.code_search.search import Mode, Searcher
from servers.code_search.source import SkipRules, snapshot

MODULES = ["github.com/gorilla/mux@v1.8.1", "github.com/sirupsen/logrus@v1.9.3", "github.com/spf13/cobra@v1.8.1",
           "go.uber.org/zap@v1.27.0", "go.etcd.io/bbolt@v1.3.11"]  # fmt: skip
RULES = SkipRules(extensions=(".go",), include_tests=False)
NO_DOCS = GoOptions(include_doc=False)
_COMMENT = re.compile(r"^\s*//\s?", re.M)  # comment markers, to turn a doc comment into a query


def strip_docs(text: str, units: list[Chunk]) -> str:
    """The file without its doc comments (the baseline must not see them either); other comments stay."""
    lines = text.split("\n")
    for unit in units:
        if unit.doc and unit.part <= 1:
            for row in range(unit.start_line - 1, unit.start_line - 1 + unit.doc.count("\n") + 1):
                lines[row] = ""
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    db = WORK / "quality-db"
    shutil.rmtree(db, ignore_errors=True)
    embedder = MiniLMEmbedder()
    index = CodeIndex(db, embedder.model_id, embedder.dim, create=True)
    items = []  # (repo, path, symbol, query)
    files: dict[str, dict[str, str]] = {}
    for module in MODULES:
        repo_dir = checkout(module)
        name = module.split("@")[0].rsplit("/", 1)[-1]
        report = index_repo(index, embedder, repo_dir, name, rules=RULES, go_options=NO_DOCS)
        print(f"{name}: {report.chunks} chunks ({report.embedded} embedded) in {report.seconds:.0f}s", flush=True)
        snap = snapshot(repo_dir, None, RULES)
        files[name] = {}
        for path, data in snap.read(sorted(snap.files)):
            text = data.decode("utf-8", errors="replace")
            units = GoChunker(NO_DOCS).chunk(path, data) or []
            files[name][path] = strip_docs(text, units)
            for unit in units:
                doc = " ".join(_COMMENT.sub("", unit.doc).split())
                short = unit.symbol.rsplit(".", 1)[-1]
                doc = re.sub(rf"^(A |An |The )?{re.escape(short)}\b\s*", "", doc)
                if unit.kind in ("func", "method") and unit.part <= 1 and len(doc.split()) >= 5:
                    items.append((name, path, unit.symbol, doc))
    rng = random.Random(5)
    sample = rng.sample(items, min(args.queries, len(items)))
    searcher = Searcher(index, embedder)
    acc: dict[str, float] = {}
    for repo, path, symbol, query in sample:
        views = index.views([repo])
        for mode in ("hybrid", "fts", "vector"):
            run: Mode = mode  # type: ignore[assignment]
            hits = searcher.search(query, views, k=50, mode=run)
            units = list(dict.fromkeys((h.path, h.symbol) for h in hits))
            rank = next((i + 1 for i, u in enumerate(units[:10]) if u == (path, symbol)), 0)
            acc[f"{mode}.unit_mrr@10"] = acc.get(f"{mode}.unit_mrr@10", 0) + (1 / rank if rank else 0)
            acc[f"{mode}.unit_recall@5"] = acc.get(f"{mode}.unit_recall@5", 0) + (1 if 0 < rank <= 5 else 0)
            _file_metrics(acc, mode, list(dict.fromkeys(h.path for h in hits)), path)
        _file_metrics(acc, "bm25_files", bm25_files(files[repo], query), path)
    n = len(sample)
    result = {"queries": n, "candidates": len(items), "modules": MODULES,
              "metrics": {k: round(v / n, 3) for k, v in sorted(acc.items())}}  # fmt: skip
    print(json.dumps(result, indent=2))
    print(f"saved {save('bench4_quality', result)}")


def _file_metrics(acc: dict[str, float], name: str, ranked: list[str], gold: str) -> None:
    rank = next((i + 1 for i, p in enumerate(ranked[:10]) if p == gold), 0)
    acc[f"{name}.file_mrr@10"] = acc.get(f"{name}.file_mrr@10", 0) + (1 / rank if rank else 0)
    acc[f"{name}.file_recall@5"] = acc.get(f"{name}.file_recall@5", 0) + (1 if 0 < rank <= 5 else 0)


if __name__ == "__main__":
    main()
