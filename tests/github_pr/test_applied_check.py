"""github-pr judges the change git is about to commit, not the patch text: for both backends, a patch
whose text passes the line rules but whose effect is protected is refused, and nothing is pushed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from servers.common.errors import InvalidInput
from servers.common.patch_policy import check_patch
from servers.common.policy import Policies, ProtectedPolicy
from servers.github_pr.github import GitHubBackend, connect
from servers.github_pr.github_calls import Calls, RetryPolicy
from servers.github_pr.service import PullRequestService
from tests.fakes.github_fake import FakeGitHub

from .conftest import BOT, CALC_TEST_GO, FIX_PATCH, MAIN_GO, git, local_service, make_policies, make_remote, open_fix

FILES = {"go.mod": "module example.com/calc\n\ngo 1.21\n", "calc.go": MAIN_GO, "calc_test.go": CALC_TEST_GO}

# git decodes C-quoted paths ("\137" is "_"): the text names `calc\137test.go`, a plain Go file to a
# line reader, while git changes calc_test.go.
QUOTED_EDIT = """diff --git "a/calc\\137test.go" "b/calc\\137test.go"
--- "a/calc\\137test.go"
+++ "b/calc\\137test.go"
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
QUOTED_DELETE = (
    'diff --git "a/calc\\137test.go" "b/calc\\137test.go"\ndeleted file mode 100644\n'
    '--- "a/calc\\137test.go"\n+++ /dev/null\n@@ -1,9 +0,0 @@\n'
    + "".join(f"-{line}\n" for line in CALC_TEST_GO.splitlines())
)
# "\141" is "a": a golden file under testdata/, named so that no glob of the text matches it.
QUOTED_TESTDATA = (
    'diff --git "a/testdat\\141/golden.txt" "b/testdat\\141/golden.txt"\nnew file mode 100644\n'
    '--- /dev/null\n+++ "b/testdat\\141/golden.txt"\n@@ -0,0 +1 @@\n+-1\n'
)
FIXTURE = (
    "diff --git a/fixtures/expected.txt b/fixtures/expected.txt\nnew file mode 100644\n"
    "--- /dev/null\n+++ b/fixtures/expected.txt\n@@ -0,0 +1 @@\n+-1\n"
)
SNEAKS = {
    "a fixture outside testdata": (FIXTURE, "fixtures/expected.txt", "non_go_file"),
}
# The text rules decode C-quoted names as git does, so these are refused before git is asked.
QUOTED = {
    "C-quoted edit of an existing test": (QUOTED_EDIT, "calc_test.go", "removed_assertion"),
    "C-quoted deletion of a test file": (QUOTED_DELETE, "calc_test.go", "deleted_test_file"),
    "C-quoted path into testdata": (QUOTED_TESTDATA, "testdata/golden.txt", "protected_path"),
}


def _text_rules_allow(patch: str) -> bool:
    """What a reader of the text alone (the line rules, before this check existed) concluded."""
    return check_patch(patch, ProtectedPolicy()).allowed


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    fake = FakeGitHub().serve()
    fake.add_repo("acme/svc", FILES)
    yield fake
    fake.close()
    assert fake.violations == []
    assert fake.unexpected == []


def _github_service(fake: FakeGitHub, policies: Policies) -> PullRequestService:
    client = connect("test-token", base_url=fake.base_url, timeout_s=5, seconds_between_writes=0)
    calls = Calls(RetryPolicy(max_retries=0, sleep=lambda _s: None))
    backend = GitHubBackend(client, {"svc": "acme/svc"}, calls)
    return PullRequestService(backend, policies, prefix="goresolve", author=BOT)


def _local_service(tmp_path: Path, policies: Policies) -> tuple[PullRequestService, Path]:
    remote = make_remote(tmp_path / "origin")
    return local_service(tmp_path, remote, policies), remote


