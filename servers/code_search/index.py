"""The LanceDB store (the only module that imports lancedb).

Five tables per embedding model (vectors of two models are never mixed; a switch is a new set):
    chunks   one row per unit: metadata, code-aware FTS column `text`, `vector`, generation window
    files    file text at each generation (read_file serves from here, never from a checkout)
    commits  the repo's recent history at each generation: a commit's message (FTS) and the code files it changed
    repos    the pointer table: repo -> published generation and commit; switched last
    vectors  embedding cache by content hash

Readers take the published generation of each repo from `repos` and query with the prefilter
`gen_added <= g < gen_removed`, so they see the old or the new state of a repo, never a mix. A
writer adds rows at g+1, retires replaced rows by setting `gen_removed = g+1`, and publishes g+1
with one merge into `repos`. Rows of an unpublished generation are invisible; `begin` removes them
(crash recovery) and garbage-collects rows retired before the current generation.

Reads go through LanceDB's async API on an event loop of the index's own (`_Reader`), so the lists of one
request run as one batch of coroutines (`gather`). The sync query builders asked the table for its schema
several times per query, each a round trip through LanceDB's background loop; on 62k chunks the lists of a
hybrid query took 34 ms (p50) that way and 28 ms through the async API. Writes keep the sync tables; a write
makes the reader move to the latest version before its next read, so a process reads its own writes.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Awaitable, Coroutine, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import lancedb
import numpy as np
import pyarrow as pa
from lancedb.index import FTS, Bitmap, BTree, HnswSq

from servers.code_search.filters import LIVE, RepoView, any_of, quote
from servers.code_search.model import Hit
from servers.common.errors import UpstreamFailure

_HIT_COLUMNS = [
    "repo",
    "path",
    "start_line",
    "end_line",
    "symbol",
    "kind",
    "signature",
    "content",
    "tokens",
    "parent",
    "part",
]
_BATCH = 400
_READ_TABLES = ("chunks", "files", "repos", "commits")
_VERSIONED = ("chunks", "files", "commits")  # tables whose rows carry a generation window
# Tables an index written by an older version may lack: read without them (the indexer's next run creates them).
_OPTIONAL = frozenset({"commits"})
_ERRORS = (OSError, RuntimeError, ValueError)
T = TypeVar("T")
VISIBILITY_COLUMNS = ("repo", "gen_added", "gen_removed")
MAINTAIN_MIN_ROWS = 2_000


def _chunk_schema(dim: int) -> Any:
    ints = [("start_line", pa.int32()), ("end_line", pa.int32()), ("tokens", pa.int32()), ("part", pa.int32())]
    # `commit` is the commit at which the row was (re)indexed; it stays valid for later commits until retired.
    strs = ["repo", "commit", "path", "symbol", "name", "parent", "kind", "signature", "doc", "content", "content_hash"]
    strs.append("text")
    gens = [("gen_added", pa.int64()), ("gen_removed", pa.int64())]
    return pa.schema([*[(s, pa.string()) for s in strs], *ints, ("vector", pa.list_(pa.float32(), dim)), *gens])


_FILES = pa.schema(
    [
        ("repo", pa.string()),
        ("path", pa.string()),
        ("blob", pa.string()),
        ("content", pa.string()),
        ("status", pa.string()),
        ("gen_added", pa.int64()),
        ("gen_removed", pa.int64()),
    ]
)
_COMMITS = pa.schema(
    [
        ("repo", pa.string()),
        ("sha", pa.string()),
        ("text", pa.string()),  # the code-aware words of the message
        ("files", pa.list_(pa.string())),  # the code files it changed that exist at the row's generation
        ("gen_added", pa.int64()),
        ("gen_removed", pa.int64()),
    ]
)
_REPOS = pa.schema(
    [
        ("repo", pa.string()),
        ("commit", pa.string()),
        ("gen", pa.int64()),
        ("indexed_at", pa.string()),
        ("stats", pa.string()),
    ]
)


def _vectors_schema(dim: int) -> Any:
    return pa.schema([("content_hash", pa.string()), ("vector", pa.list_(pa.float32(), dim))])


def _unavailable(exc: Exception) -> UpstreamFailure:
    return UpstreamFailure("the code index is missing or corrupt; re-run the indexer", detail=repr(exc))


class _Reader:
    """The read side: LanceDB's async tables, served by an event loop on a daemon thread of their own."""

    def __init__(self, uri: str | Path, consistency: timedelta, names: Mapping[str, str]) -> None:
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, name="code-index-reader", daemon=True).start()
        self.stale = False
        self._latest: asyncio.Future[None] | None = None  # the move to the latest version, shared by every read
        self.tables = self.run(self._open(uri, consistency, names))

    @staticmethod
    async def _open(uri: str | Path, consistency: timedelta, names: Mapping[str, str]) -> dict[str, Any]:
        db = await lancedb.connect_async(uri, read_consistency_interval=consistency)
        tables: dict[str, Any] = {}
        for t in _READ_TABLES:
            try:
                tables[t] = await db.open_table(names[t])
            except ValueError:
                if t not in _OPTIONAL:
                    raise
        return tables

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the reader's loop and wait for it (from any thread but the loop's own)."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    async def table(self, name: str) -> Any:
        """Table `name`; after a write of this process, once every table has moved to its latest version.

        The reads of one request run side by side: each waits for the same move, so none reads an older version.
        """
        if self.stale:
            self.stale = False
            self._latest = asyncio.ensure_future(self._checkout_latest())
        if self._latest is not None:
            await asyncio.shield(self._latest)
        return self.tables[name]

    def has(self, name: str) -> bool:
        return name in self.tables

    async def _checkout_latest(self) -> None:
        for table in self.tables.values():
            await table.checkout_latest()


