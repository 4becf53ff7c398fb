"""The re-index worker on real git and a real LanceDB index (hashing embedder): fetch, index, collapse, replay;
only registered repositories, from the configured URL, never from the payload's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml
from prometheus_client import REGISTRY

from servers.code_search.embed import HashingEmbedder
from servers.code_search.index import CodeIndex
from servers.code_search.reindex_worker import Reindexer, WorkerSettings, _git
from servers.common.gitenv import GitFailed
from tests.code_search.conftest import commit_all, git
from tests.workqueue.support import push_event
from workqueue import Event, PushData
from workqueue.sqlite import SQLiteQueue

GO = "package svc\n\n// Handler serves requests.\nfunc Handler() string { return %r }\n"


def _upstream(tmp_path: Path) -> Path:
    repo = tmp_path / "upstream"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "go.mod").write_text("module example.com/svc\n")
    (repo / "svc.go").write_text(GO % "v1")
    commit_all(repo, "v1")
    return repo


def _push(upstream: Path, n: int, after: str, repo: str = "acme/svc", clone_url: str | None = None) -> Event:
    """A push event; its payload's clone_url is GitHub's unless given (the worker never uses it)."""
    event = push_event(f"push{n}", repo=repo, after=after)
    url = clone_url or f"https://github.example/{repo}.git"
    data = PushData(ref="refs/heads/main", before="0" * 40, after=after, commits=1, truncated=False, clone_url=url)
    return event.model_copy(update={"data": data})


def _local(upstream: Path, mirrors: Path, **kw: Any) -> WorkerSettings:
    """acme/svc registered as `svc`, fetched from the local `upstream` (configured, not from a payload)."""
    return WorkerSettings(mirrors_dir=mirrors, repos={"acme/svc": "svc"}, clone_urls={"acme/svc": str(upstream)}, **kw)


def _registered_in_repos_yaml(
    tmp_path: Path, upstream: Path, index: tuple[CodeIndex, HashingEmbedder], fetched_as: tuple[str, ...]
) -> Reindexer:
    """A worker whose policy's repos.yaml registers `svc` as `github: acme/svc`; each of `fetched_as` is fetched
    from the local `upstream` (configured, not from a payload)."""
    policy = tmp_path / "policies"
    policy.mkdir()
    (policy / "repos.yaml").write_text(
        yaml.safe_dump({"repos": {"svc": {"github": "acme/svc", "path": str(upstream)}}})
    )
    clone_urls = dict.fromkeys(fetched_as, str(upstream))
    return Reindexer(WorkerSettings(mirrors_dir=tmp_path / "mirrors", clone_urls=clone_urls), *index, policy_dir=policy)


def _skipped(reason: str) -> float:
    return REGISTRY.get_sample_value("goresolve_reindex_skipped_total", {"reason": reason}) or 0.0


async def test_pushes_reindex_incrementally_collapse_to_the_newest_commit_and_replays_do_nothing(
    tmp_path: Path,
) -> None:
    upstream = _upstream(tmp_path)
    embedder = HashingEmbedder()
    index = CodeIndex(tmp_path / "index", embedder.model_id, embedder.dim, create=True)
    worker = Reindexer(_local(upstream, tmp_path / "mirrors"), index, embedder)

    first = _push(upstream, 1, git(upstream, "rev-parse", "HEAD"))
    await worker(first)
    assert index.repo_info()["svc"]["commit"] == first.data.model_dump()["after"]
    assert [r.changed for r in worker.runs] == [1]  # svc.go (go.mod is not indexed)

    (upstream / "svc.go").write_text(GO % "v2")
    (upstream / "extra.go").write_text("package svc\n\nfunc Extra() {}\n")
    second_sha = commit_all(upstream, "v2")
    (upstream / "svc.go").write_text(GO % "v3")
    third_sha = commit_all(upstream, "v3")

    queue = SQLiteQueue(tmp_path / "queue", "code-index")
    for n, sha in ((2, second_sha), (3, third_sha)):
        assert await queue.enqueue(_push(upstream, n, sha))
    with anyio.fail_after(60):
        await queue.consume(worker, concurrency=2, burst=True)
    # both pushes were handled, one index run brought the repo to the newest commit
    assert len(worker.runs) == 2
    assert worker.runs[-1].commit == third_sha and worker.runs[-1].changed == 2
    assert index.repo_info()["svc"]["commit"] == third_sha

    await worker(first)  # an old delivery replayed: the index stays where it is
    assert len(worker.runs) == 2 and index.repo_info()["svc"]["commit"] == third_sha
    await queue.aclose()


def test_mirrors_default_to_the_data_directory_not_the_working_directory(tmp_path: Path, monkeypatch: Any) -> None:
    """A worker started from a read-only or shared working directory keeps its mirrors in the data directory."""
    monkeypatch.setenv("GORESOLVE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("GORESOLVE_WORKER_MIRRORS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert WorkerSettings().mirrors_dir == (tmp_path / "data" / "worker-mirrors").resolve()
    monkeypatch.setenv("GORESOLVE_WORKER_MIRRORS_DIR", str(tmp_path / "elsewhere"))
    assert WorkerSettings().mirrors_dir == tmp_path / "elsewhere"


def _private(tmp_path: Path) -> tuple[Path, str]:
    """A local repository nobody registered (what a hostile payload's clone_url pointed at)."""
    private = tmp_path / "private"
    private.mkdir()
    git(private, "init", "-q", "-b", "main")
    (private / "secret.go").write_text('package secret\n\n// Token is private.\nfunc Token() string { return "s" }\n')
    return private, commit_all(private, "private")


@pytest.fixture
def index(tmp_path: Path) -> tuple[CodeIndex, HashingEmbedder]:
    embedder = HashingEmbedder()
    return CodeIndex(tmp_path / "index", embedder.model_id, embedder.dim, create=True), embedder


async def test_the_payload_clone_url_is_never_fetched(tmp_path: Path, index: tuple[CodeIndex, HashingEmbedder]) -> None:
    private, sha = _private(tmp_path)
    # Registered, but no local URL configured: the worker fetches <github_url>/acme/svc.git (nothing listens).
    settings = WorkerSettings(
        mirrors_dir=tmp_path / "mirrors", repos={"acme/svc": "svc"}, github_url="https://127.0.0.1:9"
    )
    worker = Reindexer(settings, *index)
    with pytest.raises(GitFailed):
        await worker(_push(private, 1, sha, clone_url=str(private)))
    assert index[0].repo_info() == {} and worker.runs == []
    assert not any((tmp_path / "mirrors").rglob("HEAD"))


async def test_pushes_for_unregistered_or_ill_named_repositories_are_skipped_and_counted(
    tmp_path: Path, index: tuple[CodeIndex, HashingEmbedder]
) -> None:
    private, sha = _private(tmp_path)
    worker = Reindexer(WorkerSettings(mirrors_dir=tmp_path / "data" / "mirrors"), *index)
    unregistered, bad = _skipped("unregistered"), _skipped("bad-name")
    await worker(_push(private, 1, sha, repo="acme/other", clone_url=str(private)))
    escaped = _push(private, 2, sha, clone_url=str(private)).model_copy(update={"repo": "../escaped"})
    await worker(escaped)  # past the gateway's check (a queued event from an older gateway, a replay)
    assert (_skipped("unregistered"), _skipped("bad-name")) == (unregistered + 1, bad + 1)
    assert index[0].repo_info() == {} and worker.runs == []
    assert not (tmp_path / "data" / "escaped.git").exists() and not (tmp_path / "data" / "mirrors").exists()


async def test_repos_yaml_registers_a_repository_under_its_name_and_a_namesake_elsewhere_is_skipped(
    tmp_path: Path, index: tuple[CodeIndex, HashingEmbedder]
) -> None:
    upstream = _upstream(tmp_path)
    sha = git(upstream, "rev-parse", "HEAD")
    worker = _registered_in_repos_yaml(tmp_path, upstream, index, ("acme/svc", "other/svc"))
    await worker(_push(upstream, 1, sha, repo="other/svc"))  # same short name, not the registered repository
    assert index[0].repo_info() == {}
    await worker(_push(upstream, 2, sha))
    assert index[0].repo_info()["svc"]["commit"] == sha


def test_git_runs_with_no_transport_but_https_unless_a_local_path_is_configured(tmp_path: Path) -> None:
    upstream = _upstream(tmp_path)
    for url in (str(upstream), f"file://{upstream}", "ext::sh -c true"):
        with pytest.raises(GitFailed):
            _git("ls-remote", "--", url)
    assert _git("ls-remote", "--", str(upstream), local=True)
    with pytest.raises(GitFailed):
        _git("ls-remote", "--", "ext::sh -c true", local=True)


async def test_the_index_follows_one_branch_and_a_push_to_another_followed_branch_leaves_it(
    tmp_path: Path, index: tuple[CodeIndex, HashingEmbedder]
) -> None:
    """With `webhooks.branches: [release]`, before, a push to release re-indexed the repository at release's
    tip (main's files gone from search) and the next push to main moved it back. The index follows the
    mirror's HEAD (GitHub's default), or repos.yaml's default_branch when the entry sets it."""
    upstream = _upstream(tmp_path)
    main_sha = git(upstream, "rev-parse", "HEAD")
    git(upstream, "checkout", "-q", "-b", "release")
    (upstream / "svc.go").unlink()
    (upstream / "rel.go").write_text("package svc\n\nfunc Rel() {}\n")
    release_sha = commit_all(upstream, "release")
    git(upstream, "checkout", "-q", "main")

    def push(n: int, branch: str, sha: str) -> Event:
        event = _push(upstream, n, sha)
        return event.model_copy(update={"data": event.data.model_copy(update={"ref": f"refs/heads/{branch}"})})

    policy = tmp_path / "policies"
    policy.mkdir()
    entry: dict[str, Any] = {"github": "acme/svc", "path": str(upstream)}
    (policy / "repos.yaml").write_text(yaml.safe_dump({"repos": {"svc": entry}}))
    settings = WorkerSettings(mirrors_dir=tmp_path / "mirrors", clone_urls={"acme/svc": str(upstream)})
    worker = Reindexer(settings, *index, policy_dir=policy)
    skipped = _skipped("other-branch")
    await worker(push(1, "main", main_sha))
    await worker(push(2, "release", release_sha))
    assert index[0].repo_info()["svc"]["commit"] == main_sha and _skipped("other-branch") == skipped + 1

    entry["default_branch"] = "release"  # the agent works from release: its index follows release
    (policy / "repos.yaml").write_text(yaml.safe_dump({"repos": {"svc": entry}}))
    await worker(push(3, "release", release_sha))
    assert index[0].repo_info()["svc"]["commit"] == release_sha
    await worker(push(4, "main", main_sha))
    assert index[0].repo_info()["svc"]["commit"] == release_sha and _skipped("other-branch") == skipped + 2


async def test_githubs_spelling_of_a_registered_name_in_another_case_is_indexed(
    tmp_path: Path, index: tuple[CodeIndex, HashingEmbedder]
) -> None:
    """GitHub's push names the repository `Acme/Svc`; repos.yaml registers `github: acme/svc`. Before, the push
    was skipped as unregistered and the index never followed the repository."""
    upstream = _upstream(tmp_path)
    sha = git(upstream, "rev-parse", "HEAD")
    worker = _registered_in_repos_yaml(tmp_path, upstream, index, ("Acme/Svc",))
    await worker(_push(upstream, 1, sha, repo="Acme/Svc"))
    assert index[0].repo_info()["svc"]["commit"] == sha
