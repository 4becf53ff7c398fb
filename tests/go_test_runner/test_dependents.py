"""`run_tests` with `dependents`: the packages of the module whose tests depend on the named ones are tested
too (through their code, their test files' imports, or an external test package), and a fix that breaks a
dependent fails the run. On the `deps` fixture: api imports calc, report's tests import api, xt's external
tests import calc, other depends on nothing."""

from __future__ import annotations

import json

import pytest

from servers.go_test_runner.dependents import dependents, go_list_args
from servers.go_test_runner.payload import RunTestsRequest
from servers.go_test_runner.runner import Runner
from tests.go_test_runner.conftest import MakeRunner, calc_add_patch

MOD = "example.com/deps"
DEPENDENTS = [f"{MOD}/api", f"{MOD}/xt", f"{MOD}/report"]  # nearest first: report only through api


def _listed(*packages: dict[str, object]) -> str:
    return "\n".join(json.dumps(p) for p in packages)


def test_dependents_reach_through_code_test_imports_and_their_imports_nearest_first() -> None:
    text = _listed(
        {"ImportPath": "m/calc", "Match": ["./...", "./calc"], "TestImports": ["testing"]},
        {"ImportPath": "m/api", "Match": ["./..."], "Imports": ["m/calc", "fmt"]},
        {"ImportPath": "m/web", "Match": ["./..."], "Imports": ["m/api"]},  # through api: distance 2
        {"ImportPath": "m/report", "Match": ["./..."], "TestImports": ["m/api", "testing"]},  # a test import of api
        {"ImportPath": "m/xt", "Match": ["./..."], "XTestImports": ["m/calc", "m/xt"]},  # an external test
        {"ImportPath": "m/cli", "Match": ["./..."], "TestImports": ["m/report"]},  # report's tests are not code
        {"ImportPath": "m/other", "Match": ["./..."], "Imports": ["fmt"], "TestImports": ["testing"]},
        "not a package",
    )
    assert dependents(text, ["./calc"]) == (["m/api", "m/xt", "m/report", "m/web"], 0)
    assert dependents(text, ["./calc"], limit=2) == (["m/api", "m/xt"], 2)  # the nearest, and how many more
    both = text.replace('"m/api", "Match": ["./..."]', '"m/api", "Match": ["./...", "./api"]')  # as go lists it
    assert dependents(both, ["./calc", "./api"]) == (["m/report", "m/web", "m/xt"], 0)  # named ones not added
    assert dependents(text, ["./other"]) == ([], 0)
    assert dependents(text, ["./..."]) == ([], 0)  # the whole module is named already
    assert go_list_args(["./calc"])[-2:] == ["./...", "./calc"]


async def test_a_run_with_dependents_tests_the_packages_whose_tests_depend_on_the_named_ones(runner: Runner) -> None:
    result = await runner.run_tests(RunTestsRequest(repo="deps", ref="main", packages=["./calc"], dependents=True))
    assert result.ok, result.summary
    assert sorted(p.name for p in result.report.packages) == sorted([f"{MOD}/calc", *DEPENDENTS])
    assert result.dependents == DEPENDENTS
    assert "3 packages were tested because their tests depend on the named ones." in result.summary
    assert result.dependents_not_tested == 0
    alone = await runner.run_tests(RunTestsRequest(repo="deps", ref="main", packages=["./calc"]))
    assert [p.name for p in alone.report.packages] == [f"{MOD}/calc"] and alone.dependents == []


BREAKS_TOTAL = calc_add_patch("a * b")


@pytest.mark.parametrize("with_dependents", [False, True])
async def test_a_patch_that_breaks_a_dependent_fails_only_the_run_that_tests_dependents(
    runner: Runner, with_dependents: bool
) -> None:
    """calc's own test still passes (0 * 0 == 0 + 0); api's, report's and xt's catch the change."""
    req = RunTestsRequest(repo="deps", ref="main", packages=["./calc"], patch=BREAKS_TOTAL, dependents=with_dependents)
    result = await runner.run_tests(req)
    if not with_dependents:
        assert result.ok, result.summary
        return
    assert not result.ok and result.census == []
    assert sorted(t.name for t in result.report.tests) == ["TestLine", "TestTotal", "TestTwice"]
    assert {p.name: p.status for p in result.report.packages}[f"{MOD}/calc"] == "ok"


async def test_past_max_dependents_the_nearest_are_tested_and_the_rest_counted(make_runner: MakeRunner) -> None:
    runner = make_runner(max_dependents=1)
    result = await runner.run_tests(RunTestsRequest(repo="deps", ref="main", packages=["./calc"], dependents=True))
    assert result.ok, result.summary
    assert (result.dependents, result.dependents_not_tested) == ([f"{MOD}/api"], 2)  # api, xt at 1; report at 2
    assert "1 package was tested because its tests depend on the named ones." in result.summary
    assert "2 more packages depend on them and were not tested (max_dependents)." in result.summary
