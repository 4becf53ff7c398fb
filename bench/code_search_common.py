"""Helpers shared by the code-search benchmarks: pinned modules, git checkouts of them, timing, RSS."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SMALL = "github.com/gorilla/mux@v1.8.1"
LARGE = "golang.org/x/tools@v0.28.0"
WORK = Path("/tmp/goresolve-bench")
RESULTS = Path(__file__).resolve().parent / "data" / "code_search"


def module_dir(module: str) -> Path:
    """Download `module@version` into the Go module cache (pinned) and return its directory."""
    out = subprocess.run(["go", "mod", "download", "-json", module], capture_output=True, text=True, check=True)
    return Path(json.loads(out.stdout)["Dir"])


def git(repo: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "b@x",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "b@x",
        "HOME": str(repo),
        "PATH": "/usr/bin:/bin:/usr/local/bin",
    }
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, env=env
    ).stdout.strip()


def checkout(module: str) -> Path:
    """A writable git repository holding the module's files (one commit), under WORK."""
    target = WORK / "checkouts" / module.replace("/", "_").replace("@", "_")
    if (target / ".git").exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(module_dir(module), target)
    for path in target.rglob("*"):
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    git(target, "init", "-q", "-b", "main")
    git(target, "add", "-A")
    git(target, "commit", "-q", "-m", f"import {module}")
    return target


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def timed() -> Iterator[list[float]]:
    box: list[float] = []
    start = time.perf_counter()
    yield box
    box.append(time.perf_counter() - start)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def save(name: str, payload: object) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    if isinstance(payload, dict):  # the machine is shared: record how busy it was
        payload = {**payload, "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count()}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
