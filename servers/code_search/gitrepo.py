"""The few git plumbing calls the indexer needs (a git helper module: it may start `git`)."""

from __future__ import annotations

import os
import select
import subprocess
import tempfile
import threading
from collections.abc import Generator
from pathlib import Path
from typing import IO, cast

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


def ancestry(repo: Path, older: str, newer: str) -> bool | None:
    """Whether commit `older` is an ancestor of commit `newer` in `repo` (a commit is its own); None when `repo`
    does not hold one of them (a mirror fetched before the other was pushed).

    Raises:
        InvalidInput: git could not be run.
    """
    for commit in (older, newer):
        try:
            _git(repo, "cat-file", "-e", f"{commit}^{{commit}}")
        except InvalidInput:
            return None
    try:
        _git(repo, "merge-base", "--is-ancestor", older, newer)
    except InvalidInput:
        return False
    return True


def ls_tree(repo: Path, commit: str) -> dict[str, tuple[str, str, int | None]]:
    """path -> (mode, blob id, size in bytes) of every file at `commit` (symlinks have mode 120000).

    The size comes from the object's header (`ls-tree -l`): no blob is read. It is None when git cannot tell
    (the blob is absent from the repository). A path that is not UTF-8 is decoded with surrogateescape, so two
    such names stay two (with errors="replace" `a\\xff.go` and `a\\xfe.go` were one); the caller skips them
    (`source.snapshot`).
    """
    out = _git(repo, "ls-tree", "-r", "-l", "-z", "--full-tree", commit)
    entries: dict[str, tuple[str, str, int | None]] = {}
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, path = record.partition(b"\t")
        mode, kind, blob, size = meta.decode().split()
        if kind == "blob":
            name = path.decode("utf-8", errors="surrogateescape")
            entries[name] = (mode, blob, int(size) if size.isdigit() else None)
    return entries


class _Pipe:
    """The read end of a git process's stdout, each wait for more bytes bounded by `_TIMEOUT` (a git that stops
    answering fails the read instead of hanging it; the time the caller spends between reads does not count)."""

    def __init__(self, fd: int, repo: Path) -> None:
        self._fd = fd
        self._repo = repo
        self._buf = bytearray()
        self._poll = select.poll()  # not select(): a busy process's descriptors can be past FD_SETSIZE
        self._poll.register(fd, select.POLLIN)

    def _more(self) -> None:
        if not self._poll.poll(_TIMEOUT * 1000):
            raise InvalidInput(f"git cat-file timed out in {self._repo.name}")
        data = os.read(self._fd, 1 << 16)
        if not data:
            raise InvalidInput(f"git cat-file ended early in {self._repo.name}")
        self._buf += data

    def line(self) -> bytes:
        while (nl := self._buf.find(b"\n")) < 0:
            self._more()
        out = bytes(self._buf[:nl])
        del self._buf[: nl + 1]
        return out

    def take(self, size: int) -> bytes:
        """The next `size` bytes (and the newline after them)."""
        while len(self._buf) < size + 1:
            self._more()
        with memoryview(self._buf) as view:
            out = bytes(view[:size])  # one copy
        del self._buf[: size + 1]
        return out

    def skip(self, size: int) -> None:
        """Drop the next `size` bytes (and the newline after them) without ever holding more than one read."""
        left = size + 1
        while left:
            if not self._buf:
                self._more()
            step = min(left, len(self._buf))
            del self._buf[:step]
            left -= step


def read_blobs(repo: Path, blobs: list[str], max_size: int) -> Generator[tuple[str, int, bytes | None]]:
    """(id, size, contents) of each of `blobs`, in order, streamed from one `git cat-file --batch` call.

    One object is held at a time: contents is None (and size -1) for an object the repository lacks, and None
    for one larger than `max_size`, which is read off the pipe in small pieces and dropped (callers ask only
    for blobs whose size they know fits). Closing the iterator early stops git.

    Raises:
        InvalidInput: git cannot start, fails, or stops answering for `_TIMEOUT` seconds.
    """
    if not blobs:
        return
    with tempfile.TemporaryFile() as errors:
        try:
            proc = subprocess.Popen(
                ["git", *NO_HOOKS, "-C", str(repo), "cat-file", "--batch"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                env=git_env(),
            )
        except OSError as exc:
            raise InvalidInput(f"git failed in {repo.name}", detail=str(exc)) from exc
        stdin, stdout = cast(IO[bytes], proc.stdin), cast(IO[bytes], proc.stdout)  # both pipes, as asked
        request = ("\n".join(blobs) + "\n").encode()

        def feed() -> None:  # in a thread: git answers while it reads, so a long list cannot fill both pipes
            try:
                stdin.write(request)
                stdin.close()
            except OSError:  # git is gone; the reader reports it
                pass

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        pipe = _Pipe(stdout.fileno(), repo)
        try:
            for _ in blobs:
                header = pipe.line().decode(errors="replace").split(" ")
                if len(header) < 3:  # "<id> missing"
                    yield header[0], -1, None
                    continue
                size = int(header[2])
                if size > max_size:
                    pipe.skip(size)
                    yield header[0], size, None
                else:
                    yield header[0], size, pipe.take(size)
        except InvalidInput as exc:
            proc.kill()
            proc.wait()
            errors.seek(0)
            exc.detail = errors.read().decode(errors="replace")
            raise
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            writer.join()
            stdout.close()


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
