"""The runner's host-side reads of a checkout's module files (go.mod, go.sum, go.work), made safe.

A repository is written by whoever can push a branch or open a pull request, and the runner reads some
of its files on the host, outside the sandbox, and runs `go mod download` there. So a module file must
be a regular file of the checkout: not a symlink (`go.mod -> /proc/self/environ` would have go print
the host file's lines back in its parse errors), not in a directory reached through a symlink, not a
device or FIFO (`go.mod -> /dev/zero` never ends), and of a bounded size. Anything else is refused with
`RepoFileRefused`, which names the file and the reason, never its content.

The bounds: go.mod and go.work list module paths and versions, a few KB even for the largest modules
(kubernetes' go.mod is about 15 KB), so 1 MiB is far above any real one; go.sum holds two hashes per
module version in the build graph, a few hundred KB for the largest, so 16 MiB leaves room and still
bounds what one call reads into memory.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath

from servers.common.errors import InvalidInput

MAX_GO_MOD_BYTES = 1 << 20
MAX_GO_WORK_BYTES = 1 << 20
MAX_GO_SUM_BYTES = 16 << 20

_LIMITS = {"go.mod": MAX_GO_MOD_BYTES, "go.work": MAX_GO_WORK_BYTES, "go.sum": MAX_GO_SUM_BYTES}


class RepoFileRefused(InvalidInput):
    """A module file of the checkout is not a regular file inside it of a bounded size."""

    def __init__(self, rel: str, reason: str) -> None:
        shown = rel[:200]
        why = "module files must be regular files of the repository"
        super().__init__(f"refusing the checkout: {shown} {reason}; {why}")
        self.rel = shown
        self.reason = reason


def limit_of(rel: str) -> int:
    """The size bound of a module file by its name (go.mod, go.sum, go.work)."""
    return _LIMITS.get(PurePosixPath(rel).name, MAX_GO_MOD_BYTES)


def _size(limit: int) -> str:
    return f"{limit >> 20} MiB" if limit >= 1 << 20 and not limit % (1 << 20) else f"{limit} bytes"


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def read_repo_file(worktree: Path, rel: str, limit: int | None = None) -> bytes | None:
    """The bytes of the checkout's file `rel` (repository-relative, `/`-separated); None when it does not
    exist. `limit` defaults to the bound of its name (`limit_of`).

    Raises:
        RepoFileRefused: `rel` or a directory on its path is a symlink, it is not a regular file, it lies
            outside the checkout, or it is larger than `limit`.
    """
    limit = limit_of(rel) if limit is None else limit
    root = worktree.resolve()
    parts = [p for p in PurePosixPath(rel).parts if p not in ("", ".")]
    if not parts or ".." in parts or PurePosixPath(rel).is_absolute():
        raise RepoFileRefused(rel, "is not a path inside the repository")
    path = root
    for k, part in enumerate(parts):
        path = path / part
        st = _lstat(path)
        if st is None:
            return None
        last = k == len(parts) - 1
        if stat.S_ISLNK(st.st_mode):
            where = "is a symbolic link" if last else f"is below a symbolic link ({'/'.join(parts[: k + 1])})"
            raise RepoFileRefused(rel, where)
        if not last and not stat.S_ISDIR(st.st_mode):
            return None
    if not path.resolve().is_relative_to(root):
        raise RepoFileRefused(rel, "lies outside the repository")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError:
        raise RepoFileRefused(rel, "cannot be opened as a regular file") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise RepoFileRefused(rel, "is not a regular file")
        if st.st_size > limit:
            raise RepoFileRefused(rel, f"is larger than {_size(limit)}")
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise RepoFileRefused(rel, f"is larger than {_size(limit)}")
    return data


def read_repo_text(worktree: Path, rel: str, limit: int | None = None) -> str | None:
    """`read_repo_file` decoded as UTF-8 (bad bytes replaced)."""
    data = read_repo_file(worktree, rel, limit)
    return None if data is None else data.decode("utf-8", errors="replace")


def module_file(directory: str, name: str) -> str:
    """`name` in the repository-relative `directory` ("" or "." the root)."""
    return name if directory in ("", ".") else f"{directory.strip('/')}/{name}"


def check_module_files(worktree: Path, module: str) -> tuple[bytes | None, bytes | None]:
    """Refuse a checkout whose module files for the module at `module` ("" the root) are unsafe to hand to
    go on the host: its go.mod and go.sum, and the go.work at the root and in the module's directory.
    Returns the go.mod and the go.sum (None: absent).

    Raises:
        RepoFileRefused: one of them, or a directory on its path, is not safe (`read_repo_file`).
    """
    for rel in dict.fromkeys(["go.work", module_file(module, "go.work")]):
        read_repo_file(worktree, rel)
    go_mod = read_repo_file(worktree, module_file(module, "go.mod"))
    return go_mod, read_repo_file(worktree, module_file(module, "go.sum"))
