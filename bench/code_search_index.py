"""Benchmark 1: full index of a small and a large Go module vs the embedding-only floor.

    .venv/bin/python bench/code_search_index.py            # both modules, each in its own process
    .venv/bin/python bench/code_search_index.py --one MOD  # one module (what the driver runs)

Per module: parse+chunk MB/s, embed chunks/s, total index time and peak RSS, and the time to embed
the same unique chunk texts with nothing else (the physical floor, measured before and after the
index run; the ratio uses their mean). Target: total <= 1.3 x floor.
The index is left in WORK/db-<module> for benchmarks 2 and 3.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from code_search_common import LARGE, SMALL, WORK, checkout, peak_rss_mb, save, timed

from servers.code_search.chunker import GoChunker
from servers.code_search.index import CodeIndex
from servers.code_search.indexer import chunk_file, index_repo
from servers.code_search.minilm import MiniLMEmbedder
from servers.code_search.source import SkipRules, snapshot


def db_dir(module: str) -> Path:
    return WORK / f"db-{module.split('@')[0].replace('/', '_')}"


def one(module: str) -> dict[str, object]:
    repo = checkout(module)
    embedder = MiniLMEmbedder()
    rules = SkipRules()
    # 1. parse + chunk only
    snap = snapshot(repo, None, rules)
    with timed() as t_read:
        files = [(p, d) for p, d in snap.read(sorted(snap.files)) if rules.wants_content(d)]
    chunker = GoChunker()
    with timed() as t_chunk:
        chunks = [c for p, d in files for c in chunk_file(chunker, p, d.decode("utf-8", errors="replace"))[0]]
    mb = sum(len(d) for _, d in files) / 1e6
    # 2. the floor: embed the unique chunk texts, nothing else
    texts = list({c.content_hash: c.embed_text() for c in chunks}.values())
    embedder.embed(texts[:32])  # warm-up, as the indexer's first batch would be
    with timed() as t_floor:
        embedder.embed(texts)
    # 3. the whole indexer into a fresh database
    target = db_dir(module)
    shutil.rmtree(target, ignore_errors=True)
    index = CodeIndex(target, embedder.model_id, embedder.dim, create=True)
    with timed() as t_total:
        report = index_repo(index, embedder, repo, module.split("@")[0].rsplit("/", 1)[-1], rules=rules)
    # 4. the floor again: the machine is shared, so bracket the index run and compare with the mean
    with timed() as t_floor2:
        embedder.embed(texts)
    floor = (t_floor[0] + t_floor2[0]) / 2
    return {
        "module": module,
        "files": len(files),
        "mb": round(mb, 2),
        "chunks": len(chunks),
        "unique_chunks": len(texts),
        "read_s": round(t_read[0], 2),
        "chunk_s": round(t_chunk[0], 2),
        "chunk_mb_per_s": round(mb / t_chunk[0], 2),
        "floor_embed_s": [round(t_floor[0], 1), round(t_floor2[0], 1)],
        "floor_chunks_per_s": round(len(texts) / floor, 1),
        "index_total_s": round(t_total[0], 1),
        "index_embed_s": round(report.embed_seconds, 1),
        "index_chunks_per_s": round(report.chunks / t_total[0], 1),
        "ratio_total_to_floor": round(t_total[0] / floor, 2),
        "peak_rss_mb": round(peak_rss_mb()),
        "unparsed": len(report.unparsed),
        "skipped": report.skipped,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--one")
    parser.add_argument("--modules", nargs="*", default=[SMALL, LARGE])
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one)))
        return
    rows = []
    for module in args.modules:
        out = subprocess.run([sys.executable, __file__, "--one", module], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    print(f"saved {save('bench1_index', {'modules': rows})}")


if __name__ == "__main__":
    main()
