"""The runner's git: mirrors kept between calls, throwaway worktrees, `git apply`. Argument lists only.

Each repository from repos.yaml is mirrored once under `<work_dir>/mirrors/<name>.git` (from its
URL or local path) and fetched afterwards — when a ref is missing, or a branch ref is older than
`fetch_interval_s`. A run gets a detached worktree of the mirror at one commit: kept per concurrency
slot and reset between runs when test code cannot write it (the bubblewrap sandbox), else removed.
git runs with no user/system config, no prompts and no hooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import time
import uuid
from pathlib import Path

from servers.common.errors import Conflict, NotFound
from servers.common.gitenv import NO_HOOKS, GitFailed, git_env
from servers.common.policy import ReposPolicy
from servers.common.repo_names import repo_slug

_TIMEOUT_S = 300.0
_FAILED_HUNK = re.compile(r"error: patch failed: (?P<where>\S+:\d+)")
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")


_CONFIG = """[core]
\trepositoryformatversion = 0
\tfilemode = true
\tbare = true
[remote "origin"]
\turl = {url}
\tfetch = +refs/*:refs/*
\tmirror = true
"""


def _sanitize(mirror: Path, source: str) -> None:
    """Rewrite the mirror's config and empty its hooks before the server's git touches it.

    Without namespaces, test code can write into the mirror (its worktree's .git file names it); a
    config key such as core.fsmonitor or core.sshCommand would then run a command outside the
    sandbox the next time git runs. The config of a mirror is fully determined by its source.
    """
    fresh = mirror / f"config.{uuid.uuid4().hex}"
    fresh.write_text(_CONFIG.format(url=source), encoding="utf-8")
    fresh.replace(mirror / "config")  # atomic: a concurrent git never reads half a config
    hooks = mirror / "hooks"
    shutil.rmtree(hooks, ignore_errors=True)
    hooks.mkdir(exist_ok=True)


async def git(*args: str, cwd: Path | None = None, stdin: bytes | None = None, check: bool = True) -> tuple[int, str]:
    """Run git, return (exit code, stdout+stderr text).

    Raises:
        GitFailed: `check` and git exited non-zero, or it did not finish within the timeout.
    """
    proc = await asyncio.create_subprocess_exec(
        "git",
        *NO_HOOKS,
        *args,
        cwd=cwd,
        env=git_env(),
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(stdin), _TIMEOUT_S)
    except TimeoutError as exc:
        proc.kill()
        await proc.wait()
        raise GitFailed("git timed out", detail=" ".join(args[:3])) from exc
    text = out.decode(errors="replace")
    if check and proc.returncode != 0:
        raise GitFailed(f"git {args[0]} failed", detail=text[-4000:])
    return proc.returncode or 0, text


class Mirrors:
    """Mirrors of the repositories policy names, and worktrees made from them."""

    def __init__(self, root: Path, repos: ReposPolicy, policy_dir: Path, fetch_interval_s: float) -> None:
        self._root = root
        self._repos = repos
        self._policy_dir = policy_dir
        self._fetch_interval_s = fetch_interval_s
        self._locks: dict[str, asyncio.Lock] = {}
        self._fetched_at: dict[str, float] = {}
        self._worktree_locks: dict[Path, asyncio.Lock] = {}
        self._pruned: set[Path] = set()
        # (repo, ref) -> commit, as the mirror resolved it since its last clone or fetch (only those
        # change what a ref names): a call at a known ref starts no git process
        self._resolved: dict[tuple[str, str], str] = {}

    def _source(self, name: str) -> str:
        repo = self._repos.repos.get(name)
        if repo is None:
            raise NotFound(f"unknown repository {name!r}")
        if repo.url:
            return repo.url
        if repo.path is None:
            raise NotFound(f"repository {name!r} has neither a path nor a url")
        return str((self._policy_dir / repo.path).resolve())

    async def _fetch(self, name: str, mirror: Path) -> None:
        self._forget(name)
        await git("--git-dir", str(mirror), "fetch", "--quiet", "--prune", "origin")
        self._fetched_at[name] = time.monotonic()

    def _forget(self, name: str) -> None:
        for key in [k for k in self._resolved if k[0] == name]:
            del self._resolved[key]

    async def resolve(self, name: str, ref: str) -> tuple[Path, str]:
        """The mirror of `name` (created or fetched as needed) and the commit `ref` names in it.

        Raises:
            NotFound: the repository is not in policy, or the ref does not exist even after a fetch.
            GitFailed: the repository cannot be cloned or fetched.
        """
        source = self._source(name)
        mirror = self._root / "mirrors" / f"{repo_slug(name)}.git"
        async with self._locks.setdefault(name, asyncio.Lock()):
            if not (mirror / "HEAD").exists():
                mirror.parent.mkdir(parents=True, exist_ok=True)
                partial = mirror.with_name(f"{repo_slug(name)}.{uuid.uuid4().hex}.partial")
                await git("clone", "--quiet", "--mirror", "--", source, str(partial))
                partial.rename(mirror)
                self._forget(name)
                self._fetched_at[name] = time.monotonic()
            _sanitize(mirror, source)
            if mirror not in self._pruned:
                # A previous process's worktrees were deleted at start (Runner.remove_leftovers); their
                # registrations stay in the mirror until pruned, and `worktree add` refuses a registered path.
                async with self._worktree_locks.setdefault(mirror, asyncio.Lock()):
                    await git("--git-dir", str(mirror), "worktree", "prune", check=False)
                self._pruned.add(mirror)
            stale = time.monotonic() - self._fetched_at.get(name, 0.0) > self._fetch_interval_s
            if stale and not _FULL_SHA.match(ref):
                self._forget(name)
            sha = self._resolved.get((name, ref)) or await self._rev_parse(mirror, ref)
            if sha is None or (stale and not _FULL_SHA.match(ref)):
                await self._fetch(name, mirror)
                sha = await self._rev_parse(mirror, ref)
            if sha is not None:
                self._resolved[(name, ref)] = sha
        if sha is None:
            raise NotFound(f"no commit, branch or tag {ref!r} in {name}")
        return mirror, sha

    @staticmethod
    async def _rev_parse(mirror: Path, ref: str) -> str | None:
        code, out = await git(
            "--git-dir", str(mirror), "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}",
            check=False,
        )  # fmt: skip
        sha = out.strip()
        return sha if code == 0 and _FULL_SHA.match(sha) else None

    async def add_worktree(self, mirror: Path, sha: str, path: Path) -> Path:
        """A fresh detached worktree of `mirror` at `sha`, at `path` (anything left there is removed first).

        Raises:
            GitFailed: git could not create it.
        """
        if path.exists():
            await self.remove_worktree(mirror, path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # One worktree operation per mirror at a time: a concurrent `worktree prune` would take a
        # half-created worktree for stale and delete its admin directory.
        async with self._worktree_locks.setdefault(mirror, asyncio.Lock()):
            await git("--git-dir", str(mirror), "worktree", "add", "--quiet", "--detach", str(path), sha)
        return path.resolve()

    async def reuse_worktree(self, mirror: Path, sha: str, path: Path) -> Path:
        """The worktree at `path` reset to `sha` (checkout, then every untracked file removed); a new one
        when there is none or the reset fails.

        Only for worktrees test code could not write (the bubblewrap sandbox shows it read-only to
        `go` and behind a throwaway layer to test binaries): git reads nothing there it did not write.

        Raises:
            GitFailed: git could not create a new worktree either.
        """
        if (path / ".git").is_file():
            async with self._worktree_locks.setdefault(mirror, asyncio.Lock()):
                code, _ = await git("-C", str(path), "checkout", "--quiet", "--detach", "--force", sha, check=False)
                if code == 0:
                    code, _ = await git("-C", str(path), "clean", "-ffdxq", check=False)
            if code == 0:
                return path.resolve()
        return await self.add_worktree(mirror, sha, path)

    async def remove_worktree(self, mirror: Path, path: Path) -> None:
        """Remove a worktree; never raises (a leftover directory is removed by hand and pruned)."""
        async with self._worktree_locks.setdefault(mirror, asyncio.Lock()):
            await self._remove_worktree(mirror, path)

    async def _remove_worktree(self, mirror: Path, path: Path) -> None:
        with contextlib.suppress(OSError):
            config = (mirror / "config").read_text(encoding="utf-8")
            url = re.search(r"^\s*url = (.*)$", config, re.MULTILINE)
            _sanitize(mirror, url.group(1) if url else "")
        await git("--git-dir", str(mirror), "worktree", "remove", "--force", str(path), check=False)
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)
        await git("--git-dir", str(mirror), "worktree", "prune", check=False)


async def apply_patch(worktree: Path, patch: str) -> str:
    """Apply a unified diff to the worktree and its index (`git apply --check` first); returns git's own diff.

    Raises:
        Conflict: the patch does not apply; the message names the first failing hunk.
        GitFailed: git failed for another reason.
    """
    data = patch.encode("utf-8", "surrogateescape")
    code, out = await git("apply", "--check", "--verbose", "--index", "-", cwd=worktree, stdin=data, check=False)
    if code != 0:
        m = _FAILED_HUNK.search(out)
        errors = [line.removeprefix("error: ") for line in out.splitlines() if line.startswith("error: ")]
        where = f"hunk at {m.group('where')} failed" if m else (errors[0] if errors else "patch rejected by git apply")
        raise Conflict(f"patch does not apply: {where[:300]}", detail=out[-4000:])
    await git("apply", "--index", "--whitespace=nowarn", "-", cwd=worktree, stdin=data)
    _, diff = await git("diff", "--cached", "--binary", "--no-color", "--no-ext-diff", "-M", cwd=worktree)
    return diff
