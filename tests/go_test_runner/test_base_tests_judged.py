"""A patch's new test files run in the same test binary as the base's tests, so they could make those look
green: the runner also runs the base's tests without them, and a base test that passed only with them
fails the run with `base_tests_differ`. Real patches on the victim module (its `Add` is wrong), real go,
the real sandbox; the attacks run with the static guard off, so that each reaches the run (the guard's
own rules are tested with the patch policy), and the honest patches under the whole policy."""

from __future__ import annotations

import pathlib

import pytest

from servers.common.policy import ProtectedPolicy
from servers.go_test_runner import census
from servers.go_test_runner.runner import Runner, packages_of
from tests.patch_policy.tamper_cases import ALLOWED, diff_for, victim_repo

from .test_tamper_run_tests import _run, _runner  # pyright: ignore[reportPrivateUsage]

pytestmark = pytest.mark.slow

_FORGE = """package victim

import (
	"os"
	"syscall"
	"testing"
)

// TestAAAForge runs first (its file sorts first): it prints go's report framing for every test as passed,
// then leaves through syscall.Exit, which -test.paniconexit0 does not see.
func TestAAAForge(t *testing.T) {
	out := "\\x16--- PASS: TestAAAForge (0.00s)\\n\\x16=== NAME  \\n"
	for _, name := range []string{"TestAdd", "TestSub", "TestRender"} {
		out += "\\x16=== RUN   " + name + "\\n\\x16--- PASS: " + name + " (0.00s)\\n\\x16=== NAME  \\n"
	}
	os.Stdout.WriteString(out + "\\x16PASS\\n")
	syscall.Exit(0)
}
"""

_REWRITE = """package victim

import (
	"reflect"
	"syscall"
	"testing"
	"unsafe"

	"example.com/victim/internal/testutil"
)

func noop(t testing.TB, got, want int) {}

// TestAAARewrite runs first (its file sorts first) and rewrites testutil.Equal's machine code into a jump
// to noop (amd64: mov rdx, funcval; jmp [rdx]).
func TestAAARewrite(t *testing.T) {
	target := reflect.ValueOf(testutil.Equal).Pointer()
	repl := noop
	to := *(*uintptr)(unsafe.Pointer(&repl))
	code := []byte{0x48, 0xBA}
	for i := 0; i < 8; i++ {
		code = append(code, byte(to>>(8*i)))
	}
	code = append(code, 0xFF, 0x22)
	page := target &^ 4095
	mem := unsafe.Slice((*byte)(unsafe.Pointer(page)), 8192)
	if err := syscall.Mprotect(mem, syscall.PROT_READ|syscall.PROT_WRITE|syscall.PROT_EXEC); err != nil {
		t.Fatal(err)
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(target)), len(code)), code)
}
"""

_CALC = ALLOWED["fix"]["calc.go"].replace("func Add(a, b int) int { return a + b }", "{add}")
_ENV_ADD = 'func Add(a, b int) int {\n\tif os.Getenv("CALC_STRICT") == "1" {\n\t\treturn a + b\n\t}\n\treturn a - b\n}'
_VAR_ADD = "var addImpl = func(a, b int) int { return a - b }\n\nfunc Add(a, b int) int { return addImpl(a, b) }"

ATTACKS: dict[str, dict[str, str]] = {
    # F1: forged framing and an exit no guard of the binary sees
    "forged-framing-exit": {"aaa_forge_test.go": _FORGE},
    # F3: the helper the base's tests assert with, rewritten in memory before they run
    "helper-code-rewritten": {"aaa_rewrite_test.go": _REWRITE},
    # F5: a new test file's init sets what the patched code reads
    "init-sets-env": {
        "calc.go": _CALC.replace('import "fmt"', 'import (\n\t"fmt"\n\t"os"\n)').replace("{add}", _ENV_ADD),
        "env_test.go": 'package victim\n\nimport "os"\n\nfunc init() { os.Setenv("CALC_STRICT", "1") }\n',
    },
    # F5: a new test file's init swaps a package-level function variable
    "init-swaps-func-var": {
        "calc.go": _CALC.replace("{add}", _VAR_ADD),
        "impl_test.go": "package victim\n\nfunc init() { addImpl = func(a, b int) int { return a + b } }\n",
    },
}

