"""Ticket localization: find the code a real bug report is about (the set from ticket_loc_build.py).

    .venv/bin/python bench/ticket_localization.py [--split dev|heldout|all] [--repos owner/name ...]
        [--limit N] [--mirrors DIR] [--embedder minilm] [--record FILE]

Each ticket (a GitHub issue of a Go project, linked to the commit that fixed it) is a query; the
gold is the non-test .go files and the functions the fix changed. Per repository, in date order,
code-search's own indexer brings one index to each ticket's base commit (the fix's parent)
incrementally, straight from the git objects of the repository (no work tree is checked out):
non-test .go files (with --include-tests the _test.go files too, as the server's default indexes them),
vendor/ and testdata/ left out. Tickets sharing a base commit share the index
state. Each ticket is run twice: as written (title + description) and with the fix's own
identifiers removed (the `query` field).

Reported per split (dev repositories tune the ranking; held-out ones check it), and per repo:
file recall@5, file MRR@10 and function recall@10 for code-search's hybrid search (k=50, as
`Searcher.search` ranks; files in order of their first hit, functions = distinct `path::symbol`
of the hits) and for the baseline measured in the same run, BM25 over whole files (bm25s,
lower-cased words, k1=1.2, b=0.75). The baseline's functions: the functions and methods of its
files in file-rank order, each file's ranked by BM25 over the commit's function units. Also:
code-search restricted to kinds=[func, method] (how an agent asks for code), query latencies,
and index time. The embedding cache (content hash -> vector) survives runs; the rest of the
index is rebuilt. Results: bench/data/ticket_loc/results.json (a full run) or the bench cache.
With --record, each ticket's gathered lists are appended to FILE for bench/code_search_replay.py.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from code_search_common import WORK, percentile
from ticket_loc_build import DATA, TICKETS, mirror

from servers.code_search.chunker import GoChunker, GoOptions
from servers.code_search.embed import Embedder, make_embedder
from servers.code_search.filters import narrow, visible
from servers.code_search.index import CodeIndex
from servers.code_search.indexer import index_repo
from servers.code_search.model import Hit, code_text
from servers.code_search.query import ParsedQuery, parse_query
from servers.code_search.search import Searcher
from servers.code_search.source import SkipRules, snapshot

RULES = SkipRules(skip_dirs=("vendor", "testdata", ".git"), extensions=(".go",), include_tests=False)
# --include-tests: index the _test.go files too, as the server does by default (what an agent searches);
# the gold and the BM25 baseline stay non-test files.
RULES_WITH_TESTS = SkipRules(skip_dirs=RULES.skip_dirs, extensions=RULES.extensions, include_tests=True)
VARIANTS = {"raw": "query_raw", "stripped": "query"}
METHODS = ("code_search", "code_search_funcs", "bm25_files")
RESULTS = DATA / "results.json"
_WORD = re.compile(r"[a-z0-9_]+")


def words(text: str) -> list[str]:
    """The baseline's tokens: lower-cased runs of letters, digits and underscores (no identifier splitting)."""
    return _WORD.findall(text.lower())


def recall(ranked: list[str], gold: Iterable[str], k: int) -> float:
    wanted = set(gold)
    return len(set(ranked[:k]) & wanted) / len(wanted)


def reciprocal_rank(ranked: list[str], gold: Iterable[str], k: int = 10) -> float:
    wanted = set(gold)
    return next((1.0 / (i + 1) for i, p in enumerate(ranked[:k]) if p in wanted), 0.0)


