"""What the history list costs a filed report: the list alone, and the whole hybrid search, on a ticket index.

    .venv/bin/python bench/code_search_history_latency.py --db <index dir> [--embedder static] [--rounds 3]

The index is the one bench/ticket_localization.py leaves in `--db` (each repository at its last ticket's base
commit, with its history). Every filed report of those repositories (identifiers removed) is searched: first the
history list on its own (`CodeIndex.history`, the BM25 query over commit messages), then the whole hybrid search
(`Searcher.search`, k=50), where the history list runs beside the other lists, then the same search with the
history list answered empty at once (the baseline, same run, interleaved). Round 0 warms up and is dropped.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from code_search_common import percentile
from ticket_loc_build import TICKETS

from servers.code_search.embed import make_embedder
from servers.code_search.filters import visible
from servers.code_search.index import CodeIndex
from servers.code_search.query import parse_query
from servers.code_search.search import HISTORY_CANDIDATES, Searcher, history_text


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, required=True, help="A ticket localization index directory.")
    parser.add_argument("--embedder", default="static")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    embedder = make_embedder(args.embedder)
    index = CodeIndex(args.db, embedder.model_id, embedder.dim)
    views = {v.repo: v for v in index.views()}
    searcher = Searcher(index, embedder)
    reports = []
    for line in TICKETS.read_text().splitlines():
        row = json.loads(line)
        parsed = parse_query(row["query"])
        if row["repo"] in views and parsed.report:
            reports.append((views[row["repo"]], parsed))
    real = index.history_async

    async def no_history(text: str, where: str, k: int) -> list[tuple[str, list[str]]]:
        return []

    timings: dict[str, list[float]] = {"history list": [], "hybrid search": [], "hybrid search without it": []}
    for round_ in range(args.rounds + 1):
        for view, parsed in reports:
            t0 = time.perf_counter()
            index.history(history_text(parsed), visible([view]), HISTORY_CANDIDATES)
            t1 = time.perf_counter()
            searcher.search(parsed, [view], k=50)
            t2 = time.perf_counter()
            index.history_async = no_history  # type: ignore[method-assign]
            searcher.search(parsed, [view], k=50)
            t3 = time.perf_counter()
            index.history_async = real  # type: ignore[method-assign]
            if round_:
                timings["history list"].append((t1 - t0) * 1000)
                timings["hybrid search"].append((t2 - t1) * 1000)
                timings["hybrid search without it"].append((t3 - t2) * 1000)
    result: dict[str, object] = {
        "reports": len(reports),
        "rounds": args.rounds,
        "repos": sorted(views),
        **{
            name: {"p50_ms": round(statistics.median(v), 1), "p95_ms": round(percentile(v, 95), 1)}
            for name, v in timings.items()
        },
    }
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