_FAILING_NEW_TEST = (
    'package victim\n\nimport "testing"\n\nfunc TestAddNegative(t *testing.T) {\n'
    '\tif got := Add(-1, -1); got != -3 {\n\t\tt.Fatalf("Add(-1, -1) = %d", got)\n\t}\n}\n'
)
_HELPER_TEST = 'package testutil\n\nimport "testing"\n\nfunc TestEqual(t *testing.T) {\n\tEqual(t, 1, 1)\n}\n'


@pytest.fixture(scope="module")
def victim(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return victim_repo(tmp_path_factory.mktemp("victim"))


# One runner per policy for the module: the base listing is cached per commit, as in a long-running server.
@pytest.fixture(scope="module")
def census_only(victim: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> Runner:
    policy = ProtectedPolicy(static_analysis=False, existing_tests_read_only=False)
    return _runner(victim, tmp_path_factory.mktemp("census"), policy)


@pytest.fixture(scope="module")
def guarded(victim: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> Runner:
    return _runner(victim, tmp_path_factory.mktemp("guarded"), ProtectedPolicy())


_BOTH = "TestAdd, TestRender fail against the patched code when the patch's new test files are left out (they pass"
_ADD = "TestAdd fails against the patched code when the patch's new test files are left out (it passes"


@pytest.mark.parametrize(
    ("name", "run", "differ"),
    [
        ("forged-framing-exit", None, _BOTH),
        ("forged-framing-exit", "TestA", _ADD),  # the base listing of a -run pattern is what is judged
        ("helper-code-rewritten", "TestA", _ADD),  # TestRender does not use the helper: left out
        ("init-sets-env", None, _BOTH),
        ("init-swaps-func-var", None, _BOTH),
    ],
)
async def test_a_base_test_green_only_with_the_new_test_files_fails_the_run(
    name: str, run: str | None, differ: str, victim: pathlib.Path, census_only: Runner
) -> None:
    before = census_only.runs_without_new_tests
    result = await _run(census_only, packages=["./..."], run=run, patch=diff_for(victim, ATTACKS[name]))
    # the full run alone is green: the attack works on the one binary
    assert result.report.ok, result.report.summary
    assert not result.ok
    assert result.census == [f"base_tests_differ: example.com/victim: the base's {differ} with them)"]
    assert result.summary.startswith("Test census failed: base_tests_differ: example.com/victim: ")
    assert census_only.runs_without_new_tests == before + 1


async def test_an_honest_fix_with_a_new_regression_test_stays_ok(victim: pathlib.Path, guarded: Runner) -> None:
    before = guarded.runs_without_new_tests
    result = await _run(guarded, packages=["./..."], patch=diff_for(victim, ALLOWED["fix-and-new-test"]))
    assert result.ok, result.summary
    assert result.census == []
    assert guarded.runs_without_new_tests == before + 1  # judged without the new file, and green there too


async def test_the_new_tests_own_failure_is_reported_from_the_full_run(victim: pathlib.Path, guarded: Runner) -> None:
    files = {**ALLOWED["fix"], "add_negative_test.go": _FAILING_NEW_TEST}
    result = await _run(guarded, packages=["./..."], patch=diff_for(victim, files))
    assert not result.ok
    assert result.census == []  # the base's tests pass without it as well
    assert [(t.name, t.status) for t in result.report.tests] == [("TestAddNegative", "fail")]
    assert "1 test(s) failed: TestAddNegative" in result.summary


@pytest.mark.parametrize(
    ("files", "packages"),
    [
        (ALLOWED["fix"], ["./..."]),  # no new test file
        ({**ALLOWED["fix-and-new-test"]}, ["./internal/digits"]),  # new test files only in packages not tested
        ({**ALLOWED["fix"], "internal/testutil/equal_test.go": _HELPER_TEST}, ["./..."]),  # a package's only tests
    ],
    ids=["no-new-test-file", "package-not-tested", "only-tests-of-their-package"],
)
async def test_a_patch_with_nothing_to_judge_runs_once(
    files: dict[str, str], packages: list[str], victim: pathlib.Path, census_only: Runner
) -> None:
    before = census_only.runs_without_new_tests
    result = await _run(census_only, packages=packages, patch=diff_for(victim, files))
    assert result.ok, result.summary
    assert census_only.runs_without_new_tests == before


_QUIET_SHOUT = (
    "// Package fmtx lives in a nested module (tools/go.mod), as gopls does in golang.org/x/tools.\n"
    'package fmtx\n\nimport (\n\t"os"\n\t"strings"\n)\n\n'
    "// Shout upper-cases s and adds an exclamation mark.\n"
    'func Shout(s string) string {\n\tif os.Getenv("FMTX_LOUD") != "1" {\n\t\treturn s\n\t}\n'
    '\treturn strings.ToUpper(s) + "!"\n}\n'
)


async def test_a_nested_module_is_judged_from_its_own_directory(
    repos: dict[str, pathlib.Path], tmp_path: pathlib.Path
) -> None:
    policy = ProtectedPolicy(static_analysis=False, existing_tests_read_only=False)
    runner = _runner(repos["multimod"], tmp_path, policy)
    files = {
        "tools/fmtx/fmtx.go": _QUIET_SHOUT,
        "tools/fmtx/loud_test.go": 'package fmtx\n\nimport "os"\n\nfunc init() { os.Setenv("FMTX_LOUD", "1") }\n',
    }
    try:
        result = await _run(runner, packages=["./...", "./tools/..."], patch=diff_for(repos["multimod"], files))
    finally:
        await runner.shutdown()
    assert result.report.ok, result.report.summary
    assert result.census == [
        "base_tests_differ: example.com/multimod/tools/fmtx: the base's TestShout fails against the patched code "
        "when the patch's new test files are left out (it passes with them)"
    ]
    assert runner.runs_without_new_tests == 1  # the nested module's packages only


def _events(*lines: tuple[str, str | None, str]) -> census.Tracker:
    tracker = census.Tracker()
    for action, test, pkg in lines:
        tracker.feed_event({"Action": action, "Package": pkg, **({"Test": test} if test else {})})
    return tracker


def test_only_base_tests_that_passed_every_time_in_the_named_packages_are_judged() -> None:
    base = census.BaseTests({"p": ("TestA", "TestB", "TestC"), "q": ("TestQ",)})
    full = _events(
        ("run", "TestA", "p"), ("pass", "TestA", "p"),
        ("run", "TestB", "p"), ("fail", "TestB", "p"),
        ("run", "TestC", "p"), ("pass", "TestC", "p"), ("run", "TestC", "p"), ("skip", "TestC", "p"),
        ("run", "TestQ", "q"), ("pass", "TestQ", "q"),
    )  # fmt: skip
    assert census.passed_base_tests(base, full, ["p"]).tests == {"p": ("TestA",)}
    assert census.passed_base_tests(base, full, ["r"]).tests == {}


def test_the_run_without_new_tests_must_end_to_vouch_for_any_test() -> None:
    judged = census.BaseTests({"p": ("TestA",)})
    passed = _events(("run", "TestA", "p"), ("pass", "TestA", "p"))
    assert [p.reason for p in census.differ(judged, passed, killed=False)] == ["base_tests_differ"]  # no final event
    passed.feed_event({"Action": "pass", "Package": "p"})
    assert census.differ(judged, passed, killed=False) == []
    (killed,) = census.differ(judged, passed, killed=True)
    assert "was killed (the call's timeout or the sandbox's limits)" in killed.detail
    (unbuilt,) = census.differ(judged, _events(("fail", None, "p")), killed=False, unbuilt=["p"])
    assert "do not build against the patched code" in unbuilt.detail


def test_new_test_files_are_named_by_their_nearest_module(tmp_path: pathlib.Path) -> None:
    (tmp_path / "tools" / "fmtx").mkdir(parents=True)
    (tmp_path / "go.mod").write_text("module example.com/root\n")
    (tmp_path / "tools" / "go.mod").write_text("module example.com/tools\n")
    files = ["a_test.go", "calc/b_test.go", "tools/c_test.go", "tools/fmtx/d_test.go"]
    assert packages_of(tmp_path, files) == {
        "example.com/root",
        "example.com/root/calc",
        "example.com/tools",
        "example.com/tools/fmtx",
    }
