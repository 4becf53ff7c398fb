"""The census listing at a commit comes from an unpatched run's own complete stream when there was
one (no `go test -list` build then), and from `go test -list` otherwise; either way the patched
run is held to it."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from servers.common.policy import ProtectedPolicy
from servers.go_test_runner import census
from servers.go_test_runner.payload import RunTestsRequest
from servers.go_test_runner.results import RunResult
from servers.go_test_runner.runner import Runner
from tests.patch_policy.tamper_cases import CASES, diff_for, victim_repo

from .conftest import host_go_env, make_policies

pytestmark = pytest.mark.slow

CASE = next(c for c in CASES if c.census is not None and c.census.startswith("tests_not_run"))


@pytest.fixture
def victim(tmp_path: pathlib.Path) -> pathlib.Path:
    return victim_repo(tmp_path / "victim")


@pytest.fixture
def listings(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every `go test -list` the runner starts (its arguments)."""
    calls: list[list[str]] = []
    real = census.list_args

    def counting(run: str | None, packages: Any) -> list[str]:
        args = real(run, packages)
        calls.append(args)
        return args

    monkeypatch.setattr(census, "list_args", counting)
    return calls


def _runner(victim: pathlib.Path, tmp_path: pathlib.Path) -> Runner:
    """The census alone (the static guard off), as in test_tamper_run_tests."""
    from servers.go_test_runner.settings import GoTestRunnerSettings

    settings = GoTestRunnerSettings(
        state_dir=tmp_path / "state",
        stdio_identity="agent",
        policy_dir=tmp_path,
        work_dir=tmp_path / "work",
        gocache=host_go_env("GOCACHE"),
        gomodcache=host_go_env("GOMODCACHE"),
    )
    protected = ProtectedPolicy(static_analysis=False, existing_tests_read_only=False)
    policies = make_policies({"victim": victim}).model_copy(update={"protected": protected})
    return Runner.create(settings, policies)


async def _run(runner: Runner, **kw: Any) -> RunResult:
    try:
        return await runner.run_tests(RunTestsRequest.model_validate({"repo": "victim", "ref": "main", **kw}))
    finally:
        await runner.drain()


async def test_an_unpatched_run_gives_the_listing_and_the_patched_run_is_held_to_it(
    victim: pathlib.Path, tmp_path: pathlib.Path, listings: list[list[str]]
) -> None:
    runner = _runner(victim, tmp_path)
    first = await _run(runner, packages=["./..."], flags=["-count=1"])
    assert "2 test(s) failed: TestAdd" in first.summary  # the victim's bug, reported in full
    tampered = await _run(runner, packages=["./..."], flags=["-count=1"], patch=diff_for(victim, CASE.files))
    assert not tampered.ok
    assert f"Test census failed: {CASE.census}" in tampered.summary, tampered.summary
    assert listings == []  # no `go test -list`: the unpatched run's stream was the listing


async def test_an_incomplete_unpatched_run_leaves_the_listing_to_go_test_list(
    victim: pathlib.Path, tmp_path: pathlib.Path, listings: list[list[str]]
) -> None:
    runner = _runner(victim, tmp_path)
    await _run(runner, packages=["./..."], flags=["-count=1", "-failfast"])
    tampered = await _run(runner, packages=["./..."], flags=["-count=1"], patch=diff_for(victim, CASE.files))
    assert f"Test census failed: {CASE.census}" in tampered.summary, tampered.summary
    assert len(listings) == 1
