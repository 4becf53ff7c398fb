"""The census listing at a commit comes from an unpatched run's own complete stream when there was
one, from `go list` and the test files' syntax trees otherwise (nothing built), and from
`go test -list` only for a pattern Python cannot read as go does; either way the patched run is
held to it."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from servers.common.policy import ProtectedPolicy
from servers.go_test_runner import census, listing
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
def listings(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[list[str]]]:
    """The listings the runner makes, by kind: `go list` (static) and `go test -list` (their arguments)."""
    calls: dict[str, list[list[str]]] = {"static": [], "go test -list": []}
    real_list, real_static = census.list_args, listing.go_list_args

    def counting(run: str | None, packages: Any) -> list[str]:
        calls["go test -list"].append(real_list(run, packages))
        return calls["go test -list"][-1]

    def counting_static(packages: Any, *, race: bool) -> list[str]:
        calls["static"].append(real_static(packages, race=race))
        return calls["static"][-1]

    monkeypatch.setattr(census, "list_args", counting)
    monkeypatch.setattr(listing, "go_list_args", counting_static)
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
    assert listings == {"static": [], "go test -list": []}  # the unpatched run's stream was the listing


async def test_an_incomplete_unpatched_run_leaves_the_listing_to_go_list(
    victim: pathlib.Path, tmp_path: pathlib.Path, listings: dict[str, list[list[str]]]
) -> None:
    runner = _runner(victim, tmp_path)
    await _run(runner, packages=["./..."], flags=["-count=1", "-failfast"])
    tampered = await _run(runner, packages=["./..."], flags=["-count=1"], patch=diff_for(victim, CASE.files))
    assert f"Test census failed: {CASE.census}" in tampered.summary, tampered.summary
    assert len(listings["static"]) == 1
    assert listings["go test -list"] == []  # nothing was built to list the tests


async def test_a_pattern_python_reads_otherwise_than_go_is_listed_by_go_test(
    victim: pathlib.Path, tmp_path: pathlib.Path, listings: dict[str, list[list[str]]]
) -> None:
    """`(?i)` is left to go: the listing comes from `go test -list` and still holds the patched run."""
    runner = _runner(victim, tmp_path)
    tampered = await _run(
        runner, packages=["./..."], flags=["-count=1"], run="(?i)^test", patch=diff_for(victim, CASE.files)
    )
    assert f"Test census failed: {CASE.census}" in tampered.summary, tampered.summary
    assert listings["static"] == []
    assert listings["go test -list"] == [["-json", "-list", "(?i)^test", "./..."]]


async def test_a_first_patched_run_is_listed_statically_and_held_to_the_listing(
    victim: pathlib.Path, tmp_path: pathlib.Path, listings: dict[str, list[list[str]]]
) -> None:
    runner = _runner(victim, tmp_path)
    tampered = await _run(runner, packages=["./..."], flags=["-count=1"], patch=diff_for(victim, CASE.files))
    assert f"Test census failed: {CASE.census}" in tampered.summary, tampered.summary
    assert listings == {"static": [["list", "-e", "-find", f"-json={listing.FIELDS}", "./..."]], "go test -list": []}
