"""The re-index worker on real git and a real LanceDB index (hashing embedder): fetch, index, collapse, replay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio

from servers.code_search.embed import HashingEmbedder
from servers.code_search.index import CodeIndex
from servers.code_search.reindex_worker import Reindexer, WorkerSettings
from tests.code_search.conftest import commit_all, git
from tests.workqueue.support import push_event
from workqueue import Event, PushData
from workqueue.sqlite import SQLiteQueue

GO = "package svc\n\n// Handler serves requests.\nfunc Handler() string { return %r }\n"


def _upstream(tmp_path: Path) -> Path:
    repo = tmp_path / "upstream"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "go.mod").write_text("module example.com/svc\n")
    (repo / "svc.go").write_text(GO % "v1")
    commit_all(repo, "v1")
    return repo


def _push(upstream: Path, n: int, after: str) -> Event:
    event = push_event(f"push{n}", repo="acme/svc", after=after)
    data = PushData(
        ref="refs/heads/main", before="0" * 40, after=after, commits=1, truncated=False, clone_url=str(upstream)
    )
    return event.model_copy(update={"data": data})


async def test_pushes_reindex_incrementally_collapse_to_the_newest_commit_and_replays_do_nothing(
    tmp_path: Path,
) -> None:
    upstream = _upstream(tmp_path)
    embedder = HashingEmbedder()
    index = CodeIndex(tmp_path / "index", embedder.model_id, embedder.dim, create=True)
    worker = Reindexer(WorkerSettings(mirrors_dir=tmp_path / "mirrors"), index, embedder)

    first = _push(upstream, 1, git(upstream, "rev-parse", "HEAD"))
    await worker(first)
    assert index.repo_info()["svc"]["commit"] == first.data.model_dump()["after"]
    assert [r.changed for r in worker.runs] == [1]  # svc.go (go.mod is not indexed)

    (upstream / "svc.go").write_text(GO % "v2")
    (upstream / "extra.go").write_text("package svc\n\nfunc Extra() {}\n")
    second_sha = commit_all(upstream, "v2")
    (upstream / "svc.go").write_text(GO % "v3")
    third_sha = commit_all(upstream, "v3")

    queue = SQLiteQueue(tmp_path / "queue", "code-index")
    for n, sha in ((2, second_sha), (3, third_sha)):
        assert await queue.enqueue(_push(upstream, n, sha))
    with anyio.fail_after(60):
        await queue.consume(worker, concurrency=2, burst=True)
    # both pushes were handled, one index run brought the repo to the newest commit
    assert len(worker.runs) == 2
    assert worker.runs[-1].commit == third_sha and worker.runs[-1].changed == 2
    assert index.repo_info()["svc"]["commit"] == third_sha

    await worker(first)  # an old delivery replayed: the index stays where it is
    assert len(worker.runs) == 2 and index.repo_info()["svc"]["commit"] == third_sha
    await queue.aclose()


def test_mirrors_default_to_the_data_directory_not_the_working_directory(tmp_path: Path, monkeypatch: Any) -> None:
    """A worker started from a read-only or shared working directory keeps its mirrors in the data directory."""
    monkeypatch.setenv("GORESOLVE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("GORESOLVE_WORKER_MIRRORS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert WorkerSettings().mirrors_dir == (tmp_path / "data" / "worker-mirrors").resolve()
    monkeypatch.setenv("GORESOLVE_WORKER_MIRRORS_DIR", str(tmp_path / "elsewhere"))
    assert WorkerSettings().mirrors_dir == tmp_path / "elsewhere"