@pytest.mark.parametrize("case", sorted(SNEAKS))
def test_the_local_backend_refuses_what_git_applied_and_pushes_nothing(case: str, tmp_path: Path) -> None:
    patch, path, rule = SNEAKS[case]
    assert _text_rules_allow(patch), "the case must pass a reading of the text alone"
    policies = make_policies("svc")
    service, remote = _local_service(tmp_path, policies)
    with pytest.raises(InvalidInput) as refused:
        open_fix(service, policies, patch)
    assert refused.value.message.startswith("patch refused by policy as git applied it:")
    assert f"{path}:" in refused.value.message
    assert rule in refused.value.message
    assert git("for-each-ref", "--format=%(refname)", "refs/heads", cwd=remote) == "refs/heads/main"


@pytest.mark.parametrize("case", sorted(SNEAKS))
def test_the_github_backend_refuses_what_git_applied_and_writes_nothing(case: str, fake: FakeGitHub) -> None:
    patch, path, rule = SNEAKS[case]
    assert _text_rules_allow(patch)
    policies = make_policies("svc")
    with pytest.raises(InvalidInput) as refused:
        open_fix(_github_service(fake, policies), policies, patch)
    assert f"{path}:" in refused.value.message
    assert rule in refused.value.message
    writes = {"git/create-blob", "git/create-tree", "git/create-commit", "git/create-ref", "pulls/create"}
    assert writes.isdisjoint(fake.calls)
    assert list(fake.repos["acme/svc"].refs) == ["refs/heads/main"]


@pytest.mark.parametrize("case", sorted(QUOTED))
def test_a_c_quoted_name_is_read_as_git_reads_it_and_refused_before_anything_is_written(
    case: str, tmp_path: Path, fake: FakeGitHub
) -> None:
    patch, path, rule = QUOTED[case]
    policies = make_policies("svc")
    local, remote = _local_service(tmp_path, policies)
    for service in (local, _github_service(fake, policies)):
        with pytest.raises(InvalidInput) as refused:
            open_fix(service, policies, patch)
        assert refused.value.message.startswith("patch refused by policy:")
        assert f"{path}:" in refused.value.message
        assert rule in refused.value.message
    assert git("for-each-ref", "--format=%(refname)", "refs/heads", cwd=remote) == "refs/heads/main"
    writes = {"git/create-blob", "git/create-tree", "git/create-commit", "git/create-ref", "pulls/create"}
    assert writes.isdisjoint(fake.calls)


def _allowing_modes() -> Policies:
    base = make_policies("svc")
    protected = base.protected.model_copy(update={"allow_mode_changes": True, "allow_non_go": ("**/*.sh",)})
    return base.model_copy(update={"protected": protected})


MODE_PATCH = FIX_PATCH + (
    "diff --git a/run.sh b/run.sh\nnew file mode 100755\n--- /dev/null\n+++ b/run.sh\n@@ -0,0 +1 @@\n+go test ./...\n"
)


def test_a_mode_change_is_refused_by_default_on_both_backends(tmp_path: Path, fake: FakeGitHub) -> None:
    policies = make_policies("svc")
    local, _remote = _local_service(tmp_path, policies)
    for service in (local, _github_service(fake, policies)):
        with pytest.raises(InvalidInput, match="mode_change"):
            open_fix(service, policies, MODE_PATCH)


def test_the_github_backend_commits_the_modes_git_applied(fake: FakeGitHub) -> None:
    # The check reads git's staged result, so the tree written must be that result, modes included.
    policies = _allowing_modes()
    ref = open_fix(_github_service(fake, policies), policies, MODE_PATCH)
    repo = fake.repos["acme/svc"]
    tree = repo.trees[repo.commits[ref.head_sha]["tree"]]
    assert tree["run.sh"][0] == "100755"
    assert tree["calc.go"][0] == "100644"
    assert fake.file_at("acme/svc", ref.branch, "calc.go") == MAIN_GO.replace("a - b", "a + b")


@pytest.mark.parametrize("backend", ["local", "github"])
def test_a_real_fix_passes_the_applied_check(backend: str, tmp_path: Path, fake: FakeGitHub) -> None:
    policies = make_policies("svc")
    make: dict[str, Callable[[], PullRequestService]] = {
        "local": lambda: _local_service(tmp_path, policies)[0],
        "github": lambda: _github_service(fake, policies),
    }
    ref = open_fix(make[backend](), policies, FIX_PATCH)
    assert ref.created
