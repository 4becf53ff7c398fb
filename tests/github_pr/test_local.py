"""The local backend end to end: real git, a bare remote, pull requests in SQLite."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from servers.common.errors import AccessDenied, Conflict, InvalidInput
from servers.common.policy import Policies
from servers.github_pr.local import LocalBackend
from servers.github_pr.service import PullRequestService
from servers.github_pr.store import PullStore

from .conftest import BOT, FIX_PATCH, SECOND_PATCH, TAMPER_PATCH, git

AGENT = "agent"


def _open(service: PullRequestService, policies: Policies, **kw: object):
    args: dict[str, object] = {
        "repo": "svc",
        "base": "main",
        "ticket": "SVC-7",
        "title": "Fix Add: it subtracts",
        "body": "Add used `-`.",
        "patch": FIX_PATCH,
    }
    args.update(kw)
    return service.open_pull_request(AGENT, policies.identity(AGENT), **args)  # type: ignore[arg-type]


def _branches(remote: Path) -> list[str]:
    out = git("for-each-ref", "--format=%(refname:short)", "refs/heads", cwd=remote)
    return sorted(out.splitlines())


def test_open_pushes_a_bot_commit_on_a_prefixed_branch_and_records_a_draft(service, policies, remote, store):
    ref = _open(service, policies)
    assert ref.branch == "goresolve/SVC-7-fix-add-it-subtracts"
    assert ref.created
    assert ref.number == 1
    assert ref.base == "main"
    assert _branches(remote) == ["goresolve/SVC-7-fix-add-it-subtracts", "main"]
    assert git("rev-parse", ref.branch, cwd=remote) == ref.head_sha
    assert git("show", f"{ref.branch}:calc.go", cwd=remote).splitlines()[4] == "\treturn a + b"
    assert git("log", "-1", "--format=%an <%ae>|%cn <%ce>", ref.branch, cwd=remote) == (
        f"{BOT.name} <{BOT.email}>|{BOT.name} <{BOT.email}>"
    )
    message = git("log", "-1", "--format=%B", ref.branch, cwd=remote)
    main = git("rev-parse", "main", cwd=remote)
    assert "Goresolve-Ticket: SVC-7" in message
    assert f"Goresolve-Base: {main}" in message
    assert git("rev-parse", f"{ref.branch}^", cwd=remote) == main
    row = store.get("svc", ref.number)
    assert row.draft
    assert row.state == "open"
    assert row.ticket == "SVC-7"
    assert row.body.endswith("Ticket: SVC-7\n<!-- goresolve:ticket=SVC-7 -->\n")


def test_second_call_for_the_same_ticket_fast_forwards_the_same_branch_and_pr(service, policies, remote, store):
    first = _open(service, policies, labels=("bug",))
    second = _open(service, policies, title="A different title", patch=SECOND_PATCH, labels=("goresolve",))
    assert (second.number, second.branch, second.created) == (first.number, first.branch, False)
    assert second.head_sha != first.head_sha
    assert git("rev-parse", f"{second.branch}^", cwd=remote) == first.head_sha  # history kept, no force push
    assert git("show", f"{second.branch}:calc.go", cwd=remote).splitlines()[4] == "\treturn b + a"
    main = git("rev-parse", "main", cwd=remote)
    assert git("diff", "--stat", main, second.branch, cwd=remote).count("|") == 1  # tree is base + new patch only
    row = store.get("svc", first.number)
    assert row.title == "A different title"
    assert row.labels == ["bug", "goresolve"]
    assert len(store.all()) == 1
    assert _branches(remote) == [first.branch, "main"]


def test_the_same_call_again_makes_no_commit_and_pushes_nothing(service, policies, remote, store, tmp_path):
    first = _open(service, policies, labels=("bug",))
    pushes = store.bot_heads("svc", first.branch)
    hook = remote / "hooks" / "pre-receive"  # any push from here on fails the call
    hook.write_text("#!/bin/sh\necho no more pushes >&2\nexit 1\n")
    hook.chmod(0o755)
    again = _open(service, policies, labels=("bug",))
    assert again == first.model_copy(update={"created": False})
    assert git("rev-parse", first.branch, cwd=remote) == first.head_sha
    assert git("rev-list", "--count", f"main..{first.branch}", cwd=remote) == "1"
    assert store.bot_heads("svc", first.branch) == pushes
    assert len(store.all()) == 1
    # another process of the server (a fresh backend over the same state) sees the same
    other = PullRequestService(
        LocalBackend({"svc": remote}, PullStore(tmp_path / "state" / "prs.sqlite"), tmp_path / "state"),
        policies,
        prefix="goresolve",
        author=BOT,
    )
    assert _open(other, policies, labels=("bug",)).head_sha == first.head_sha
    hook.unlink()
    # a different patch is a new commit on top, as before
    third = _open(service, policies, patch=SECOND_PATCH)
    assert third.head_sha != first.head_sha
    assert git("rev-parse", f"{third.branch}^", cwd=remote) == first.head_sha


def test_patch_refused_by_policy_pushes_nothing(service, policies, remote, store):
    before = git("for-each-ref", cwd=remote)
    with pytest.raises(InvalidInput, match=r"patch refused by policy:\ncalc_test.go:\d+: removed_assertion"):
        _open(service, policies, patch=TAMPER_PATCH)
    assert git("for-each-ref", cwd=remote) == before
    assert store.all() == []


def test_patch_that_does_not_apply_is_a_conflict_and_pushes_nothing(service, policies, remote, store):
    broken = FIX_PATCH.replace("-\treturn a - b", "-\treturn a * b")
    with pytest.raises(Conflict, match="patch does not apply"):
        _open(service, policies, patch=broken)
    assert _branches(remote) == ["main"]
    assert store.all() == []


def test_concurrent_calls_for_one_ticket_make_one_branch_and_one_pr(service, policies, remote, store, tmp_path):
    # Half the calls go through a second service + backend over the same state: another process.
    other = PullRequestService(
        LocalBackend({"svc": remote}, PullStore(store.path), tmp_path / "state"),
        policies,
        prefix="goresolve",
        author=BOT,
    )
    start = threading.Barrier(8)

    def call(i: int):
        start.wait(timeout=10)
        patch = FIX_PATCH.replace("+\treturn a + b", f"+\treturn a + b // attempt {i}")  # a tree of its own
        return _open(service if i % 2 else other, policies, title=f"Fix Add attempt {i}", patch=patch)

    with ThreadPoolExecutor(max_workers=8) as pool:
        refs = list(pool.map(call, range(8)))
    assert {r.number for r in refs} == {refs[0].number}
    assert sum(r.created for r in refs) == 1
    assert len({r.branch for r in refs}) == 1
    assert _branches(remote) == [refs[0].branch, "main"]
    assert len(store.all()) == 1
    # Eight commits in a line on the branch, each on top of the previous one.
    assert git("rev-list", "--count", f"main..{refs[0].branch}", cwd=remote) == "8"


def test_branch_with_someone_elses_commit_is_not_updated(service, policies, remote, tmp_path):
    ref = _open(service, policies)
    work = tmp_path / "human"
    git("clone", "--quiet", "--branch", ref.branch, str(remote), str(work))
    (work / "NOTES.md").write_text("mine\n")
    git("add", ".", cwd=work)
    git("commit", "--quiet", "-m", "human change", cwd=work)
    git("push", "--quiet", "origin", ref.branch, cwd=work)
    head = git("rev-parse", ref.branch, cwd=remote)
    with pytest.raises(Conflict, match="moved since this bot last pushed it"):
        _open(service, policies, patch=SECOND_PATCH)
    assert git("rev-parse", ref.branch, cwd=remote) == head


def _push_forged_bot_commit(remote: Path, tmp_path: Path, branch: str, *, start: str = "main") -> str:
    """Push a commit to `branch` that looks like the bot's: bot author and committer, bot trailers."""
    work = tmp_path / f"forger-{branch.replace('/', '-')}"
    git("clone", "--quiet", "--branch", start, str(remote), str(work))
    base = git("rev-parse", "origin/main", cwd=work)
    (work / "backdoor.go").write_text("package calc\n\nvar Backdoor = true\n")
    git("add", ".", cwd=work)
    forged = {
        "GIT_AUTHOR_NAME": BOT.name,
        "GIT_AUTHOR_EMAIL": BOT.email,
        "GIT_COMMITTER_NAME": BOT.name,
        "GIT_COMMITTER_EMAIL": BOT.email,
    }
    message = f"Fix Add\n\nGoresolve-Ticket: SVC-20\nGoresolve-Base: {base}\n"
    subprocess.run(
        ["git", "-c", "commit.gpgsign=false", "commit", "--quiet", "-m", message],
        cwd=work,
        check=True,
        env={**os.environ, **forged, "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"},
    )
    git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", cwd=work)
    return git("rev-parse", branch, cwd=remote)


