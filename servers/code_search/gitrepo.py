"""The few git plumbing calls the indexer needs (a git helper module: it may start `git`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from servers.common.errors import InvalidInput
from servers.common.gitenv import NO_HOOKS, git_env

_TIMEOUT = 120.0


def _git(repo: Path, *args: str, stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(
            ["git", *NO_HOOKS, "-C", str(repo), *args],
            input=stdin,
            capture_output=True,
            env=git_env(),
            timeout=_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InvalidInput(f"git failed in {repo.name}", detail=str(exc)) from exc
    if done.returncode != 0:
        raise InvalidInput(f"git {args[0]} failed in {repo.name}", detail=done.stderr.decode(errors="replace"))
    return done.stdout


def is_git_repo(path: Path) -> bool:
    """True when `path` is the top of a git work tree or a bare repository (not a folder inside one)."""
    try:
        if _git(path, "rev-parse", "--is-bare-repository").strip() == b"true":
            return True
        top = _git(path, "rev-parse", "--show-toplevel").decode().strip()
    except InvalidInput:
        return False
    return Path(top).resolve() == path.resolve()


def resolve(repo: Path, rev: str) -> str:
    """The full commit id of `rev`.

    Raises:
        InvalidInput: `rev` is not a commit in `repo`.
    """
    if rev.startswith("-"):
        raise InvalidInput(f"not a revision: {rev!r}")
    return _git(repo, "rev-parse", "--verify", "--end-of-options", f"{rev}^{{commit}}").decode().strip()


def ls_tree(repo: Path, commit: str) -> dict[str, tuple[str, str]]:
    """path -> (mode, blob id) of every file at `commit` (symlinks have mode 120000)."""
    out = _git(repo, "ls-tree", "-r", "-z", "--full-tree", commit)
    entries: dict[str, tuple[str, str]] = {}
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, path = record.partition(b"\t")
        mode, kind, blob = meta.decode().split(" ")
        if kind == "blob":
            entries[path.decode("utf-8", errors="replace")] = (mode, blob)
    return entries


def read_blobs(repo: Path, blobs: list[str]) -> dict[str, bytes]:
    """Contents of the given blob ids, read in one `git cat-file --batch` call."""
    if not blobs:
        return {}
    out = _git(repo, "cat-file", "--batch", stdin=("\n".join(blobs) + "\n").encode())
    result: dict[str, bytes] = {}
    pos = 0
    while pos < len(out):
        nl = out.index(b"\n", pos)
        header = out[pos:nl].decode().split(" ")
        if len(header) < 3:  # "<id> missing"
            pos = nl + 1
            continue
        size = int(header[2])
        result[header[0]] = out[nl + 1 : nl + 1 + size]
        pos = nl + 1 + size + 1
    return result


def history(repo: Path, commit: str, limit: int) -> list[tuple[str, str, list[str]]]:
    """(id, message, changed paths) of the last `limit` non-merge commits reachable from `commit`, newest first.

    Renames are not followed (`--no-renames`: a rename is a removed and an added path), so git reads trees only,
    never blobs: a mirror whose largest blobs are absent still gives its whole history.
    """
    out = _git(
        repo,
        "log",
        "--no-merges",
        "--no-renames",
        "--name-only",
        "-z",
        "--format=%x1e%H%x00%B%x00",
        f"-n{limit}",
        "--end-of-options",
        commit,
    )
    commits: list[tuple[str, str, list[str]]] = []
    for record in out.decode("utf-8", errors="replace").split("\x1e")[1:]:
        sha, _, rest = record.partition("\x00")
        message, _, names = rest.partition("\x00")
        commits.append((sha, message.strip(), [n.strip("\n") for n in names.split("\x00") if n.strip("\n")]))
    return commits
