"""A file name that is not UTF-8 is left out and counted, from git and from a plain directory.

Before: in a plain directory (a module from the Go proxy) one such name aborted the whole index
(`UnicodeEncodeError ... surrogates not allowed` at the snapshot's digest); from git, `ls-tree` paths were
decoded with errors="replace", so `a\\xff.go` and `a\\xfe.go` were both `a\\ufffd.go` and one was lost silently.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from servers.code_search.cli import index_command
from servers.code_search.embed import HashingEmbedder
from servers.code_search.index import CodeIndex
from servers.code_search.indexer import index_repo
from servers.code_search.source import SkipRules, snapshot

from .conftest import commit_all, git

FILES = {
    b"a\xff.go": b"package m\n\nfunc FromFF() {}\n",
    b"a\xfe.go": b"package m\n\nfunc FromFE() {}\n",
    b"sub\xff/b.go": b"package sub\n\nfunc InBadDir() {}\n",
    b"notes\xff.txt": b"not indexed by extension: not counted\n",
    b"ok.go": b"package m\n\nfunc Plain() {}\n",
}


def _tree(root: Path) -> Path:
    root.mkdir()
    for name, data in FILES.items():
        path = os.path.join(os.fsencode(root), name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(data)
    return root


@pytest.mark.parametrize("is_git", [True, False], ids=["git", "directory"])
def test_non_utf8_names_are_skipped_and_counted(tmp_path: Path, hashing: HashingEmbedder, is_git: bool) -> None:
    root = _tree(tmp_path / "mod")
    if is_git:
        git(root, "init", "-q", "-b", "main")
        commit_all(root, "init")
        listed = subprocess.run(["git", "-C", str(root), "ls-files", "-z"], capture_output=True, check=True).stdout
        assert listed.count(b".go\0") == 4  # all of them are in git
    snap = snapshot(root, None, SkipRules())
    assert (sorted(snap.files), snap.bad_names) == (["ok.go"], 3)
    index = CodeIndex(tmp_path / "db", hashing.model_id, hashing.dim, create=True)
    report = index_repo(index, hashing, root, "mod")
    assert (report.files, report.bad_names, report.chunks) == (1, 3, 1)
    (view,) = index.views(["mod"])
    assert index.file_text(view, "ok.go") is not None and index.file_text(view, "a\ufffd.go") is None


def test_the_index_report_says_how_many_names_were_skipped(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command("index")(index_command)
    app.command("unused")(lambda: None)
    root = _tree(tmp_path / "mod")
    done = CliRunner().invoke(
        app, ["index", str(root), "--repo", "mod", "--db", str(tmp_path / "db"), "--embedder", "hashing"]
    )
    assert done.exit_code == 0, done.output
    assert "3 file(s) not indexed: their name is not UTF-8" in done.output