class Bm25Files:
    """BM25 over the whole files of one commit, and over its function units for the function ranking."""

    def __init__(self, files: dict[str, str], units: dict[str, list[tuple[str, str]]]) -> None:
        import bm25s  # the baseline's library: only the benchmark needs it

        self.paths = sorted(files)
        self.files = bm25s.BM25(k1=1.2, b=0.75)
        self.files.index([words(files[p]) for p in self.paths], show_progress=False)
        self.unit_ids = [(p, s) for p in self.paths for s, _ in units.get(p, [])]
        self.units = bm25s.BM25(k1=1.2, b=0.75)
        texts = [t for p in self.paths for _, t in units.get(p, [])]
        self.units.index([words(t) for t in texts] or [[]], show_progress=False)

    def rank(self, query: str) -> tuple[list[str], list[str]]:
        """(files, functions) in rank order for `query`."""
        tokens = words(query)
        scores = self.files.get_scores(tokens)
        order = sorted(range(len(self.paths)), key=lambda i: (-scores[i], self.paths[i]))
        files = [self.paths[i] for i in order]
        unit_scores = self.units.get_scores(tokens) if self.unit_ids else []
        by_file: dict[str, list[tuple[float, str]]] = defaultdict(list)
        for (path, symbol), score in zip(self.unit_ids, unit_scores, strict=False):
            by_file[path].append((-float(score), f"{path}::{symbol}"))
        functions: list[str] = []
        for path in files:
            functions += [name for _, name in sorted(by_file.get(path, []))]
            if len(functions) >= 10:
                break
        return files, functions


@dataclass
class Run:
    """Everything one benchmark run measured."""

    per_ticket: list[dict[str, Any]] = field(default_factory=list)
    latency_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    index_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    baseline_seconds: float = 0.0
    embedded: int = 0
    chunks: dict[str, int] = field(default_factory=dict)
    record: Path | None = None  # where to append each ticket's candidate lists (for bench/code_search_replay.py)
    index_rules: SkipRules = RULES  # what code-search indexes (the baseline always reads RULES' files)


_UNITS: dict[str, list[tuple[str, str]]] = {}  # blob id -> (symbol, text) of its functions/methods


def function_units(path: str, blob: str, data: bytes) -> list[tuple[str, str]]:
    """The function and method units of one file, named as the gold names them (memoized by blob)."""
    if blob not in _UNITS:
        chunks = GoChunker(GoOptions(max_tokens=10**9)).chunk(path, data) or []
        _UNITS[blob] = [(c.symbol, c.content) for c in chunks if c.kind in ("func", "method")]
    return _UNITS[blob]


def run_repo(
    full: str, tickets: list[dict[str, Any]], index: CodeIndex, embedder: Embedder, source: Path, run: Run
) -> None:
    searcher = Searcher(index, embedder)
    name = full  # one index namespace per repository (owner/name)
    baseline: tuple[str, Bm25Files] | None = None
    for ticket in sorted(tickets, key=lambda t: int(t["time"])):
        base = str(ticket["base_commit"])
        t0 = time.perf_counter()
        report = index_repo(index, embedder, source, name, base, rules=run.index_rules)
        run.index_seconds[full] += time.perf_counter() - t0
        run.embedded += report.embedded
        run.chunks[full] = report.chunks
        views = index.views([name])
        if baseline is None or baseline[0] != base:
            t0 = time.perf_counter()
            snap = snapshot(source, base, RULES)
            data = dict(snap.read(sorted(snap.files)))
            files = {p: d.decode("utf-8", errors="replace") for p, d in data.items()}
            units = {p: function_units(p, snap.files[p], d) for p, d in data.items()}
            baseline = (base, Bm25Files(files, units))
            run.baseline_seconds += time.perf_counter() - t0
        gold_files: list[str] = ticket["gold_files"]
        gold_funcs: list[str] = ticket["gold_functions"]
        row: dict[str, Any] = {"id": ticket["id"], "repo": full, "split": ticket["split"], "n_funcs": len(gold_funcs)}
        for variant, key in VARIANTS.items():
            query = str(ticket[key])
            ranked: dict[str, tuple[list[str], list[str]]] = {}
            for method in ("code_search", "code_search_funcs"):
                kinds = ["func", "method"] if method == "code_search_funcs" else []
                t0 = time.perf_counter()
                hits = searcher.search(query, views, k=50, kinds=kinds)
                run.latency_ms[method].append((time.perf_counter() - t0) * 1000)
                files = list(dict.fromkeys(h.path for h in hits))
                funcs = list(dict.fromkeys(f"{h.path}::{h.symbol}" for h in hits))
                ranked[method] = (files, funcs)
            t0 = time.perf_counter()
            ranked["bm25_files"] = baseline[1].rank(query)
            run.latency_ms["bm25_files"].append((time.perf_counter() - t0) * 1000)
            for method, (files, funcs) in ranked.items():
                row[f"{variant}.{method}.file_r5"] = recall(files, gold_files, 5)
                row[f"{variant}.{method}.file_mrr10"] = reciprocal_rank(files, gold_files)
                if gold_funcs:
                    row[f"{variant}.{method}.func_r10"] = recall(funcs, gold_funcs, 10)
                if method != "code_search_funcs":
                    row[f"{variant}.{method}.top_files"] = files[:5]
        if run.record is not None:
            record_ticket(run.record, ticket, searcher, index, views, baseline[1])
        run.per_ticket.append(row)