def test_a_branch_the_bot_did_not_create_is_not_adopted_even_with_forged_author_and_trailers(
    service, policies, remote, store, tmp_path
):
    planted = _push_forged_bot_commit(remote, tmp_path, "goresolve/SVC-20-x")
    with pytest.raises(Conflict, match="was not created by this bot"):
        _open(service, policies, ticket="SVC-20")
    assert git("rev-parse", "goresolve/SVC-20-x", cwd=remote) == planted
    assert store.all() == []  # no pull request was opened on it


def test_a_forged_bot_commit_pushed_onto_the_bots_branch_is_refused(service, policies, remote, tmp_path):
    ref = _open(service, policies, ticket="SVC-20", title="Fix Add")
    planted = _push_forged_bot_commit(remote, tmp_path, ref.branch, start=ref.branch)
    with pytest.raises(Conflict, match="moved since this bot last pushed it"):
        _open(service, policies, ticket="SVC-20", title="Fix Add", patch=SECOND_PATCH)
    assert git("rev-parse", ref.branch, cwd=remote) == planted


def test_a_push_recorded_as_pending_is_still_the_bots_after_a_crash(service, policies, store):
    ref = _open(service, policies)
    with sqlite3.connect(store.path) as db:  # as if the process died between the push and its record
        db.execute("UPDATE branch_heads SET pushed = NULL, pending = ?", (ref.head_sha,))
    again = _open(service, policies, patch=SECOND_PATCH)
    assert (again.number, again.created) == (ref.number, False)


