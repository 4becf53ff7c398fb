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

MOD = "example.com/deps"
DEPENDENTS = [f"{MOD}/api", f"{MOD}/report", f"{MOD}/xt"]


def _listed(*packages: dict[str, object]) -> str:
    return "\n".join(json.dumps(p) for p in packages)


def test_dependents_reach_through_code_test_imports_and_their_dependencies() -> None:
    text = _listed(
        {"ImportPath": "m/calc", "Match": ["./...", "./calc"], "TestImports": ["testing"]},
        {"ImportPath": "m/api", "Match": ["./..."], "Deps": ["m/calc", "fmt"]},
        {"ImportPath": "m/web", "Match": ["./..."], "Deps": ["m/api", "m/calc"]},  # transitively, through api
        {"ImportPath": "m/report", "Match": ["./..."], "TestImports": ["m/api", "testing"]},  # api's deps
        {"ImportPath": "m/xt", "Match": ["./..."], "XTestImports": ["m/calc", "m/xt"]},
        {"ImportPath": "m/other", "Match": ["./..."], "Deps": ["fmt"], "TestImports": ["testing"]},
        "not a package",
    )
    assert dependents(text, ["./calc"]) == ["m/api", "m/report", "m/web", "m/xt"]
    both = text.replace('"m/api", "Match": ["./..."]', '"m/api", "Match": ["./...", "./api"]')  # as go lists it
    assert dependents(both, ["./calc", "./api"]) == ["m/report", "m/web", "m/xt"]  # named ones are not added
    assert dependents(text, ["./other"]) == []
    assert dependents(text, ["./..."]) == []  # the whole module is named already
    assert go_list_args(["./calc"])[-2:] == ["./...", "./calc"]


async def test_a_run_with_dependents_tests_the_packages_whose_tests_depend_on_the_named_ones(runner: Runner) -> None:
    result = await runner.run_tests(RunTestsRequest(repo="deps", ref="main", packages=["./calc"], dependents=True))
    assert result.ok, result.summary
    assert sorted(p.name for p in result.report.packages) == sorted([f"{MOD}/calc", *DEPENDENTS])
    assert result.dependents == DEPENDENTS
    assert "3 of the packages were tested because their tests depend on the named ones." in result.summary
    alone = await runner.run_tests(RunTestsRequest(repo="deps", ref="main", packages=["./calc"]))
    assert [p.name for p in alone.report.packages] == [f"{MOD}/calc"] and alone.dependents == []


BREAKS_TOTAL = """diff --git a/calc/calc.go b/calc/calc.go
--- a/calc/calc.go
+++ b/calc/calc.go
@@ -2,4 +2,4 @@
 package calc
\x20
 // Add returns a + b.
-func Add(a, b int) int { return a + b }
+func Add(a, b int) int { return a * b }
"""


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
