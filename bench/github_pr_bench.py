"""Time to open (and to update) a pull request on github-pr's local backend, with a raw-git baseline.

    .venv/bin/python bench/github_pr_bench.py [--runs 30]

Repository: github.com/gorilla/mux@v1.8.1 from the Go module proxy, committed once and cloned bare as
the remote. The patch is a real-looking fix (a line in mux.go) plus a new regression test file.
  open      - `open_pull_request` for a new ticket: every policy check (incl. the patch policy), fetch
              into the bare cache, commit built with a throwaway index, push, SQLite record
  update    - the same ticket again: finds the branch, checks its head, fast-forwards it, updates the row
  raw git   - the baseline, same run: the same git commands (fetch, read-tree, apply --cached,
              write-tree, commit-tree, push) run directly, no policy, no lock, no SQLite
  policy    - `check_patch` alone on the same patch

The measurements are interleaved: round i runs open(i) then update(i), raw git(i) and policy(i),
in an order rotated every round, so load drift on a shared machine falls on every path alike. The
ratio quoted is the median of the per-round ratios open(i) / raw(i), beside the ratio of medians.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from servers.common.patch_policy import check_patch  # noqa: E402
from servers.common.policy import (  # noqa: E402
    AccessPolicy,
    Identity,
    Policies,
    ProtectedPolicy,
    Repo,
    ReposPolicy,
    Role,
    ToolsPolicy,
)
from servers.github_pr import git  # noqa: E402
from servers.github_pr.local import LocalBackend  # noqa: E402
from servers.github_pr.models import Author  # noqa: E402
from servers.github_pr.service import PullRequestService  # noqa: E402
from servers.github_pr.store import PullStore  # noqa: E402

MODULE = "github.com/gorilla/mux@v1.8.1"
BOT = Author("goresolve[bot]", "bot@example.invalid")
ENV = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x", "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@x"}
REGRESSION_TEST = """package mux

import "testing"

func TestMatchDocTypo(t *testing.T) {
\tif NewRouter() == nil {
\t\tt.Fatal("nil router")
\t}
}
"""


def sh(cwd: Path, *args: str, stdin: str | None = None) -> str:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(cwd), **ENV}
    return subprocess.run(args, cwd=cwd, input=stdin, capture_output=True, text=True, check=True, env=env).stdout


def make_remote(work: Path) -> tuple[Path, str, str]:
    """A bare remote with the module committed on main, and two patches against it."""
    download = subprocess.run(["go", "mod", "download", "-json", MODULE], capture_output=True, text=True, check=True)
    info = json.loads(download.stdout)
    src = work / "src"
    shutil.copytree(info["Dir"], src)
    for p in src.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    sh(src, "git", "init", "-q", "-b", "main")
    sh(src, "git", "add", "-A")
    sh(src, "git", "commit", "-q", "-m", f"import {MODULE}")
    mux = src / "mux.go"
    original = mux.read_text()
    mux.write_text(original.replace("fields of the the match", "fields of the match", 1))
    (src / "regression_test.go").write_text(REGRESSION_TEST)
    sh(src, "git", "add", "-A")
    first = sh(src, "git", "diff", "--cached")
    mux.write_text(original.replace("fields of the the match", "fields of the match argument", 1))
    sh(src, "git", "add", "-A")
    second = sh(src, "git", "diff", "--cached")
    remote = work / "remote.git"
    sh(work, "git", "clone", "-q", "--bare", str(src), str(remote))
    return remote, first, second


Step = Callable[[int], object]


def interleaved(units: list[list[tuple[str, Step]]], runs: int) -> dict[str, list[float]]:
    """Milliseconds per step and round. Each unit is a sequence of steps that must run in order
    (open, then update of the same ticket); round i runs every unit once, the units rotated by i."""
    out: dict[str, list[float]] = {name: [] for unit in units for name, _fn in unit}
    for i in range(runs):
        shift = i % len(units)
        for unit in units[shift:] + units[:shift]:
            for name, fn in unit:
                start = time.perf_counter()
                fn(i)
                out[name].append((time.perf_counter() - start) * 1000)
    return out


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory(prefix="goresolve-prbench-") as tmp:
        work = Path(tmp)
        remote, patch, patch2 = make_remote(work)
        policies = Policies(
            access=AccessPolicy(identities={"agent": Identity(roles=("agent",), repos=("mux",))}),
            tools=ToolsPolicy(roles={"agent": Role(scopes=("pr:write",))}),
            repos=ReposPolicy(repos={"mux": Repo(path=str(remote))}),
        )
        store = PullStore(work / "state" / "prs.sqlite")
        service = PullRequestService(
            LocalBackend({"mux": remote}, store, work / "state"), policies, prefix="goresolve", author=BOT
        )
        ident = policies.identity("agent")

        def open_pr(i: int, text: str = patch) -> object:
            return service.open_pull_request(
                "agent",
                ident,
                repo="mux",
                base="main",
                ticket=f"MUX-{i + 1}",
                title=f"Fix doc typo {i}",
                body="Fixes a doubled word.",
                patch=text,
            )

        open_pr(10_000)  # warm the bare cache: the first call creates it
        cache = work / "raw-cache.git"
        git.sync_cache(remote, cache)

        def raw(i: int) -> None:
            git.sync_cache(remote, cache)
            base = git.rev_parse(cache, "refs/remotes/origin/main")
            assert base is not None
            sha = git.build_commit(cache, tree_of=base, parent=base, patch=patch, message=f"raw {i}", author=BOT)
            git.push(cache, remote, sha, f"raw/{i}")

        times = interleaved(
            [
                [("open", open_pr), ("update", lambda i: open_pr(i, patch2))],
                [("raw", raw)],
                [("policy", lambda i: check_patch(patch, ProtectedPolicy()))],
            ],
            runs,
        )
        opened, updated, baseline, policy = times["open"], times["update"], times["raw"], times["policy"]
        assert len(store.all()) == runs + 1

    print(f"github-pr local backend, {MODULE}, {runs} runs each (ms)")
    print(f"{'path':<28} {'p50':>8} {'p95':>8}")
    for name, values in [
        ("open_pull_request (new)", opened),
        ("open_pull_request (update)", updated),
        ("raw git baseline", baseline),
        ("check_patch alone", policy),
    ]:
        print(f"{name:<28} {p(values, 50):>8.1f} {p(values, 95):>8.1f}")
    print(f"open p50 / raw git p50: {p(opened, 50) / p(baseline, 50):.2f}")
    paired = statistics.median(o / b for o, b in zip(opened, baseline, strict=True))
    print(f"median of per-round open / raw git: {paired:.2f} (interleaved, {runs} rounds)")


if __name__ == "__main__":
    main()
