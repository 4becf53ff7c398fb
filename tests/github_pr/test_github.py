"""The GitHub backend through PyGithub against the stateful fake (responses checked against GitHub's spec)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from servers.common.errors import AccessDenied, Conflict, InvalidInput, NotFound, RateLimited, UpstreamFailure
from servers.common.policy import Repo
from servers.github_pr.github import GitHubBackend, connect
from servers.github_pr.github_calls import Calls, RetryPolicy
from servers.github_pr.models import Change
from servers.github_pr.protection import refused_repos
from servers.github_pr.service import PullRequestService
from tests.fakes.github.handlers import HANDLERS
from tests.fakes.github_fake import FakeGitHub

from .conftest import BOT, CALC_TEST_GO, FIX_PATCH, MAIN_GO, SECOND_PATCH, TAMPER_PATCH, make_policies, open_fix

FILES = {"go.mod": "module example.com/calc\n\ngo 1.21\n", "calc.go": MAIN_GO, "calc_test.go": CALC_TEST_GO}


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    fake = FakeGitHub().serve()
    fake.add_repo("acme/svc", FILES)
    yield fake
    fake.close()
    assert fake.violations == [], "the fake served responses that GitHub's description does not allow"
    assert fake.unexpected == [], "the client called an endpoint outside the allowed surface"


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make_backend(fake: FakeGitHub, sleeps: list[float], repos: dict[str, str] | None = None) -> GitHubBackend:
    client = connect("test-token", base_url=fake.base_url, timeout_s=5, seconds_between_writes=0)
    policy = RetryPolicy(max_retries=3, max_wait_s=10, deadline_s=60, backoff_s=0.25, sleep=sleeps.append)
    return GitHubBackend(client, repos or {"svc": "acme/svc"}, Calls(policy))


@pytest.fixture
def gh(fake: FakeGitHub, sleeps: list[float]) -> GitHubBackend:
    return make_backend(fake, sleeps)


def change(**kw: object) -> Change:
    values: dict[str, object] = {
        "repo": "svc",
        "base": "main",
        "ticket": "SVC-7",
        "branch": "goresolve/SVC-7-fix-add",
        "title": "Fix Add",
        "body": "body",
        "patch": FIX_PATCH,
        "author": BOT,
    }
    values.update(kw)
    return Change(**values)  # type: ignore[arg-type]


def test_open_builds_the_commit_with_the_git_data_api_and_opens_a_draft(gh, fake):
    ref = gh.open_or_update(change(labels=("bug",)))
    assert (ref.number, ref.branch, ref.created) == (1, "goresolve/SVC-7-fix-add", True)
    assert ref.url == "https://github.example/acme/svc/pull/1"
    repo = fake.repos["acme/svc"]
    assert repo.refs["refs/heads/goresolve/SVC-7-fix-add"] == ref.head_sha
    assert fake.file_at("acme/svc", ref.branch, "calc.go") == MAIN_GO.replace("a - b", "a + b")
    assert fake.file_at("acme/svc", ref.branch, "calc_test.go") == CALC_TEST_GO
    commit = repo.commits[ref.head_sha]
    assert commit["author"]["email"] == BOT.email
    assert commit["parents"] == [repo.refs["refs/heads/main"]]
    pull = repo.pulls[1]
    assert pull["draft"] is True
    assert pull["labels"] == ["bug"]
    assert "clone" not in " ".join(fake.calls)
    assert set(fake.calls) >= {"git/create-blob", "git/create-tree", "git/create-commit", "git/create-ref"}


def test_second_call_fast_forwards_the_branch_and_updates_the_same_pr(gh, fake):
    first = gh.open_or_update(change())
    second = gh.open_or_update(change(title="Fix Add properly", patch=SECOND_PATCH, branch="goresolve/SVC-7-other"))
    assert (second.number, second.branch, second.created) == (first.number, first.branch, False)
    repo = fake.repos["acme/svc"]
    assert repo.commits[second.head_sha]["parents"] == [first.head_sha]
    assert fake.file_at("acme/svc", second.branch, "calc.go") == MAIN_GO.replace("a - b", "b + a")
    assert repo.pulls[1]["title"] == "Fix Add properly"
    assert len(repo.pulls) == 1
    assert sorted(r for r in repo.refs if "goresolve" in r) == ["refs/heads/goresolve/SVC-7-fix-add"]


def test_the_same_change_again_makes_no_commit_and_moves_no_ref(gh, fake):
    first = gh.open_or_update(change())
    fake.calls.clear()
    again = gh.open_or_update(change())
    assert again == first.model_copy(update={"created": False})
    assert {"git/create-commit", "git/update-ref", "git/create-ref", "pulls/create"}.isdisjoint(fake.calls)
    repo = fake.repos["acme/svc"]
    assert repo.refs["refs/heads/goresolve/SVC-7-fix-add"] == first.head_sha
    assert len(repo.pulls) == 1
    # a different patch is a new commit on top, as before
    third = gh.open_or_update(change(patch=SECOND_PATCH))
    assert repo.commits[third.head_sha]["parents"] == [first.head_sha]


def test_a_deleted_file_and_a_new_file(gh, fake):
    patch = (
        "diff --git a/go.sum b/go.sum\nnew file mode 100644\n--- /dev/null\n+++ b/go.sum\n@@ -0,0 +1 @@\n+x\n"
        "diff --git a/calc.go b/calc.go\ndeleted file mode 100644\n--- a/calc.go\n+++ /dev/null\n"
        "@@ -1,6 +0,0 @@\n" + "".join(f"-{line}\n" for line in MAIN_GO.splitlines())
    )
    ref = gh.open_or_update(change(patch=patch))
    assert fake.file_at("acme/svc", ref.branch, "calc.go") is None
    assert fake.file_at("acme/svc", ref.branch, "go.sum") == "x\n"


def test_concurrent_calls_from_two_processes_make_one_branch_and_one_pr(fake, sleeps):
    # Two backends (separate clients, no shared lock) race through GitHub's own 422s.
    services = [
        PullRequestService(make_backend(fake, sleeps), make_policies("svc"), prefix="goresolve", author=BOT)
        for _ in range(2)
    ]
    policies = make_policies("svc")
    barrier = threading.Barrier(4)

    def call(i: int):
        barrier.wait(timeout=10)
        return services[i % 2].open_pull_request(
            "agent",
            policies.identity("agent"),
            repo="svc",
            base="main",
            ticket="SVC-7",
            title=f"Fix {i}",
            body="b",
            patch=FIX_PATCH,
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        refs = list(pool.map(call, range(4)))
    repo = fake.repos["acme/svc"]
    assert len(repo.pulls) == 1
    assert {r.number for r in refs} == {1}
    assert len([r for r in repo.refs if r.startswith("refs/heads/goresolve/")]) == 1
    assert sum(r.created for r in refs) == 1


def test_a_branch_its_racing_creator_deleted_before_the_pull_request_opened_is_built_again(gh, fake, monkeypatch):
    # Another process created the branch we built on, then saw a rival and deleted it (its yield):
    # GitHub answers 422 "head invalid" to our pull request; we start over instead of failing.
    original = HANDLERS["pulls/create"]
    deleted: list[str] = []

    def delete_head_first(fake_, repo, params, query, body):  # type: ignore[no-untyped-def]
        ref = f"refs/heads/{body['head'].split(':', 1)[-1]}"
        if not deleted:
            deleted.append(repo.refs.pop(ref))
        return original(fake_, repo, params, query, body)

    monkeypatch.setitem(HANDLERS, "pulls/create", delete_head_first)
    ref = gh.open_or_update(change())
    repo = fake.repos["acme/svc"]
    assert deleted and (ref.number, ref.created) == (1, True)
    assert repo.refs["refs/heads/goresolve/SVC-7-fix-add"] == ref.head_sha
    assert len(repo.pulls) == 1


def test_a_pull_request_refused_for_another_reason_is_not_retried_as_a_race(gh, fake):
    fake.fail("pulls/create", 422)
    with pytest.raises(Conflict):
        gh.open_or_update(change())
    assert fake.calls.count("pulls/create") == 1


def test_secondary_rate_limit_waits_retry_after_then_succeeds(gh, fake, sleeps):
    fake.fail("pulls/create", 403, retry_after=2)
    fake.fail("git/get-ref", 429, retry_after=1)
    ref = gh.open_or_update(change())
    assert ref.created
    assert sleeps == [1.0, 2.0]


def test_rate_limit_longer_than_the_ceiling_fails_fast_and_a_later_call_finishes_the_job(gh, fake, sleeps):
    fake.fail("pulls/create", 403, retry_after=3600)
    with pytest.raises(RateLimited) as info:
        gh.open_or_update(change())
    assert info.value.retry_after == 3600
    assert sleeps == []
    ref = gh.open_or_update(change())  # the branch was pushed; this call only opens the pull request
    assert (ref.number, ref.created) == (1, True)


def test_5xx_is_retried_with_bounded_backoff(gh, fake, sleeps):
    gh.open_or_update(change())
    fake.fail("pulls/get", 503, times=2)
    assert gh.get_pull_request("svc", 1).number == 1
    assert sleeps == [0.25, 0.5]
    fake.fail("pulls/get", 503, times=10)
    with pytest.raises(UpstreamFailure, match=r"GitHub failed \(503\)"):
        gh.get_pull_request("svc", 1)
    assert sleeps[2:] == [0.25, 0.5, 1.0]  # three retries, then give up


def test_a_comment_is_not_retried_on_5xx(gh, fake, sleeps):
    gh.open_or_update(change())
    fake.fail("issues/create-comment", 500, times=1)
    with pytest.raises(UpstreamFailure):
        gh.comment("svc", 1, "hello")
    assert fake.repos["acme/svc"].comments == []
    assert fake.calls.count("issues/create-comment") == 1
    assert sleeps == []


def test_a_repo_the_token_cannot_see_is_not_found(fake, sleeps):
    hidden = make_backend(fake, sleeps, {"svc": "acme/hidden"})
    with pytest.raises(NotFound, match="not visible to this token"):
        hidden.get_pull_request("svc", 1)


def test_missing_base_branch_and_closed_pr(gh, fake):
    with pytest.raises(NotFound, match="base branch release does not exist"):
        gh.open_or_update(change(base="release"))
    gh.open_or_update(change())
    fake.repos["acme/svc"].pulls[1]["state"] = "closed"
    with pytest.raises(Conflict, match="is closed; not reopening"):
        gh.open_or_update(change(patch=SECOND_PATCH))


def test_review_assign_comment_and_read(gh, fake):
    gh.open_or_update(change())
    info = gh.request_review("svc", 1, ("alice",), ("core",))
    assert (info.requested_reviewers, info.requested_teams) == (["alice"], ["core"])
    info = gh.assign("svc", 1, ("bob",))
    assert info.assignees == ["bob"]
    note = gh.comment("svc", 1, "Tests pass.")
    assert note.url.endswith(f"#issuecomment-{note.id}")
    info = gh.get_pull_request("svc", 1)
    assert (info.state, info.draft, info.branch, info.base) == ("open", True, "goresolve/SVC-7-fix-add", "main")


@pytest.mark.parametrize(
    ("classic", "readable", "ruleset", "accept", "refused"),
    [
        (1, True, None, False, False),
        (None, True, None, False, True),
        (None, True, 2, False, False),
        (1, False, None, False, True),  # classic protection unreadable (no administration:read): closed
        (None, True, None, True, False),  # policy accepted the risk
        (0, True, None, False, True),
    ],
)
def test_default_branch_must_require_reviews(fake, sleeps, classic, readable, ruleset, accept, refused):
    fake.add_repo(
        "acme/checked", FILES, required_reviews=classic, protection_readable=readable, ruleset_reviews=ruleset
    )
    backend = make_backend(fake, sleeps, {"checked": "acme/checked"})
    result = refused_repos(backend, {"checked": Repo(accept_unprotected_default_branch=accept)})
    assert ("checked" in result) is refused


def test_an_update_cannot_change_the_base(gh, fake):
    fake.repos["acme/svc"].refs["refs/heads/release"] = fake.repos["acme/svc"].refs["refs/heads/main"]
    gh.open_or_update(change())
    with pytest.raises(Conflict, match=r"\(#1\) targets main, not release"):
        gh.open_or_update(change(base="release", patch=SECOND_PATCH))


def test_pygithub_itself_never_retries_or_sleeps(fake):
    # PyGithub's default GithubRetry would repeat 5xx and sleep for any Retry-After; `connect` turns it off.
    client = connect("test-token", base_url=fake.base_url, timeout_s=5, seconds_between_writes=0)
    backend = GitHubBackend(client, {"svc": "acme/svc"}, Calls(RetryPolicy(max_retries=0)))
    fake.fail("repos/get", 503, times=3)
    with pytest.raises(UpstreamFailure):
        backend.get_pull_request("svc", 1)
    assert fake.calls.count("repos/get") == 1
    fake.faults.clear()
    fake.fail("repos/get", 403, retry_after=3600)
    with pytest.raises(RateLimited):
        backend.get_pull_request("svc", 1)
    assert fake.calls.count("repos/get") == 2


# --- ownership: from GitHub's record of who pushed, never from a commit's author or trailers ------------

FORGED = (BOT.name, BOT.email)


def test_a_branch_someone_else_created_is_not_adopted_even_when_it_looks_like_the_bots(gh, fake):
    planted = fake.push_as("mallory", "acme/svc", "goresolve/SVC-7-x", {"backdoor.go": "package calc\n"}, author=FORGED)
    with pytest.raises(Conflict, match="was not created by this bot"):
        gh.open_or_update(change())
    repo = fake.repos["acme/svc"]
    assert repo.refs["refs/heads/goresolve/SVC-7-x"] == planted
    assert repo.pulls == {}


def test_a_pull_request_someone_else_opened_from_the_bots_branch_is_never_written_to(gh, fake):
    """Before, when opening the pull request had failed (the bot's branch pushed, no pull request) and a person then
    opened one from that branch, the next call took it for the bot's: it replaced its title and body, labelled
    it and answered created=False."""
    fake.fail("pulls/create", 500, times=10)
    with pytest.raises(UpstreamFailure):
        gh.open_or_update(change())
    fake.faults.clear()
    repo = fake.repos["acme/svc"]
    number = repo.next_number()
    repo.pulls[number] = {
        "state": "open", "title": "Mallory's PR", "body": "my own description", "draft": True,
        "head": "goresolve/SVC-7-fix-add", "base": "main", "head_sha": repo.refs["refs/heads/goresolve/SVC-7-fix-add"],
        "labels": [], "assignees": [], "reviewers": [], "teams": [], "user": "mallory",
    }  # fmt: skip
    with pytest.raises(Conflict, match=f"pull request #{number} from goresolve/SVC-7-fix-add was opened by someone"):
        gh.open_or_update(change(title="Bot title", labels=("bot-label",)))
    assert (repo.pulls[number]["title"], repo.pulls[number]["labels"]) == ("Mallory's PR", [])


def test_a_branch_named_like_the_bots_pushed_after_it_does_not_block_the_bots_updates(gh, fake, sleeps):
    """Before, the alphabetically first branch of the ticket was taken: someone's `goresolve/SVC-7-a`, refused as
    not the bot's, blocked every later update of the ticket, in this process and in a new one."""
    ref = gh.open_or_update(change())
    squat = fake.push_as("mallory", "acme/svc", "goresolve/SVC-7-a", {"backdoor.go": "package calc\n"}, author=FORGED)
    for backend in (gh, make_backend(fake, sleeps)):  # this process, and one that never pushed
        again = backend.open_or_update(change(patch=SECOND_PATCH, title="Fix Add, again"))
        assert (again.branch, again.number, again.created) == (ref.branch, ref.number, False)
    repo = fake.repos["acme/svc"]
    assert repo.refs["refs/heads/goresolve/SVC-7-a"] == squat and repo.pulls[ref.number]["title"] == "Fix Add, again"


def test_a_push_by_someone_else_onto_the_bots_branch_is_refused_in_every_process(fake, sleeps):
    first = make_backend(fake, sleeps)
    ref = first.open_or_update(change())
    planted = fake.push_as("mallory", "acme/svc", ref.branch, {"backdoor.go": "package calc\n"}, author=FORGED)
    for backend in (first, make_backend(fake, sleeps)):  # this process, and one that never pushed
        with pytest.raises(Conflict, match=r"moved since this bot last pushed it \(pushed by mallory\)"):
            backend.open_or_update(change(patch=SECOND_PATCH))
    assert fake.repos["acme/svc"].refs[f"refs/heads/{ref.branch}"] == planted


def test_another_process_of_the_bot_updates_its_branch_on_githubs_record(fake, sleeps):
    ref = make_backend(fake, sleeps).open_or_update(change())
    again = make_backend(fake, sleeps).open_or_update(change(patch=SECOND_PATCH))
    assert (again.number, again.created, again.branch) == (ref.number, False, ref.branch)
    assert "repos/list-activities" in fake.calls
    assert fake.calls.count("users/get-authenticated") == 1  # asked only when there is a branch to check


def test_a_github_app_token_needs_the_login_configured(fake, sleeps):
    make_backend(fake, sleeps).open_or_update(change())
    fake.app_logins.add(fake.default_login)
    with pytest.raises(UpstreamFailure, match="GORESOLVE_GITHUB_PR_GITHUB_LOGIN"):
        make_backend(fake, sleeps).open_or_update(change(patch=SECOND_PATCH))
    client = connect("test-token", base_url=fake.base_url, timeout_s=5, seconds_between_writes=0)
    configured = GitHubBackend(
        client, {"svc": "acme/svc"}, Calls(RetryPolicy(sleep=sleeps.append)), login="Goresolve-Bot"
    )
    assert configured.open_or_update(change(patch=SECOND_PATCH)).created is False


def test_a_head_github_lists_no_push_for_is_refused(fake, sleeps):
    ref = make_backend(fake, sleeps).open_or_update(change())
    repo = fake.repos["acme/svc"]
    repo.refs[f"refs/heads/{ref.branch}"] = repo.refs["refs/heads/main"]  # moved, and not (yet) in the activity
    with pytest.raises(Conflict, match="not a push GitHub lists for the bot"):
        make_backend(fake, sleeps).open_or_update(change(patch=SECOND_PATCH))


def test_a_pull_request_someone_else_opened_on_a_bot_named_branch_gets_no_writes(fake, sleeps):
    fake.push_as("mallory", "acme/svc", "goresolve/SVC-9-x", {"x.go": "package calc\n"})
    fake.logins["mallory-token"] = "mallory"
    theirs = connect("mallory-token", base_url=fake.base_url, timeout_s=5, seconds_between_writes=0)
    number = theirs.get_repo("acme/svc").create_pull(base="main", head="goresolve/SVC-9-x", title="t", body="b").number
    service = PullRequestService(make_backend(fake, sleeps), make_policies("svc"), prefix="goresolve", author=BOT)
    with pytest.raises(AccessDenied, match="not opened by this bot"):
        service.comment("agent", make_policies("svc").identity("agent"), "svc", number, "hello")
    assert fake.repos["acme/svc"].comments == []
    ours = make_backend(fake, sleeps).open_or_update(change())
    assert service.comment("agent", make_policies("svc").identity("agent"), "svc", ours.number, "ok").id > 0


# --- the files git is given are the files git touches ------------------------------------------------------

NEW_TEST_BODY = "@@ -0,0 +1,3 @@\n+package calc\n+\n+// tests removed\n"
TAMPER_HUNK = TAMPER_PATCH.split("+++ b/calc_test.go\n", 1)[1]
WRITES = {"git/create-blob", "git/create-tree", "git/create-commit", "git/create-ref", "pulls/create"}


def _nothing_written(fake: FakeGitHub, full_name: str = "acme/svc") -> None:
    assert WRITES.isdisjoint(fake.calls)
    assert list(fake.repos[full_name].refs) == ["refs/heads/main"]
    assert fake.repos[full_name].pulls == {}


def _service(fake: FakeGitHub, sleeps: list[float]) -> PullRequestService:
    return PullRequestService(make_backend(fake, sleeps), make_policies("svc"), prefix="goresolve", author=BOT)


@pytest.mark.parametrize(
    ("patch", "error", "match"),
    [
        # git strips any first component (-p1): each of these creates calc_test.go, which exists
        *[
            (f"--- /dev/null\n+++ {prefix}calc_test.go\n{NEW_TEST_BODY}", Conflict, "calc_test.go: already exists")
            for prefix in ("x/", "w/", "i/", "calc/", "b/")
        ],
        (  # a creation by epoch timestamp, under names that are not a/ and b/
            f"--- x/calc_test.go\t1970-01-01 00:00:00.000000000 +0000\n+++ y/calc_test.go\n{NEW_TEST_BODY}",
            Conflict,
            "calc_test.go: already exists",
        ),
        # an edit of the read-only test under odd prefixes is judged on the real file
        (f"--- x/calc_test.go\n+++ y/calc_test.go\n{TAMPER_HUNK}", InvalidInput, "calc_test.go:.*removed_assertion"),
        # `---` and `+++` disagree: git edits the `+++` file, and that is the file judged
        (f"--- a/calc.go\n+++ b/calc_test.go\n{TAMPER_HUNK}", InvalidInput, "calc_test.go:.*removed_assertion"),
    ],
)
def test_a_patch_is_judged_on_the_files_git_touches_whatever_its_prefixes(fake, sleeps, patch, error, match):
    with pytest.raises(error, match=match):
        open_fix(_service(fake, sleeps), make_policies("svc"), patch)
    _nothing_written(fake)
    assert fake.file_at("acme/svc", "main", "calc_test.go") == CALC_TEST_GO


@pytest.mark.parametrize("prefixes", [("a/", "b/"), ("x/", "y/"), ("calc/", "calc/")])
def test_a_fix_applies_under_any_prefixes(fake, sleeps, prefixes):
    old, new = prefixes
    patch = FIX_PATCH.split("\n", 1)[1].replace("--- a/", f"--- {old}").replace("+++ b/", f"+++ {new}")
    ref = open_fix(_service(fake, sleeps), make_policies("svc"), patch)
    assert fake.file_at("acme/svc", ref.branch, "calc.go") == MAIN_GO.replace("a - b", "a + b")
    assert fake.file_at("acme/svc", ref.branch, "calc_test.go") == CALC_TEST_GO


def test_a_result_writing_over_a_base_file_git_was_not_given_is_refused_before_any_write(gh, fake, monkeypatch):
    # Should the paths git is given ever miss one, the result is still not written over the base tree.
    monkeypatch.setattr("servers.github_pr.github.patched_paths", lambda _patch: set())
    patch = "diff --git a/calc_test.go b/calc_test.go\nnew file mode 100644\n--- /dev/null\n+++ b/calc_test.go\n"
    with pytest.raises(Conflict, match=r"^patch does not apply: calc_test.go already exists in the base tree$"):
        gh.open_or_update(change(patch=patch + NEW_TEST_BODY))
    _nothing_written(fake)


@pytest.mark.parametrize(
    ("path", "match"),
    [
        ("calc_test.go/x.go", "calc_test.go/x.go needs calc_test.go, a file in the base tree, to be a directory"),
        ("pkg", "pkg is a directory in the base tree"),
    ],
)
def test_a_file_over_a_directory_or_under_a_file_is_refused_before_any_write(fake, sleeps, path, match):
    # git on the full tree (the local backend) refuses these too: "appears as both a file and as a directory".
    fake.add_repo("acme/dirs", {**FILES, "pkg/util.go": "package pkg\n"})
    gh = make_backend(fake, sleeps, {"svc": "acme/dirs"})
    patch = (
        f"diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n@@ -0,0 +1 @@\n+package x\n"
    )
    with pytest.raises(Conflict, match=f"^patch does not apply: {match}$"):
        gh.open_or_update(change(patch=patch))
    _nothing_written(fake, "acme/dirs")


def test_a_draft_never_adds_its_commit_to_a_ready_pull_request(gh, fake):
    first = gh.open_or_update(change(draft=False))
    repo = fake.repos["acme/svc"]
    head = repo.refs[f"refs/heads/{first.branch}"]
    with pytest.raises(Conflict, match="is ready for review; a draft does not add its commit"):
        gh.open_or_update(change(draft=True, patch=SECOND_PATCH, title="[needs human] Fix Add"))
    assert repo.refs[f"refs/heads/{first.branch}"] == head and repo.pulls[1]["title"] == "Fix Add"
    assert gh.open_or_update(change(draft=False, patch=SECOND_PATCH)).number == first.number
