"""The one place github-pr runs git: argument lists, never a shell, bounded by a timeout.

Two uses: the local backend keeps a bare cache of each remote, builds commits in it with a
throwaway index (no checkout ever happens) and pushes them; the GitHub backend uses `apply_to_files`
to apply a unified diff to a handful of files in a temporary directory.
No function here ever force-pushes: updates are fast-forwards on top of the bot's own commits.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from servers.common.errors import Conflict
from servers.common.gitenv import NO_HOOKS, GitFailed, git_env

from .models import Author

_TIMEOUT_S = 60.0


def run(
    args: list[str], *, cwd: Path | None = None, stdin: bytes | None = None, env: Mapping[str, str] | None = None
) -> str:
    """Run `git <args>` and return stdout.

    Raises:
        GitFailed: git exited non-zero or did not finish within the timeout.
    """
    try:
        proc = subprocess.run(
            ["git", *NO_HOOKS, *args],
            cwd=cwd,
            input=stdin,
            capture_output=True,
            env=git_env(env),
            timeout=_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise GitFailed("git timed out", detail=" ".join(args[:3])) from exc
    if proc.returncode != 0:
        stderr = proc.stderr.decode(errors="replace").strip()
        raise GitFailed(f"git {args[0]} failed", detail=stderr[-4000:])
    return proc.stdout.decode(errors="replace")


def sync_cache(remote: Path, cache: Path) -> None:
    """Create (once) and fetch a bare cache of `remote`; its branches land under refs/remotes/origin/.

    Raises:
        GitFailed: the remote cannot be read.
    """
    if not (cache / "HEAD").exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        run(["init", "--quiet", "--bare", str(cache)])
    run(["--git-dir", str(cache), "fetch", "--quiet", "--prune", str(remote), "+refs/heads/*:refs/remotes/origin/*"])


def ensure_bare(source: Path, target: Path) -> Path:
    """`target`, a bare clone of `source` made on first use (the local backend's stand-in remote).

    Raises:
        GitFailed: `source` is not a git repository.
    """
    if not (target / "HEAD").exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        run(["clone", "--quiet", "--bare", str(source), str(target)])
    return target


def rev_parse(git_dir: Path, ref: str) -> str | None:
    """The commit `ref` names in `git_dir`, or None when it does not exist."""
    try:
        return run(["--git-dir", str(git_dir), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"]).strip()
    except GitFailed:
        return None


def refs_with_prefix(git_dir: Path, prefix: str) -> dict[str, str]:
    """Refs whose full name starts with `prefix` (e.g. 'refs/remotes/origin/goresolve/SVC-1-'), to their sha.

    Raises:
        GitFailed: the repository cannot be read.
    """
    out = run(["--git-dir", str(git_dir), "for-each-ref", "--format=%(refname) %(objectname)"])
    return {name: sha for name, sha in (line.split(" ", 1) for line in out.splitlines()) if name.startswith(prefix)}


def commit_message(git_dir: Path, sha: str) -> tuple[str, str]:
    """(author email, full message) of commit `sha`.

    Raises:
        GitFailed: no such commit.
    """
    out = run(["--git-dir", str(git_dir), "log", "-1", "--format=%ae%n%B", sha])
    email, _, message = out.partition("\n")
    return email, message


def build_commit(git_dir: Path, *, tree_of: str, parent: str, patch: str, message: str, author: Author) -> str:
    """Commit `patch` applied to the tree of `tree_of`, with parent `parent`; nothing is checked out.

    Raises:
        Conflict: the patch does not apply to `tree_of` (the message names git's first complaint).
        GitFailed: any other git failure.
    """
    with tempfile.TemporaryDirectory(prefix="goresolve-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git = ["--git-dir", str(git_dir)]
        run([*git, "read-tree", tree_of], env=env)
        try:
            run([*git, "apply", "--cached", "--whitespace=nowarn", "-"], stdin=patch.encode(), env=env)
        except GitFailed as exc:
            first = (exc.detail or "").splitlines()[:1]
            raise Conflict(f"patch does not apply to {tree_of[:12]}: {first[0] if first else 'rejected'}") from exc
        tree = run([*git, "write-tree"], env=env).strip()
        ident = {
            "GIT_AUTHOR_NAME": author.name,
            "GIT_AUTHOR_EMAIL": author.email,
            "GIT_COMMITTER_NAME": author.name,
            "GIT_COMMITTER_EMAIL": author.email,
        }
        return run([*git, "commit-tree", tree, "-p", parent, "-F", "-"], stdin=message.encode(), env=ident).strip()


def push(git_dir: Path, remote: Path, sha: str, branch: str) -> None:
    """Push `sha` to `refs/heads/<branch>` of `remote`. Never forced: a non-fast-forward is refused.

    Raises:
        Conflict: the remote branch moved (someone else pushed); nothing was changed.
        GitFailed: any other git failure.
    """
    try:
        run(["--git-dir", str(git_dir), "push", "--quiet", "--porcelain", str(remote), f"{sha}:refs/heads/{branch}"])
    except GitFailed as exc:
        if "rejected" in (exc.detail or "") or "non-fast-forward" in (exc.detail or ""):
            raise Conflict(f"branch {branch} changed on the remote; not overwriting it") from exc
        raise


def apply_to_files(patch: str, files: Mapping[str, bytes]) -> dict[str, bytes | None]:
    """Apply `patch` to `files` (path -> content) in a scratch directory; return every path it touched.

    Deleted files map to None. Runs outside any repository, so only the given files exist.

    Raises:
        Conflict: the patch does not apply to the given contents.
        GitFailed: any other git failure.
    """
    with tempfile.TemporaryDirectory(prefix="goresolve-apply-") as tmp:
        root = Path(tmp) / "tree"
        for path, content in files.items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        root.mkdir(exist_ok=True)
        env = {"GIT_CEILING_DIRECTORIES": tmp}
        try:
            numstat = run(["apply", "--numstat", "-z", "-"], cwd=root, stdin=patch.encode(), env=env)
            run(["apply", "--whitespace=nowarn", "-"], cwd=root, stdin=patch.encode(), env=env)
        except GitFailed as exc:
            first = (exc.detail or "").splitlines()[:1]
            raise Conflict(f"patch does not apply: {first[0] if first else 'rejected'}") from exc
        touched = _numstat_paths(numstat) | set(files)
        return {p: (root / p).read_bytes() if (root / p).is_file() else None for p in sorted(touched)}


def _numstat_paths(numstat: str) -> set[str]:
    # -z numstat: "added\tdeleted\tpath\0" or, for renames, "added\tdeleted\t\0old\0new\0".
    paths: set[str] = set()
    fields = numstat.split("\0")
    i = 0
    while i < len(fields):
        head = fields[i]
        if not head:
            i += 1
            continue
        name = head.split("\t", 2)[2] if head.count("\t") >= 2 else ""
        if name:
            paths.add(name)
            i += 1
        else:
            paths.update(p for p in fields[i + 1 : i + 3] if p)
            i += 3
    return paths
