"""`goresolve resolve --repo PATH`: what a local path is refused for up front, and the policies its run gets."""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from agent.cli import load_agent_settings
from goresolve.cli import unclonable_repos
from goresolve.resolve import prepare
from servers.common.policy import check_repo_paths, load_policies
from servers.common.settings import load_settings
from servers.github_pr.backends import make_backend
from servers.github_pr.settings import GitHubPrSettings

from .cli_support import one_error_line, resolve_cli

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}


def _git(*args: str) -> None:
    subprocess.run(["git", *args], check=True, capture_output=True, timeout=60, env={**os.environ, **GIT_ENV})


def _go_repo(where: Path) -> Path:
    where.mkdir(parents=True)
    (where / "go.mod").write_text("module example.com/svc\n\ngo 1.22\n")
    (where / "svc.go").write_text("package svc\n\n// Add adds.\nfunc Add(a, b int) int { return a + b }\n")
    _git("-C", str(where), "init", "-q", "-b", "main")
    _git("-C", str(where), "add", "-A")
    _git("-C", str(where), "commit", "-q", "-m", "init")
    return where


def _resolve(tmp_path: Path, repo: str) -> Any:
    return resolve_cli(tmp_path, "SVC-101", repo)


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GORESOLVE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GORESOLVE_CODE_SEARCH_EMBEDDER", "hashing")
    return tmp_path / "data"


@pytest.mark.parametrize("form", ["bare clone", "a work tree's .git"])
def test_a_bare_repository_is_refused_before_anything_naming_how_to_get_a_work_tree(
    form: str, tmp_path: Path, data_dir: Path
) -> None:
    work = _go_repo(tmp_path / "work")
    if form == "bare clone":
        bare = tmp_path / "svc.git"
        _git("clone", "-q", "--bare", str(work), str(bare))
    else:
        bare = work / ".git"
    line = one_error_line(_resolve(tmp_path, str(bare)))
    assert line == (
        f"error: {bare} is a bare git repository (no work tree to register and index): make a work tree with "
        f"`git -C {bare} worktree add DIR` or `git clone {bare} DIR`, and pass --repo DIR"
    )
    assert not (data_dir / "agent").exists()  # no run, no log file


def test_a_missing_embedding_model_is_refused_before_the_repository_is_registered_or_indexed(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GORESOLVE_CODE_SEARCH_EMBEDDER", "bge-small")
    line = one_error_line(_resolve(tmp_path, str(_go_repo(tmp_path / "svc"))))
    assert line.startswith("error: the embedding model of embedder bge-small, bge-small-en-v1.5, is not installed")
    assert line.endswith("install it first with `goresolve model install --embedder bge-small`")
    assert not (data_dir / "models").exists()


@pytest.mark.parametrize("name", ["svc", "sample-service"], ids=["its own name", "a shipped repository's name"])
def test_the_runs_policies_hold_the_users_repository_alone_so_the_servers_start_without_noise(
    name: str, tmp_path: Path, data_dir: Path
) -> None:
    repo = _go_repo(tmp_path / name)
    settings = load_agent_settings()  # the shipped policies, whose example repository is not a git repository
    shipped = load_policies(settings.policy_dir)
    assert "sample-service" in shipped.repos.repos and unclonable_repos(shipped, settings.policy_dir.resolve())
    with prepare("SVC-101", str(repo), settings, Console(file=io.StringIO())) as prepared:
        run_name = "svc" if name == "svc" else "sample-service-local"  # the shipped name's state is left alone
        assert prepared.repo == run_name
        policies = load_policies(prepared.policy_dir)
        assert list(policies.repos.repos) == [run_name]
        check_repo_paths(policies, prepared.policy_dir)
        assert unclonable_repos(policies, prepared.policy_dir) == []
        access = yaml.safe_load((prepared.policy_dir / "access.yaml").read_text())["identities"]
        assert {who: entry.get("repos") for who, entry in access.items()} == {
            who: [run_name] if who == settings.identity else None for who in shipped.access.identities
        }
        # github-pr's local backend sets up every repository of the policies at start: here one, and none refused
        github = load_settings(GitHubPrSettings, policy_dir=prepared.policy_dir, state_dir=tmp_path / "github-pr")
        _backend, refused = make_backend(github, policies)
        assert refused == {}
        remotes = github.work_dir() / "remotes"
        assert sorted(p.name for p in remotes.iterdir()) == [f"{run_name}.git"]
