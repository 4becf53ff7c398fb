"""The code-search re-index worker: push events from the `code-index` queue -> fetch -> incremental index.

    goresolve worker [--concurrency 4] [--burst] [--metrics-port 9110]

For each push: fetch the repo into its bare mirror (`<mirrors>/<owner>/<name>.git`, cloned on first
use), resolve the pushed branch's tip *in the mirror*, and run code-search's own incremental indexer
(`indexer.index_repo`) at that commit. Consequences, on purpose:
- Changed files always come from git: the indexer diffs the commit's tree against the stored blobs,
  so a payload capped at 2,048 commits / 3,000 files, or a forced push, changes nothing.
- Pushes queued for the same repo collapse: the first one to run indexes the newest tip; the later
  ones find the index already at that commit and do nothing (idempotent by (repo, commit)).
- One writer per repo: an asyncio lock per repo here, the indexer's file lock across processes (a
  `Conflict` from it is retried with backoff by the queue). Different repos index in parallel.
This module starts git (fetch/clone), so it is on the process-starting contract's short list.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import anyio
import anyio.to_thread
import typer
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from servers.code_search.gitrepo import resolve
from servers.common.errors import InvalidInput
from servers.common.gitenv import NO_HOOKS, GitFailed, git_env
from servers.common.logging import get_logger
from servers.common.settings import default_data_dir
from workqueue import Event

if TYPE_CHECKING:  # lancedb and tree-sitter load only when the worker runs, not with `goresolve`
    from servers.code_search.embed import Embedder
    from servers.code_search.index import CodeIndex
    from servers.code_search.indexer import IndexReport

log = get_logger(__name__)
_GIT_TIMEOUT = 600.0


class WorkerSettings(BaseSettings):
    """Env prefix GORESOLVE_WORKER_."""

    model_config = SettingsConfigDict(env_prefix="GORESOLVE_WORKER_", extra="forbid", frozen=True)

    mirrors_dir: Path = Field(
        default_factory=lambda: default_data_dir() / "worker-mirrors",
        description="Bare mirrors, one per repo (default: <data dir>/worker-mirrors, not the working directory).",
    )
    repos: dict[str, str] = Field(
        default_factory=dict, description="owner/name -> index repo name (default: the name part)."
    )
    concurrency: int = Field(default=4, ge=1, le=64)


def _git(*args: str, cwd: Path | None = None) -> str:
    cmd = ["git", *NO_HOOKS, *(["-C", str(cwd)] if cwd else []), *args]
    try:
        done = subprocess.run(cmd, capture_output=True, env=git_env(), timeout=_GIT_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GitFailed(f"git {args[0]} failed", detail=str(exc)) from exc
    if done.returncode != 0:
        raise GitFailed(f"git {args[0]} failed", detail=done.stderr.decode(errors="replace")[-2000:])
    return done.stdout.decode().strip()


class Reindexer:
    """The push handler: `await reindexer(event)`; keeps the last report per repo for inspection."""

    def __init__(self, settings: WorkerSettings, index: CodeIndex, embedder: Embedder) -> None:
        self.settings = settings
        self.index = index
        self.embedder = embedder
        self._locks: defaultdict[str, anyio.Lock] = defaultdict(anyio.Lock)
        self.runs: list[IndexReport] = []

    def name_of(self, full_name: str) -> str:
        return self.settings.repos.get(full_name, full_name.rsplit("/", 1)[-1])

    def mirror_of(self, full_name: str) -> Path:
        return self.settings.mirrors_dir / f"{full_name}.git"

    def _fetch(self, full_name: str, clone_url: str) -> Path:
        mirror = self.mirror_of(full_name)
        if not (mirror / "HEAD").exists():
            mirror.parent.mkdir(parents=True, exist_ok=True)
            tmp = mirror.with_name(mirror.name + ".partial")
            if tmp.exists():  # left by a worker killed mid-clone
                shutil.rmtree(tmp)
            _git("clone", "--quiet", "--mirror", "--", clone_url, str(tmp))
            tmp.rename(mirror)  # a half-done clone is never taken for a mirror
        else:
            _git("fetch", "--quiet", "--prune", "origin", cwd=mirror)
        return mirror

    def _reindex(self, event: Event) -> IndexReport | None:
        data = event.data
        if data.kind != "push" or event.repo is None:
            return None
        mirror = self._fetch(event.repo, data.clone_url)
        name = self.name_of(event.repo)
        try:
            target = resolve(mirror, data.ref)  # the branch's newest tip: later queued pushes collapse here
        except InvalidInput:  # the branch is gone (deleted since): index the pushed commit
            target = resolve(mirror, data.after)
        current = self.index.repo_info().get(name, {}).get("commit")
        if current == target:
            log.info("reindex.current", repo=name, commit=target, id=event.id, trace_id=event.trace_id)
            return None
        from servers.code_search.indexer import index_repo

        report = index_repo(self.index, self.embedder, mirror, name, target)
        log.info(
            "reindex.done",
            repo=name,
            commit=target,
            changed=report.changed,
            removed=report.removed,
            seconds=round(report.seconds, 3),
            id=event.id,
            trace_id=event.trace_id,
        )
        return report

    async def __call__(self, event: Event) -> None:
        if event.data.kind != "push" or event.repo is None:
            return  # the code-index queue holds pushes only; anything else is not ours to act on
        async with self._locks[event.repo]:
            report = await anyio.to_thread.run_sync(self._reindex, event)
        if report is not None:
            self.runs.append(report)


def worker_command(
    concurrency: Annotated[int | None, typer.Option(help="Events handled at once (default 4).", min=1)] = None,
    burst: Annotated[bool, typer.Option(help="Stop when the queue is empty.")] = False,
    metrics_port: Annotated[int | None, typer.Option(help="Serve Prometheus metrics on this port.")] = None,
) -> None:
    """Re-index repos as push events arrive on the code-index queue (settings: GORESOLVE_WORKER_*,
    GORESOLVE_CODE_SEARCH_* for the index, GORESOLVE_QUEUE_* for the queue)."""
    from pydantic import ValidationError
    from rich.console import Console

    from servers.code_search.settings import CodeSearchSettings, open_embedder, open_index
    from servers.common.errors import ConfigError, GoresolveError
    from servers.common.logging import configure_logging
    from servers.common.settings import load_settings
    from workqueue import QueueError, QueueSettings, open_queue

    err = Console(stderr=True)
    try:
        settings = WorkerSettings()
        search = load_settings(CodeSearchSettings)
        queue = open_queue(QueueSettings(), "code-index")
        embedder = open_embedder(search)
        index = open_index(search, embedder, create=True)
    except (ConfigError, ValidationError, ValueError, GoresolveError, QueueError) as exc:
        err.print(f"[red]error:[/red] {str(exc).splitlines()[0]}")
        raise typer.Exit(2) from None
    configure_logging(service="reindex-worker", level=search.log_level, secrets=search.secret_values())
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="127.0.0.1")
    handler = Reindexer(settings, index, embedder)
    try:
        anyio.run(lambda: queue.consume(handler, concurrency=concurrency or settings.concurrency, burst=burst))
    except QueueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
