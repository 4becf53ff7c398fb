"""Time to fresh: from a one-file push webhook to the new code being searchable (gorilla/mux, queue idle).

    .venv/bin/python bench/webhook_fresh.py [--pushes 5] [--embedder minilm|hashing]

Real parts: gorilla/mux v1.8.1 from the Go module proxy as a git "upstream", `goresolve serve webhooks`
and `goresolve worker` as processes on the embedded (SQLite) queue, the worker's bare mirror, the
LanceDB index, the embedding model. Each round commits one changed file (a new function in mux.go)
upstream, POSTs the signed push webhook, and polls the index until a search for the new function
finds it. Baseline in the same run: the same kind of one-file change indexed directly by the
incremental indexer (no webhook, queue, fetch or process hop). Prints `webhook time-to-fresh: N s`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from servers.code_search.index import CodeIndex  # noqa: E402
from servers.code_search.indexer import index_repo  # noqa: E402
from servers.code_search.search import Searcher  # noqa: E402
from servers.code_search.settings import CodeSearchSettings, open_embedder  # noqa: E402
from servers.webhooks.verify import signature  # noqa: E402
from tests.code_search.conftest import MUX, commit_all, git  # noqa: E402
from tests.webhooks.support import SECRET, push  # noqa: E402
from tests.workqueue.support import free_port, wait_for  # noqa: E402


def _mux_source() -> Path:
    done = subprocess.run(
        ["go", "mod", "download", "-json", MUX], capture_output=True, text=True, check=True, timeout=300
    )
    return Path(json.loads(done.stdout)["Dir"])


def _probe_change(repo: Path, n: int) -> str:
    with (repo / "mux.go").open("a") as f:
        f.write(f"\n// FreshnessProbe{n} reports round {n} of the time-to-fresh benchmark.\n")
        f.write(f"func FreshnessProbe{n}() int {{ return {n} }}\n")
    return commit_all(repo, f"probe {n}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--pushes", type=int, default=5)
    p.add_argument("--embedder", choices=["minilm", "hashing"], default="minilm")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp_s, ExitStack() as stack:
        tmp = Path(tmp_s)
        upstream = tmp / "upstream"
        shutil.copytree(_mux_source(), upstream)
        for path in upstream.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        git(upstream, "init", "-q", "-b", "main")
        first = commit_all(upstream, "gorilla/mux v1.8.1")
        port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "GORESOLVE_WEBHOOKS_GITHUB_SECRET": SECRET.get_secret_value(),
            "GORESOLVE_WEBHOOKS_LOG_LEVEL": "WARNING",
            "GORESOLVE_QUEUE_SQLITE_DIR": str(tmp / "queue"),
            "GORESOLVE_QUEUE_BACKEND": "sqlite",
            "GORESOLVE_CODE_SEARCH_DB_DIR": str(tmp / "index"),
            "GORESOLVE_CODE_SEARCH_EMBEDDER": args.embedder,
            "GORESOLVE_CODE_SEARCH_LOG_LEVEL": "WARNING",
            "GORESOLVE_WORKER_MIRRORS_DIR": str(tmp / "mirrors"),
            # The worker fetches only registered repositories, from configured URLs (never the payload's).
            "GORESOLVE_WORKER_REPOS": json.dumps({"gorilla/mux": "mux"}),
            "GORESOLVE_WORKER_CLONE_URLS": json.dumps({"gorilla/mux": str(upstream)}),
        }

        def start(*cli: str, log: str) -> subprocess.Popen[bytes]:
            out = stack.enter_context((tmp / log).open("wb"))
            proc = subprocess.Popen(
                [sys.executable, "-m", "goresolve.cli", *cli], cwd=tmp, env=env, stdout=out, stderr=out
            )
            stack.callback(proc.terminate)
            return proc

        start("serve", "webhooks", "--port", str(port), log="gateway.log")
        base = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            try:
                return httpx.get(f"{base}/readyz", timeout=0.5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, 60, "the gateway")

        def send(sha: str) -> None:
            body = push(after=sha)
            body["repository"] = {
                **body["repository"],
                "full_name": "gorilla/mux",
                "name": "mux",
                "clone_url": str(upstream),
            }
            raw = json.dumps(body).encode()
            headers = {
                "X-GitHub-Event": "push",
                "X-GitHub-Delivery": str(uuid.uuid4()),
                "X-GitHub-Hook-ID": "1",
                "X-Hub-Signature-256": signature(SECRET, raw),
            }
            answer = httpx.post(f"{base}/webhooks/github", content=raw, headers=headers, timeout=30)
            if answer.status_code != 202 or answer.json()["status"] != "queued":
                raise SystemExit(f"the gateway answered {answer.status_code}: {answer.text}")

        settings = CodeSearchSettings(embedder=args.embedder, db_dir=tmp / "index")
        embedder = open_embedder(settings)
        embedder.embed(["warm up"])
        t0 = time.perf_counter()
        send(first)
        start("worker", log="worker.log")
        index_box: list[CodeIndex] = []

        def indexed(sha: str) -> bool:
            try:
                if not index_box:
                    index_box.append(
                        CodeIndex(tmp / "index", embedder.model_id, embedder.dim, consistency=timedelta(0))
                    )
                views = index_box[0].views(["mux"])
            except Exception:  # the index does not exist until the worker's first run creates it
                return False
            return bool(views) and views[0].commit == sha

        wait_for(lambda: indexed(first), 600, "the first full index of mux", step=0.1)
        cold = time.perf_counter() - t0
        searcher = Searcher(index_box[0], embedder)
        fresh: list[float] = []
        for n in range(1, args.pushes + 1):
            sha = _probe_change(upstream, n)
            t0 = time.perf_counter()
            send(sha)

            def found(n: int = n) -> bool:
                views = index_box[0].views(["mux"])
                hits = searcher.search(f"FreshnessProbe{n}", views, 3, mode="fts")
                return any(h.symbol.endswith(f"FreshnessProbe{n}") for h in hits)

            wait_for(found, 120, f"FreshnessProbe{n} to be searchable", step=0.05)
            fresh.append(time.perf_counter() - t0)

        # baseline: the incremental indexer alone, on the same kind of change, in this process
        direct_index = CodeIndex(tmp / "direct", embedder.model_id, embedder.dim, create=True)
        index_repo(direct_index, embedder, upstream, "mux", first)
        direct: list[float] = []
        for n in range(101, 101 + args.pushes):
            sha = _probe_change(upstream, n)
            t0 = time.perf_counter()
            index_repo(direct_index, embedder, upstream, "mux", sha)
            direct.append(time.perf_counter() - t0)
        f50, d50 = statistics.median(fresh), statistics.median(direct)
        print(f"embedder={args.embedder}; first full index through the webhook: {cold:.1f} s")
        each = ", ".join(f"{x:.2f}" for x in fresh)
        print(f"time-to-fresh per push (s): {each}; median {f50:.2f}, max {max(fresh):.2f}")
        print(f"baseline, incremental index alone (s): {', '.join(f'{x:.2f}' for x in direct)}; median {d50:.2f}")
        print(f"ratio to baseline (median): x{f50 / d50:.1f}; webhook, queue, fetch and polling add {f50 - d50:.2f} s")
        print(f"webhook time-to-fresh: {max(fresh):.1f} s")


if __name__ == "__main__":
    main()
