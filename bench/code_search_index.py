"""Benchmark 1: full index of a small and a large Go module vs the embedding-only floor.

    .venv/bin/python bench/code_search_index.py            # both modules, each in its own process
    .venv/bin/python bench/code_search_index.py --one MOD  # one module (what the driver runs)
    .venv/bin/python bench/code_search_index.py --modules golang.org/x/tools@v0.28.0 --embedder static --no-floor

`--embedder` picks the model (minilm, bge-small, or static: no transformer; a non-default one indexes into
WORK/db-<module>-<embedder>);
`--no-floor` skips the two floor runs (the index run alone, e.g. to compare embedders). CPU seconds
(all threads of the process) are reported beside wall time: on a shared machine they move less.

Per module: parse+chunk MB/s, embed chunks/s, total index time and peak RSS, and the time to embed
the same unique chunk texts with nothing else (the physical floor, measured before and after the
index run; the ratio uses their mean). Target: total <= 1.3 x floor.
The index is left in WORK/db-<module> for benchmarks 2 and 3.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from code_search_common import LARGE, SMALL, WORK, checkout, git, peak_rss_mb, save, timed

from servers.code_search.chunker import GoChunker
from servers.code_search.embed import Embedder, make_embedder
from servers.code_search.index import CodeIndex
from servers.code_search.indexer import chunk_file, index_repo
from servers.code_search.source import SkipRules, snapshot


def db_dir(module: str, embedder: str = "minilm") -> Path:
    suffix = "" if embedder == "minilm" else f"-{embedder}"
    return WORK / f"db-{module.split('@')[0].replace('/', '_')}{suffix}"


def reindex(index: CodeIndex, embedder: Embedder, repo: Path, module: str, n: int) -> dict[str, object]:
    """Change `n` files (a new function in each), commit, re-index incrementally; the stages timed."""
    paths = sorted(p for p in repo.rglob("*.go") if not p.name.endswith("_test.go") and "testdata" not in p.parts)
    stamp = int(time.time())
    for i, path in enumerate(paths[:: max(1, len(paths) // n)][:n]):
        with path.open("a") as handle:
            name = f"Reindexprobe{stamp}N{i}"
            handle.write(f"\n// {name} measures an incremental re-index.\nfunc {name}() {{}}\n")
    git(repo, "commit", "-qam", f"reindex probe {stamp}")
    cpu = time.process_time()
    report = index_repo(index, embedder, repo, module.split("@")[0].rsplit("/", 1)[-1], maintain=False)
    started = time.perf_counter()
    index.maintain()
    return {
        "changed_files": report.changed,
        "chunks": report.chunks,
        "embedded": report.embedded,
        "reused": report.reused,
        "total_s": round(report.seconds, 2),
        "chunk_s": round(report.chunk_seconds, 2),
        "embed_s": round(report.embed_seconds, 2),
        "publish_s": round(report.publish_seconds, 2),
        "maintain_s": round(time.perf_counter() - started, 2),
        "cpu_s": round(time.process_time() - cpu, 2),
    }


def one(
    module: str, embedder_name: str = "minilm", floor_runs: bool = True, reindex_files: int = 0
) -> dict[str, object]:
    repo = checkout(module)
    embedder = make_embedder(embedder_name)
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
        if floor_runs:
            embedder.embed(texts)
    # 3. the whole indexer into a fresh database
    target = db_dir(module, embedder_name)
    shutil.rmtree(target, ignore_errors=True)
    index = CodeIndex(target, embedder.model_id, embedder.dim, create=True)
    cpu = time.process_time()
    with timed() as t_total:
        report = index_repo(index, embedder, repo, module.split("@")[0].rsplit("/", 1)[-1], rules=rules)
    cpu = time.process_time() - cpu
    # 4. the floor again: the machine is shared, so bracket the index run and compare with the mean
    with timed() as t_floor2:
        if floor_runs:
            embedder.embed(texts)
    common = {
        "module": module,
        "embedder": embedder.model_id,
        "chunks": len(chunks),
        "index_total_s": round(t_total[0], 1),
        "index_cpu_s": round(cpu, 1),
        "index_embed_s": round(report.embed_seconds, 1),
        "index_chunks_per_s": round(report.chunks / t_total[0], 1),
        "index_chunks_per_cpu_s": round(report.chunks / cpu, 1),
        "loadavg_1": round(os.getloadavg()[0], 1),
    }
    if reindex_files:
        common["reindex"] = reindex(index, embedder, repo, module, reindex_files)
    if not floor_runs:
        return common
    floor = (t_floor[0] + t_floor2[0]) / 2
    return {
        **common,
        "files": len(files),
        "mb": round(mb, 2),
        "unique_chunks": len(texts),
        "read_s": round(t_read[0], 2),
        "chunk_s": round(t_chunk[0], 2),
        "chunk_mb_per_s": round(mb / t_chunk[0], 2),
        "floor_embed_s": [round(t_floor[0], 1), round(t_floor2[0], 1)],
        "floor_chunks_per_s": round(len(texts) / floor, 1),
        "ratio_total_to_floor": round(t_total[0] / floor, 2),
        "peak_rss_mb": round(peak_rss_mb()),
        "unparsed": len(report.unparsed),
        "skipped": report.skipped,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--one")
    parser.add_argument("--modules", nargs="*", default=[SMALL, LARGE])
    parser.add_argument("--embedder", default="minilm", choices=("minilm", "bge-small", "static"))
    parser.add_argument("--no-floor", dest="floor", action="store_false")
    parser.add_argument("--save", default="bench1_index")
    parser.add_argument("--reindex", type=int, default=0, help="Then change N files and re-index incrementally.")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.embedder, args.floor, args.reindex)))
        return
    rows = []
    for module in args.modules:
        command = [sys.executable, __file__, "--one", module, "--embedder", args.embedder]
        command += ([] if args.floor else ["--no-floor"]) + ["--reindex", str(args.reindex)]
        out = subprocess.run(command, capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    print(f"saved {save(args.save, {'modules': rows})}")


if __name__ == "__main__":
    main()