RECORD_CANDIDATES = 200  # the lists only the record has (the server's own lists are recorded as it cuts them)
RECORD_FILES = 300


def record_ticket(
    out: Path, ticket: dict[str, Any], searcher: Searcher, index: CodeIndex, views: list[Any], bm25: Bm25Files
) -> None:
    """Append what the ranking works from for both variants of `ticket`: every list `Searcher.gather` ranks
    (as deep as the server asks, unit content left out), whole-file BM25 over the ticket's words and over its
    title (with scores), BM25's own file ranking, and the commit's file list."""
    where = narrow(visible(views), (), None)
    row: dict[str, Any] = {
        "id": ticket["id"],
        "repo": ticket["repo"],
        "split": ticket["split"],
        "base_commit": ticket["base_commit"],
        "gold_files": ticket["gold_files"],
        "gold_functions": ticket["gold_functions"],
        "paths": bm25.paths,
    }
    for variant, key in VARIANTS.items():
        query = str(ticket[key])
        parsed = parse_query(query)
        found = searcher.gather(parsed, views, 50)
        lists = {name: [hit_row(h) for h in hits] for name, hits in found.lists.items()}
        files = index.file_fts(parsed.fts_text, where, RECORD_FILES)
        title_files = index.file_fts(parsed.title_text, where, RECORD_FILES) if parsed.title_text else []
        bm25_files, bm25_funcs = bm25.rank(query)
        # The whole ticket's words (code blocks and logs too), for rankings that use more than the prose.
        every = whole_text(parsed)
        fts_all = [hit_row(h) for h in index.fts(every, where, RECORD_CANDIDATES)]
        files_all = index.file_fts(every, where, RECORD_FILES)
        row[variant] = {
            "query": query,
            "lists": lists,
            "file_fts": [[p, round(s, 4)] for _, p, s in files],
            "title_file_fts": [[p, round(s, 4)] for _, p, s in title_files],
            "file_fts_all": [[p, round(s, 4)] for _, p, s in files_all],
            "fts_all": fts_all,
            "bm25_files": bm25_files[:50],
            "bm25_funcs": bm25_funcs[:10],
            "history": [p for _, p in found.history],
        }
    with out.open("a") as fh:
        fh.write(json.dumps(row) + "\n")


def whole_text(parsed: ParsedQuery) -> str:
    """The code-aware words of the whole ticket (prose, code blocks, logs, error strings), each once, at most 300."""
    parts = [parsed.prose, *parsed.errors, *parsed.logs, *(parsed.ticket.code if parsed.ticket else [])]
    return " ".join(list(dict.fromkeys(code_text(" ".join(parts)).split()))[:300])


