"""kill -9 `goresolve worker` in the middle of an index write: after the lease, one index state results.

The worker runs as a real process on the embedded queue with a real LanceDB index (hashing embedder,
so no model is needed). The test waits until the indexer holds its per-repo writer lock, kills the
process, starts a new worker, and compares what readers see with an index built directly at the same
commit: the same published commit and exactly the same set of units, no rows of the killed run.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from servers.code_search.embed import HashingEmbedder
from servers.code_search.filters import visible
from servers.code_search.index import CodeIndex
from servers.code_search.indexer import index_repo
from tests.code_search.conftest import commit_all, git
from tests.workqueue.support import REPO_ROOT, wait_for
from workqueue import Event, PushData
from workqueue.sqlite import SQLiteQueue

FILES = 120


def _upstream(root: Path) -> str:
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "go.mod").write_text("module example.com/big\n")
    for n in range(FILES):
        pkg = root / f"pkg{n % 30}"
        pkg.mkdir(exist_ok=True)
        funcs = "\n".join(
            f"// F{n}x{i} does step {i} of file {n}.\nfunc F{n}x{i}() int {{ return {i} }}\n" for i in range(20)
        )
        (pkg / f"f{n}.go").write_text(f"package pkg{n % 30}\n\n{funcs}")
    return commit_all(root, "big")


def _units(index: CodeIndex) -> set[tuple[str, str, int]]:
    views = index.views(["big"])
    return {(h.path, h.symbol, h.part) for h in index.scan(visible(views), 100_000)}


def _locked(lock: Path) -> bool:
    if not lock.exists():
        return False
    with lock.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


@pytest.fixture
def worker_env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "GORESOLVE_QUEUE_SQLITE_DIR": str(tmp_path / "queue"),
        "GORESOLVE_CODE_SEARCH_DB_DIR": str(tmp_path / "index"),
        "GORESOLVE_CODE_SEARCH_EMBEDDER": "hashing",
        "GORESOLVE_WORKER_MIRRORS_DIR": str(tmp_path / "mirrors"),
        # acme/big is registered here, and fetched from the local upstream the test makes
        "GORESOLVE_WORKER_REPOS": '{"acme/big": "big"}',
        "GORESOLVE_WORKER_CLONE_URLS": json.dumps({"acme/big": str(tmp_path / "upstream")}),
    }


@pytest.fixture
def spawn(tmp_path: Path, worker_env: dict[str, str]) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.mark.slow
def test_a_worker_killed_mid_index_leaves_one_index_state(
    tmp_path: Path, worker_env: dict[str, str], spawn: list[subprocess.Popen[bytes]]
) -> None:
    upstream = tmp_path / "upstream"
    sha = _upstream(upstream)
    event = Event(
        id=f"github:1:{uuid.uuid4()}",
        source="github",
        delivery="d",
        hook_id="1",
        trace_id=uuid.uuid4().hex,
        received_at=datetime.now(UTC),
        repo="acme/big",
        data=PushData(
            ref="refs/heads/main", before="0" * 40, after=sha, commits=1, truncated=False, clone_url=str(upstream)
        ),
    )

    async def put() -> None:
        queue = SQLiteQueue(tmp_path / "queue", "code-index")
        assert await queue.enqueue(event)
        await queue.aclose()

    anyio.run(put)

    def start(log: str) -> subprocess.Popen[bytes]:
        out = (tmp_path / log).open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "goresolve.cli", "worker"],
            cwd=tmp_path,
            env=worker_env,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
        spawn.append(proc)
        return proc

    first = start("worker1.log")
    lock = tmp_path / "index" / ".locks" / "big.lock"
    wait_for(lambda: _locked(lock), 120, "the indexer to hold the writer lock", step=0.01)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)

    embedder = HashingEmbedder()
    index = CodeIndex(tmp_path / "index", embedder.model_id, embedder.dim, consistency=timedelta(0))
    assert index.views(["big"]) == []  # nothing half-written is visible

    start("worker2.log")
    wait_for(lambda: bool(index.views(["big"])), 180, "the new worker to publish the index", step=0.1)
    (view,) = index.views(["big"])
    assert view.commit == sha

    reference = CodeIndex(tmp_path / "reference", embedder.model_id, embedder.dim, create=True)
    index_repo(reference, embedder, upstream, "big", sha)
    assert _units(index) == _units(reference)
    assert len(_units(index)) == FILES * 20
    info = json.loads(json.dumps(index.repo_info()["big"]["stats"]))
    assert info["files"] == FILES