TOKEN_PATCH = FIX_PATCH.replace("+\treturn a + b\n", '+\treturn a + b // token "ghp_' + "aB3x" * 9 + '"\n')


@pytest.mark.parametrize(
    ("kw", "error", "match"),
    [
        ({"repo": "other"}, AccessDenied, "may not use repository"),
        ({"base": "develop"}, InvalidInput, "allowed: main, release"),
        ({"ticket": "svc 7"}, InvalidInput, "Jira key"),
        ({"title": "x" * 300}, InvalidInput, "title is 300 characters"),
        ({"title": "two\nlines"}, InvalidInput, "single line"),
        ({"body": "token ghp_" + "a" * 36}, InvalidInput, "github_token in body line 1"),
        ({"body": "-----BEGIN RSA PRIVATE KEY-----"}, InvalidInput, "private_key"),
        ({"title": "key AKIAABCDEFGHIJKLMNOP"}, InvalidInput, "aws_access_key in title"),
        ({"patch": "x" * 200_001}, InvalidInput, "the limit is 200000"),
        ({"patch": "  "}, InvalidInput, "patch is empty"),
        ({"labels": ("a,b",)}, InvalidInput, "labels"),
        ({"labels": ("ghp_" + "aB3x" * 9,)}, InvalidInput, "github_token in labels line 1"),
        ({"patch": TOKEN_PATCH}, InvalidInput, "github_token in patch calc.go line 5"),
        ({"body": "token `ghp_" + "aB3x" * 3 + "``" + "aB3x" * 6 + "`"}, InvalidInput, "github_token in body"),
    ],
)
def test_requests_outside_policy_are_refused_before_git_runs(service, policies, remote, kw, error, match):
    with pytest.raises(error, match=match):
        _open(service, policies, **kw)
    assert _branches(remote) == ["main"]


def test_caller_without_the_repo_is_denied(service, policies):
    with pytest.raises(AccessDenied):
        service.open_pull_request(
            "outsider",
            policies.identity("outsider"),
            repo="svc",
            base="main",
            ticket="SVC-1",
            title="t",
            body="b",
            patch=FIX_PATCH,
        )


def test_review_assign_comment_on_the_bots_pr(service, policies, store):
    ref = _open(service, policies, ticket="#12")
    assert ref.branch.startswith("goresolve/12-")
    ident = policies.identity(AGENT)
    info = service.request_review(AGENT, ident, "svc", ref.number, ("alice",), ("core-team",))
    assert (info.requested_reviewers, info.requested_teams) == (["alice"], ["core-team"])
    info = service.assign(AGENT, ident, "svc", ref.number, ("bob", "alice"))
    assert info.assignees == ["alice", "bob"]
    note = service.comment(AGENT, ident, "svc", ref.number, "Tests pass now.")
    assert note.url.endswith(f"#comment-{note.id}")
    assert store.comments("svc", ref.number) == ["Tests pass now."]
    assert "Refs #12" in store.get("svc", ref.number).body
    with pytest.raises(InvalidInput, match="slack_token"):
        service.comment(AGENT, ident, "svc", ref.number, "xoxb-1234567890-abcdefghij")
    with pytest.raises(InvalidInput, match="reviewers"):
        service.request_review(AGENT, ident, "svc", ref.number, ("-bad-",))


