"""The review's tampering cases through run_tests: the static guard refuses each before anything runs,
and with the static guard off the census still fails every case it can see (the two guards are independent)."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from servers.common.errors import InvalidInput
from servers.common.policy import ProtectedPolicy
from servers.go_test_runner.payload import RunTestsRequest
from servers.go_test_runner.results import RunResult
from servers.go_test_runner.runner import Runner
from tests.patch_policy.tamper_cases import ALLOWED, CASES, Case, diff_for, git, victim_repo

from .conftest import host_go_env, make_policies

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def victim(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return victim_repo(tmp_path_factory.mktemp("victim"))


# One runner per policy for the module: the base facts and the base test listing are cached per
# commit, as in a long-running server, so each case pays only for its own patch.
@pytest.fixture(scope="module")
def guarded(victim: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> Runner:
    return _runner(victim, tmp_path_factory.mktemp("guarded"), ProtectedPolicy())


@pytest.fixture(scope="module")
def census_only(victim: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> Runner:
    policy = ProtectedPolicy(static_analysis=False, existing_tests_read_only=False)
    return _runner(victim, tmp_path_factory.mktemp("census"), policy)


def _runner(victim: pathlib.Path, tmp_path: pathlib.Path, protected: ProtectedPolicy) -> Runner:
    from servers.go_test_runner.settings import GoTestRunnerSettings

    settings = GoTestRunnerSettings(
        state_dir=tmp_path / "state",
        stdio_identity="agent",
        policy_dir=tmp_path,
        work_dir=tmp_path / "work",
        gocache=host_go_env("GOCACHE"),
        gomodcache=host_go_env("GOMODCACHE"),
    )
    policies = make_policies({"victim": victim}).model_copy(update={"protected": protected})
    return Runner.create(settings, policies)


async def _run(runner: Runner, **kw: Any) -> RunResult:
    try:
        return await runner.run_tests(RunTestsRequest.model_validate({"repo": "victim", "ref": "main", **kw}))
    finally:
        await runner.quiesce()  # the runner outlives this test's event loop


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_the_static_guard_refuses_each_case_before_running(
    case: Case, victim: pathlib.Path, guarded: Runner
) -> None:
    with pytest.raises(InvalidInput, match=rf"patch refused by policy: .*{case.static}"):
        await _run(guarded, packages=["./..."], patch=diff_for(victim, case.files))


_DYNAMIC = [c for c in CASES if c.census is not None]


@pytest.mark.parametrize("case", _DYNAMIC, ids=[c.name for c in _DYNAMIC])
async def test_with_the_static_guard_off_the_census_fails_the_run(
    case: Case, victim: pathlib.Path, census_only: Runner
) -> None:
    result = await _run(census_only, packages=["./..."], patch=diff_for(victim, case.files))
    assert not result.ok
    assert f"Test census failed: {case.census}" in result.summary, result.summary
    assert any(case.census in problem for problem in result.census), result.census  # for the agent to read


async def test_a_real_fix_passes_both_guards(victim: pathlib.Path, guarded: Runner) -> None:
    result = await _run(guarded, packages=["./..."], patch=diff_for(victim, ALLOWED["fix-and-new-test"]))
    assert result.ok, result.summary
    assert "census" not in result.summary


async def test_check_patch_gives_the_verdict_without_running(victim: pathlib.Path, guarded: Runner) -> None:
    from servers.go_test_runner.payload import CheckBuildRequest

    runner = guarded
    req = CheckBuildRequest.model_validate({"repo": "victim", "ref": "main", "packages": ["./..."]})
    try:
        hook = next(c for c in CASES if c.name == "4-hook-in-code")
        refused = await runner.check_patch(req, diff_for(victim, hook.files))
        assert not refused.allowed
        assert {r.rule for r in refused.reasons} >= {"exit_at_init", "testing_testing"}
        allowed = await runner.check_patch(req, diff_for(victim, ALLOWED["fix"]))
        assert allowed.allowed and allowed.reasons == []
    finally:
        await runner.quiesce()  # the runner outlives this test's event loop


async def test_check_patch_over_mcp_returns_the_reasons(victim: pathlib.Path, guarded: Runner) -> None:
    from servers.go_test_runner.server import build_server
    from tests.support import call

    runner = guarded
    server = build_server(runner.settings, make_policies({"victim": victim}), runner)
    shadow = next(c for c in CASES if c.name == "9-external-test-shadows")
    try:
        result = await call(
            server, "check_patch", {"repo": "victim", "ref": "main", "patch": diff_for(victim, shadow.files)}
        )
    finally:
        await runner.quiesce()  # the runner outlives this test's event loop
    assert not result.is_error
    verdict = result.structured_content or {}
    assert verdict["allowed"] is False
    assert [(r["rule"], r["path"]) for r in verdict["reasons"]] == [
        ("shadows_test", "calc_ext_test.go"),
        ("shadows_test", "calc_ext_test.go"),
    ]


async def test_without_the_analyzer_a_file_tests_read_is_still_protected(tmp_path: pathlib.Path) -> None:
    """static_analysis off left go-test-runner without the test_fixture rule: a change to golden.md (allowed by
    `**/*.md`), which a test names, was run. Now the text of the _test.go files says which files tests read."""
    repo = victim_repo(tmp_path / "repo")
    (repo / "golden.md").write_text("# Title\n")
    (repo / "golden_test.go").write_text('package victim\n\nvar golden = "golden.md"\n')
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "golden")
    runner = _runner(repo, tmp_path, ProtectedPolicy(static_analysis=False, existing_tests_read_only=False))
    patch = "--- a/golden.md\n+++ b/golden.md\n@@ -1 +1 @@\n-# Title\n+# Wrong\n"
    with pytest.raises(InvalidInput, match=r"patch refused by policy: .*test_fixture"):
        await _run(runner, packages=["./..."], patch=patch)
    # a .md file no test names is still allowed, and the run goes ahead
    result = await _run(runner, packages=["./..."], patch=diff_for(repo, {"NOTES.md": "# Notes\n"}))
    assert result.summary
