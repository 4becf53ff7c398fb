"""Index one repo at one commit, incrementally (the indexer is the only writer of the index).

    lock repo -> snapshot files -> begin (recover, next generation) -> diff against the stored files
    -> chunk changed files -> embed only unseen content hashes -> retire replaced rows -> add rows
    -> the recent history (commit messages and the code files they changed) -> publish the generation
    -> fold new rows into the indexes

Until `publish`, readers keep seeing the previous generation; a crash anywhere before it leaves
rows that the next run's `begin` removes. One writer per repo: a non-blocking file lock.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from servers.code_search import gitrepo
from servers.code_search.chunker import GoChunker, GoOptions, cut_oversized
from servers.code_search.embed import Embedder
from servers.code_search.filters import LIVE
from servers.code_search.index import CodeIndex
from servers.code_search.markdown import line_windows, markdown_sections
from servers.code_search.model import Chunk, code_text
from servers.code_search.source import MAX_FILE_BYTES, SkipRules, Snapshot, snapshot
from servers.common.errors import Conflict, InvalidInput
from servers.common.repo_names import repo_slug

FILE_BATCH = 250
# A batch's text is held at once, several times over (decoded, chunked, embedded, as rows: 250 files of 990 KB each
# once took the indexer to 4.6 GB), so a batch also ends at this many bytes of the files it reads.
BATCH_BYTES = 16 * 1024 * 1024
# The history a ticket is matched against: the last HISTORY_COMMITS non-merge commits, each with the non-test .go
# files it changed (a commit changing none, or more than HISTORY_MAX_FILES, says nothing about where a fix goes).
HISTORY_COMMITS = 3000
HISTORY_MAX_FILES = 20
HISTORY_MAX_CHARS = 4000


class Progress(Protocol):
    """Receives progress: the number of files to read, then files and chunks as they are done."""

    def start(self, files: int) -> None: ...

    def advance(self, files: int, chunks: int) -> None: ...


@dataclass(slots=True)
class IndexReport:
    """What one indexing run did (the CLI prints it; `stats` of the repo keeps it)."""

    repo: str
    commit: str
    generation: int
    files: int = 0
    changed: int = 0
    removed: int = 0
    skipped: int = 0
    bad_names: int = 0  # files left out because their name is not UTF-8
    chunks: int = 0
    embedded: int = 0
    reused: int = 0
    bytes: int = 0
    unparsed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    chunk_seconds: float = 0.0
    embed_seconds: float = 0.0
    history_seconds: float = 0.0
    commits: int = 0  # commits in the history kept for this generation
    history_skipped: str = ""  # why this generation has no history although the source is a git repository
    publish_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextmanager
def writer_lock(db_dir: Path, repo: str) -> Generator[None]:
    """Hold the one-writer-per-repo lock.

    Raises:
        Conflict: another indexer is writing this repo now.
        ValueError: `repo` is not a valid repository name.
    """
    locks = db_dir / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    with (locks / f"{repo_slug(repo)}.lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise Conflict(f"another indexer is writing repo {repo}") from exc
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def chunk_file(chunker: GoChunker, path: str, text: str) -> tuple[list[Chunk], str]:
    """Units of one file and its status: "ok", or "windows" when it did not parse."""
    if path.endswith(".md"):
        return [w for unit in markdown_sections(path, text) for w in cut_oversized([unit], chunker.max_tokens)], "ok"
    units = chunker.chunk(path, text.encode("utf-8"))  # Go units far over the budget are cut there already
    if units is None:
        return [w for unit in line_windows(path, text) for w in cut_oversized([unit], chunker.max_tokens)], "windows"
    return units, "ok"


def _chunk_row(repo: str, commit: str, gen: int, chunk: Chunk, vector: Any) -> dict[str, Any]:
    searchable = f"{chunk.symbol} {chunk.path} {chunk.signature}\n{chunk.content}"
    return {
        "repo": repo,
        "commit": commit,
        "path": chunk.path,
        "symbol": chunk.symbol,
        "name": chunk.name.lower(),
        "parent": chunk.parent,
        "kind": chunk.kind,
        "signature": chunk.signature,
        "doc": chunk.doc,
        "content": chunk.content,
        "content_hash": chunk.content_hash,
        "text": code_text(searchable),
        "start_line": chunk.start_line,
        "end_line": chunk.end_line,
        "tokens": chunk.tokens,
        "part": chunk.part,
        "vector": vector,
        "gen_added": gen,
        "gen_removed": LIVE,
    }


def index_repo(
    index: CodeIndex,
    embedder: Embedder,
    root: Path,
    repo: str,
    rev: str | None = None,
    *,
    rules: SkipRules | None = None,
    go_options: GoOptions | None = None,
    progress: Progress | None = None,
    maintain: bool = True,
    forward_only: bool = False,
) -> IndexReport:
    """Bring `repo`'s index to `rev` of the repository (or directory) at `root`. With `forward_only` (the re-index
    worker: pushes indexed by replicas with a mirror each), the index never moves back to an older commit: that
    is checked under the writer lock, against the commit the index holds then.

    Raises:
        Superseded: `forward_only`, and the index is already at a newer commit (or `root` does not hold the one
            it is at: fetch and resolve the branch again).
        Conflict: another writer holds this repo's lock.
        InvalidInput: `rev` is not a commit of `root`.
        UpstreamFailure: the index cannot be written, or a remote embedder failed.
    """
    began = time.perf_counter()
    rules = rules or SkipRules()
    chunker = GoChunker(go_options)
    with writer_lock(index.db_dir, repo):
        snap = snapshot(root, rev, rules)
        if forward_only and snap.is_git:
            _refuse_going_back(index, root, repo, snap.commit)
        gen, stored = index.begin(repo)
        report = IndexReport(repo, snap.commit, gen, files=len(snap.files), bad_names=snap.bad_names)
        changed = sorted(p for p, blob in snap.files.items() if stored.get(p) != blob)
        removed = sorted(p for p in stored if p not in snap.files)
        report.changed, report.removed = len(changed), len(removed)
        if progress:
            progress.start(len(changed))
        index.retire(repo, changed + removed, gen)
        for batch in batches(changed, snap.sizes):
            added = _index_batch(index, embedder, chunker, snap, repo, gen, batch, rules, report)
            if progress:
                progress.advance(len(batch), added)
        history_at = time.perf_counter()
        commits: dict[str, tuple[str, list[str]]] = {}
        if snap.is_git:
            try:
                commits = recent_history(snap)
            except InvalidInput as exc:  # the code is indexed all the same; the report says why there is no history
                report.history_skipped = exc.message
        index.set_history(repo, gen, commits)
        report.commits = len(commits)
        report.history_seconds = time.perf_counter() - history_at
        publish_at = time.perf_counter()
        report.seconds = publish_at - began
        index.publish(repo, snap.commit, gen, report.as_dict())
        report.publish_seconds = time.perf_counter() - publish_at
        if maintain:
            index.maintain()
        report.seconds = time.perf_counter() - began
    return report


class Superseded(Conflict):
    """The index is at a commit that `commit` would take it back from. `stale_source`: the repository indexed from
    does not hold the index's commit (fetch it again, then resolve the branch's tip)."""

    def __init__(self, message: str, *, stale_source: bool) -> None:
        super().__init__(message)
        self.stale_source = stale_source


def _refuse_going_back(index: CodeIndex, root: Path, repo: str, commit: str) -> None:
    """Raises Superseded when indexing `commit` would move `repo`'s index back (see `index_repo`)."""
    stored = index.repo_info().get(repo, {}).get("commit")
    if not isinstance(stored, str) or not stored or stored == commit:
        return
    newer = gitrepo.ancestry(root, commit, stored)
    if newer is None:
        raise Superseded(f"the index of {repo} is at {stored[:12]}, which {root.name} does not hold", stale_source=True)
    if newer:
        raise Superseded(f"the index of {repo} is at {stored[:12]}, newer than {commit[:12]}", stale_source=False)