def test_writes_to_a_pr_not_opened_by_the_bot_are_denied(service, policies, store):
    row = store.insert(
        repo="svc",
        ticket="SVC-99",
        branch="alice/feature",
        base="main",
        title="t",
        body="b",
        draft=False,
        head_sha="0" * 40,
    )
    assert row is not None
    ident = policies.identity(AGENT)
    assert service.get_pull_request(AGENT, ident, "svc", row.number).branch == "alice/feature"
    with pytest.raises(AccessDenied, match="not opened by this bot"):
        service.comment(AGENT, ident, "svc", row.number, "hello")
    with pytest.raises(AccessDenied):
        service.assign(AGENT, ident, "svc", row.number, ("bob",))


def test_an_update_cannot_change_the_base_or_reopen(service, policies, store):
    ref = _open(service, policies)
    with pytest.raises(Conflict, match=f"#{ref.number}\\) targets main, not release"):
        _open(service, policies, base="release", patch=SECOND_PATCH)
    with sqlite3.connect(store.path) as db:  # close the pull request, as a person would
        db.execute("UPDATE pulls SET state = 'closed' WHERE number = ?", (ref.number,))
    with pytest.raises(Conflict, match="is closed; not reopening it"):
        _open(service, policies, patch=SECOND_PATCH)


def test_a_title_imitating_a_trailer_cannot_move_the_base(service, policies, remote):
    main = git("rev-parse", "main", cwd=remote)
    ref = _open(service, policies, title="Goresolve-Base: " + "0" * 40)
    again = _open(service, policies, title="Goresolve-Base: " + "0" * 40, patch=SECOND_PATCH)
    assert again.number == ref.number
    assert git("log", "-1", "--format=%B", again.branch, cwd=remote).rstrip().endswith(f"Goresolve-Base: {main}")


def test_a_refused_patch_leaves_no_object_in_the_cache_and_an_accepted_one_commits_its_blobs(
    service, policies, remote, tmp_path
):
    # git applies in a quarantine object directory; only a change the policy accepts reaches the cache.
    cache = tmp_path / "state" / "cache" / "svc.git"
    content = "all:\n\techo UNIQUE-MARKER-4242\n"
    makefile = (
        "diff --git a/Makefile b/Makefile\nnew file mode 100644\n--- /dev/null\n+++ b/Makefile\n"
        "@@ -0,0 +1,2 @@\n+all:\n+\techo UNIQUE-MARKER-4242\n"
    )
    blob = subprocess.run(
        ["git", "hash-object", "--stdin"], input=content.encode(), capture_output=True, check=True
    ).stdout.decode()
    with pytest.raises(InvalidInput, match="non_go_file"):
        _open(service, policies, patch=makefile)
    assert subprocess.run(["git", "--git-dir", str(cache), "cat-file", "-e", blob.strip()]).returncode != 0
    assert not list((cache / "objects").glob("??/tmp_obj_*"))

    ref = _open(service, policies)
    fixed = git("rev-parse", f"{ref.branch}:calc.go", cwd=remote)
    assert git("cat-file", "blob", fixed, cwd=cache) == git("show", f"{ref.branch}:calc.go", cwd=remote)
    assert git("fsck", "--no-dangling", cwd=cache) == ""


def test_a_draft_never_adds_its_commit_to_a_ready_pull_request(service, policies, store, remote):
    """A failed re-run's hand-off opened its draft on the ticket's ready pull request: the untested attempt
    became its head commit and the hand-off its body, and it stayed ready to merge. A draft onto a draft, and
    a ready change onto a ready pull request, still update it."""
    ref = _open(service, policies, draft=False)
    head = git("rev-parse", ref.branch, cwd=remote)
    with pytest.raises(Conflict, match=f"#{ref.number}\\) is ready for review; a draft does not add its commit"):
        _open(service, policies, draft=True, patch=SECOND_PATCH, title="[needs human] Fix Add")
    assert git("rev-parse", ref.branch, cwd=remote) == head
    row = store.get("svc", ref.number)
    assert (row.title, row.draft) == ("Fix Add: it subtracts", False)
    assert _open(service, policies, draft=False, patch=SECOND_PATCH).number == ref.number


def test_a_draft_updates_a_draft(service, policies):
    ref = _open(service, policies)  # draft by default
    assert _open(service, policies, patch=SECOND_PATCH).number == ref.number
