"""Fixtures for github-pr: a real bare git remote holding a small Go module, and policies for it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from servers.common.policy import AccessPolicy, Identity, Policies, Repo, ReposPolicy, Role, ToolsPolicy
from servers.github_pr.github import GitHubBackend, connect
from servers.github_pr.github_calls import Calls, RetryPolicy
from servers.github_pr.local import LocalBackend
from servers.github_pr.models import Author
from servers.github_pr.service import Limits, PullRequestService
from servers.github_pr.store import PullStore
from tests.fakes.github_fake import FakeGitHub

BOT = Author("goresolve[bot]", "bot@example.invalid")

MAIN_GO = """package calc

// Add returns a + b.
func Add(a, b int) int {
	return a - b
}
"""

CALC_TEST_GO = """package calc

import "testing"

func TestAdd(t *testing.T) {
	if got := Add(2, 3); got != 5 {
		t.Fatalf("Add(2, 3) = %d, want 5", got)
	}
}
"""

FIX_PATCH = """diff --git a/calc.go b/calc.go
--- a/calc.go
+++ b/calc.go
@@ -2,5 +2,5 @@ package calc
\x20
 // Add returns a + b.
 func Add(a, b int) int {
-\treturn a - b
+\treturn a + b
 }
"""

SECOND_PATCH = """diff --git a/calc.go b/calc.go
--- a/calc.go
+++ b/calc.go
@@ -2,5 +2,5 @@ package calc
\x20
 // Add returns a + b.
 func Add(a, b int) int {
-\treturn a - b
+\treturn b + a
 }
"""

TAMPER_PATCH = """diff --git a/calc_test.go b/calc_test.go
--- a/calc_test.go
+++ b/calc_test.go
@@ -3,7 +3,5 @@ package calc
 import "testing"
\x20
 func TestAdd(t *testing.T) {
-\tif got := Add(2, 3); got != 5 {
-\t\tt.Fatalf("Add(2, 3) = %d, want 5", got)
-\t}
+\t_ = Add(2, 3)
 }
"""


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=_GIT_ENV
    ).stdout.strip()


_GIT_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/nonexistent",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_AUTHOR_NAME": "Dev",
    "GIT_AUTHOR_EMAIL": "dev@example.invalid",
    "GIT_COMMITTER_NAME": "Dev",
    "GIT_COMMITTER_EMAIL": "dev@example.invalid",
}


def make_remote(root: Path) -> Path:
    """A bare repository with one commit on `main`: a Go module with a bug and its test."""
    src = root / "src"
    src.mkdir(parents=True)
    git("init", "--quiet", "--initial-branch=main", cwd=src)
    (src / "go.mod").write_text("module example.com/calc\n\ngo 1.21\n")
    (src / "calc.go").write_text(MAIN_GO)
    (src / "calc_test.go").write_text(CALC_TEST_GO)
    git("add", ".", cwd=src)
    git("commit", "--quiet", "-m", "initial", cwd=src)
    remote = root / "remote.git"
    git("clone", "--quiet", "--bare", str(src), str(remote))
    return remote


def make_policies(*repos: str) -> Policies:
    return Policies(
        access=AccessPolicy(
            identities={
                "agent": Identity(roles=("agent",), repos=repos),
                "outsider": Identity(roles=("agent",), repos=()),
                "reader": Identity(roles=("ide",), repos=repos),
            }
        ),
        tools=ToolsPolicy(
            roles={"agent": Role(scopes=("issue:read", "pr:read", "pr:write")), "ide": Role(scopes=("pr:read",))}
        ),
        repos=ReposPolicy(
            repos={name: Repo(path=f"/nonexistent/{name}", pr_base_branches=("release",)) for name in repos}
        ),
    )


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    return make_remote(tmp_path / "origin")


@pytest.fixture
def policies() -> Policies:
    return make_policies("svc")


@pytest.fixture
def store(tmp_path: Path) -> PullStore:
    return PullStore(tmp_path / "state" / "prs.sqlite")


@pytest.fixture
def backend(remote: Path, store: PullStore, tmp_path: Path) -> LocalBackend:
    return LocalBackend({"svc": remote}, store, tmp_path / "state")


@pytest.fixture
def service(backend: LocalBackend, policies: Policies) -> PullRequestService:
    return PullRequestService(backend, policies, prefix="goresolve", author=BOT)


def local_service(tmp_path: Path, remote: Path, policies: Policies) -> PullRequestService:
    """The service on a local backend whose remote is `remote` (state under `tmp_path`)."""
    backend = LocalBackend({"svc": remote}, PullStore(tmp_path / "state" / "prs.sqlite"), tmp_path / "state")
    return PullRequestService(backend, policies, prefix="goresolve", author=BOT)


def open_fix(
    service: PullRequestService,
    policies: Policies,
    patch: str,
    *,
    title: str = "Fix Add",
    body: str = "Add used `-`.",
    ticket: str = "SVC-7",
    labels: tuple[str, ...] = (),
):
    """`open_pull_request` of `patch` by the agent, for `ticket` (SVC-7) of svc."""
    return service.open_pull_request(
        "agent",
        policies.identity("agent"),
        repo="svc",
        base="main",
        ticket=ticket,
        title=title,
        body=body,
        patch=patch,
        labels=labels,
    )


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    """The GitHub fake serving acme/svc (the calc module), checked against GitHub's description at the end."""
    fake = FakeGitHub().serve()
    files = {"go.mod": "module example.com/calc\n\ngo 1.21\n", "calc.go": MAIN_GO, "calc_test.go": CALC_TEST_GO}
    fake.add_repo("acme/svc", files)
    yield fake
    fake.close()
    assert fake.violations == [], "the fake served responses that GitHub's description does not allow"
    assert fake.unexpected == []


def service_on_github(fake: FakeGitHub, limits: Limits | None = None) -> PullRequestService:
    """github-pr's service on the GitHub backend, serving policy repo `svc` as the fake's acme/svc."""
    client = connect("test-token", base_url=fake.base_url, timeout_s=5, seconds_between_writes=0)
    backend = GitHubBackend(client, {"svc": "acme/svc"}, Calls(RetryPolicy(max_retries=3, sleep=lambda _s: None)))
    return PullRequestService(backend, make_policies("svc"), prefix="goresolve", author=BOT, limits=limits or Limits())
