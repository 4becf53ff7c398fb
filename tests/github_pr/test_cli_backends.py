"""`goresolve prs`, the backend table, and property tests for the pure helpers."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from servers.common.errors import ConfigError
from servers.common.policy import AccessPolicy, Identity, Policies, Repo, ReposPolicy, Role, ToolsPolicy
from servers.common.secrets import scan
from servers.github_pr.backends import make_backend
from servers.github_pr.cli import prs_command
from servers.github_pr.local import LocalBackend
from servers.github_pr.models import branch_name, slugify
from servers.github_pr.settings import GitHubPrSettings

from .conftest import FIX_PATCH, git, make_remote


def test_prs_lists_the_local_pull_requests(service, policies, store, capsys):
    ref = service.open_pull_request(
        "agent",
        policies.identity("agent"),
        repo="svc",
        base="main",
        ticket="SVC-3",
        title="Fix Add",
        body="b",
        patch=FIX_PATCH,
    )
    assert prs_command(store.path, as_json=False) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["#", "repo", "ticket", "state"]
    assert out[1].split()[:5] == ["1", "svc", "SVC-3", "open", "yes"]
    assert out[1].endswith(ref.branch)
    assert out[2].strip() == "Fix Add"
    assert prs_command(store.path, as_json=True) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["number"], r["ticket"], r["head_sha"]) for r in rows] == [(1, "SVC-3", ref.head_sha)]


def test_prs_on_a_missing_database_exits_1(tmp_path, capsys):
    assert prs_command(tmp_path / "none.sqlite", as_json=False) == 1
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("content", [b"", None])
def test_prs_never_writes_to_a_database_that_is_not_the_backends(tmp_path, content):
    """Before, listing created github-pr's schema in whatever file --db named (an empty file grew to 32 KB)."""
    import sqlite3

    db = tmp_path / "other.sqlite"
    if content is None:
        with sqlite3.connect(db) as other:
            other.execute("CREATE TABLE notes (x TEXT)")
        other.close()
    else:
        db.write_bytes(content)
    before = db.read_bytes()
    with pytest.raises(sqlite3.OperationalError, match="no such table: pulls"):
        prs_command(db, as_json=False)
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.sqlite"]


def _policies(repo: Repo) -> Policies:
    return Policies(
        access=AccessPolicy(identities={"agent": Identity(roles=("agent",), repos=("svc",))}),
        tools=ToolsPolicy(roles={"agent": Role(scopes=("pr:write",))}),
        repos=ReposPolicy(repos={"svc": repo}),
    )


def test_the_local_backend_makes_a_bare_remote_from_the_policy_path(tmp_path):
    source = make_remote(tmp_path / "origin")
    settings = GitHubPrSettings(state_dir=tmp_path / "state", policy_dir=tmp_path)
    backend, refused = make_backend(settings, _policies(Repo(path=str(source))))
    assert isinstance(backend, LocalBackend)
    assert refused == {}
    assert (tmp_path / "state" / "github-pr" / "remotes" / "svc.git" / "HEAD").exists()
    backend, refused = make_backend(settings, _policies(Repo(path="does-not-exist")))
    assert refused == {}  # the remote made on the first start is kept


def test_a_missing_source_repo_is_refused_not_fatal(tmp_path):
    settings = GitHubPrSettings(state_dir=tmp_path / "state", policy_dir=tmp_path)
    _, refused = make_backend(settings, _policies(Repo(path="does-not-exist")))
    assert refused == {"svc": "no local remote could be made"}


def test_the_github_backend_needs_a_token(tmp_path):
    settings = GitHubPrSettings(state_dir=tmp_path, backend="github")
    with pytest.raises(ConfigError, match="GORESOLVE_GITHUB_PR_TOKEN"):
        make_backend(settings, _policies(Repo(github="acme/svc")))


@settings(max_examples=40, deadline=None)  # each example runs git check-ref-format
@given(st.text(max_size=200))
def test_every_slug_makes_a_valid_branch_name(title: str) -> None:
    slug = slugify(title)
    assert 1 <= len(slug) <= 40
    name = branch_name("goresolve", "SVC-12", title)
    assert name.startswith("goresolve/SVC-12-")
    ok = subprocess.run(["git", "check-ref-format", f"refs/heads/{name}"], check=False).returncode == 0
    assert ok, name


SECRETS = {
    "github_token": "ghp_" + "aB3" * 12,
    "aws_access_key": "AKIA" + "ABCDEFGHIJKLMNOP",
    "slack_token": "xoxb-" + "1234567890-abc",
    "private_key": "-----BEGIN OPENSSH PRIVATE KEY-----",
}


