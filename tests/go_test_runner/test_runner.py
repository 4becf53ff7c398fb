"""run_tests and check_build end to end: real git worktrees, real go, the real sandbox."""

from __future__ import annotations

import asyncio
import pathlib
import shutil
import sys

import pytest

from servers.common.errors import Conflict, InvalidInput, NotFound, UpstreamFailure
from servers.go_test_runner import runner as runner_module
from servers.go_test_runner.payload import CheckBuildRequest, RunTestsRequest
from servers.go_test_runner.results import RunResult
from servers.go_test_runner.runner import Runner

from .conftest import MakeRunner, commit_all, host_go_env, make_runner_for

FIX_SUB = "".join(
    line + "\n"
    for line in [
        "--- a/calc/calc.go",
        "+++ b/calc/calc.go",
        "@@ -5,4 +5,4 @@ func Add(a, b int) int { return a + b }",
        " func Add(a, b int) int { return a + b }",
        " ",
        " // Sub should return a-b.",
        "-func Sub(a, b int) int { return a + b }",
        "+func Sub(a, b int) int { return a - b }",
    ]
)


async def go_test(runner: Runner, **kw: object) -> RunResult:
    return await runner.run_tests(RunTestsRequest.model_validate({"ref": "main", **kw}))


async def test_passing_module(runner: Runner) -> None:
    result = await go_test(runner, repo="pass", packages=["./..."])
    assert result.ok and result.exit_code == 0
    assert {p.name: p.status for p in result.report.packages} == {
        "example.com/pass/notests": "no_test_files",
        "example.com/pass/util": "ok",
    }
    assert result.sandbox.network_isolated and result.sandbox.pid_namespace
    assert result.summary.startswith("2 package(s): 1 had no test files, 1 ok; 5 test(s) passed.")
    assert len(result.commit) == 40
    assert result.timings.total_s >= result.timings.run_s > 0


async def test_a_patch_that_fixes_the_bug_makes_the_tests_pass(runner: Runner) -> None:
    before = await go_test(runner, repo="fail", packages=["./calc"], run="TestSub")
    assert not before.ok
    assert {t.name for t in before.report.tests} == {"TestSub", "TestSub/5-3", "TestSub/3-3"}
    after = await go_test(runner, repo="fail", packages=["./calc"], run="TestSub", patch=FIX_SUB)
    assert after.ok, after.summary


async def test_a_patch_that_does_not_apply_names_the_failing_hunk(runner: Runner) -> None:
    stale = FIX_SUB.replace("return a + b }\n+", "return a * b }\n+")
    with pytest.raises(Conflict, match=r"patch does not apply: hunk at calc/calc.go:5 failed"):
        await go_test(runner, repo="fail", packages=["./calc"], patch=stale)


async def test_a_patch_that_weakens_a_test_is_refused_before_anything_runs(runner: Runner) -> None:
    weaken = """--- a/calc/calc_test.go
+++ b/calc/calc_test.go
@@ -14,3 +14,3 @@ func TestAdd(t *testing.T) {
 func TestSub(t *testing.T) {
-\tcases := []struct{ a, b, want int }{{5, 3, 2}, {3, 3, 0}, {0, 0, 0}}
+\tcases := []struct{ a, b, want int }{{5, 3, 8}, {3, 3, 6}, {0, 0, 0}}
 \tfor _, c := range cases {
"""
    with pytest.raises(InvalidInput, match=r"patch refused by policy: calc/calc_test.go:15: changed_expected_value"):
        await go_test(runner, repo="fail", packages=["./calc"], patch=weaken)


async def test_unknown_repo_and_ref(runner: Runner) -> None:
    with pytest.raises(NotFound, match="unknown repository"):
        await go_test(runner, repo="nope", packages=["./..."])
    with pytest.raises(NotFound, match=r"no commit, branch or tag 'v9\.9\.9'"):
        await runner.run_tests(RunTestsRequest(repo="pass", ref="v9.9.9", packages=["./..."]))


async def test_panic_and_race(runner: Runner) -> None:
    panic = await go_test(runner, repo="panic", packages=["./..."])
    assert [(p.test, p.frame.file if p.frame else None) for p in panic.report.panics] == [("TestInc", "store/store.go")]
    race = await go_test(runner, repo="race", packages=["./..."], flags=["-race", "-count=1"])
    assert [r.test for r in race.report.races] == ["TestCount"]
    assert race.sandbox.rlimits["RLIMIT_AS"] == race_ceiling(runner) < panic.sandbox.rlimits["RLIMIT_AS"] * 16
    assert any("-race" in note for note in race.sandbox.notes)