def batches(paths: list[str], sizes: dict[str, int]) -> Iterator[list[str]]:
    """`paths` in order, in batches of at most FILE_BATCH files and BATCH_BYTES bytes read (a file over the size
    limit is not read, so it counts nothing)."""
    batch: list[str] = []
    held = 0
    for path in paths:
        size = sizes.get(path, 0)
        size = size if size <= MAX_FILE_BYTES else 0
        if batch and (len(batch) >= FILE_BATCH or held + size > BATCH_BYTES):
            yield batch
            batch, held = [], 0
        batch.append(path)
        held += size
    if batch:
        yield batch


def recent_history(snap: Snapshot) -> dict[str, tuple[str, list[str]]]:
    """Commit id -> (code-aware words of its message, the non-test .go files it changed that exist at `snap`)."""
    out: dict[str, tuple[str, list[str]]] = {}
    for sha, message, paths in gitrepo.history(snap.root, snap.commit, HISTORY_COMMITS):
        code = [p for p in paths if p.endswith(".go") and not p.endswith("_test.go")]
        if 0 < len(code) <= HISTORY_MAX_FILES:
            out[sha] = (code_text(message[:HISTORY_MAX_CHARS]), sorted(p for p in code if p in snap.files))
    return out


def _index_batch(
    index: CodeIndex,
    embedder: Embedder,
    chunker: GoChunker,
    snap: Snapshot,
    repo: str,
    gen: int,
    paths: list[str],
    rules: SkipRules,
    report: IndexReport,
) -> int:
    t0 = time.perf_counter()
    files: list[dict[str, Any]] = []
    chunks: list[Chunk] = []
    for path, size, data in snap.contents(paths):  # a file over the size limit comes without its bytes, unread
        report.bytes += size
        status = "skipped"
        text = ""
        if data is not None and rules.wants_content(data):
            text = data.decode("utf-8", errors="replace")
            units, status = chunk_file(chunker, path, text)
            chunks.extend(units)
            if status == "windows":
                report.unparsed.append(path)
        else:
            report.skipped += 1
        files.append(
            {
                "repo": repo,
                "path": path,
                "blob": snap.files[path],
                "content": text,
                "status": status,
                "gen_added": gen,
                "gen_removed": LIVE,
            }
        )
    t1 = time.perf_counter()
    report.chunk_seconds += t1 - t0
    hashes = [c.content_hash for c in chunks]
    vectors = index.cached_vectors(hashes)
    report.reused += sum(1 for h in hashes if h in vectors)
    todo: dict[str, str] = {}
    for chunk, h in zip(chunks, hashes, strict=True):
        if h not in vectors:
            todo.setdefault(h, chunk.embed_text())
    new_hashes = list(todo)
    if new_hashes:  # one call per file batch: the embedder sorts by length, so padding stays small
        embedded = embedder.embed([todo[h] for h in new_hashes])
        index.add("vectors", [{"content_hash": h, "vector": v} for h, v in zip(new_hashes, embedded, strict=True)])
        vectors.update(zip(new_hashes, embedded, strict=True))
    report.embedded += len(new_hashes)
    report.embed_seconds += time.perf_counter() - t1
    index.add(
        "chunks", [_chunk_row(repo, snap.commit, gen, c, vectors[h]) for c, h in zip(chunks, hashes, strict=True)]
    )
    index.add("files", files)
    report.chunks += len(chunks)
    return len(chunks)
