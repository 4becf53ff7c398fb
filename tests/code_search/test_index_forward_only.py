"""The re-index worker's index never moves back: with a replica (and a mirror) each, a push indexed by one must
not be undone by another indexing the push before it. Before, the tip was resolved and compared with the index's
commit outside the writer lock: a replica that stalled there indexed v2 over v3."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from servers.code_search.embed import HashingEmbedder
from servers.code_search.index import CodeIndex
from servers.code_search.indexer import Superseded, index_repo

from .conftest import commit_all, git


def _commit(repo: Path, text: str) -> str:
    (repo / "a.go").write_text(
        f"package a\n\n// F says {text}.\nfunc F() string {{ return {text!r} }}\n".replace("'", '"')
    )
    return commit_all(repo, text)


def _at(index: CodeIndex) -> str:
    return str(index.repo_info()["svc"]["commit"])


def test_an_older_commit_is_refused_and_a_newer_one_indexed(
    make_repo: Callable[[str, dict[str, str]], Path], index: CodeIndex, hashing: HashingEmbedder
) -> None:
    repo = make_repo("svc", {"go.mod": "module a\n"})
    v2 = _commit(repo, "two")
    v3 = _commit(repo, "three")
    index_repo(index, hashing, repo, "svc", v3, forward_only=True)
    with pytest.raises(Superseded, match=f"at {v3[:12]}, newer than {v2[:12]}") as refused:
        index_repo(index, hashing, repo, "svc", v2, forward_only=True)
    assert not refused.value.stale_source and _at(index) == v3
    v4 = _commit(repo, "four")
    index_repo(index, hashing, repo, "svc", v4, forward_only=True)
    assert _at(index) == v4
    index_repo(index, hashing, repo, "svc", v2)  # `goresolve index --commit` may still go back on purpose
    assert _at(index) == v2


def test_a_mirror_without_the_indexs_commit_is_told_to_fetch_and_a_rewritten_branch_is_followed(
    tmp_path: Path, make_repo: Callable[[str, dict[str, str]], Path], index: CodeIndex, hashing: HashingEmbedder
) -> None:
    repo = make_repo("svc", {"go.mod": "module a\n"})
    v2 = _commit(repo, "two")
    mirror = tmp_path / "mirror.git"
    git(tmp_path, "clone", "-q", "--mirror", str(repo), str(mirror))  # fetched at v2
    v3 = _commit(repo, "three")
    index_repo(index, hashing, repo, "svc", v3, forward_only=True)  # another replica, fetched later
    with pytest.raises(Superseded) as refused:
        index_repo(index, hashing, mirror, "svc", v2, forward_only=True)
    assert refused.value.stale_source and _at(index) == v3
    git(repo, "reset", "-q", "--hard", v2)  # a force-push: v3 is gone from the branch
    rewritten = _commit(repo, "three again")
    index_repo(index, hashing, repo, "svc", rewritten, forward_only=True)
    assert _at(index) == rewritten