def hit_row(hit: Hit) -> dict[str, Any]:
    """A hit as the replay needs it (its content left out)."""
    return {
        "path": hit.path,
        "start_line": hit.start_line,
        "end_line": hit.end_line,
        "symbol": hit.symbol,
        "kind": hit.kind,
        "tokens": hit.tokens,
        "parent": hit.parent,
        "part": hit.part,
        "score": round(hit.score, 5),
    }


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean of each metric over `rows` (function recall over the tickets that have gold functions)."""
    out: dict[str, Any] = {"tickets": len(rows), "with_gold_functions": sum(1 for r in rows if r["n_funcs"])}
    for variant in VARIANTS:
        table: dict[str, dict[str, float]] = {}
        for method in METHODS:
            entry = {}
            for metric in ("file_r5", "file_mrr10", "func_r10"):
                values = [r[f"{variant}.{method}.{metric}"] for r in rows if f"{variant}.{method}.{metric}" in r]
                if values:
                    entry[metric] = round(statistics.fmean(values), 3)
            table[method] = entry
        out[variant] = table
    return out


def table(name: str, summary: dict[str, Any]) -> str:
    """The issue's table for one group of tickets."""
    lines = [
        f"{name}: {summary['tickets']} tickets ({summary['with_gold_functions']} with gold functions)",
        "| query | metric | code-search | BM25 over whole files |",
        "|---|---|---:|---:|",
    ]
    for variant, label in (("raw", "issue text as written"), ("stripped", "identifiers removed")):
        part = summary[variant]
        for metric, title in (("file_r5", "file recall@5"), ("func_r10", "function recall@10")):
            ours = part["code_search"].get(metric, float("nan"))
            bm25 = part["bm25_files"].get(metric, float("nan"))
            lines.append(f"| {label} | {title} | {ours:.3f} | {bm25:.3f} |")
    return "\n".join(lines)


def code_state() -> dict[str, str]:
    """The commit of this checkout and whether code-search has uncommitted changes (what was measured)."""
    root = Path(__file__).resolve().parent.parent

    def out(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=60)
        return done.stdout.strip()

    return {
        "commit": out("rev-parse", "HEAD"),
        "code_search_dirty": str(bool(out("status", "--porcelain", "servers/code_search"))),
    }


