"""Benchmark 5: bug localization on real Go history (the set from code_search_bugs_build.py).

    .venv/bin/python bench/code_search_bugs.py [--limit N] [--embedder minilm|static] [--db NAME] [--save NAME]

Per repository, in date order, the index is brought to each fix's parent commit incrementally
(as production would), then the fix's query is run. Reported over the identifier-stripped queries
(and, for reference, the raw messages): file recall@5, file MRR@10 and function recall@10 for
hybrid, full-text only and vector only, against plain BM25 over whole files of the same commit.
The index holds non-test .go files (gold is non-test code); each query searches its own repo.
The embedding cache (content hash -> vector) is kept between runs; everything else is rebuilt.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import time
from collections import Counter, defaultdict

from code_search_bugs_build import OUT, mirror
from code_search_common import WORK, save

from servers.code_search.embed import make_embedder
from servers.code_search.index import CodeIndex
from servers.code_search.indexer import index_repo
from servers.code_search.search import Mode, Searcher
from servers.code_search.source import SkipRules, snapshot

RULES = SkipRules(skip_dirs=("vendor", "testdata", ".git"), extensions=(".go",), include_tests=False)
MODES: tuple[Mode, ...] = ("hybrid", "fts", "vector")
# Ranking changes are tuned on the dev repos; the held-out ones are the check (figures reported per split).
SPLITS = {"dev": ("mux", "logrus", "viper"), "held_out": ("bbolt", "zap")}
_WORD = re.compile(r"[a-z0-9_]+")


def bm25_files(files: dict[str, str], query: str, k1: float = 1.2, b: float = 0.75) -> list[str]:
    """Plain BM25 over whole files (lower-cased words, no identifier splitting): the baseline."""
    docs = {p: Counter(_WORD.findall(t.lower())) for p, t in files.items()}
    n = len(docs)
    avg = sum(sum(c.values()) for c in docs.values()) / max(n, 1)
    df: Counter[str] = Counter()
    for counts in docs.values():
        df.update(counts.keys())
    terms = _WORD.findall(query.lower())
    scores: dict[str, float] = {}
    for path, counts in docs.items():
        length = sum(counts.values())
        score = 0.0
        for term in terms:
            tf = counts.get(term, 0)
            if tf:
                idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
                score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avg))
        scores[path] = score
    return sorted(scores, key=lambda p: -scores[p])


def file_metrics(ranked: list[str], gold: list[str]) -> tuple[float, float]:
    recall5 = len(set(ranked[:5]) & set(gold)) / len(gold)
    rr = next((1.0 / (i + 1) for i, p in enumerate(ranked[:10]) if p in gold), 0.0)
    return recall5, rr


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=0, help="Only the first N commits (smoke test).")
    parser.add_argument("--embedder", default="minilm", choices=("minilm", "static"))
    parser.add_argument("--db", default="bugs-db", help="Index directory name under the bench work dir.")
    parser.add_argument("--save", default="bench5_bugs", help="Result file name under bench/data/code_search.")
    args = parser.parse_args()
    rows = [json.loads(line) for line in OUT.read_text().splitlines()]
    rows = rows[: args.limit] if args.limit else rows
    db = WORK / args.db
    for table in db.glob("*.lance") if db.exists() else []:
        if not table.name.endswith("__vectors.lance"):  # the embedding cache survives runs, as in production
            shutil.rmtree(table)
    embedder = make_embedder(args.embedder)
    index = CodeIndex(db, embedder.model_id, embedder.dim, create=True)
    searcher = Searcher(index, embedder)
    sums: dict[str, defaultdict[str, float]] = {v: defaultdict(float) for v in ("query", "query_raw")}
    per_split: dict[str, defaultdict[str, float]] = {s: defaultdict(float) for s in SPLITS}  # hybrid, stripped queries
    n_funcs = 0
    index_s = embedded = 0.0
    started = time.perf_counter()
    for number, row in enumerate(rows, start=1):
        source = mirror(row["github"])
        t0 = time.perf_counter()
        report = index_repo(index, embedder, source, row["repo"], row["parent"], rules=RULES)
        index_s += time.perf_counter() - t0
        embedded += report.embedded
        views = index.views([row["repo"]])
        snap = snapshot(source, row["parent"], RULES)
        files = {p: d.decode("utf-8", errors="replace") for p, d in snap.read(sorted(snap.files))}
        gold_funcs = set(row["gold_functions"])
        n_funcs += bool(gold_funcs)
        for variant in ("query", "query_raw"):
            acc = sums[variant]
            r5, rr = file_metrics(bm25_files(files, row[variant]), row["gold_files"])
            acc["bm25_files.r5"] += r5
            acc["bm25_files.mrr"] += rr
            for mode in (*MODES, "hybrid_funcs"):
                if mode == "hybrid_funcs":  # as an agent asks for code: kinds=[func, method]
                    hits = searcher.search(row[variant], views, k=50, kinds=["func", "method"])
                else:
                    hits = searcher.search(row[variant], views, k=50, mode=mode)
                ranked = list(dict.fromkeys(h.path for h in hits))
                r5, rr = file_metrics(ranked, row["gold_files"])
                acc[f"{mode}.r5"] += r5
                acc[f"{mode}.mrr"] += rr
                fr10 = 0.0
                if gold_funcs:
                    top = list(dict.fromkeys(f"{h.path}::{h.symbol}" for h in hits))[:10]
                    fr10 = len(set(top) & gold_funcs) / len(gold_funcs)
                    acc[f"{mode}.fr10"] += fr10
                if variant == "query" and mode in ("hybrid", "hybrid_funcs"):
                    split = next(s for s, repos in SPLITS.items() if row["repo"] in repos)
                    part = per_split[split]
                    for name, value in ((f"{mode}.r5", r5), (f"{mode}.mrr", rr), (f"{mode}.fr10", fr10)):
                        part[name] += value  # summed over the split's commits
                    part["n"] += mode == "hybrid"
                    part["n_funcs"] += mode == "hybrid" and bool(gold_funcs)
        if number % 10 == 0:
            print(f"{number}/{len(rows)} commits, index {index_s:.0f}s, {embedded:.0f} embedded", flush=True)
    n = len(rows)
    result: dict[str, object] = {
        "embedder": embedder.model_id,
        "commits": n,
        "with_gold_functions": n_funcs,
        "index_seconds": round(index_s, 1),
        "embedded_chunks": int(embedded),
        "total_seconds": round(time.perf_counter() - started),
    }
    for variant, acc in sums.items():
        table = {}
        for name in ("hybrid", "hybrid_funcs", "fts", "vector", "bm25_files"):
            entry = {"file_recall@5": round(acc[f"{name}.r5"] / n, 3), "file_mrr@10": round(acc[f"{name}.mrr"] / n, 3)}
            if name != "bm25_files":
                entry["function_recall@10"] = round(acc[f"{name}.fr10"] / max(n_funcs, 1), 3)
            table[name] = entry
        result[variant] = table
    for split, part in per_split.items():
        result[f"query:{split}"] = {
            name: {
                "file_recall@5": round(part[f"{name}.r5"] / max(part["n"], 1), 3),
                "file_mrr@10": round(part[f"{name}.mrr"] / max(part["n"], 1), 3),
                "function_recall@10": round(part[f"{name}.fr10"] / max(part["n_funcs"], 1), 3),
            }
            for name in ("hybrid", "hybrid_funcs")
        }
    print(json.dumps(result, indent=2))
    print(f"saved {save(args.save, result)}")


if __name__ == "__main__":
    main()
