"""The re-index worker on real git and a real LanceDB index (hashing embedder): fetch, index, collapse, replay;
only registered repositories, from the configured URL, never from the payload's."""

from __future__ import annotations

import base64
import subprocess
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml
from prometheus_client import REGISTRY
from pydantic import SecretStr

from servers.code_search.embed import HashingEmbedder
from servers.code_search.index import CodeIndex
from servers.code_search.reindex_worker import Reindexer, WorkerSettings, _git
from servers.common.gitenv import GitFailed, git_env
from tests.code_search.conftest import commit_all, git
from tests.support import self_signed, tls_serving
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


def _private_host(root: Path, token: str) -> tuple[type[BaseHTTPRequestHandler], list[tuple[str, str]]]:
    """A git host over HTTPS (git's dumb protocol: the bare repositories' files under `root`) that answers only a
    request carrying `token` as GitHub's basic auth; the (path, Authorization) of each request, in order."""
    seen: list[tuple[str, str]] = []
    wanted = "Basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode()

    class Host(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            seen.append((path, self.headers.get("Authorization", "")))
            target = (root / path.lstrip("/")).resolve()
            if self.headers.get("Authorization") != wanted:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="GitHub"')
                body = b""
            elif target.is_relative_to(root) and target.is_file():
                self.send_response(200)
                body = target.read_bytes()
            else:
                self.send_response(404)
                body = b""
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Host, seen


async def test_a_private_repository_is_fetched_with_the_read_token_sent_to_the_github_host_only(
    tmp_path: Path, index: tuple[CodeIndex, HashingEmbedder]
) -> None:
    """Before, the worker cloned https://github.com/<owner>/<name>.git with no credentials and had no setting for
    any: a push to a private repository was never re-indexed. The token goes to github_url (its scheme, host and
    port) as GitHub's basic auth, from git's environment: not to another host, not in a mirror's config."""
    upstream = _upstream(tmp_path)
    sha = git(upstream, "rev-parse", "HEAD")
    served = tmp_path / "served"
    (served / "acme").mkdir(parents=True)
    bare = served / "acme" / "svc.git"
    git(tmp_path, "clone", "-q", "--bare", str(upstream), str(bare))
    git(bare, "update-server-info")  # the dumb protocol's file list
    tls = self_signed(tmp_path)
    host, seen = _private_host(served, "s3cret-read-token")
    with tls_serving(host, tls) as github:
        settings = WorkerSettings(
            mirrors_dir=tmp_path / "mirrors",
            repos={"acme/svc": "svc"},
            github_url=github,
            github_token=SecretStr("s3cret-read-token"),
            ca_file=tls[0],
        )
        worker = Reindexer(settings, *index)
        await worker(_push(upstream, 1, sha))
        assert index[0].repo_info()["svc"]["commit"] == sha
        assert seen and all(auth.startswith("Basic ") for _, auth in seen)
        before = len(seen)
        await worker(_push(upstream, 2, sha))  # a fetch into the existing mirror: the token again
        assert len(seen) > before and all(auth.startswith("Basic ") for _, auth in seen[before:])
        # git's own URL matching: the header and the CA file apply to github_url's scheme, host and port only
        env = git_env(worker.access_env())
        port = int(github.rsplit(":", 1)[1])
        for url, applies in (
            (f"{github}/acme/other.git", True),
            (f"https://127.0.0.1:{port + 1}/acme/svc.git", False),
            ("https://github.com/acme/svc.git", False),
            (f"http://127.0.0.1:{port}/acme/svc.git", False),
        ):
            for key in ("http.extraHeader", "http.sslCAInfo"):
                found = subprocess.run(
                    ["git", "config", "--get-urlmatch", key, url], env=env, capture_output=True, text=True, check=False
                )
                assert (found.returncode == 0) == applies, (url, key, found.stdout)
        wrong = {"github_token": SecretStr("s3cret-wrong-token"), "mirrors_dir": tmp_path / "m2"}
        unauthorised = Reindexer(settings.model_copy(update=wrong), *index)
        with pytest.raises(GitFailed) as refused:  # a wrong token: GitHub's 401, and no token in the error
            await unauthorised(_push(upstream, 3, sha))
        assert "s3cret" not in str(refused.value) + (refused.value.detail or "")
    mirrors = "".join(p.read_text(errors="replace") for p in (tmp_path / "mirrors").rglob("config"))
    assert "s3cret" not in mirrors and "Authorization" not in mirrors


def test_the_read_token_is_configured_and_shown_as_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GORESOLVE_WORKER_GITHUB_TOKEN", "s3cret-read-token")
    settings = WorkerSettings()
    assert settings.github_token is not None and "s3cret" not in repr(settings)


async def test_a_replica_with_a_stale_mirror_never_takes_the_index_back(tmp_path: Path) -> None:
    """Two replicas, a mirror each, one index. Before, replica A (its mirror fetched before v2 was pushed) found the
    index at v2, took its own tip v1 for the newest and indexed it over v2 (the check ran outside the writer
    lock). Now, under the lock, the index's commit is one A's mirror lacks: A fetches again and finds it current."""
    upstream = _upstream(tmp_path)
    embedder = HashingEmbedder()
    index = CodeIndex(tmp_path / "index", embedder.model_id, embedder.dim, create=True)
    a = Reindexer(_local(upstream, tmp_path / "mirrors-a"), index, embedder)
    b = Reindexer(_local(upstream, tmp_path / "mirrors-b"), index, embedder)
    v1 = git(upstream, "rev-parse", "HEAD")
    await a(_push(upstream, 1, v1))
    stale = a._fetch("acme/svc")  # pyright: ignore[reportPrivateUsage]
    (upstream / "svc.go").write_text(GO % "v2")
    v2 = commit_all(upstream, "v2")
    await b(_push(upstream, 2, v2))
    assert index.repo_info()["svc"]["commit"] == v2
    fetches: list[str] = []
    fetch = a._fetch  # pyright: ignore[reportPrivateUsage]

    def late_fetch(repo: str) -> Path:  # the first fetch happened before v2 was pushed
        fetches.append(repo)
        return stale if len(fetches) == 1 else fetch(repo)

    a._fetch = late_fetch  # type: ignore[method-assign]
    await a(_push(upstream, 3, v2))
    assert index.repo_info()["svc"]["commit"] == v2 and len(fetches) == 2
    assert [r.commit for r in a.runs] == [v1]


async def test_a_commit_pushed_over_by_force_does_not_hold_the_index_for_ever(tmp_path: Path) -> None:
    """The index is at v2, then the branch is pushed over by force; a replica whose mirror never held v2 cannot
    tell whether it is older: after a fresh fetch it still lacks it, so the branch's tip is indexed."""
    upstream = _upstream(tmp_path)
    embedder = HashingEmbedder()
    index = CodeIndex(tmp_path / "index", embedder.model_id, embedder.dim, create=True)
    v1 = git(upstream, "rev-parse", "HEAD")
    (upstream / "svc.go").write_text(GO % "v2")
    v2 = commit_all(upstream, "v2")
    await Reindexer(_local(upstream, tmp_path / "mirrors-b"), index, embedder)(_push(upstream, 1, v2))
    git(upstream, "reset", "-q", "--hard", v1)
    git(upstream, "reflog", "expire", "--expire=now", "--all")
    git(upstream, "gc", "-q", "--prune=now")
    (upstream / "svc.go").write_text(GO % "v2, again")
    again = commit_all(upstream, "v2 again")
    a = Reindexer(_local(upstream, tmp_path / "mirrors-a"), index, embedder)
    await a(_push(upstream, 2, again))
    assert index.repo_info()["svc"]["commit"] == again and [r.commit for r in a.runs] == [again]