async def test_build_failure_and_check_build_kinds(runner: Runner) -> None:
    result = await go_test(runner, repo="buildfail", packages=["./..."])
    assert {p.name: p.status for p in result.report.packages}["example.com/buildfail/broken"] == "build_failed"
    build = await runner.check_build(CheckBuildRequest(repo="buildfail", ref="main", packages=["./..."]))
    assert [(d.file, d.line, d.column, d.kind) for d in build.diagnostics] == [
        ("broken/broken.go", 6, 13, "compile"),
        ("broken/broken.go", 10, 26, "compile"),
        ("vetbad/vetbad.go", 7, 51, "vet"),
    ]
    unknown = await runner.check_build(CheckBuildRequest(repo="unknownimport", ref="main", packages=["./..."]))
    assert {(d.file, d.kind) for d in unknown.diagnostics} == {
        ("hasher/hasher.go", "unknown_import"),
        ("thirdparty/thirdparty.go", "unknown_import"),
    }
    clean = await runner.check_build(CheckBuildRequest(repo="pass", ref="main", packages=["./..."]))
    assert clean.ok and clean.diagnostics == []


def race_ceiling(runner: Runner) -> int:
    return runner.settings.rlimit_as_race_mb << 20


async def test_go_test_timeout_names_the_running_tests(runner: Runner) -> None:
    """Without -timeout, go's own alarm is set below the hard timeout, so go names what was running.

    The package is built first (a run selecting no test), so the timed call spends its margin between
    go's alarm (7 s) and the hard kill (10 s) linking, not compiling: robust on a loaded 2-core host.
    """
    warm = await go_test(runner, repo="hang", packages=["./wait"], run="^$")
    assert warm.ok, warm.summary
    result = await go_test(runner, repo="hang", packages=["./wait"], timeout_s=10)
    assert not result.ok and not result.killed, result.summary
    assert result.report.running_at_timeout == ["TestHangs", "TestHangs/inner"]
    assert any("panic: test timed out after 7s" in line for t in result.report.tests for line in t.output)


def _marker_processes() -> list[int]:
    pids = []
    for cmdline in pathlib.Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"4242.5" in cmdline.read_bytes():
                pids.append(int(cmdline.parent.name))
        except OSError:
            continue
    return pids


async def test_hard_timeout_kills_everything_including_escaped_processes(runner: Runner) -> None:
    result = await go_test(runner, repo="hang", packages=["./daemon"], flags=["-timeout=600s"], timeout_s=4)
    assert result.killed and result.exit_code is None
    assert result.report.timed_out and "TestEscapes" in result.report.running_at_timeout
    assert "Hard timeout after 4s" in result.summary
    assert _marker_processes() == []


async def test_megabytes_of_output_are_capped_but_results_survive(make_runner: MakeRunner) -> None:
    runner = make_runner(max_output_bytes=1 << 20)
    result = await go_test(runner, repo="bigoutput", packages=["./..."], flags=["-count=1"])
    assert result.output_bytes > 4 << 20
    assert result.report.output_truncated
    assert {t.name: t.status for t in result.report.tests} == {"TestFlood": "fail"}
    assert len(result.model_dump_json()) < 20_000


# pid 1 of a test binary's PID namespace is bubblewrap's init, holding the allow-listed environment
# (PROC_ENVIRON_LEAKS: 0 checks that no canary is in it); the host's pid 1 is out of reach.
SANDBOX_PID1 = "READ: /proc/1/environ"


