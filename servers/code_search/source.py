"""What gets indexed: the files of a repo at a commit (or of a plain directory), after skip rules.

A snapshot is path -> blob id. For a git repository the ids come from `git ls-tree`, so comparing
two snapshots is the diff of two commits; for a plain directory (a module from the Go proxy) the id
is the git blob hash of the file's bytes. Symlinks are never followed.

A file whose name is not UTF-8 is left out and counted (`Snapshot.bad_names`): the index stores paths as
text, and decoding such a name lossily would merge two files into one.

A file over MAX_FILE_BYTES is never read, from git or from disk: its size (the blob's header, or `stat`)
decides first, so a small repository of huge, highly compressible files costs no memory.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from servers.code_search import gitrepo

_GENERATED = re.compile(rb"^// Code generated .* DO NOT EDIT\.$", re.MULTILINE)
MAX_FILE_BYTES = 1_000_000


@dataclass(frozen=True, slots=True)
class SkipRules:
    """Which files are left out; the defaults follow the issue (vendor, testdata, generated, binary)."""

    skip_dirs: tuple[str, ...] = ("vendor", "testdata", ".git", "node_modules")
    extensions: tuple[str, ...] = (".go", ".md")
    skip_generated: bool = True
    include_tests: bool = True

    def wants_path(self, path: str) -> bool:
        parts = path.split("/")
        if any(p in self.skip_dirs for p in parts[:-1]):
            return False
        if not self.include_tests and path.endswith("_test.go"):
            return False
        return path.endswith(self.extensions)

    def wants_content(self, data: bytes) -> bool:
        if len(data) > MAX_FILE_BYTES or b"\0" in data[:8192]:
            return False
        return not (self.skip_generated and _GENERATED.search(data[:4096]))


@dataclass(slots=True)
class Snapshot:
    """The indexable files of a repo at one commit: path -> blob id (and path -> size in bytes)."""

    root: Path
    commit: str
    files: dict[str, str] = field(default_factory=dict)
    is_git: bool = False
    sizes: dict[str, int] = field(default_factory=dict)
    bad_names: int = 0  # files left out because their name is not UTF-8 (the index stores text paths)

    def contents(self, paths: list[str]) -> Iterator[tuple[str, int, bytes | None]]:
        """Yield (path, size, bytes) for `paths` at this snapshot's commit, in order, one file read at a time.

        bytes is None for a file over MAX_FILE_BYTES: it is not read (its size is known beforehand). A blob the
        repository lacks reads as empty.
        """
        if self.is_git:
            wanted = [p for p in paths if self.sizes.get(p, 0) <= MAX_FILE_BYTES]
            read = gitrepo.read_blobs(self.root, [self.files[p] for p in wanted], MAX_FILE_BYTES)
            try:
                for p in paths:
                    if self.sizes.get(p, 0) > MAX_FILE_BYTES:
                        yield p, self.sizes[p], None
                        continue
                    _, size, data = next(read)
                    if size < 0:  # missing from the repository
                        yield p, 0, b""
                    else:
                        yield p, size, data
            finally:
                read.close()  # git stops even when the caller does not read to the end
        else:
            for p in paths:
                size, data = _read_file(self.root / p, self.sizes.get(p))
                yield p, size, data

    def read(self, paths: list[str]) -> Iterator[tuple[str, bytes]]:
        """Yield (path, bytes) for `paths` at this snapshot's commit; files over MAX_FILE_BYTES are left out."""
        for p, _, data in self.contents(paths):
            if data is not None:
                yield p, data


def _read_file(path: Path, size: int | None) -> tuple[int, bytes | None]:
    """(size, bytes) of a regular file, bytes None when it is over MAX_FILE_BYTES (then it is not read; one that
    grew past the limit since it was listed is read no further than the limit)."""
    if size is not None and size > MAX_FILE_BYTES:
        return size, None
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > MAX_FILE_BYTES:
            return size, None
        data = handle.read(size + 1)  # not MAX_FILE_BYTES + 1: a buffer that large per small file is slow
        if len(data) > size:  # it grew since: read on, up to the limit
            data += handle.read(MAX_FILE_BYTES + 1 - len(data))
    if len(data) > MAX_FILE_BYTES:
        return max(size, len(data)), None
    return len(data), data


def blob_id(data: bytes) -> str:
    """The git blob id of `data` (so directory and git snapshots agree on unchanged files)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def oversized_id(size: int) -> str:
    """The id of a directory file over MAX_FILE_BYTES, which is not read so has no blob hash: never a git id, so
    the file is marked changed when it shrinks under the limit (or was indexed from git before)."""
    return f"oversized-{size}"


def snapshot(root: Path, rev: str | None, rules: SkipRules) -> Snapshot:
    """List the files to index under `root` at `rev` (HEAD by default for a git repo).

    Raises:
        InvalidInput: `root` is a git repo and `rev` is not a commit in it.
    """
    if gitrepo.is_git_repo(root):
        commit = gitrepo.resolve(root, rev or "HEAD")
        tree = gitrepo.ls_tree(root, commit)
        wanted = {p: (blob, size) for p, (mode, blob, size) in tree.items() if mode != "120000" and rules.wants_path(p)}
        kept = {p: entry for p, entry in wanted.items() if _utf8(p)}
        files = {p: blob for p, (blob, _) in kept.items()}
        sizes = {p: size for p, (_, size) in kept.items() if size is not None}
        return Snapshot(root, commit, files, is_git=True, sizes=sizes, bad_names=len(wanted) - len(kept))
    files: dict[str, str] = {}
    sizes: dict[str, int] = {}
    bad_names = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in rules.skip_dirs)
        for name in filenames:
            full = Path(dirpath, name)
            rel = full.relative_to(root).as_posix()
            # lstat: a symlink is not followed; nor is a FIFO or device read (it would block or never end)
            if not rules.wants_path(rel) or not stat.S_ISREG(full.lstat().st_mode):
                continue
            if not _utf8(rel):
                bad_names += 1
                continue
            size, data = _read_file(full, None)
            files[rel] = oversized_id(size) if data is None else blob_id(data)
            sizes[rel] = size
    digest = hashlib.sha1("".join(f"{p}{b}" for p, b in sorted(files.items())).encode(), usedforsecurity=False)
    return Snapshot(root, rev or f"dir-{digest.hexdigest()[:12]}", files, sizes=sizes, bad_names=bad_names)


def _utf8(path: str) -> bool:
    """Whether a listed name is UTF-8 (os.walk and ls_tree give other bytes as surrogates, by surrogateescape)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
