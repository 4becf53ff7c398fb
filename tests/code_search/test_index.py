"""Incremental indexing on a real git history: only changes are re-chunked and re-embedded; readers never see a mix."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from lancedb.index import BTree

from servers.code_search.embed import HashingEmbedder
from servers.code_search.filters import visible
from servers.code_search.index import VISIBILITY_COLUMNS, CodeIndex
from servers.code_search.indexer import index_repo, writer_lock
from servers.code_search.search import Searcher
from servers.common.errors import Conflict, InvalidInput, UpstreamFailure

from .conftest import commit_all, git, index_killed_before_publish

A = {
    "pkg/a.go": 'package pkg\n\n// Alpha says hi.\nfunc Alpha() string { return "hi" }\n\n'
    "func Beta() int { return 2 }\n",
    "pkg/b.go": "package pkg\n\n// Gamma is gone in B.\nfunc Gamma() {}\n",
    "README.md": "# Title\n\nSome words.\n",
}


def _symbols(index: CodeIndex, searcher: Searcher, repo: str, gen: int | None = None) -> set[str]:
    views = index.views([repo])
    if gen is not None:
        views = [type(v)(v.repo, gen, v.commit) for v in views]
    return {h.symbol for h in searcher.search("alpha beta gamma delta title", views, k=50, mode="fts")}


def _crash_before_publish(
    index: CodeIndex, hashing: HashingEmbedder, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commit B (pkg/b.go now holds Delta) and index it, killed before publishing: rows of generation 2 and
    retirements at 2 stay in the tables, unpublished."""
    (repo / "pkg/b.go").write_text("package pkg\n\nfunc Delta() {}\n")
    commit_all(repo, "B")
    index_killed_before_publish(index, hashing, repo, "svc", monkeypatch)


def test_reindex_touches_only_changed_files_and_embeds_only_new_hashes(
    make_repo: Callable[[str, dict[str, str]], Path], index: CodeIndex, hashing: HashingEmbedder
) -> None:
    repo = make_repo("svc", A)
    first = index_repo(index, hashing, repo, "svc")
    assert (first.generation, first.changed, first.chunks, first.embedded) == (1, 3, 4, 4)
    (repo / "pkg/a.go").write_text(A["pkg/a.go"].replace('"hi"', '"hello"'))  # Alpha changes, Beta does not
    (repo / "pkg/b.go").unlink()
    (repo / "pkg/d.go").write_text("package pkg\n\nfunc Delta() {}\n")
    commit_b = commit_all(repo, "B")
    searcher = Searcher(index, hashing)
    old_views = index.views(["svc"])
    second = index_repo(index, hashing, repo, "svc", commit_b)
    assert (second.changed, second.removed, second.chunks, second.embedded, second.reused) == (2, 1, 3, 2, 1)
    assert index.views(["svc"])[0].commit == commit_b
    assert _symbols(index, searcher, "svc") == {"pkg.Alpha", "pkg.Beta", "pkg.Delta", "Title"}
    # a reader that looked before the switch still sees exactly the old state
    old = {h.symbol for h in searcher.search("alpha beta gamma delta title", old_views, k=50, mode="fts")}
    assert old == {"pkg.Alpha", "pkg.Beta", "pkg.Gamma", "Title"}
    assert index.file_text(index.views(["svc"])[0], "pkg/b.go") is None
    assert index.file_text(old_views[0], "pkg/b.go") == A["pkg/b.go"]
    # going back to the first commit needs no embedding at all: every hash is cached
    back = index_repo(index, hashing, repo, "svc", "HEAD~1")
    assert (back.changed, back.embedded) == (2, 0)
    assert _symbols(index, searcher, "svc") == {"pkg.Alpha", "pkg.Beta", "pkg.Gamma", "Title"}


