"""A repository with modules below its root (their own go.mod, no go.work), as golang.org/x/tools keeps gopls.
go runs in one module, from its directory: a call's packages are grouped by module and go runs once per
module (a nested module's run goes to its directory with `go -C`), one report for the call; a `...`
pattern that passes over nested modules says in its result that they were not tested; and the tamper
analyzer reads every module a patch changes, each in its own directory."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from servers.common.errors import InvalidInput
from servers.common.tamper.guard import owning_modules
from servers.go_test_runner.confinement import module_targets, nested_modules
from servers.go_test_runner.payload import CheckBuildRequest, RunTestsRequest
from servers.go_test_runner.runner import Runner
from tests.go_test_runner.conftest import calc_add_patch, commit_all, git, make_runner_for

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
    ("packages", "module", "as_go_names_them", "skipped"),
    [
        (["./tools/fmtx"], "tools", ["./fmtx"], []),
        (["./tools"], "tools", ["."], []),
        (["./tools/..."], "tools", ["./..."], ["tools/deep"]),  # go skips the module nested in it
        ([f"{ROOT}/tools/fmtx"], "tools", [f"{ROOT}/tools/fmtx"], []),  # an import path stays one
        (["./tools/deep/x"], "tools/deep", ["./x"], []),  # the innermost module owns it
        (["example.com/deep/..."], "tools/deep", ["example.com/deep/..."], []),
        (["./exp"], "exp", ["."], []),  # a go.mod without a module line is still a module boundary
        (["./..."], "", ["./..."], ["exp", "tools", "tools/deep"]),
        ([f"{ROOT}/..."], "", [f"{ROOT}/..."], ["exp", "tools", "tools/deep"]),
        (["./calc/...", "."], "", ["./calc/...", "."], []),
        (["./calc", f"{ROOT}/calc", "./toolsx/..."], "", ["./calc", f"{ROOT}/calc", "./toolsx/..."], []),
    ],
)
def test_a_calls_packages_name_its_module_and_how_go_names_them_there(
    packages: list[str], module: str, as_go_names_them: list[str], skipped: list[str]
) -> None:
    [target] = module_targets(packages, ROOT, NESTED)
    assert (target.module, target.packages, target.skipped) == (module, as_go_names_them, skipped)


def test_packages_of_several_modules_are_grouped_by_module_in_the_order_named() -> None:
    targets = module_targets(["./tools/fmtx", "./calc", "./...", "./tools/deep/x", f"{ROOT}/tools/y"], ROOT, NESTED)
    assert [(t.module, t.packages, t.skipped) for t in targets] == [
        ("tools", ["./fmtx", f"{ROOT}/tools/y"], []),
        ("", ["./calc", "./..."], ["exp"]),  # tools and tools/deep are named by the call: not "passed over"
        ("tools/deep", ["./x"], []),
    ]


def test_the_guard_analyzes_every_module_a_patch_changes() -> None:
    changed = {"tools/deep/x/x.go", "tools/README.md", "calc/calc.go", "toolsx/y.go"}
    assert owning_modules(changed, NESTED) == {"tools/deep", "tools", ""}
    assert owning_modules({"new/go.mod", "new/a.go"}, NESTED) == {"new"}  # a module the patch adds


async def test_the_runner_tests_a_nested_module_in_its_own_directory(runner: Runner) -> None:
    for packages in (["./tools/..."], ["./tools/fmtx"], [f"{ROOT}/tools/fmtx"]):
        result = await runner.run_tests(RunTestsRequest(repo="multimod", ref="main", packages=packages))
        assert result.ok, result.summary
        assert [p.name for p in result.report.packages] == [f"{ROOT}/tools/fmtx"]
        assert "Not tested" not in result.summary
    built = await runner.check_build(CheckBuildRequest(repo="multimod", ref="main", packages=["./tools/..."]))
    assert built.ok, built.summary


async def test_a_wide_root_pattern_tests_the_root_module_and_names_what_it_left_out(runner: Runner) -> None:
    result = await runner.run_tests(RunTestsRequest(repo="multimod", ref="main", packages=["./..."]))
    assert result.ok, result.summary
    assert [p.name for p in result.report.packages] == [f"{ROOT}/calc"]
    assert result.summary.endswith(
        "Not tested: the nested modules tools (each has its own go.mod; name one to test it, e.g. ./tools/...)."
    )


async def test_packages_of_two_modules_run_in_each_module_and_report_as_one(runner: Runner) -> None:
    packages = ["./calc", "./tools/..."]
    result = await runner.run_tests(RunTestsRequest(repo="multimod", ref="main", packages=packages))
    assert result.ok, result.summary
    assert [p.name for p in result.report.packages] == [f"{ROOT}/calc", f"{ROOT}/tools/fmtx"]
    assert result.summary.startswith("2 package(s): 2 ok; 2 test(s) passed.")
    built = await runner.check_build(CheckBuildRequest(repo="multimod", ref="main", packages=packages))
    assert built.ok, built.summary


async def test_a_patch_to_both_modules_fails_in_the_module_it_breaks(runner: Runner) -> None:
    both = ADD_PATCH + SHOUT_PATCH
    result = await runner.run_tests(
        RunTestsRequest(repo="multimod", ref="main", packages=["./...", "./tools/..."], patch=both)
    )
    assert not result.ok and result.exit_code == 1
    assert {p.name: p.status for p in result.report.packages} == {f"{ROOT}/calc": "ok", f"{ROOT}/tools/fmtx": "fail"}
    assert [t.name for t in result.report.tests] == ["TestShout"] and result.census == []
    assert "Not tested" not in result.summary


async def test_modules_joined_by_a_go_work_are_tested_as_go_sees_the_workspace(runner: Runner) -> None:
    result = await runner.run_tests(RunTestsRequest(repo="workspace", ref="main", packages=["./tools/fmtx", "./calc"]))
    assert result.ok, result.summary
    assert sorted(p.name for p in result.report.packages) == [
        "example.com/workspace/calc",
        "example.com/workspace/tools/fmtx",
    ]
    assert "Not tested" not in result.summary


_FMTX_HUNK = """diff --git a/tools/fmtx/fmtx.go b/tools/fmtx/fmtx.go
--- a/tools/fmtx/fmtx.go
+++ b/tools/fmtx/fmtx.go
"""
SHOUT_PATCH = (
    _FMTX_HUNK
    + """@@ -4,4 +4,4 @@ package fmtx
 import "strings"
