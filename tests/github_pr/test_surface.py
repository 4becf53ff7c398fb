"""The surface proof: the tools exposed, and every call the code can make to a code host — no merge.

Three independent views: the MCP tool list (see test_server_contract's snapshot too); every PyGithub
method the package's source mentions, compared with the full list of PyGithub's mutating methods;
and git's side: push is never forced, so a non-fast-forward is refused by git itself.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import github
import pytest
from github import Branch, GitRef, Issue, PullRequest, Repository

from servers.common.errors import Conflict
from servers.github_pr import git
from tests.fakes.github.spec import OPERATIONS

from .conftest import git as run_git

PACKAGE = Path(__file__).resolve().parents[2] / "servers" / "github_pr"
MUTATING = ("create", "edit", "delete", "merge", "remove", "add", "update", "set", "replace", "enable", "disable")
# The only writes github-pr makes, each with the reason it is needed.
ALLOWED_WRITES = {
    "create_git_blob": "file contents of the patched files",
    "create_git_tree": "the patched tree",
    "create_git_commit": "the bot's commit",
    "create_git_ref": "the ticket branch, under the bot prefix",
    "edit": "GitRef.edit(force=False): fast-forward the bot's branch; PullRequest.edit(title, body)",
    "delete": "GitRef.delete of a branch the bot just created and lost a race with (under the prefix)",
    "create_pull": "open the pull request",
    "create_issue_comment": "comment",
    "create_comment": "Issue.create_comment: comment_on_issue, on an issue that is not a pull request",
    "create_review_request": "request review",
    "add_to_assignees": "assign",
}


def _pygithub_mutators() -> set[str]:
    names: set[str] = set()
    for cls in (
        Repository.Repository,
        PullRequest.PullRequest,
        GitRef.GitRef,
        Branch.Branch,
        Issue.Issue,
        github.Github,
    ):
        for name, _ in inspect.getmembers(cls, inspect.isfunction):
            if name.split("_", 1)[0] in MUTATING:
                names.add(name)
    return names


def _source_trees(*, pygithub_only: bool = False) -> list[ast.Module]:
    """The package's modules (only those that import PyGithub: the ones that can call GitHub)."""
    trees = [ast.parse(p.read_text()) for p in sorted(PACKAGE.glob("*.py"))]
    if not pygithub_only:
        return trees
    imports = lambda t: {n.module for n in ast.walk(t) if isinstance(n, ast.ImportFrom) and n.level == 0}  # noqa: E731
    return [t for t in trees if "github" in imports(t)]


def test_the_package_uses_exactly_the_allowed_pygithub_writes():
    mutators = _pygithub_mutators()
    assert {"merge", "remove_protection", "edit", "delete", "create_hook", "delete_branch"} <= mutators
    trees = _source_trees(pygithub_only=True)
    assert len(trees) == 2  # github.py and github_calls.py
    used = {n.attr for tree in trees for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert used & mutators == set(ALLOWED_WRITES)


def test_raw_requests_are_only_the_rules_and_activity_reads_and_the_labels_post():
    raw = set()
    for tree in _source_trees(pygithub_only=False):
        for node in ast.walk(tree):
            call = node if isinstance(node, ast.Call) else None
            if call and isinstance(call.func, ast.Attribute) and call.func.attr == "requestJsonAndCheck":
                method, url = call.args[0], call.args[1]
                assert isinstance(method, ast.Constant)
                assert isinstance(url, ast.JoinedStr), "URLs are written in the call, so this test can read them"
                tail = [v.value for v in url.values if isinstance(v, ast.Constant)][-1]
                raw.add((method.value, tail))
    assert raw == {("GET", "/rules/branches/"), ("GET", "/activity"), ("POST", "/labels")}


def test_no_call_forces_or_changes_state():
    for tree in _source_trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                for kw in node.keywords:
                    forced = kw.arg == "force" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False)
                    assert not forced
                    if isinstance(node.func, ast.Attribute) and node.func.attr == "edit":
                        assert kw.arg in ("title", "body", "force"), "edit may change only title and body"
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert node.value not in ("--force", "-f", "--force-with-lease", "--mirror", "--delete", "-d")
                assert not node.value.startswith("+refs/heads/") or node.value == "+refs/heads/*:refs/remotes/origin/*"


def test_the_http_surface_has_no_merge_settings_or_foreign_deletes():
    ops = set(OPERATIONS)
    assert not {op for op in ops if "merge" in op or op.startswith(("repos/update", "repos/delete"))}
    assert {op for op in ops if "delete" in op} == {"git/delete-ref"}
    assert all(method in ("get", "post", "patch", "delete") for method, _ in OPERATIONS.values())


def test_git_push_refuses_a_non_fast_forward(remote: Path, tmp_path: Path):
    cache = tmp_path / "cache.git"
    git.sync_cache(remote, cache)
    main = git.rev_parse(cache, "refs/remotes/origin/main")
    assert main is not None
    tree = run_git("rev-parse", f"{main}^{{tree}}", cwd=cache)
    orphan = run_git("commit-tree", tree, "-m", "unrelated history", cwd=cache)
    with pytest.raises(Conflict, match="not overwriting"):
        git.push(cache, remote, orphan, "main")
    assert run_git("rev-parse", "main", cwd=remote) == main