def test_crash_before_publish_leaves_old_state_and_next_run_completes(
    make_repo: Callable[[str, dict[str, str]], Path],
    index: CodeIndex,
    hashing: HashingEmbedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = make_repo("svc", A)
    index_repo(index, hashing, repo, "svc")
    searcher = Searcher(index, hashing)
    _crash_before_publish(index, hashing, repo, monkeypatch)
    assert _symbols(index, searcher, "svc") == {"pkg.Alpha", "pkg.Beta", "pkg.Gamma", "Title"}
    done = index_repo(index, hashing, repo, "svc")
    assert (done.generation, done.changed) == (2, 1)
    assert _symbols(index, searcher, "svc") == {"pkg.Alpha", "pkg.Beta", "pkg.Delta", "Title"}


def test_one_writer_per_repo(
    make_repo: Callable[[str, dict[str, str]], Path], index: CodeIndex, hashing: HashingEmbedder
) -> None:
    repo = make_repo("svc", A)
    with writer_lock(index.db_dir, "svc"), pytest.raises(Conflict, match="another indexer"):
        index_repo(index, hashing, repo, "svc")
    index_repo(index, hashing, repo, "other")  # a different repo is not blocked


def test_same_content_in_another_repo_is_not_embedded_again(
    make_repo: Callable[[str, dict[str, str]], Path], index: CodeIndex, hashing: HashingEmbedder
) -> None:
    index_repo(index, hashing, make_repo("one", A), "one")
    again = index_repo(index, hashing, make_repo("two", A), "two")
    assert (again.embedded, again.reused) == (0, 4)


def test_bad_revision_and_missing_index_are_reported(
    make_repo: Callable[[str, dict[str, str]], Path], index: CodeIndex, hashing: HashingEmbedder, tmp_path: Path
) -> None:
    repo = make_repo("svc", A)
    with pytest.raises(InvalidInput):
        index_repo(index, hashing, repo, "svc", "no-such-rev")
    with pytest.raises(InvalidInput):
        index_repo(index, hashing, repo, "svc", "--upload-pack=x")
    with pytest.raises(UpstreamFailure, match="code index is missing"):
        CodeIndex(tmp_path / "nothing", hashing.model_id, hashing.dim)


def test_directory_snapshot_counts_unparsed_and_skipped(
    shapes: Path, index: CodeIndex, hashing: HashingEmbedder
) -> None:
    report = index_repo(index, hashing, shapes, "shapes")
    assert report.unparsed == ["broken.go"]
    assert report.skipped == 2  # generated + binary
    assert report.commit.startswith("dir-")


def test_a_bare_mirror_is_indexed_at_any_commit(
    make_repo: Callable[[str, dict[str, str]], Path], index: CodeIndex, hashing: HashingEmbedder, tmp_path: Path
) -> None:
    repo = make_repo("svc", A)
    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(bare))
    report = index_repo(index, hashing, bare, "svc", "main")
    assert (report.changed, report.chunks) == (3, 4)


def test_visibility_bitmaps_answer_the_window_exactly_and_replace_an_old_repo_btree(
    make_repo: Callable[[str, dict[str, str]], Path],
    index: CodeIndex,
    hashing: HashingEmbedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = make_repo("svc", A)
    index_repo(index, hashing, repo, "svc")
    chunks = index._t["chunks"]
    # an index written before the bitmaps: a BTREE on repo, none on the generations
    for i in chunks.list_indices():
        if i.columns[0] in VISIBILITY_COLUMNS:
            chunks.drop_index(i.name)
    chunks.create_index("repo", config=BTree())
    _crash_before_publish(index, hashing, repo, monkeypatch)
    index.maintain(force=True)  # and folds them into the indexes, so the window is answered from the bitmaps
    assert {i.columns[0]: i.index_type for i in chunks.list_indices() if i.columns[0] in VISIBILITY_COLUMNS} == {
        c: "Bitmap" for c in VISIBILITY_COLUMNS
    }
    assert not max(i.num_unindexed_rows or 0 for i in chunks.list_indices())
    searcher = Searcher(index, hashing)
    assert _symbols(index, searcher, "svc") == {"pkg.Alpha", "pkg.Beta", "pkg.Gamma", "Title"}
    assert _symbols(index, searcher, "svc", gen=2) == {"pkg.Alpha", "pkg.Beta", "pkg.Delta", "Title"}
    assert index.count(visible(index.views(["svc"]))) == 4
    done = index_repo(index, hashing, repo, "svc")
    assert done.generation == 2
    assert _symbols(index, searcher, "svc") == {"pkg.Alpha", "pkg.Beta", "pkg.Delta", "Title"}


def test_a_process_reads_its_own_writes_whatever_the_consistency_interval(
    make_repo: Callable[[str, dict[str, str]], Path], tmp_path: Path, hashing: HashingEmbedder
) -> None:
    index = CodeIndex(tmp_path / "own", hashing.model_id, hashing.dim, create=True, consistency=timedelta(hours=1))
    repo = make_repo("svc", A)
    index_repo(index, hashing, repo, "svc")
    searcher = Searcher(index, hashing)
    assert _symbols(index, searcher, "svc") == {"pkg.Alpha", "pkg.Beta", "pkg.Gamma", "Title"}  # the reader is open
    (repo / "pkg/b.go").write_text("package pkg\n\nfunc Delta() {}\n")
    commit_all(repo, "B")
    index_repo(index, hashing, repo, "svc")
    # every list of a hybrid search, run side by side, reads the new generation's rows
    hits = searcher.search("delta gamma alpha", index.views(["svc"]), k=50)
    assert index.views(["svc"])[0].gen == 2
    assert {h.symbol for h in hits} >= {"pkg.Delta", "pkg.Alpha"} and "pkg.Gamma" not in {h.symbol for h in hits}
    assert _symbols(index, searcher, "svc") == {"pkg.Alpha", "pkg.Beta", "pkg.Delta", "Title"}
