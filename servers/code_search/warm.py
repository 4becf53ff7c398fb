"""A warm search process for the command line: the model and the index stay loaded between `goresolve search` runs.

Loading the embedding model and importing LanceDB cost seconds of CPU per process; a search on a
loaded index costs milliseconds. `goresolve search --keep-warm` answers, then leaves this process
running in the background; every later `goresolve search` on the same index and embedder asks it
first, over a Unix socket, and falls back to searching in process when no warm process answers.
It exits after `idle` seconds without a request.

    socket   <tmp>/goresolve-<uid>/search-<hash of index location and embedder>.sock  (directory 0700)
    request  one JSON line: {"repos": [...], "k": 10, "mode": "hybrid", "query": "..."}
    answer   one JSON line: {"hits": [...]}, or {"error": "...", "exit": 1}

The socket grants nothing a local user does not already have: the same user can read the index.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from servers.common.errors import GoresolveError

if TYPE_CHECKING:
    from servers.code_search.search import Searcher
    from servers.code_search.settings import CodeSearchSettings

IDLE_S = 900
ASK_TIMEOUT_S = 30.0
_MAX_LINE = 1 << 20


def socket_path(settings: CodeSearchSettings) -> Path:
    """Where the warm process for this index and embedder listens (short enough for AF_UNIX)."""
    where = settings.index_uri or str(settings.index_dir)
    key = hashlib.sha256(f"{where}\0{settings.embedder}".encode()).hexdigest()[:20]
    return Path(tempfile.gettempdir()) / f"goresolve-{os.getuid()}" / f"search-{key}.sock"


def ask(path: Path, request: dict[str, Any], timeout: float = ASK_TIMEOUT_S) -> dict[str, Any] | None:
    """The warm process's answer to `request`, or None when none is listening (the caller searches itself)."""
    if not path.exists():
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(str(path))
            conn.sendall(json.dumps(request).encode() + b"\n")
            with conn.makefile("rb") as reader:
                line = reader.readline(_MAX_LINE)
    except OSError:
        return None  # gone, refused, timed out: search in process instead
    try:
        answer = json.loads(line)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def spawn(settings: CodeSearchSettings, idle: int = IDLE_S) -> None:
    """Start a warm process for `settings`' index and embedder in the background (it exits when idle)."""
    command = [sys.executable, "-m", "servers.code_search.warm", "--db", str(settings.index_dir)]
    command += ["--embedder", settings.embedder, "--idle", str(idle)]
    subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # outlives the command that started it, and its terminal
        close_fds=True,
    )


def answer(searcher: Searcher, request: dict[str, Any]) -> dict[str, Any]:
    """Run one request against a loaded searcher (what the warm process does per line)."""
    from servers.code_search.search import Mode

    try:
        query, repos = str(request["query"]), [str(r) for r in request["repos"]]
        k, mode = int(request.get("k", 10)), str(request.get("mode", "hybrid"))
    except (KeyError, TypeError, ValueError):
        return {"error": "malformed request", "exit": 2}
    if mode not in ("hybrid", "fts", "vector") or not 1 <= k <= 100:
        return {"error": "mode must be hybrid, fts or vector and k 1-100", "exit": 2}
    try:
        views = searcher.index.views(repos)
        missing = sorted(set(repos) - {v.repo for v in views})
        if missing:
            return {"error": f"not indexed: {', '.join(missing)}", "exit": 1}
        run_mode: Mode = "fts" if mode == "fts" else "vector" if mode == "vector" else "hybrid"
        hits = searcher.search(query, views, k, mode=run_mode)
    except GoresolveError as exc:
        return {"error": exc.message, "exit": 1}
    except ValueError as exc:
        return {"error": str(exc), "exit": 2}
    return {"hits": [hit_json(h) for h in hits]}


def hit_json(hit: Any) -> dict[str, Any]:
    """The fields of a hit that `goresolve search` prints."""
    return {
        "repo": hit.repo,
        "path": hit.path,
        "start_line": hit.start_line,
        "end_line": hit.end_line,
        "symbol": hit.symbol,
        "kind": hit.kind,
        "score": hit.score,
    }


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: Path, searcher: Searcher) -> None:
        self.searcher = searcher
        self.last = time.monotonic()
        super().__init__(str(path), _Handler)


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        server = self.server
        assert isinstance(server, _Server)
        line = self.rfile.readline(_MAX_LINE)
        server.last = time.monotonic()
        try:
            request = json.loads(line)
        except ValueError:
            request = None
        reply = answer(server.searcher, request) if isinstance(request, dict) else {"error": "not JSON", "exit": 2}
        self.wfile.write(json.dumps(reply).encode() + b"\n")
        server.last = time.monotonic()


def serve(settings: CodeSearchSettings, idle: int = IDLE_S) -> None:
    """Load the model and the index, then answer on the socket until `idle` seconds pass without a request.

    Returns at once when another warm process already serves this index and embedder.
    """
    from servers.code_search.search import Searcher
    from servers.code_search.settings import open_embedder, open_index

    path = socket_path(settings)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.parent.stat().st_uid != os.getuid():
        raise PermissionError(f"{path.parent} belongs to another user")
    with (path.parent / f"{path.stem}.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # another warm process holds it
        embedder = open_embedder(settings)
        searcher = Searcher(open_index(settings, embedder), embedder)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a socket left by a process that died
        old = os.umask(0o177)
        try:
            server = _Server(path, searcher)
        finally:
            os.umask(old)
        threading.Thread(target=_watch, args=(server, idle), daemon=True).start()
        try:
            server.serve_forever(poll_interval=0.5)
        finally:
            server.server_close()
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _watch(server: _Server, idle: int) -> None:
    while time.monotonic() - server.last < idle:
        time.sleep(min(5.0, idle / 4))
    server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m servers.code_search.warm")
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--embedder", required=True)
    parser.add_argument("--idle", type=int, default=IDLE_S)
    args = parser.parse_args()
    from servers.code_search.settings import CodeSearchSettings
    from servers.common.settings import load_settings

    serve(load_settings(CodeSearchSettings, db_dir=args.db, embedder=args.embedder), args.idle)


if __name__ == "__main__":
    main()