\x20
 // Shout upper-cases s and adds an exclamation mark.
-func Shout(s string) string { return strings.ToUpper(s) + "!" }
+func Shout(s string) string { return strings.ToUpper(s) + "!!" }
"""
)
ADD_PATCH = calc_add_patch("b + a")
BROKEN_PATCH = SHOUT_PATCH.replace('+ "!!" }', "+ 1 }")
EXIT_PATCH = (
    _FMTX_HUNK
    + """@@ -4,4 +4,9 @@ package fmtx
-import "strings"
+import (
+\t"os"
+\t"strings"
+)
+
+func init() { os.Exit(0) }
\x20
 // Shout upper-cases s and adds an exclamation mark.
 func Shout(s string) string { return strings.ToUpper(s) + "!" }
"""
)


async def test_a_patch_to_a_nested_module_is_applied_guarded_and_tested_there(runner: Runner) -> None:
    result = await runner.run_tests(
        RunTestsRequest(repo="multimod", ref="main", packages=["./tools/fmtx"], patch=SHOUT_PATCH)
    )
    assert not result.ok  # the patch ran: Shout now adds two marks, and the module's own test says so
    assert [(p.name, p.status) for p in result.report.packages] == [(f"{ROOT}/tools/fmtx", "fail")]
    assert "TestShout" in result.summary
    verdict = await runner.check_patch(CheckBuildRequest(repo="multimod", ref="main", packages=["./..."]), SHOUT_PATCH)
    assert verdict.allowed, verdict.reasons


async def test_build_errors_of_a_nested_module_name_files_from_the_repository_root(runner: Runner) -> None:
    built = await runner.check_build(
        CheckBuildRequest(repo="multimod", ref="main", packages=["./tools/fmtx"], patch=BROKEN_PATCH)
    )
    assert not built.ok
    assert {(d.file, d.line) for d in built.diagnostics} == {("tools/fmtx/fmtx.go", 7)}
    result = await runner.run_tests(
        RunTestsRequest(repo="multimod", ref="main", packages=["./tools/fmtx"], patch=BROKEN_PATCH)
    )
    assert not result.ok
    assert "tools/fmtx/fmtx.go:7" in result.model_dump_json(), result.summary


@pytest.mark.parametrize("packages", [["./tools/fmtx"], ["./calc"]])
async def test_the_tamper_analyzer_reads_the_nested_module_a_patch_changes(runner: Runner, packages: list[str]) -> None:
    """Whichever module's tests run, the analyzer reads the module the patch changes (it loads one module)."""
    with pytest.raises(InvalidInput, match=r"patch refused by policy: tools/fmtx/fmtx.go:\d+: exit_at_init"):
        await runner.run_tests(RunTestsRequest(repo="multimod", ref="main", packages=packages, patch=EXIT_PATCH))
    verdict = await runner.check_patch(CheckBuildRequest(repo="multimod", ref="main", packages=packages), EXIT_PATCH)
    assert [(r.rule, r.path) for r in verdict.reasons] == [("exit_at_init", "tools/fmtx/fmtx.go")]


async def test_a_repository_without_a_root_module_tests_each_module_it_names(
    repos: dict[str, Path], tmp_path: Path
) -> None:
    """A monorepo of services, each its own module, and no go.mod at the root: each service is tested from its
    own directory; the root itself is no module, and go says so."""
    mono = tmp_path / "mono"
    shutil.copytree(repos["multimod"] / "tools", mono / "services" / "tools")
    shutil.copytree(repos["multimod"] / "calc", mono / "services" / "calc" / "calc")
    (mono / "services" / "calc" / "go.mod").write_text("module example.com/calc\n\ngo 1.22\n")
    git(mono, "init", "-q", "-b", "main")
    commit_all(mono, "mono: two services, no root module")
    runner = make_runner_for({**repos, "mono": mono}, tmp_path / "runner")
    packages = ["./services/calc/...", "./services/tools/fmtx"]
    result = await runner.run_tests(RunTestsRequest(repo="mono", ref="main", packages=packages))
    assert result.ok, result.summary
    assert [p.name for p in result.report.packages] == ["example.com/calc/calc", f"{ROOT}/tools/fmtx"]
    root = await runner.run_tests(RunTestsRequest(repo="mono", ref="main", packages=["./..."]))
    assert not root.ok and "does not contain main module" in root.summary, root.summary  # go's own words
    assert "Not tested: the nested modules services/calc, services/tools" in root.summary
