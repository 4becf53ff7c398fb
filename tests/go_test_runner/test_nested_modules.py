"""A repository with modules below its root (their own go.mod, no go.work), as golang.org/x/tools keeps gopls:
go runs in the root module, which does not contain them. A package of a nested module is refused with one
clear error naming the module (not go's "main module does not contain package"), and a `...` pattern that
passes over nested modules says in its result that they were not tested."""

from __future__ import annotations

from pathlib import Path

import pytest

from servers.common.errors import InvalidInput
from servers.common.policy import ProtectedPolicy
from servers.common.tamper.guard import unanalyzed
from servers.go_test_runner.confinement import check_not_nested, nested_modules
from servers.go_test_runner.payload import CheckBuildRequest, RunTestsRequest
from servers.go_test_runner.runner import Runner

ROOT = "example.com/multimod"
NESTED = {"tools": f"{ROOT}/tools", "tools/deep": "example.com/deep", "exp": None}


def test_nested_modules_are_the_go_mods_go_would_build(tmp_path: Path) -> None:
    for directory, text in {
        "tools": f"module {ROOT}/tools\n",
        "x/y": "module other.example/y // the y module\n",
    }.items():
        (tmp_path / directory).mkdir(parents=True)
        (tmp_path / directory / "go.mod").write_text(f"{text}\ngo 1.22\n")
    tracked = [
        "go.mod",
        "tools/go.mod",
        "x/y/go.mod",
        "a/testdata/go.mod",  # fixtures, vendored modules and ignored directories are not modules go builds
        "vendor/golang.org/x/sys/go.mod",
        "_old/go.mod",
        ".github/go.mod",
        "tools/fmtx/fmtx.go",
    ]
    assert nested_modules(tmp_path, tracked) == {"tools": f"{ROOT}/tools", "x/y": "other.example/y"}
    (tmp_path / "go.work").write_text("go 1.22\n\nuse (\n\t.\n\t./tools\n)\n")
    assert nested_modules(tmp_path, tracked) == {}  # a workspace: go decides which modules a pattern reaches


@pytest.mark.parametrize(
    ("packages", "owner"),
    [
        (["./tools/fmtx"], "tools"),
        (["./calc", "./tools/..."], "tools"),
        ([f"{ROOT}/tools/fmtx"], "tools"),
        (["./tools/deep/x"], "tools/deep"),  # the innermost module owns it
        (["example.com/deep/..."], "tools/deep"),
        (["./exp"], "exp"),  # a go.mod without a module line is still a module boundary
    ],
)
def test_a_package_of_a_nested_module_is_refused_naming_it(packages: list[str], owner: str) -> None:
    with pytest.raises(InvalidInput, match=rf"is in the nested module {owner} \({owner}/go.mod\)"):
        check_not_nested(packages, ROOT, NESTED)


@pytest.mark.parametrize(
    ("packages", "skipped"),
    [
        (["./..."], ["exp", "tools", "tools/deep"]),
        ([f"{ROOT}/..."], ["exp", "tools", "tools/deep"]),
        (["./calc/...", "."], []),
        (["./calc", f"{ROOT}/calc", "./toolsx/..."], []),  # a sibling whose name starts alike is not inside
    ],
)
def test_a_wide_pattern_names_the_nested_modules_it_passes_over(packages: list[str], skipped: list[str]) -> None:
    assert check_not_nested(packages, ROOT, NESTED) == skipped


async def test_the_runner_tests_the_root_module_and_says_what_it_left_out(runner: Runner) -> None:
    result = await runner.run_tests(RunTestsRequest(repo="multimod", ref="main", packages=["./..."]))
    assert result.ok, result.summary
    assert [p.name for p in result.report.packages] == [f"{ROOT}/calc"]
    assert result.summary.endswith(
        "Not tested: the nested modules tools (each has its own go.mod; go runs the root module)."
    )
    only_root = await runner.run_tests(RunTestsRequest(repo="multimod", ref="main", packages=["./calc"]))
    assert only_root.ok and "Not tested" not in only_root.summary


