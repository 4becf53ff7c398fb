"""What gets indexed: the files of a repo at a commit (or of a plain directory), after skip rules.

A snapshot is path -> blob id. For a git repository the ids come from `git ls-tree`, so comparing
two snapshots is the diff of two commits; for a plain directory (a module from the Go proxy) the id
is the git blob hash of the file's bytes. Symlinks are never followed.
"""

from __future__ import annotations

import hashlib
import os
import re
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
    """The indexable files of a repo at one commit: path -> blob id."""

    root: Path
    commit: str
    files: dict[str, str] = field(default_factory=dict)
    is_git: bool = False

    def read(self, paths: list[str]) -> Iterator[tuple[str, bytes]]:
        """Yield (path, bytes) for `paths` at this snapshot's commit."""
        if self.is_git:
            blobs = gitrepo.read_blobs(self.root, sorted({self.files[p] for p in paths}))
            for p in paths:
                yield p, blobs.get(self.files[p], b"")
        else:
            for p in paths:
                yield p, (self.root / p).read_bytes()


def blob_id(data: bytes) -> str:
    """The git blob id of `data` (so directory and git snapshots agree on unchanged files)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def snapshot(root: Path, rev: str | None, rules: SkipRules) -> Snapshot:
    """List the files to index under `root` at `rev` (HEAD by default for a git repo).

    Raises:
        InvalidInput: `root` is a git repo and `rev` is not a commit in it.
    """
    if gitrepo.is_git_repo(root):
        commit = gitrepo.resolve(root, rev or "HEAD")
        tree = gitrepo.ls_tree(root, commit)
        files = {p: blob for p, (mode, blob) in tree.items() if mode != "120000" and rules.wants_path(p)}
        return Snapshot(root, commit, files, is_git=True)
    files: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in rules.skip_dirs)
        for name in filenames:
            full = Path(dirpath, name)
            rel = full.relative_to(root).as_posix()
            if full.is_symlink() or not rules.wants_path(rel):
                continue
            files[rel] = blob_id(full.read_bytes())
    digest = hashlib.sha1("".join(f"{p}{b}" for p, b in sorted(files.items())).encode(), usedforsecurity=False)
    return Snapshot(root, rev or f"dir-{digest.hexdigest()[:12]}", files)
