"""A ticket matched against the repository's own history: past commits like it point at the files they changed."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import lancedb
import pytest

from servers.code_search import gitrepo
from servers.code_search.embed import HashingEmbedder
from servers.code_search.filters import LIVE, RepoView, visible
from servers.code_search.index import CodeIndex
from servers.code_search.indexer import HISTORY_MAX_FILES, index_repo
from servers.code_search.model import Hit
from servers.code_search.query import parse_query
from servers.code_search.search import Candidates, Searcher, files_of_commits, fuse, rank
from servers.common.errors import InvalidInput

from .conftest import commit_all, git, index_killed_before_publish

# Two files a ticket's words cannot tell apart: only the history can.
BASE = {
    "render/page.go": "package render\n\n// Draw draws the page.\nfunc Draw(v []string) int { return len(v) }\n",
    "render/menu.go": "package render\n\n// Show shows the menu.\nfunc Show(v []string) int { return len(v) }\n",
    "render/page_test.go": 'package render\n\nimport "testing"\n\nfunc TestDraw(t *testing.T) { Draw(nil) }\n',
}
TICKET = (
    "Sidebar flickers when the taxonomy listing is reloaded\n\n"
    "### What happened\n\nAfter upgrading, the sidebar flickers every time the taxonomy listing reloads in the "
    "browser, and the entries come back in a different order than before. I expected the order to be stable "
    "across reloads, as in the previous release. This happens with every theme I tried and with the "
    "default configuration too.\n"
)


def _views(index: CodeIndex, repo: str, gen: int | None = None) -> list[RepoView]:
    views = index.views([repo])
    return [RepoView(v.repo, gen, v.commit) for v in views] if gen is not None else views


def _history(index: CodeIndex, text: str, views: list[RepoView]) -> list[list[str]]:
    return [files for _, files in index.history(text, visible(views), 10)]


def _commit_rows(index: CodeIndex, where: str) -> int:
    namespace = re.sub(r"[^A-Za-z0-9_]", "_", HashingEmbedder(dim=128).model_id)
    table = lancedb.connect(index.db_dir).open_table(f"{namespace}__commits")
    return int(table.count_rows(where))


@pytest.fixture
def repo(make_repo: Callable[[str, dict[str, str]], Path]) -> Path:
    repo = make_repo("site", BASE)
    (repo / "render/menu.go").write_text(BASE["render/menu.go"].replace("len(v)", "len(v) + 0"))
    (repo / "render/page_test.go").write_text(BASE["render/page_test.go"] + "\n// x\n")
    commit_all(repo, "render: keep the taxonomy listing order stable on reload (sidebar flicker)")
    (repo / "render/page.go").write_text(BASE["render/page.go"].replace("len(v)", "len(v) + 0"))
    commit_all(repo, "render: page counts its items once")
    return repo


def test_git_history_lists_non_merge_commits_newest_first_with_their_paths(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "side", "HEAD~1")
    (repo / "render/extra.go").write_text("package render\n")
    commit_all(repo, "side work")
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "-m", "merge side", "side")
    head = git(repo, "rev-parse", "HEAD")
    commits = gitrepo.history(repo, head, 10)
    messages = [m for _, m, _ in commits]
    # the merge itself is left out, its side commit is not; the first commit comes last (the test's commits share
    # one date, so the two branches' order is git's)
    assert sorted(messages[:2]) == ["render: page counts its items once", "side work"]
    assert messages[2:] == ["render: keep the taxonomy listing order stable on reload (sidebar flicker)", "initial"]
    assert commits[2][2] == ["render/menu.go", "render/page_test.go"]
    assert commits[3][2] == sorted(BASE)
    assert len(gitrepo.history(repo, head, 2)) == 2


def test_the_index_holds_the_history_of_each_generation(repo: Path, index: CodeIndex, hashing: HashingEmbedder) -> None:
    index_repo(index, hashing, repo, "site", "HEAD~1")
    first = _views(index, "site")
    # a commit's code files, tests left out; the initial commit changed three files
    assert _history(index, "taxonomy listing flicker", first) == [["render/menu.go"]]
    assert _history(index, "page counts items", first) == []  # not yet in the history at HEAD~1
    (repo / "render/menu.go").unlink()
    commit_all(repo, "render: drop the menu")
    index_repo(index, hashing, repo, "site")
    # the file is gone at the new commit: the old commit now points at nothing; readers of generation 1 keep it
    assert _history(index, "taxonomy listing flicker", _views(index, "site")) == [[]]
    assert _history(index, "page counts items", _views(index, "site")) == [["render/page.go"]]
    assert _history(index, "taxonomy listing flicker", first) == [["render/menu.go"]]
    live = _commit_rows(index, f"repo = 'site' AND gen_removed = {LIVE}")
    assert live == 4  # initial, listing, page, drop: one live row each


def test_history_is_limited_to_the_callers_repositories(
    repo: Path, make_repo: Callable[[str, dict[str, str]], Path], index: CodeIndex, hashing: HashingEmbedder
) -> None:
    other = make_repo("other", {"x/x.go": "package x\n\nfunc X() {}\n"})
    (other / "x/x.go").write_text("package x\n\nfunc X() { _ = 1 }\n")
    commit_all(other, "x: keep the taxonomy listing order stable on reload (sidebar flicker)")
    index_repo(index, hashing, repo, "site")
    index_repo(index, hashing, other, "other")
    assert _history(index, "taxonomy listing flicker", _views(index, "other")) == [["x/x.go"]]
    assert _history(index, "taxonomy listing flicker", _views(index, "site")) == [["render/menu.go"]]
    both = [r for r, _ in index.history("taxonomy listing flicker", visible(index.views()), 10)]
    assert sorted(both) == ["other", "site"]


def test_a_crash_before_publish_leaves_no_history_of_the_unpublished_generation(
    repo: Path, index: CodeIndex, hashing: HashingEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    index_repo(index, hashing, repo, "site", "HEAD~1")
    index_killed_before_publish(index, hashing, repo, "site", monkeypatch)
    assert _history(index, "page counts items", _views(index, "site")) == []
    index_repo(index, hashing, repo, "site")
    assert _history(index, "page counts items", _views(index, "site")) == [["render/page.go"]]
    assert _commit_rows(index, "repo = 'site'") == 3  # the unpublished rows were removed, not kept


def test_a_commit_that_changes_too_many_files_is_left_out(
    make_repo: Callable[[str, dict[str, str]], Path], index: CodeIndex, hashing: HashingEmbedder
) -> None:
    files = {f"p/f{i}.go": f"package p\n\nfunc F{i}() {{}}\n" for i in range(HISTORY_MAX_FILES + 1)}
    repo = make_repo("wide", files)  # "initial" changes 21 files: a sweeping change says nothing about a fix
    (repo / "p/f0.go").write_text("package p\n\nfunc F0() { _ = 0 }\n")
    commit_all(repo, "p: initial tweak")
    index_repo(index, hashing, repo, "wide")
    assert _history(index, "initial", _views(index, "wide")) == [["p/f0.go"]]


def test_a_history_git_cannot_read_leaves_the_code_indexed(
    repo: Path, index: CodeIndex, hashing: HashingEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object) -> None:
        raise InvalidInput("git log failed in site", detail="fatal: unable to read tree 1234")

    monkeypatch.setattr(gitrepo, "history", broken)
    report = index_repo(index, hashing, repo, "site")
    assert (report.chunks, report.commits) == (3, 0)
    assert report.history_skipped == "git log failed in site"  # the message, not git's stderr
    assert _history(index, "taxonomy listing flicker", _views(index, "site")) == []
    monkeypatch.undo()
    assert index_repo(index, hashing, repo, "site").commits == 3  # initial, listing, page


def test_a_directory_has_no_history_and_an_old_index_without_the_table_is_searched(
    shapes: Path, tmp_path: Path, hashing: HashingEmbedder
) -> None:
    index = CodeIndex(tmp_path / "db", hashing.model_id, hashing.dim, create=True)
    index_repo(index, hashing, shapes, "shapes")
    assert index.history("area of a circle", visible(index.views()), 10) == []
    lancedb.connect(tmp_path / "db").drop_table(f"{hashing.model_id.replace('-', '_')}__commits")
    reopened = CodeIndex(tmp_path / "db", hashing.model_id, hashing.dim)
    hits = Searcher(reopened, hashing).search(TICKET.replace("taxonomy", "circle area"), reopened.views(), k=5)
    assert hits  # every other list still runs
    assert reopened.history("area", visible(reopened.views()), 10) == []


def test_a_ticket_lifts_the_file_its_past_commit_changed(
    repo: Path, index: CodeIndex, hashing: HashingEmbedder
) -> None:
    index_repo(index, hashing, repo, "site")
    searcher = Searcher(index, hashing)
    found = searcher.gather(parse_query(TICKET), index.views(), 10)
    assert found.history == [("site", "render/menu.go")]
    top = searcher.search(TICKET, index.views(), k=5)
    assert top[0].path == "render/menu.go"
    without = rank(parse_query(TICKET), Candidates(found.lists, found.files), 5)
    assert [h.path for h in without] != [h.path for h in top]  # the two files differ only in their history
    # a short query, or a long one that is not a filed report (a long commit message), has no history list
    assert searcher.gather(parse_query("listing flicker"), index.views(), 10).history == []
    plain = " ".join(line for line in TICKET.splitlines() if not line.startswith("#"))
    assert parse_query(plain).ticket is not None and not parse_query(plain).report
    assert searcher.gather(parse_query(plain), index.views(), 10).history == []


def _hit(path: str, symbol: str) -> Hit:
    return Hit(
        repo="r", path=path, start_line=1, end_line=9, symbol=symbol, kind="func", signature="", content="", tokens=50
    )


def test_files_of_commits_rank_by_the_best_commit_and_by_how_many_commits_agree() -> None:
    ranked = files_of_commits([("r", ["a.go", "b.go"]), ("r", ["c.go"]), ("r", ["b.go"])])
    assert ranked == [("r", "b.go"), ("r", "a.go"), ("r", "c.go")]
    assert files_of_commits([]) == []


def test_fuse_lifts_the_units_of_history_files_but_not_tests() -> None:
    a, b, t = _hit("a.go", "p.A"), _hit("b.go", "p.B"), _hit("b_test.go", "p.TestB")
    lists = {"fts": [a, b, t]}
    weights = {"history": 1.0}
    assert [h.symbol for h in fuse(lists, 3, weights=weights)] == ["p.A", "p.B", "p.TestB"]
    lifted = fuse(lists, 3, weights=weights, history=[("r", "b.go"), ("r", "b_test.go")])
    assert [h.symbol for h in lifted] == ["p.B", "p.A", "p.TestB"]
    assert [h.symbol for h in fuse(lists, 3, history=[("r", "b.go")])] == ["p.A", "p.B", "p.TestB"]  # no weight