@pytest.mark.parametrize("packages", [["./tools/fmtx"], ["./calc", "./tools/..."], [f"{ROOT}/tools/fmtx"]])
async def test_the_runner_refuses_a_nested_modules_package_before_running_go(
    runner: Runner, packages: list[str]
) -> None:
    message = r"is in the nested module tools \(tools/go.mod\); go-test-runner runs go in the repository's root"
    with pytest.raises(InvalidInput, match=message):
        await runner.run_tests(RunTestsRequest(repo="multimod", ref="main", packages=packages))
    with pytest.raises(InvalidInput, match=message):
        await runner.check_build(CheckBuildRequest(repo="multimod", ref="main", packages=packages))


async def test_modules_joined_by_a_go_work_are_tested_as_go_sees_the_workspace(runner: Runner) -> None:
    result = await runner.run_tests(RunTestsRequest(repo="workspace", ref="main", packages=["./tools/fmtx", "./calc"]))
    assert result.ok, result.summary
    assert sorted(p.name for p in result.report.packages) == [
        "example.com/workspace/calc",
        "example.com/workspace/tools/fmtx",
    ]
    assert "Not tested" not in result.summary


SHOUT_PATCH = """diff --git a/tools/fmtx/fmtx.go b/tools/fmtx/fmtx.go
--- a/tools/fmtx/fmtx.go
+++ b/tools/fmtx/fmtx.go
@@ -4,4 +4,4 @@ package fmtx
 import "strings"
\x20
 // Shout upper-cases s and adds an exclamation mark.
-func Shout(s string) string { return strings.ToUpper(s) + "!" }
+func Shout(s string) string { return strings.ToUpper(s) + "!!" }
"""

ADD_PATCH = """diff --git a/calc/calc.go b/calc/calc.go
--- a/calc/calc.go
+++ b/calc/calc.go
@@ -2,4 +2,4 @@
 package calc
\x20
 // Add returns a + b.
-func Add(a, b int) int { return a + b }
+func Add(a, b int) int { return b + a }
"""


async def test_a_patch_to_a_nested_modules_go_file_is_refused_the_analyzer_does_not_cover_it(runner: Runner) -> None:
    """The tamper analyzer loads the root module's packages only: the guard fails closed on the others' code,
    even when the run tests root packages only."""
    message = r"tools/fmtx/fmtx.go: analysis_failed: in the nested module tools \(tools/go.mod\)"
    for packages in (["./calc"], ["./tools/fmtx"]):  # refused as a patch (the agent keeps no draft of it)
        with pytest.raises(InvalidInput, match=rf"patch refused by policy: {message}"):
            await runner.run_tests(RunTestsRequest(repo="multimod", ref="main", packages=packages, patch=SHOUT_PATCH))
    verdict = await runner.check_patch(CheckBuildRequest(repo="multimod", ref="main", packages=["./..."]), SHOUT_PATCH)
    assert not verdict.allowed
    assert [(r.rule, r.path) for r in verdict.reasons] == [("analysis_failed", "tools/fmtx/fmtx.go")]

    root_only = await runner.run_tests(
        RunTestsRequest(repo="multimod", ref="main", packages=["./calc"], patch=ADD_PATCH)
    )
    assert root_only.ok, root_only.summary
    allowed = await runner.check_patch(CheckBuildRequest(repo="multimod", ref="main", packages=["./..."]), ADD_PATCH)
    assert allowed.allowed, allowed.reasons


def test_the_guard_fails_closed_on_nested_go_code_only_while_the_static_check_is_on() -> None:
    changed = {"tools/deep/x/x.go", "tools/README.md", "calc/calc.go", "toolsx/y.go"}
    reasons = unanalyzed(changed, ProtectedPolicy(), NESTED)
    assert [(r.rule, r.path) for r in reasons] == [("analysis_failed", "tools/deep/x/x.go")]
    assert "nested module tools/deep (tools/deep/go.mod)" in reasons[0].detail  # the innermost module
    assert unanalyzed(changed, ProtectedPolicy(static_analysis=False), NESTED) == []
