"""Repository names: plain or `owner/name`, one validated type for policy, index, search and the tools."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from typer.testing import CliRunner

from servers.code_search.cli import index_command, search_command
from servers.code_search.filters import RepoView, visible
from servers.code_search.indexer import writer_lock
from servers.common.policy import Identity, ReposPolicy
from servers.common.repo_names import check_repo_name, repo_slug

app = typer.Typer()
app.command("index")(index_command)
app.command("search")(search_command)
runner = CliRunner()


def _accepts(check: Callable[[str], object], name: str) -> bool:
    try:
        check(name)
    except (ValueError, ValidationError):
        return False
    return True


def _policy(name: str) -> None:
    ReposPolicy.model_validate({"repos": {name: {"path": "x"}}})
    Identity.model_validate({"roles": ["r"], "repos": [name]})


NAMES = st.one_of(
    st.text(max_size=30),
    st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._+/ -]{0,20}\Z"),
    st.sampled_from(["zeromicro/go-zero", "owner+name", "a/b/c", "../x", "a/..", "/abs", "x/", "svc"]),
)


@given(NAMES)
def test_policy_index_and_search_accept_exactly_the_same_names(name: str) -> None:
    verdicts = {
        "type": _accepts(check_repo_name, name),
        "policy": _accepts(_policy, name),
        "search filter": _accepts(lambda n: visible([RepoView(n, 1, "c")]), name),
        "index lock": _accepts(repo_slug, name),
    }
    assert len(set(verdicts.values())) == 1, verdicts
    if verdicts["type"]:
        slug = repo_slug(name)
        assert "/" not in slug and slug not in (".", "..")


VALID = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,6}(/[A-Za-z0-9][A-Za-z0-9._-]{0,6})?\Z")


@given(VALID, VALID)
def test_two_names_never_share_a_lock_file(a: str, b: str) -> None:
    assert (repo_slug(a) == repo_slug(b)) == (a == b)


def test_owner_slash_name_indexes_and_searches(
    make_repo: Callable[[str, dict[str, str]], Path], tmp_path: Path
) -> None:
    repo = make_repo("go-zero", {"rest/server.go": "package rest\n\n// Start starts the server.\nfunc Start() {}\n"})
    common = ["--db", str(tmp_path / "db"), "--embedder", "hashing"]
    done = runner.invoke(app, ["index", str(repo), "--repo", "zeromicro/go-zero", *common])
    assert done.exit_code == 0, done.output
    found = runner.invoke(app, ["search", "start server", "--repo", "zeromicro/go-zero", "--json", *common])
    assert found.exit_code == 0, found.output
    hits = json.loads(found.stdout)["hits"]
    assert hits and hits[0]["repo"] == "zeromicro/go-zero" and hits[0]["symbol"] == "rest.Start"
    assert (tmp_path / "db" / ".locks" / "zeromicro+go-zero.lock").exists()


@pytest.mark.parametrize("name", ["owner+name", "a/b/c", "../etc", "x y"])
def test_index_and_search_refuse_the_same_bad_names(
    name: str, make_repo: Callable[[str, dict[str, str]], Path], tmp_path: Path
) -> None:
    repo = make_repo("r", {"a.go": "package a\n"})
    common = ["--db", str(tmp_path / "db"), "--embedder", "hashing"]
    indexed = runner.invoke(app, ["index", str(repo), "--repo", name, *common])
    searched = runner.invoke(app, ["search", "q", "--repo", name, *common])
    for result in (indexed, searched):
        assert result.exit_code == 2
        assert "invalid repository name" in result.output
    assert not (tmp_path / "db").exists()


def test_the_writer_lock_takes_owner_slash_name(tmp_path: Path) -> None:
    with writer_lock(tmp_path, "zeromicro/go-zero"):
        assert (tmp_path / ".locks" / "zeromicro+go-zero.lock").exists()
