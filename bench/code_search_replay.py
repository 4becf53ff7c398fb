"""Replay recorded candidate lists through the server's ranking: tune on the ticket set without re-indexing.

    .venv/bin/python bench/code_search_replay.py RECORD.jsonl [RECORD.jsonl ...] [--loro]

A record is what `bench/ticket_localization.py --record FILE` appended for each ticket: every list
`Searcher.gather` ranked (as deep as the server cuts them), whole-file BM25 with scores, BM25's
own rankings, the commit's file list and the gold. The replay rebuilds the `Candidates` and ranks
them with the server's own function (`servers.code_search.search.rank`), so a figure here is the
figure the server gives on those lists (a test checks the two agree).

`--loro` chooses the filed-report list weights (REPORT_WEIGHTS: title, vector, error, file) from a
small grid by leave-one-repository-out: for each repository, the setting with the best mean
file R@5 + function R@10 (identifiers removed) on the others, then its figures on the one left out.
`--loro-tests` does the same for the weights of test units in a ticket's ranking (TEST_GRID: a test
unit's own weight and the share of its similarity the code it tests gets; records made with
`bench/ticket_localization.py --include-tests`), and `--loro-history` for the weight of a ticket's history
list (the files changed by the past commits whose messages best match it; records hold the list the server
gathered). Use them on dev records only; held-out repositories are for the final check.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from servers.code_search.model import Hit
from servers.code_search.query import ParsedQuery, parse_query
from servers.code_search.search import (
    FILE_CANDIDATES,
    REPORT_WEIGHTS,
    TICKET_WEIGHTS,
    Candidates,
    frame_hits,
    rank,
)

RECORD_ONLY = frozenset({"fts_all"})  # lists a record holds beside the server's (older records: in lists)
VARIANTS = ("raw", "stripped")
GRID = {"title": (1.0, 2.0), "vector": (0.5, 1.0), "error": (0.5, 1.0), "file": (1.0, 2.0)}
TEST_GRID = {"test": (1.0, 0.5, 0.25, 0.0), "test_evidence": (0.0, 0.25, 0.5, 1.0)}
HISTORY_GRID = {"history": (0.0, 0.5, 1.0, 2.0)}
Ranker = Callable[[ParsedQuery, Candidates, int], list[Hit]]


def load(paths: Iterable[Path]) -> list[dict[str, Any]]:
    return [json.loads(line) for p in paths for line in p.read_text().splitlines() if line.strip()]


def candidates(record: dict[str, Any], variant: str) -> Candidates:
    """The lists the server gathered for this ticket, as `Searcher.gather` returns them."""
    part = record[variant]
    parsed = parse_query(part["query"])
    repo = record["repo"]
    lists = {
        name: [Hit(repo=repo, signature="", content="", **h) for h in hits]
        for name, hits in part["lists"].items()
        if name not in RECORD_ONLY
    }
    if "symbol" in lists:  # derived as `gather` derives it, so that a change to frame matching is replayed
        lists["frame"] = frame_hits(parsed, lists["symbol"])
    files = [(repo, p, float(s)) for p, s in part["file_fts"]]
    shared = [(r, p) for r, p, _ in files[:FILE_CANDIDATES]] if parsed.report else []
    return Candidates(lists, shared, [(repo, p) for p in part.get("history", [])])


def ranked(record: dict[str, Any], variant: str, ranker: Ranker) -> tuple[list[str], list[str]]:
    """(files, functions) in rank order, as bench/ticket_localization.py reads them from the top 50 hits."""
    hits = ranker(parse_query(record[variant]["query"]), candidates(record, variant), 50)
    return list(dict.fromkeys(h.path for h in hits)), list(dict.fromkeys(f"{h.path}::{h.symbol}" for h in hits))


def score(record: dict[str, Any], variant: str, ranker: Ranker) -> dict[str, float]:
    """File R@5 and function R@10 of `ranker` and of the recorded BM25 baseline for one ticket."""
    files, funcs = ranked(record, variant, ranker)
    gold_files, gold_funcs = set(record["gold_files"]), set(record["gold_functions"])
    bm25_files, bm25_funcs = record[variant]["bm25_files"], record[variant]["bm25_funcs"]
    out = {
        "file_r5": len(set(files[:5]) & gold_files) / len(gold_files),
        "bm25_file_r5": len(set(bm25_files[:5]) & gold_files) / len(gold_files),
    }
    if gold_funcs:
        out["func_r10"] = len(set(funcs[:10]) & gold_funcs) / len(gold_funcs)
        out["bm25_func_r10"] = len(set(bm25_funcs[:10]) & gold_funcs) / len(gold_funcs)
    return out


def evaluate(records: list[dict[str, Any]], ranker: Ranker, variants: Iterable[str] = VARIANTS) -> dict[str, Any]:
    """Mean metrics per variant over `records` (function recall over the tickets with gold functions)."""
    out: dict[str, Any] = {}
    for variant in variants:
        values: dict[str, list[float]] = defaultdict(list)
        for record in records:
            for metric, value in score(record, variant, ranker).items():
                values[metric].append(value)
        out[variant] = {m: round(statistics.fmean(v), 3) for m, v in values.items()}
        out[variant]["tickets"] = len(records)
    return out


def with_weights(weights: Mapping[str, float]) -> Ranker:
    return lambda parsed, found, k: rank(parsed, found, k, report_weights=weights)


def with_test_weights(setting: Mapping[str, float]) -> Ranker:
    """The shipped ranking with `setting` (TEST_GRID's or HISTORY_GRID's keys) for every ticket, filed report or
    not."""
    report, ticket = {**REPORT_WEIGHTS, **setting}, {**TICKET_WEIGHTS, **setting}
    return lambda parsed, found, k: rank(parsed, found, k, report_weights=report, ticket_weights=ticket)


def leave_one_repo_out(
    records: list[dict[str, Any]],
    grid: Mapping[str, tuple[float, ...]] = GRID,
    ranker_for: Callable[[Mapping[str, float]], Ranker] = lambda s: with_weights({**REPORT_WEIGHTS, **s}),
) -> list[dict[str, Any]]:
    """For each repository: the `grid` setting best on the others (stripped queries), and its figures on it."""
    by_repo: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_repo[r["repo"]].append(r)
    settings = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    table: dict[int, dict[str, dict[str, float]]] = {}
    for i, setting in enumerate(settings):
        ranker = ranker_for(setting)
        table[i] = {repo: evaluate(rows, ranker, ["stripped"])["stripped"] for repo, rows in by_repo.items()}

    def objective(i: int, repos: list[str]) -> float:
        return statistics.fmean(table[i][r]["file_r5"] + table[i][r].get("func_r10", 0.0) for r in repos)

    out = []
    for repo in sorted(by_repo):
        others = [r for r in by_repo if r != repo]
        best = max(table, key=lambda i: objective(i, others))
        current = evaluate(by_repo[repo], rank, ["stripped"])["stripped"]
        chosen = {"chosen": settings[best], "left_out_figures": table[best][repo]}
        out.append({"left_out": repo, **chosen, "shipped": current})
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("records", nargs="+", type=Path)
    parser.add_argument("--loro", action="store_true", help="Leave-one-repository-out choice of report weights.")
    parser.add_argument(
        "--loro-tests", action="store_true", help="Leave-one-repository-out choice of the test-unit weights."
    )
    parser.add_argument(
        "--loro-history", action="store_true", help="Leave-one-repository-out choice of the history list's weight."
    )
    args = parser.parse_args(argv)
    records = load(args.records)
    by_repo: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_repo[r["repo"]].append(r)
    result: dict[str, Any] = {"all": evaluate(records, rank)}
    result["per_repo"] = {repo: evaluate(rows, rank) for repo, rows in sorted(by_repo.items())}
    if args.loro:
        result["loro"] = leave_one_repo_out(records)
    if args.loro_tests:
        result["loro_tests"] = leave_one_repo_out(records, TEST_GRID, with_test_weights)
    if args.loro_history:
        result["loro_history"] = leave_one_repo_out(records, HISTORY_GRID, with_test_weights)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