async def test_no_credential_reaches_test_code(runner: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    canary = "goresolve-canary-7f3a"
    for name in ("GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY", "GORESOLVE_GITHUB_PR_TOKEN", "JIRA_API_TOKEN"):
        monkeypatch.setenv(name, canary)
    result = await go_test(runner, repo="envdump", packages=["./..."], flags=["-count=1"])
    lines = [line.split(": ", 1)[1] for line in result.report.tests[0].output]
    names = set(lines[0].removeprefix("ENV_NAMES: ").split(","))
    assert names <= {"PATH", "HOME", "TMPDIR", "GOTMPDIR", "GOPATH", "GOCACHE", "GOMODCACHE", "GOFLAGS", "GOTOOLCHAIN",
                     "GOPROXY", "GOENV", "GOTELEMETRY", "CGO_ENABLED", "LANG", "GOROOT", "PWD"}  # fmt: skip
    assert lines[1:3] == ["CANARY_IN_ENV: false", "PROC_ENVIRON_LEAKS: 0"]
    assert [line for line in lines if line.startswith("READ: ")] == [SANDBOX_PID1]
    assert canary not in result.model_dump_json()


async def test_test_code_cannot_reach_the_network_but_has_loopback(runner: Runner) -> None:
    result = await go_test(runner, repo="network", packages=["./..."], flags=["-count=1"])
    out = [line.split(": ", 1)[1] for line in result.report.tests[0].output]
    assert out[0].startswith("NETWORK blocked")
    assert out[1:] == ["DNS blocked", "LOOPBACK ok"]


WEAK = {"bwrap_binary": "/nonexistent/bwrap", "allow_weak_sandbox": True}


async def test_without_bubblewrap_the_runner_refuses_to_run(make_runner: MakeRunner) -> None:
    runner = make_runner(bwrap_binary="/nonexistent/bwrap")
    assert not runner.sandbox.strong
    with pytest.raises(UpstreamFailure, match=r"refusing to run: bubblewrap \(bwrap\) is not installed.*ALLOW_WEAK"):
        await go_test(runner, repo="pass", packages=["./util"])
    with pytest.raises(UpstreamFailure, match="refusing to run"):
        await runner.check_build(CheckBuildRequest(repo="pass", ref="main", packages=["./..."]))


async def test_a_weak_sandbox_runs_only_when_allowed_and_every_result_says_so(make_runner: MakeRunner) -> None:
    runner = make_runner(**WEAK)
    result = await go_test(runner, repo="pass", packages=["./util"])
    assert result.ok
    assert result.sandbox.weak and not result.sandbox.network_isolated
    assert result.summary.endswith("WEAK SANDBOX: test code was not confined by bubblewrap for this run.")
    assert result.sandbox.notes[0].startswith("WEAK SANDBOX: bubblewrap (bwrap) is not installed")


async def test_concurrency_is_bounded_and_waiting_is_reported(make_runner: MakeRunner) -> None:
    runner = make_runner(max_concurrency=1)
    results = await asyncio.gather(*(go_test(runner, repo="pass", packages=["./util"]) for _ in range(3)))
    waits = sorted(r.timings.queue_wait_s for r in results)
    assert waits[0] < 0.5 and waits[2] >= waits[1] > 0.0
    assert all(r.ok for r in results)


async def test_a_package_that_does_not_exist_is_reported_by_go(runner: Runner) -> None:
    result = await go_test(runner, repo="pass", packages=["./nope"])
    assert not result.ok
    assert result.summary == (
        "1 package(s): 1 did not build; 0 test(s) passed. Setup failed for ./nope: stat nope: directory not found."
    )


async def test_a_slot_keeps_its_worktree_warm_and_resets_it_between_runs(runner: Runner) -> None:
    """The worktree outlives the call (test code cannot write it); the next call sees no trace of the patch."""
    patched = await go_test(runner, repo="pass", packages=["./util"], flags=["-count=1"], patch=FIX_NOTHING)
    await runner.drain()
    worktrees = sorted((runner.settings.resolved_work_dir() / "worktrees" / "pass").iterdir())
    assert patched.ok and len(worktrees) == runner.settings.max_concurrency  # the idle slot was warmed too
    for worktree in worktrees:
        assert (worktree / "util" / "util.go").read_text().startswith("// Package util has small helpers with passing")
    second = await go_test(runner, repo="pass", packages=["./util"], flags=["-count=1"])
    assert second.ok and second.timings.setup_s < patched.timings.setup_s + 1.0


async def test_only_the_allow_list_exists_for_test_code(repos: dict[str, pathlib.Path], tmp_path: pathlib.Path) -> None:
    """A secret file the server's user can read is not in the view at all (nothing is hidden: it is absent)."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "token").write_text("goresolve-canary-7f3a")
    repo = tmp_path / "spy-repo"
    shutil.copytree(repos["envdump"], repo)
    (repo / "spy" / "targets.txt").write_text(f"{secrets / 'token'}\n")
    commit_all(repo, "targets")
    runner = make_runner_for({"spy": repo}, tmp_path)
    result = await runner.run_tests(RunTestsRequest(repo="spy", ref="main", packages=["./..."], flags=["-count=1"]))
    assert not result.sandbox.weak
    lines = [line.split(": ", 1)[1] for line in result.report.tests[0].output]
    assert [line for line in lines if line.startswith("READ: ")] == [SANDBOX_PID1], lines
    assert (secrets / "token").read_text() == "goresolve-canary-7f3a"  # untouched


async def test_test_code_cannot_write_the_shared_caches_the_toolchain_or_the_mirror(
    repos: dict[str, pathlib.Path], tmp_path: pathlib.Path
) -> None:
    """Nothing a test writes outlives its run: the caches only through a private layer, the rest not at all."""
    gocache, gomodcache = host_go_env("GOCACHE"), host_go_env("GOMODCACHE")
    repo = tmp_path / "poison-repo"
    shutil.copytree(repos["poison"], repo)
    goroot = pathlib.Path(shutil.which("go") or "/usr/local/go/bin/go").resolve().parent.parent
    package_dir = pathlib.Path(runner_module.__file__).resolve().parent
    system = [goroot, goroot / "bin", package_dir, pathlib.Path(sys.prefix), pathlib.Path("/usr/local/bin")]
    (repo / "cache" / "targets.txt").write_text("\n".join(map(str, ["/cache/go-build", gomodcache, *system])) + "\n")
    commit_all(repo, "targets")
    runner = make_runner_for({"poison": repo}, tmp_path)
    result = await runner.run_tests(RunTestsRequest(repo="poison", ref="main", packages=["./..."]))
    assert result.sandbox.test_cache_mode == "overlay"
    lines = [line.split(": ", 1)[1] for line in result.report.tests[0].output]
    assert lines[0] == "GOCACHE: /cache/go-build"  # inside the view
    wrote = [line.removeprefix("WROTE: ") for line in lines if line.startswith("WROTE")]
    assert wrote == ["/cache/go-build/goresolve-poison"]  # the private layer, gone with the run
    assert all(not (d / "goresolve-poison").exists() for d in system)
    assert not (gocache / "goresolve-poison").exists()
    assert not (gomodcache / "goresolve-poison").exists()
    assert list((tmp_path / "work").glob("**/goresolve-poison")) == []


async def test_a_tampered_mirror_config_is_rewritten_before_git_reads_it(make_runner: MakeRunner) -> None:
    """In a weak sandbox test code can reach the mirror; a planted core.fsmonitor must never run."""
    runner = make_runner(**WEAK)
    first = await go_test(runner, repo="pass", packages=["./util"])
    mirror = runner.settings.resolved_work_dir() / "mirrors" / "pass.git"
    marker = mirror.parent / "fsmonitor-ran"
    with (mirror / "config").open("a") as fh:
        fh.write(f"[core]\n\tfsmonitor = touch {marker}\n")
    (mirror / "hooks" / "post-checkout").write_text(f"#!/bin/sh\ntouch {marker}\n")
    (mirror / "hooks" / "post-checkout").chmod(0o755)
    second = await go_test(runner, repo="pass", packages=["./util"], patch=FIX_NOTHING)
    assert first.ok and second.ok
    assert not marker.exists()
    assert "fsmonitor" not in (mirror / "config").read_text()


FIX_NOTHING = (
    "--- a/util/util.go\n+++ b/util/util.go\n@@ -1,2 +1,2 @@\n"
    "-// Package util has small helpers with passing tests.\n"
    "+// Package util has small helpers, tested.\n"
    " package util\n"
)


@pytest.mark.parametrize("package", ["net/http", "std", "all", "example.com/other/util", "example.com/passx"])
async def test_import_paths_outside_the_module_are_refused(runner: Runner, package: str) -> None:
    with pytest.raises(InvalidInput, match=r"is outside module example\.com/pass"):
        await go_test(runner, repo="pass", packages=[package])


async def test_import_paths_inside_the_module_are_fine(runner: Runner) -> None:
    result = await go_test(runner, repo="pass", packages=["example.com/pass/util", "example.com/pass/..."])
    assert result.ok


async def test_concurrent_runs_on_one_repository_do_not_trip_over_each_other(make_runner: MakeRunner) -> None:
    runner = make_runner(max_concurrency=2)
    results = await asyncio.gather(*(go_test(runner, repo="pass", packages=["./util"]) for _ in range(6)))
    assert [r.ok for r in results] == [True] * 6