@given(st.text(max_size=300), st.sampled_from(sorted(SECRETS)))
def test_the_scanner_finds_each_shape_and_never_returns_the_secret(text: str, kind: str) -> None:
    assert all(f.field == "body" and f.line >= 1 for f in scan(text, "body"))
    found = scan(f"{text}\n{SECRETS[kind]}\n", "body")
    assert kind in {f.kind for f in found}
    assert all(SECRETS[kind] not in repr(f) for f in found)


def test_patch_paths_name_old_and_new_files_and_decode_gits_quoting() -> None:
    from servers.github_pr.github import patched_paths

    patch = (
        "diff --git a/x.go b/y.go\nsimilarity index 90%\nrename from x.go\nrename to y.go\n--- a/x.go\n+++ b/y.go\n"
        "@@ -1 +1 @@\n-a\n+b\n" + FIX_PATCH + 'diff --git "a/calc\\137test.go" "b/calc\\137test.go"\n'
        'deleted file mode 100644\n--- "a/calc\\137test.go"\n+++ /dev/null\n@@ -1 +0,0 @@\n-package calc\n'
    )
    assert patched_paths(patch) == {"x.go", "y.go", "calc.go", "calc_test.go"}


def test_cli_module_is_importable_without_pygithub_loaded() -> None:
    code = "import sys, servers.github_pr.cli, servers.github_pr.server; print('github' in sys.modules)"
    out = subprocess.run(
        [".venv/bin/python", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    "text",
    [
        "Fix TokenBucket: `token := b.tokens` read the field before the lock was taken.",
        "The bearer tokenValidationMiddleware skipped expired tokens; see auth/jwt.go:42.",
        "Refs #12. The api key lookup in `config.APIKey()` returned the empty string.",
        "Adds TestLimiterBurst (regression test for SVC-7); no change to existing tests.",
        "Compare https://github.com/acme/svc/blob/main/internal/ratelimit/limiter.go#L10-L20",
    ],
)
def test_ordinary_pull_request_prose_is_not_mistaken_for_a_credential(text: str) -> None:
    assert scan(text, "body") == []


def test_prs_on_a_missing_database_names_the_demos_when_it_exists(tmp_path, store, capsys):
    assert prs_command(tmp_path / "none.sqlite", as_json=False, also=tmp_path / "also-none.sqlite") == 1
    assert "goresolve demo" not in capsys.readouterr().err
    assert prs_command(tmp_path / "none.sqlite", as_json=False, also=store.path) == 1
    err = capsys.readouterr().err
    assert "does not exist" in err and f"goresolve prs --db {store.path}" in err


def test_the_local_remote_follows_its_source_and_keeps_the_bots_branches(tmp_path):
    """A commit the user makes after the remote was made reaches it at the next start (a pull request is
    based on it); the bot's own branches, which live only in the remote, stay as they are."""
    origin = make_remote(tmp_path / "origin")
    source = tmp_path / "work"
    git("clone", "--quiet", str(origin), str(source))
    settings = GitHubPrSettings(state_dir=tmp_path / "state", policy_dir=tmp_path)
    make_backend(settings, _policies(Repo(path=str(source))))
    remote = tmp_path / "state" / "github-pr" / "remotes" / "svc.git"
    git("--git-dir", str(remote), "branch", "goresolve/SVC-1-fix", "main")
    bot = git("--git-dir", str(remote), "rev-parse", "goresolve/SVC-1-fix")
    (source / "README.md").write_text("new\n")
    git("add", "README.md", cwd=source)
    git("commit", "--quiet", "-m", "docs", cwd=source)
    git("branch", "goresolve/SVC-1-fix", cwd=source)  # a branch of the user's own by that name is not taken
    _, refused = make_backend(settings, _policies(Repo(path=str(source))))
    assert refused == {}
    assert git("--git-dir", str(remote), "rev-parse", "main") == git("rev-parse", "main", cwd=source)
    assert git("--git-dir", str(remote), "rev-parse", "goresolve/SVC-1-fix") == bot


def test_another_repository_under_a_used_name_is_refused_not_pushed_to_the_first_ones_remote(tmp_path):
    settings = GitHubPrSettings(state_dir=tmp_path / "state", policy_dir=tmp_path)
    make_backend(settings, _policies(Repo(path=str(make_remote(tmp_path / "first")))))
    other = tmp_path / "second"  # another repository
    other.mkdir()
    git("init", "--quiet", "--initial-branch=main", cwd=other)
    (other / "go.mod").write_text("module example.com/other\n")
    git("add", ".", cwd=other)
    git("commit", "--quiet", "-m", "other", cwd=other)
    _, refused = make_backend(settings, _policies(Repo(path=str(other))))
    assert "holds history that" in refused["svc"] and "register" in refused["svc"]
    examples = tmp_path / "examples" / "svc"  # a plain folder (no repository of its own): the remote serves
    examples.mkdir(parents=True)
    _, refused = make_backend(settings, _policies(Repo(path=str(examples))))
    assert refused == {}