def select(rows: list[dict[str, Any]], split: str, repos: list[str] | None, limit: int) -> list[dict[str, Any]]:
    chosen = [r for r in rows if split == "all" or r["split"] == split]
    if repos:
        chosen = [r for r in chosen if r["repo"] in repos or r["repo"].split("/")[1] in repos]
    if limit:
        per_repo: dict[str, int] = defaultdict(int)
        kept = []
        for r in sorted(chosen, key=lambda r: (r["repo"], int(r["time"]))):
            per_repo[r["repo"]] += 1
            if per_repo[r["repo"]] <= limit:
                kept.append(r)
        chosen = kept
    return chosen


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=("dev", "heldout", "all"), default="all")
    parser.add_argument("--repos", nargs="*", help="Only these repositories (owner/name or name).")
    parser.add_argument("--limit", type=int, default=0, help="Only the first N tickets of each repository.")
    parser.add_argument("--mirrors", type=Path, help="Directory of bare git mirrors (owner+name[/repo]).")
    parser.add_argument("--tickets", type=Path, default=TICKETS)
    parser.add_argument("--db", type=Path, default=WORK / "ticket-loc-db", help="Index directory (a cache).")
    parser.add_argument("--embedder", default="minilm", help="A code-search embedder name (make_embedder).")
    parser.add_argument("--out", type=Path, help="Where to write the JSON (default: results.json for a full run).")
    parser.add_argument("--record", type=Path, help="Append each ticket's candidate lists here (JSON lines).")
    parser.add_argument(
        "--include-tests",
        action="store_true",
        help="Index _test.go files too, as the server does by default (gold and baseline stay non-test files).",
    )
    parser.add_argument(
        "--keep-index", action="store_true", help="Continue from the index left by the last run (default: rebuild)."
    )
    args = parser.parse_args(argv)
    rows = [json.loads(line) for line in args.tickets.read_text().splitlines() if line.strip()]
    chosen = select(rows, args.split, args.repos, args.limit)
    if not chosen:
        parser.error("no ticket matches --split/--repos")
    full_run = args.split == "all" and not args.repos and not args.limit and args.tickets == TICKETS
    out = args.out or (RESULTS if full_run else WORK / "ticket_loc" / "results-partial.json")
    if not args.keep_index:
        for table_dir in args.db.glob("*.lance") if args.db.exists() else []:
            if not table_dir.name.endswith("__vectors.lance"):  # the embedding cache survives runs
                shutil.rmtree(table_dir)
    embedder = make_embedder(args.embedder)
    index = CodeIndex(args.db, embedder.model_id, embedder.dim, create=True)
    run = Run(record=args.record, index_rules=RULES_WITH_TESTS if args.include_tests else RULES)
    started = time.perf_counter()
    by_repo: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in chosen:
        by_repo[r["repo"]].append(r)
    sources = {full: mirror(full, args.mirrors) for full in by_repo}
    # Smallest repositories first, so that an interrupted run has covered as many as possible.
    order = sorted(by_repo, key=lambda full: (repo_size(sources[full], by_repo[full]), full))
    result: dict[str, Any] = {}
    for done, full in enumerate(order, start=1):
        run_repo(full, by_repo[full], index, embedder, sources[full], run)
        print(f"{full}: {len(by_repo[full])} tickets, index {run.index_seconds[full]:.0f}s", flush=True)
        result = report(run, embedder.model_id, {f: by_repo[f] for f in order[:done]}, started)
        result["complete"] = done == len(order)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1) + "\n")  # a checkpoint after each repository
    for name in ("heldout", "dev", "all"):
        if name in result["summary"]:
            print("\n" + table(name, result["summary"][name]))
    print(f"\nlatency ms: {json.dumps(result['latency_ms'])}; total {result['total_seconds']} s; saved {out}")
    return result


def repo_size(source: Path, tickets: list[dict[str, Any]]) -> int:
    """How many indexable files the repository has at its earliest ticket's base commit."""
    first = min(tickets, key=lambda t: int(t["time"]))
    return len(snapshot(source, str(first["base_commit"]), RULES).files)


def report(run: Run, model_id: str, by_repo: dict[str, list[dict[str, Any]]], started: float) -> dict[str, Any]:
    """The JSON result of the repositories run so far."""
    result: dict[str, Any] = {
        "code": code_state(),
        "embedder": model_id,
        "tickets": sum(len(t) for t in by_repo.values()),
        "repos": {full: len(t) for full, t in sorted(by_repo.items())},
        "total_seconds": round(time.perf_counter() - started, 1),
        "index_seconds": {k: round(v, 1) for k, v in run.index_seconds.items()},
        "baseline_build_seconds": round(run.baseline_seconds, 1),
        "embedded_chunks": run.embedded,
        "chunks_written_at_last_commit": run.chunks,  # per repository: the last increment, not the index size
        "latency_ms": {
            m: {"p50": round(statistics.median(v), 1), "p95": round(percentile(v, 95), 1)}
            for m, v in run.latency_ms.items()
        },
    }
    groups = {"all": run.per_ticket}
    for split in ("dev", "heldout"):
        groups[split] = [r for r in run.per_ticket if r["split"] == split]
    result["summary"] = {name: summarize(rows) for name, rows in groups.items() if rows}
    result["per_repo"] = {full: summarize([r for r in run.per_ticket if r["repo"] == full]) for full in by_repo}
    result["per_ticket"] = run.per_ticket
    return result


if __name__ == "__main__":
    main()