class CodeIndex:
    """Read and write access to one index directory for one embedding model."""

    def __init__(
        self,
        db_dir: Path,
        model_id: str,
        dim: int,
        *,
        create: bool = False,
        consistency: timedelta | None = None,
        ann_min_rows: int = 20_000,
        uri: str | None = None,
    ) -> None:
        """Open (or with `create`, create) the index; `maintain` adds an ANN index past `ann_min_rows` chunks.

        With `uri` (s3://, gs://, az://, file://) LanceDB opens the index there; `db_dir` then holds only
        the indexer's lock files.

        Raises:
            UpstreamFailure: the index does not exist (and `create` is false) or cannot be read.
        """
        self.db_dir = db_dir
        self.dim = dim
        self.ann_min_rows = ann_min_rows
        self._file_fts = False
        self._history_fts = False
        self._uri = uri or db_dir
        self._consistency = consistency if consistency is not None else timedelta(0)
        self._reader: _Reader | None = None
        self._reader_lock = threading.Lock()
        ns = re.sub(r"[^A-Za-z0-9_]", "_", model_id)
        names = {t: f"{ns}__{t}" for t in ("chunks", "files", "repos", "vectors", "commits")}
        self._names = names
        if not create and uri is None and not (db_dir / f"{names['repos']}.lance").exists():
            raise UpstreamFailure(f"the code index is missing (none for model {model_id}); run the indexer")
        try:
            db = lancedb.connect(self._uri, read_consistency_interval=self._consistency)
            schemas = {
                "chunks": _chunk_schema(dim),
                "files": _FILES,
                "repos": _REPOS,
                "vectors": _vectors_schema(dim),
                "commits": _COMMITS,
            }
            if create:
                self._t = {t: db.create_table(names[t], schema=schemas[t], exist_ok=True) for t in names}
            else:
                self._t = {}
                for t in names:
                    try:
                        self._t[t] = db.open_table(names[t])
                    except ValueError:
                        if t not in _OPTIONAL:
                            raise
        except (OSError, RuntimeError, ValueError) as exc:
            raise _unavailable(exc) from exc

    # ---- reads -------------------------------------------------------------------------------

    def reader(self) -> _Reader:
        """The read side, opened at the first read (its tables exist by then, also with `create`)."""
        if self._reader is None:
            with self._reader_lock:
                if self._reader is None:
                    try:
                        self._reader = _Reader(self._uri, self._consistency, self._names)
                    except _ERRORS as exc:
                        raise _unavailable(exc) from exc
        return self._reader

    def gather(self, jobs: Mapping[str, Awaitable[T]]) -> dict[str, T]:
        """Run the coroutines of one request side by side on the reader's loop; their results by name."""

        async def run_all() -> dict[str, T]:
            done = await asyncio.gather(*jobs.values())
            return dict(zip(jobs, done, strict=True))

        return self.reader().run(run_all())

    def views(self, repos: Sequence[str] | None = None) -> list[RepoView]:
        """The published generation of each repo (all repos, or those of `repos` that exist)."""
        return self.reader().run(self.views_async(repos))

    async def views_async(self, repos: Sequence[str] | None = None) -> list[RepoView]:
        query = (await self.reader().table("repos")).query()
        rows = await self._rows_async(query, ["repo", "commit", "gen"])
        wanted = None if repos is None else set(repos)
        return sorted(
            (RepoView(r["repo"], r["gen"], r["commit"]) for r in rows if wanted is None or r["repo"] in wanted),
            key=lambda v: v.repo,
        )

    def repo_info(self) -> dict[str, dict[str, Any]]:
        """repo -> commit, generation, time and stats of its published index."""
        rows = self._rows(self._t["repos"].search().limit(None), ["repo", "commit", "gen", "indexed_at", "stats"])
        return {r["repo"]: {**r, "stats": json.loads(r["stats"] or "{}")} for r in rows}

    def fts(self, text: str, where: str, k: int) -> list[Hit]:
        """Full-text (BM25) search over the code-aware column, restricted by `where` before ranking."""
        return self.reader().run(self.fts_async(text, where, k))

    async def fts_async(self, text: str, where: str, k: int) -> list[Hit]:
        if not text.strip():
            return []
        query = (await self.reader().table("chunks")).query().nearest_to_text(text, columns="text")
        rows = await self._rows_async(query.where(where).limit(k), [*_HIT_COLUMNS, "_score"])
        return [self._hit(r, float(r["_score"])) for r in rows]

    def file_fts(self, text: str, where: str, k: int) -> list[tuple[str, str, float]]:
        """(repo, path, score) of the files whose whole text best matches `text` (BM25), `where` as a prefilter.

        Empty while the files' full-text index does not exist yet (an index written before it was added:
        the indexer's next `maintain` builds it).
        """
        return self.reader().run(self.file_fts_async(text, where, k))

    async def file_fts_async(self, text: str, where: str, k: int) -> list[tuple[str, str, float]]:
        if not text.strip() or not self._has_file_fts():
            return []
        query = (await self.reader().table("files")).query().nearest_to_text(text, columns="content")
        rows = await self._rows_async(query.where(where).limit(k), ["repo", "path", "_score"])
        return [(r["repo"], r["path"], float(r["_score"])) for r in rows]

    def history(self, text: str, where: str, k: int) -> list[tuple[str, list[str]]]:
        """(repo, changed code files) of the `k` commits whose messages best match `text` (BM25), best first."""
        return self.reader().run(self.history_async(text, where, k))

    async def history_async(self, text: str, where: str, k: int) -> list[tuple[str, list[str]]]:
        reader = self.reader()
        if not text.strip() or not reader.has("commits") or not await self._has_history_fts():
            return []
        query = (await reader.table("commits")).query().nearest_to_text(text, columns="text")
        rows = await self._rows_async(query.where(where).limit(k), ["repo", "files", "_score"])
        return [(r["repo"], list(r["files"] or [])) for r in rows if r["_score"] > 0]

    async def _has_history_fts(self) -> bool:
        if not self._history_fts:  # once seen it stays: indexes are never dropped
            table = await self.reader().table("commits")
            try:
                self._history_fts = any(i.columns[0] == "text" for i in await table.list_indices())
            except _ERRORS as exc:
                raise _unavailable(exc) from exc
        return self._history_fts

    def _has_file_fts(self) -> bool:
        if not self._file_fts:  # once seen it stays: indexes are never dropped
            try:
                self._file_fts = any(i.columns[0] == "content" for i in self._t["files"].list_indices())
            except _ERRORS as exc:
                raise _unavailable(exc) from exc
        return self._file_fts

    def vector(self, vec: np.ndarray, where: str, k: int, *, exact: bool = False) -> list[Hit]:
        """Cosine nearest neighbours, restricted by `where` before ranking (prefilter); `exact` skips the ANN index."""
        return self.reader().run(self.vector_async(vec, where, k, exact=exact))

    async def vector_async(self, vec: np.ndarray, where: str, k: int, *, exact: bool = False) -> list[Hit]:
        query: Any = (await self.reader().table("chunks")).query().nearest_to(vec.astype(np.float32))
        # ef=200: the default kept ~65% of the exact top-10 under a prefilter (58k rows); 200 keeps ~96%.
        query = query.column("vector").distance_type("cosine").where(where).limit(k).ef(max(200, k))
        if exact:
            query = query.bypass_vector_index()
        rows = await self._rows_async(query, [*_HIT_COLUMNS, "_distance"])
        return [self._hit(r, 1.0 - float(r["_distance"])) for r in rows]

    def scan(self, where: str, k: int) -> list[Hit]:
        """Rows matching `where` (exact symbol or path lookups), unranked."""
        return self.reader().run(self.scan_async(where, k))

    async def scan_async(self, where: str, k: int) -> list[Hit]:
        query = (await self.reader().table("chunks")).query().where(where).limit(k)
        return [self._hit(r, 1.0) for r in await self._rows_async(query, _HIT_COLUMNS)]

    def count(self, where: str) -> int:
        """Number of chunk rows matching `where`."""
        try:
            return int(self._t["chunks"].count_rows(where))
        except (OSError, RuntimeError, ValueError) as exc:
            raise _unavailable(exc) from exc

    def indexed_columns(self) -> set[str]:
        """Columns of the chunks table with an index (text: FTS, vector: ANN, repo and generations: bitmap)."""
        return {i.columns[0] for i in self._t["chunks"].list_indices()}

    def file_text(self, view: RepoView, path: str) -> str | None:
        """The text of `path` in `view`'s generation, or None when it is not indexed there."""
        where = (
            f"repo = {quote(view.repo)} AND path = {quote(path)} AND gen_added <= {view.gen} "
            f"AND gen_removed > {view.gen} AND status != 'skipped'"
        )
        rows = self._rows(self._t["files"].search().where(where).limit(1), ["content"])
        return str(rows[0]["content"]) if rows else None

    def _rows(self, query: Any, columns: list[str]) -> list[dict[str, Any]]:
        try:
            table: pa.Table = query.select(columns).to_arrow()
        except _ERRORS as exc:
            raise _unavailable(exc) from exc
        return table.to_pylist()

    @staticmethod
    async def _rows_async(query: Any, columns: list[str]) -> list[dict[str, Any]]:
        try:
            table: pa.Table = await query.select(columns).to_arrow()
        except _ERRORS as exc:
            raise _unavailable(exc) from exc
        return table.to_pylist()

    @staticmethod
    def _hit(row: dict[str, Any], score: float) -> Hit:
        return Hit(**{c: row[c] for c in _HIT_COLUMNS}, score=score)

    # ---- writes (callers hold the repo's writer lock) ------------------------------------------

    def begin(self, repo: str) -> tuple[int, dict[str, str]]:
        """Recover from an interrupted run, collect garbage, and return (next generation, current files)."""
        current = next((v.gen for v in self.views([repo])), 0)
        r = quote(repo)
        for name in (n for n in _VERSIONED if n in self._t):
            table = self._t[name]
            table.delete(f"repo = {r} AND gen_added > {current}")  # rows of a generation never published
            table.update(
                where=f"repo = {r} AND gen_removed > {current} AND gen_removed < {LIVE}", values={"gen_removed": LIVE}
            )  # retirements that were never published
            table.delete(f"repo = {r} AND gen_removed <= {current}")  # retired before the current generation
        files = self._rows(
            self._t["files"].search().where(f"repo = {r} AND gen_removed = {LIVE}").limit(None), ["path", "blob"]
        )
        self._wrote()
        return current + 1, {f["path"]: f["blob"] for f in files}

    def retire(self, repo: str, paths: Sequence[str], gen: int) -> None:
        """Mark the live rows of `paths` as replaced at `gen` (still visible to readers of gen-1)."""
        for start in range(0, len(paths), _BATCH):
            where = f"repo = {quote(repo)} AND gen_removed = {LIVE} AND {any_of('path', paths[start : start + _BATCH])}"
            for name in ("chunks", "files"):
                self._t[name].update(where=where, values={"gen_removed": gen})
        self._wrote()

    def cached_vectors(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Embeddings already computed for any of `hashes`."""
        found: dict[str, np.ndarray] = {}
        unique = sorted(set(hashes))
        for start in range(0, len(unique), _BATCH):
            query = self._t["vectors"].search().where(any_of("content_hash", unique[start : start + _BATCH]))
            table: pa.Table = query.select(["content_hash", "vector"]).limit(None).to_arrow()
            vecs = table.column("vector").combine_chunks().flatten().to_numpy().reshape(-1, self.dim)
            for h, v in zip(table.column("content_hash").to_pylist(), vecs, strict=True):
                found[h] = v
        return found

    def set_history(self, repo: str, gen: int, commits: Mapping[str, tuple[str, list[str]]]) -> None:
        """Make `commits` (id -> (message words, changed code files)) `repo`'s history at `gen`.

        Like the chunks: a live row that is not in `commits`, or whose files differ, is retired at `gen`; a new one
        is added at `gen`. Readers of an older generation keep the history they had.
        """
        r = quote(repo)
        live = {
            row["sha"]: list(row["files"] or [])
            for row in self._rows(
                self._t["commits"].search().where(f"repo = {r} AND gen_removed = {LIVE}").limit(None), ["sha", "files"]
            )
        }
        gone = sorted(sha for sha, files in live.items() if sha not in commits or commits[sha][1] != files)
        for start in range(0, len(gone), _BATCH):
            where = f"repo = {r} AND gen_removed = {LIVE} AND {any_of('sha', gone[start : start + _BATCH])}"
            self._t["commits"].update(where=where, values={"gen_removed": gen})
        rows = [
            {"repo": repo, "sha": sha, "text": text, "files": files, "gen_added": gen, "gen_removed": LIVE}
            for sha, (text, files) in commits.items()
            if sha not in live or sha in gone
        ]
        if rows:
            self._t["commits"].add(pa.Table.from_pylist(rows, schema=_COMMITS))
        self._wrote()

    def add(self, name: str, rows: Any) -> None:
        """Append rows to table `name` (chunks, files or vectors)."""
        if len(rows):
            self._t[name].add(rows)
            self._wrote()

    def publish(self, repo: str, commit: str, gen: int, stats: dict[str, Any]) -> None:
        """Make generation `gen` of `repo` the one readers see (a single atomic merge)."""
        row = {
            "repo": repo,
            "commit": commit,
            "gen": gen,
            "indexed_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "stats": json.dumps(stats),
        }
        self._t["repos"].merge_insert("repo").when_matched_update_all().when_not_matched_insert_all().execute(
            pa.Table.from_pylist([row], schema=_REPOS)
        )
        self._wrote()

    def _wrote(self) -> None:
        """This process changed the tables: its reader moves to their latest version before its next read."""
        if self._reader is not None:
            self._reader.stale = True

    def maintain(self, force: bool = False) -> None:
        """Build missing indexes and fold new rows into them (compaction); run off the request path."""
        chunks = self._t["chunks"]
        kinds = {i.columns[0]: (i.name, i.index_type) for i in chunks.list_indices()}
        if kinds.get("repo", ("", ""))[1] == "BTree":  # an index written before the visibility columns had bitmaps
            chunks.drop_index(kinds.pop("repo")[0])
        have = set(kinds)
        if "text" not in have:
            chunks.create_index("text", config=FTS(with_position=False, remove_stop_words=False))
        for col in ("name", "path"):
            if col not in have:
                chunks.create_index(col, config=BTree())
        # Every list of every query is prefiltered by the caller's repos and their generation windows. With a bitmap
        # on each of the three columns LanceDB answers that prefilter from the indexes instead of scanning the
        # columns: on 62k chunks a count of the visible rows fell from 3.2 to 1.1 ms, and so did every list's
        # share of it (docs/benchmarks.md). The columns have few distinct values: repos, and the generations
        # whose rows are still live (`begin` collects the rest).
        for col in VISIBILITY_COLUMNS:
            if col not in have:
                chunks.create_index(col, config=Bitmap())
        files = self._t["files"]
        if "content" not in {i.columns[0] for i in files.list_indices()}:
            # Whole-file BM25: a file that matches a long ticket everywhere is a signal no single unit carries.
            files.create_index("content", config=FTS(with_position=False, remove_stop_words=False))
        if "vector" not in have and chunks.count_rows() >= self.ann_min_rows:
            # Measured on 58k chunks: flat search ~20-45 ms, HNSW ~10 ms with the same top-10.
            partitions = max(1, chunks.count_rows() // 8000)
            chunks.create_index("vector", config=HnswSq(distance_type="cosine", num_partitions=partitions))
        commits = self._t.get("commits")
        if commits is not None and commits.count_rows() and not commits.list_indices():
            commits.create_index("text", config=FTS(with_position=False, remove_stop_words=False, stem=False))
        vectors = self._t["vectors"]
        if not vectors.list_indices():
            vectors.create_index("content_hash", config=BTree())
        unindexed = max((i.num_unindexed_rows or 0 for i in chunks.list_indices()), default=0)
        # Rows not yet in an index are still searched (flat); folding them in rewrites the indexes, which took
        # 19 s on x/tools after a 60-file change. So an incremental run folds only past a tenth of the table.
        if force or unindexed > max(MAINTAIN_MIN_ROWS, chunks.count_rows() // 10):
            for table in self._t.values():
                table.optimize(cleanup_older_than=timedelta(minutes=10))
        self._wrote()
