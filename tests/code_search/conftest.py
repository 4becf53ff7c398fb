"""Shared fixtures: Go fixtures copied to tmp, git repos built in the test, pinned Go modules."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from servers.code_search.embed import HashingEmbedder
from servers.code_search.index import CodeIndex
from servers.code_search.indexer import index_repo

GOSRC = Path(__file__).resolve().parents[1] / "testdata" / "gosrc"
MUX = "github.com/gorilla/mux@v1.8.1"


def git(repo: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
        "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z",
        "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z",
        "HOME": str(repo),
    }
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, env=env)
    return done.stdout.strip()


def index_killed_before_publish(
    index: CodeIndex, hashing: HashingEmbedder, repo: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Index `repo` as `name`, killed just before publishing: its new rows and retirements stay unpublished."""

    def crash(*_args: object, **_kw: object) -> None:
        raise RuntimeError("killed")

    monkeypatch.setattr(index, "publish", crash)
    with pytest.raises(RuntimeError, match="killed"):
        index_repo(index, hashing, repo, name)
    monkeypatch.undo()


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def shapes(tmp_path: Path) -> Path:
    target = tmp_path / "shapes"
    shutil.copytree(GOSRC / "shapes", target)
    return target


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[[str, dict[str, str]], Path]:
    def make(name: str, files: dict[str, str]) -> Path:
        repo = tmp_path / name
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        for rel, text in files.items():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            (repo / rel).write_text(text)
        commit_all(repo, "initial")
        return repo

    return make


@pytest.fixture
def hashing() -> HashingEmbedder:
    return HashingEmbedder(dim=128)


@pytest.fixture
def index(tmp_path: Path, hashing: HashingEmbedder) -> CodeIndex:
    return CodeIndex(tmp_path / "db", hashing.model_id, hashing.dim, create=True)


@pytest.fixture(scope="session")
def mux_dir() -> Path:
    done = subprocess.run(["go", "mod", "download", "-json", MUX], capture_output=True, text=True, check=True)
    return Path(json.loads(done.stdout)["Dir"])
