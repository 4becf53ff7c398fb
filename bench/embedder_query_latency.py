"""Query-embedding latency of the offline embedders, measured side by side on real ticket texts.

    .venv/bin/python bench/embedder_query_latency.py [--embedders minilm bge-small static] [--n 50] [--rounds 3]

A search embeds one text (the ticket's prose, as `Searcher` passes it) on the embedder's one-thread query
session. Each round embeds the first N identifier-stripped ticket texts of bench/data/ticket_loc once per
embedder, the embedders' order alternating between rounds, so that both see the same machine load. Prints
p50/p95 per embedder and the ratio of their medians to the first embedder's; saves the figures as JSON
(bench/data/code_search/embedder_query_latency.json).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from code_search_common import percentile, save

from servers.code_search.embed import make_embedder
from servers.code_search.query import parse_query

TICKETS = Path(__file__).resolve().parent / "data" / "ticket_loc" / "tickets.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embedders", nargs="+", default=["minilm", "bge-small"])
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--save", default="embedder_query_latency")
    args = parser.parse_args()
    rows = [json.loads(line) for line in TICKETS.read_text().splitlines()][: args.n]
    texts = [parse_query(r["query"]).prose for r in rows]
    embedders = {name: make_embedder(name) for name in args.embedders}
    for embedder in embedders.values():
        embedder.embed(texts[:2])  # load and warm the query session
        embedder.embed(texts[:1])
    samples: dict[str, list[float]] = {name: [] for name in embedders}
    for round_ in range(args.rounds):
        order = list(embedders) if round_ % 2 == 0 else list(reversed(embedders))
        for text in texts:
            for name in order:
                start = time.perf_counter()
                embedders[name].embed([text])
                samples[name].append((time.perf_counter() - start) * 1000)
    first = args.embedders[0]
    out: dict[str, object] = {"texts": len(texts), "rounds": args.rounds}
    for name, values in samples.items():
        p50, p95 = percentile(values, 50), percentile(values, 95)
        out[name] = {"model_id": embedders[name].model_id, "p50_ms": round(p50, 2), "p95_ms": round(p95, 2)}
        ratio = p50 / percentile(samples[first], 50)
        print(f"{name:10s} p50 {p50:6.2f} ms  p95 {p95:6.2f} ms  median ratio to {first}: {ratio:.2f}")
    print(f"saved {save(args.save, out)}")


if __name__ == "__main__":
    main()
