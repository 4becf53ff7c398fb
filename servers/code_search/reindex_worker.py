"""The code-search re-index worker: push events from the `code-index` queue -> fetch -> incremental index.

    goresolve worker [--concurrency 4] [--burst] [--metrics-port 9110]

For each push: fetch the repo into its bare mirror (`<mirrors>/<owner>/<name>.git`, cloned on first
use), resolve the pushed branch's tip *in the mirror*, and run code-search's own incremental indexer
(`indexer.index_repo`) at that commit. A repository's index follows one branch: its repos.yaml
`default_branch` when the entry sets it, else the mirror's HEAD (GitHub's default); a push to any other
branch is skipped (`other-branch`). Consequences, on purpose:
- Changed files always come from git: the indexer diffs the commit's tree against the stored blobs,
  so a payload capped at 2,048 commits / 3,000 files, or a forced push, changes nothing.
- Pushes queued for the same repo collapse: the first one to run indexes the newest tip; the later
  ones find the index already at that commit and do nothing (idempotent by (repo, commit)).
- One writer per repo: an asyncio lock per repo here, the indexer's file lock across processes (a
  `Conflict` from it is retried with backoff by the queue). Different repos index in parallel.
Only registered repositories are fetched: `GORESOLVE_WORKER_REPOS`, or repos.yaml in the policy
directory (an entry's name, or its `github` owner/name); a push for any other repository is logged
and skipped (`goresolve_reindex_skipped_total`). The payload's `clone_url` is never used: the URL is
`<GORESOLVE_WORKER_GITHUB_URL>/<owner>/<name>.git` (https only), or the repository's entry in
`GORESOLVE_WORKER_CLONE_URLS`, the one place a local path may be given. git runs with every
transport off but https (and file, for such a configured local path only), and a mirror path that
would leave the mirrors directory is refused.
This module starts git (fetch/clone), so it is on the process-starting contract's short list.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import anyio
import anyio.to_thread
import typer
from prometheus_client import Counter
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from servers.code_search.gitrepo import resolve
from servers.common.errors import InvalidInput
from servers.common.gitenv import NO_HOOKS, GitFailed, git_env
from servers.common.logging import get_logger
from servers.common.policy import ReposPolicy, load_policy_file
from servers.common.repo_names import GITHUB_FULL_NAME
from servers.common.settings import default_data_dir
from workqueue import Event

if TYPE_CHECKING:  # lancedb and tree-sitter load only when the worker runs, not with `goresolve`
    from servers.code_search.embed import Embedder
    from servers.code_search.index import CodeIndex
    from servers.code_search.indexer import IndexReport

log = get_logger(__name__)
_GIT_TIMEOUT = 600.0
# Transports: none but https; file only for a local path an operator configured in `clone_urls`.
_HTTPS_ONLY = ("-c", "protocol.allow=never", "-c", "protocol.https.allow=always")
_LOCAL_TOO = (*_HTTPS_ONLY, "-c", "protocol.file.allow=always")
SKIPPED = Counter("goresolve_reindex_skipped", "Push events the re-index worker did not act on.", ["reason"])


class WorkerSettings(BaseSettings):
    """Env prefix GORESOLVE_WORKER_."""

    model_config = SettingsConfigDict(env_prefix="GORESOLVE_WORKER_", extra="forbid", frozen=True)

    mirrors_dir: Path = Field(
        default_factory=lambda: default_data_dir() / "worker-mirrors",
        description="Bare mirrors, one per repo (default: <data dir>/worker-mirrors, not the working directory).",
    )
    repos: dict[str, str] = Field(
        default_factory=dict,
        description="owner/name -> index repo name, for repositories re-indexed besides those repos.yaml names "
        "(an entry there is indexed under its repos.yaml name).",
    )
    github_url: str = Field(
        default="https://github.com", description="Where repositories are cloned from (https; GHES: its host)."
    )
    clone_urls: dict[str, str] = Field(
        default_factory=dict,
        description="owner/name -> clone URL or local path, instead of <github_url>/<owner>/<name>.git (a "
        "mirror, a test); the only place a local path is accepted.",
    )
    github_token: SecretStr | None = Field(
        default=None,
        description="A token that may read the repositories (a fine-grained token with Contents: read, or a GitHub "
        "App's), for private ones: sent to github_url only, as HTTP basic auth through git's environment (never "
        "on a command line, in a mirror's config or in a log). Public repositories need none.",
    )
    ca_file: Path | None = Field(
        default=None, description="CA certificates (PEM) that sign github_url's certificate, for a private CA (GHES)."
    )
    concurrency: int = Field(default=4, ge=1, le=64)

    @field_validator("github_url")
    @classmethod
    def _https(cls, value: str) -> str:
        if not re.fullmatch(r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~-]+)*/?", value):
            raise ValueError("must be an https:// URL (a host, an optional port and path)")
        return value.rstrip("/")


def _git(*args: str, cwd: Path | None = None, local: bool = False, env: Mapping[str, str] | None = None) -> str:
    """Run git; `env` adds to the hardened environment (`git_env`), e.g. `access_env`'s credentials."""
    transports = _LOCAL_TOO if local else _HTTPS_ONLY
    cmd = ["git", *NO_HOOKS, *transports, *(["-C", str(cwd)] if cwd else []), *args]
    try:
        done = subprocess.run(cmd, capture_output=True, env=git_env(env), timeout=_GIT_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GitFailed(f"git {args[0]} failed", detail=str(exc)) from exc
    if done.returncode != 0:
        raise GitFailed(f"git {args[0]} failed", detail=done.stderr.decode(errors="replace")[-2000:])
    return done.stdout.decode().strip()


class Reindexer:
    """The push handler: `await reindexer(event)`; keeps the last report per repo for inspection."""

    def __init__(
        self, settings: WorkerSettings, index: CodeIndex, embedder: Embedder, *, policy_dir: Path | None = None
    ) -> None:
        """`policy_dir`: the policy set whose repos.yaml names the repositories to re-index (read at each
        push, so an updated policy applies at once); None: only those in `settings.repos`."""
        self.settings = settings
        self.index = index
        self.embedder = embedder
        self.policy_dir = policy_dir
        self._locks: defaultdict[str, anyio.Lock] = defaultdict(anyio.Lock)
        self.runs: list[IndexReport] = []

    def name_of(self, full_name: str) -> str | None:
        """The index name of the GitHub repository `full_name`, or None when it is not registered.

        Raises:
            ConfigError: repos.yaml exists but cannot be read (the queue retries, then dead-letters).
        """
        if full_name in self.settings.repos:
            return self.settings.repos[full_name]
        if self.policy_dir is None or not (self.policy_dir / "repos.yaml").exists():
            return None
        policy = load_policy_file(self.policy_dir / "repos.yaml", ReposPolicy)
        assert isinstance(policy, ReposPolicy)
        if full_name in policy.repos:
            return full_name
        folded = full_name.casefold()  # GitHub's names ignore case: `Acme/Svc` is repos.yaml's `acme/svc`
        return next((name for name, repo in policy.repos.items() if (repo.github or "").casefold() == folded), None)

    def branch_of(self, full_name: str, mirror: Path) -> str:
        """The one branch the repository's index follows: repos.yaml's `default_branch` when the entry sets it
        (the branch the agent works from), else the mirror's HEAD (the repository's default on GitHub).

        Raises:
            ConfigError: repos.yaml exists but cannot be read.
            GitFailed: the mirror has no HEAD branch.
        """
        if self.policy_dir is not None and (self.policy_dir / "repos.yaml").exists():
            policy = load_policy_file(self.policy_dir / "repos.yaml", ReposPolicy)
            assert isinstance(policy, ReposPolicy)
            for name, repo in policy.repos.items():
                github = (repo.github or "").casefold()
                if (name == full_name or github == full_name.casefold()) and "default_branch" in repo.model_fields_set:
                    return repo.default_branch
        return _git("symbolic-ref", "--quiet", "HEAD", cwd=mirror).removeprefix("refs/heads/")

    def mirror_of(self, full_name: str) -> Path:
        """`<mirrors>/<owner>/<name>.git`, resolved.

        Raises:
            InvalidInput: `full_name` is not owner/name, or the path would leave the mirrors directory.
        """
        if not GITHUB_FULL_NAME.fullmatch(full_name):
            raise InvalidInput("not a GitHub owner/name")
        root = self.settings.mirrors_dir.resolve()
        mirror = (root / f"{full_name}.git").resolve()
        if not mirror.is_relative_to(root) or mirror.parent.parent != root:
            raise InvalidInput("the mirror path leaves the mirrors directory")
        return mirror

    def url_of(self, full_name: str) -> tuple[str, bool]:
        """The URL `full_name` is fetched from, and whether it is a configured local one (file transport)."""
        configured = self.settings.clone_urls.get(full_name)
        if configured is not None:
            return configured, "://" not in configured or configured.startswith("file://")
        return f"{self.settings.github_url}/{full_name}.git", False

    def access_env(self) -> dict[str, str]:
        """git settings, as environment variables, for fetching from github_url: its CA file, and the token as an
        Authorization header scoped to github_url (git sends an `http.<url>.extraHeader` to that scheme, host
        and port only, so a clone URL elsewhere never gets it)."""
        config: list[tuple[str, str]] = []
        if self.settings.ca_file is not None:
            config.append((f"http.{self.settings.github_url}/.sslCAInfo", str(self.settings.ca_file)))
        if self.settings.github_token is not None:
            basic = base64.b64encode(f"x-access-token:{self.settings.github_token.get_secret_value()}".encode())
            config.append((f"http.{self.settings.github_url}/.extraHeader", f"Authorization: Basic {basic.decode()}"))
        env = {"GIT_CONFIG_COUNT": str(len(config))} if config else {}
        for n, (key, value) in enumerate(config):
            env |= {f"GIT_CONFIG_KEY_{n}": key, f"GIT_CONFIG_VALUE_{n}": value}
        return env

    def _fetch(self, full_name: str) -> Path:
        mirror = self.mirror_of(full_name)
        url, local = self.url_of(full_name)
        access = {} if local else self.access_env()
        if not (mirror / "HEAD").exists():
            mirror.parent.mkdir(parents=True, exist_ok=True)
            tmp = mirror.with_name(mirror.name + ".partial")
            if tmp.exists():  # left by a worker killed mid-clone
                shutil.rmtree(tmp)
            _git("clone", "--quiet", "--mirror", "--", url, str(tmp), local=local, env=access)
            tmp.rename(mirror)  # a half-done clone is never taken for a mirror
        else:
            # The configured URL, whatever an older mirror recorded as its origin.
            _git("remote", "set-url", "origin", url, cwd=mirror)
            _git("fetch", "--quiet", "--prune", "origin", cwd=mirror, local=local, env=access)
        return mirror

    def _skip(self, event: Event, reason: str) -> None:
        SKIPPED.labels(reason).inc()
        log.warning(
            "reindex.skipped", reason=reason, repo=(event.repo or "")[:200], id=event.id, trace_id=event.trace_id
        )

    def _reindex(self, event: Event) -> IndexReport | None:
        data = event.data
        if data.kind != "push" or event.repo is None:
            return None
        if not GITHUB_FULL_NAME.fullmatch(event.repo):
            self._skip(event, "bad-name")
            return None
        name = self.name_of(event.repo)
        if name is None:
            self._skip(event, "unregistered")
            return None
        mirror = self._fetch(event.repo)
        branch = self.branch_of(event.repo, mirror)
        if data.ref != f"refs/heads/{branch}":
            # One index per repository, at the branch the agent works from: a push to another followed
            # branch (`webhooks.branches`) must not move it there.
            log.info("reindex.other_branch", repo=name, ref=data.ref[:200], follows=branch, id=event.id)
            SKIPPED.labels("other-branch").inc()
            return None
        tip = (data.ref, data.after)
        report = self._index_forward(event, name, mirror, *tip) or self._index_forward(
            event, name, self._fetch(event.repo), *tip, fetched=True
        )
        if report is None or isinstance(report, str):
            return None
        log.info(
            "reindex.done",
            repo=name,
            commit=report.commit,
            changed=report.changed,
            removed=report.removed,
            bad_names=report.bad_names,
            seconds=round(report.seconds, 3),
            id=event.id,
            trace_id=event.trace_id,
        )
        return report

    def _index_forward(
        self, event: Event, name: str, mirror: Path, ref: str, after: str, *, fetched: bool = False
    ) -> IndexReport | str | None:
        """Index the followed branch's tip in `mirror`, never taking the index back: the report; "done" when there
        was nothing to do (the index is current, or already newer); None when `mirror` lacks the index's commit
        (another replica indexed a push made after this mirror was fetched: fetch, and ask again). `fetched`: the
        mirror was just fetched, and a commit it still lacks is no longer on the branch (pushed over by force):
        the tip is indexed."""
        from servers.code_search.indexer import Superseded, index_repo

        try:
            target = resolve(mirror, ref)  # the branch's newest tip: later queued pushes collapse here
        except InvalidInput:  # the branch is gone (deleted since): index the pushed commit
            target = resolve(mirror, after)
        if self.index.repo_info().get(name, {}).get("commit") == target:
            log.info("reindex.current", repo=name, commit=target, id=event.id, trace_id=event.trace_id)
            return "done"
        try:
            # under the writer lock, against the index's commit then: never back to an older one
            return index_repo(self.index, self.embedder, mirror, name, target, forward_only=True)
        except Superseded as exc:
            if exc.stale_source and fetched:
                return index_repo(self.index, self.embedder, mirror, name, target)
            if exc.stale_source:
                return None
            log.info("reindex.superseded", repo=name, commit=target, reason=exc.message, id=event.id)
            SKIPPED.labels("superseded").inc()
            return "done"

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
    from rich.text import Text

    from servers.code_search.settings import CodeSearchSettings, open_embedder, open_index
    from servers.common.errors import ConfigError, GoresolveError
    from servers.common.logging import configure_logging
    from servers.common.settings import load_settings
    from servers.common.textnorm import strip_invisible
    from workqueue import QueueError, QueueSettings, open_queue

    err = Console(stderr=True)

    def error(message: str) -> None:  # a path or value in the message is shown as it is, never as markup
        err.print(Text.from_markup("[red]error:[/red] ") + Text(" ".join(strip_invisible(message).split())))

    try:
        settings = WorkerSettings()
        search = load_settings(CodeSearchSettings)
        queue = open_queue(QueueSettings(), "code-index")
        embedder = open_embedder(search)
        index = open_index(search, embedder, create=True)
    except (ConfigError, ValidationError, ValueError, GoresolveError, QueueError) as exc:
        error(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise typer.Exit(2) from None
    configure_logging(service="reindex-worker", level=search.log_level, secrets=search.secret_values())
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="127.0.0.1")
    handler = Reindexer(settings, index, embedder, policy_dir=search.policy_dir)
    try:
        anyio.run(lambda: queue.consume(handler, concurrency=concurrency or settings.concurrency, burst=burst))
    except QueueError as exc:
        error(str(exc))
        raise typer.Exit(1) from None
