"""Without the Go analyzer (github-pr has no module tree or toolchain), the line rules' fallback refuses
what a patch adds to code that runs at package initialisation in any Go file, test or not: a process exit,
a test-flag change, testing.Testing() in non-test code, a new TestMain, with the analyzer's rule names.
An exit in `main` or in an ordinary function is a normal fix and stays allowed."""

from __future__ import annotations

import pathlib
from collections.abc import Callable

import pytest

from servers.common.patch_policy import PatchVerdict, check_patch
from servers.common.policy import ProtectedPolicy
from servers.common.tamper.guard import check_applied

from .conftest import CALC, Edit, git
from .tamper_cases import ALLOWED as TAMPER_ALLOWED
from .tamper_cases import CASES, Case, diff_for, victim_repo

FALLBACK = ProtectedPolicy(static_analysis=False)
DiffOf = Callable[[Edit], str]


def write(rel: str, text: str) -> Edit:
    def run(root: pathlib.Path) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)

    return run


def append_calc(text: str, imports: str = "") -> Edit:
    def run(root: pathlib.Path) -> None:
        head = f"package calc\n\n{imports}\n" if imports else "package calc\n"
        (root / "calc" / "calc.go").write_text(CALC.replace("package calc\n", head, 1) + text)

    return run


def rules(verdict: PatchVerdict) -> set[str]:
    return {r.rule for r in verdict.reasons}


def verdicts(diff: str, repo: pathlib.Path) -> list[PatchVerdict]:
    """The fallback's verdict with the checkout (the pre-images, as github-pr has them) and on the text alone."""
    return [check_patch(diff, FALLBACK, repo_root=repo), check_patch(diff, FALLBACK)]


STATS_INIT = 'package stats\n\nimport "os"\n\nfunc init() { os.Exit(0) }\n'

REFUSED: dict[str, tuple[Edit, str, str]] = {
    "new non-test file, init exits": (write("stats/init.go", STATS_INIT), "exit_at_init", "stats/init.go"),
    "existing file gains an init that exits": (
        append_calc("\nfunc init() {\n\tos.Exit(0)\n}\n", 'import "os"\n'),
        "exit_at_init",
        "calc/calc.go",
    ),
    "aliased import": (
        write("calc/zz.go", 'package calc\n\nimport xos "os"\n\nfunc init() {\n\txos.Exit(0)\n}\n'),
        "exit_at_init",
        "calc/zz.go",
    ),
    "dot import": (
        write("calc/zz.go", 'package calc\n\nimport . "os"\n\nfunc init() { Exit(0) }\n'),
        "exit_at_init",
        "calc/zz.go",
    ),
    "package-level var initializer": (
        append_calc("\nvar _ = func() int { os.Exit(0); return 0 }()\n", 'import "os"\n'),
        "exit_at_init",
        "calc/calc.go",
    ),
    "var block, through a function of the patch": (
        append_calc(
            "\nvar (\n\tready = true\n\tcode  = bail()\n)\n\nfunc bail() int {\n\tos.Exit(0)\n\treturn 0\n}\n",
            'import "os"\n',
        ),
        "exit_at_init",
        "calc/calc.go",
    ),
    "raw exit_group syscall": (
        write(
            "calc/zz.go",
            'package calc\n\nimport "syscall"\n\nfunc init() {\n'
            "\tsyscall.RawSyscall(syscall.SYS_EXIT_GROUP, 0, 0, 0)\n}\n",
        ),
        "exit_at_init",
        "calc/zz.go",
    ),
    "runtime.Goexit": (
        write("calc/zz.go", 'package calc\n\nimport "runtime"\n\nfunc init() { runtime.Goexit() }\n'),
        "exit_at_init",
        "calc/zz.go",
    ),
    "test flag set at init": (
        write("calc/zz.go", 'package calc\n\nimport "flag"\n\nfunc init() { _ = flag.Set("test.run", "^$") }\n'),
        "flag_at_init",
        "calc/zz.go",
    ),
    "os.Args rewritten at init": (
        write("calc/zz.go", 'package calc\n\nimport "os"\n\nvar _ = append(os.Args, "-test.run=^$")\n'),
        "flag_at_init",
        "calc/zz.go",
    ),
    "testing.Testing() switch in non-test code": (
        write(
            "calc/zz.go",
            'package calc\n\nimport "testing"\n\nfunc init() {\n\tif testing.Testing() {\n\t\tpanic("x")\n\t}\n}\n',
        ),
        "testing_testing",
        "calc/zz.go",
    ),
    "exit at init of a new test file": (
        write("calc/zz_test.go", 'package calc\n\nimport "os"\n\nvar _ = func() int { os.Exit(0); return 0 }()\n'),
        "exit_at_init",
        "calc/zz_test.go",
    ),
    "TestMain split over two lines": (
        write("calc/zz_test.go", 'package calc\n\nimport "testing"\n\nfunc\nTestMain(m *testing.M) {}\n'),
        "new_test_main",
        "calc/zz_test.go",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_runs_at_package_init_is_refused_with_the_analyzers_rule(
    case: str, diff_of: DiffOf, repo: pathlib.Path
) -> None:
    edit, rule, path = REFUSED[case]
    diff = diff_of(edit)
    # following a call from init to the function that exits needs the whole file: the pre-image
    judged = verdicts(diff, repo)[:1] if "through a function" in case else verdicts(diff, repo)
    for verdict in judged:
        assert rule in rules(verdict), verdict.render()
        assert all(r.line is not None for r in verdict.reasons if r.rule == rule)
        assert path in {r.path for r in verdict.reasons if r.rule == rule}
    # with the analyzer on, these are its to judge (by object, in go-test-runner and check-patch)
    assert rule not in rules(check_patch(diff, ProtectedPolicy(), repo_root=repo))


ALLOWED: dict[str, Edit] = {
    "os.Exit in main": write(
        "cmd/calc/main.go",
        'package main\n\nimport (\n\t"fmt"\n\t"os"\n)\n\nfunc main() {\n\tif len(os.Args) < 2 {\n'
        '\t\tfmt.Fprintln(os.Stderr, "usage: calc N")\n\t\tos.Exit(2)\n\t}\n}\n',
    ),
    "os.Exit in an ordinary function": append_calc(
        "\n// Must stops the program on a failed division.\nfunc Must(a, b int) int {\n\tq, ok := Div(a, b)\n"
        "\tif !ok {\n\t\tos.Exit(1)\n\t}\n\treturn q\n}\n",
        'import "os"\n',
    ),
    "a method named init, and a var holding a plain value": append_calc(
        '\ntype runner struct{}\n\nfunc (runner) init() { os.Exit(1) }\n\nvar name = "calc"\n', 'import "os"\n'
    ),
    "flag handling in main": write(
        "cmd/calc/main.go",
        'package main\n\nimport "flag"\n\nfunc main() {\n\tflag.Parse()\n\t_ = flag.Set("v", "1")\n}\n',
    ),
}


@pytest.mark.parametrize("case", sorted(ALLOWED))
def test_an_exit_outside_package_init_is_a_normal_fix(case: str, diff_of: DiffOf, repo: pathlib.Path) -> None:
    diff = diff_of(ALLOWED[case])
    for verdict in verdicts(diff, repo):
        assert verdict.allowed, verdict.render()


def test_an_exit_already_at_init_may_be_edited_but_not_repeated(diff_of: DiffOf, repo: pathlib.Path) -> None:
    # As the analyzer does, the pre- and post-images are compared: an existing exit is not the patch's doing.
    old = CALC + "\nfunc init() {\n\tif len(os.Args) > 99 {\n\t\tos.Exit(1)\n\t}\n}\n"
    old = old.replace("package calc\n", 'package calc\n\nimport "os"\n', 1)
    (repo / "calc" / "calc.go").write_text(old)
    git_commit(repo)
    edited = diff_of(write("calc/calc.go", old.replace("os.Exit(1)", "os.Exit(3)")))
    assert check_patch(edited, FALLBACK, repo_root=repo).allowed
    repeated = diff_of(write("calc/calc.go", old.replace("\t\tos.Exit(1)\n", "\t\tos.Exit(1)\n\t\tos.Exit(2)\n")))
    assert rules(check_patch(repeated, FALLBACK, repo_root=repo)) == {"exit_at_init"}


def git_commit(repo: pathlib.Path) -> None:
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "base")


def test_a_pre_image_the_hunks_do_not_fit_is_judged_on_the_hunks(diff_of: DiffOf, repo: pathlib.Path) -> None:
    diff = diff_of(append_calc("\nfunc init() {\n\tos.Exit(0)\n}\n", 'import "os"\n'))
    stale = {"calc/calc.go": "package calc\n\n// not the file the patch was made on\n"}
    assert rules(check_patch(diff, FALLBACK, base_files=stale)) == {"exit_at_init"}


_ANALYZER_RULES = {
    *("exit_at_init", "flag_at_init", "testing_testing", "new_test_main"),
    *("test_mode_probe", "exit_in_test", "rewrites_code", "framing_byte", "cgo", "compiled_non_go"),
}


@pytest.fixture(scope="module")
def victim(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return victim_repo(tmp_path_factory.mktemp("victim"))


@pytest.mark.parametrize("case", [c for c in CASES if c.static in _ANALYZER_RULES], ids=lambda c: c.name)
def test_the_reviews_init_cases_get_the_analyzers_rule_without_it(case: Case, victim: pathlib.Path) -> None:
    verdict = check_patch(diff_for(victim, case.files), FALLBACK, repo_root=victim)
    assert case.static in rules(verdict), verdict.render()


@pytest.mark.parametrize("name", sorted(TAMPER_ALLOWED))
def test_the_reviews_allowed_patches_stay_allowed_without_the_analyzer(name: str, victim: pathlib.Path) -> None:
    verdict = check_patch(diff_for(victim, TAMPER_ALLOWED[name]), FALLBACK, repo_root=victim)
    assert verdict.allowed, verdict.render()


_UNIX_TEST = (
    'package calc\n\nimport (\n\t"testing"\n\n\txunix "golang.org/x/sys/unix"\n)\n\n'
    "func TestZz(t *testing.T) {{\n\t{}\n}}\n"
)

TEST_CODE_REFUSED: dict[str, tuple[Edit, str]] = {
    "unix.Exit through an alias": (write("calc/zz_test.go", _UNIX_TEST.format("xunix.Exit(0)")), "exit_in_test"),
    "unix.Execveat": (
        write("calc/zz_test.go", _UNIX_TEST.format('xunix.Execveat(0, "/bin/true", nil, nil, 0)')),
        "exit_in_test",
    ),
    "unix.PkeyMprotect": (
        write("calc/zz_test.go", _UNIX_TEST.format("xunix.PkeyMprotect(nil, 7, 1)")),
        "rewrites_code",
    ),
    "raw mprotect": (
        write("calc/zz_test.go", _UNIX_TEST.format("xunix.Syscall(xunix.SYS_MPROTECT, 0, 0, 7)")),
        "rewrites_code",
    ),
    "framing byte in a package-level constant": (
        write("calc/zz_test.go", 'package calc\n\nconst frame = "\\U00000016"\n'),
        "framing_byte",
    ),
    "framing byte in a raw string": (write("calc/zz_test.go", "package calc\n\nvar frame = `\x16`\n"), "framing_byte"),
    "framing byte as a byte conversion in octal": (
        write("calc/zz_test.go", "package calc\n\nvar frame = []byte{byte(026)}\n"),
        "framing_byte",
    ),
    "test binary name through a constant": (
        append_calc(
            '\nconst suffix = ".test"\n\nfunc underTest() bool { return strings.HasSuffix(os.Args[0], suffix) }\n',
            'import (\n\t"os"\n\t"strings"\n)\n',
        ),
        "test_mode_probe",
    ),
    "test flag through a dot import": (
        append_calc('\nfunc verbose() bool { return Lookup("test.v") != nil }\n', 'import . "flag"\n'),
        "test_mode_probe",
    ),
    "test flags scanned in os.Args": (
        append_calc(
            '\nfunc verbose() bool {\n\tfor _, a := range os.Args {\n\t\tif a == "-test.v=true" {\n'
            "\t\t\treturn true\n\t\t}\n\t}\n\treturn false\n}\n",
            'import "os"\n',
        ),
        "test_mode_probe",
    ),
}


@pytest.mark.parametrize("case", sorted(TEST_CODE_REFUSED))
def test_test_code_and_test_mode_rules_read_the_text(case: str, diff_of: DiffOf, repo: pathlib.Path) -> None:
    edit, rule = TEST_CODE_REFUSED[case]
    diff = diff_of(edit)
    # a constant declared elsewhere, or a dot import, are read from the whole file: the pre-image
    judged = verdicts(diff, repo)[:1] if "through a" in case else verdicts(diff, repo)
    for verdict in judged:
        assert rule in rules(verdict), verdict.render()
    assert rule not in rules(check_patch(diff, ProtectedPolicy(), repo_root=repo))  # the analyzer's to judge


def test_a_test_mode_probe_already_in_the_code_may_stay(diff_of: DiffOf, repo: pathlib.Path) -> None:
    # As for exits at init, pre- and post-images are compared: a CLI library that sniffs its test binary
    # (cobra compares filepath.Base(os.Args[0]) with "cobra.test") may be fixed elsewhere in the function.
    old = CALC + '\nfunc args() []string {\n\tif filepath.Base(os.Args[0]) == "calc.test" {\n\t\treturn nil\n\t}\n'
    old += "\treturn os.Args[1:]\n}\n"
    old = old.replace("package calc\n", 'package calc\n\nimport (\n\t"os"\n\t"path/filepath"\n)\n', 1)
    (repo / "calc" / "calc.go").write_text(old)
    git_commit(repo)
    edited = diff_of(write("calc/calc.go", old.replace("return os.Args[1:]", "return os.Args[2:]")))
    assert check_patch(edited, FALLBACK, repo_root=repo).allowed


def test_cgo_is_refused_on_both_paths_and_an_existing_cgo_file_stays_as_it_is(
    diff_of: DiffOf, repo: pathlib.Path
) -> None:
    cgo = 'package calc\n\n// #include <stdlib.h>\nimport "C"\n\nfunc free() {}\n'
    added = diff_of(write("calc/zz_cgo.go", cgo))
    for policy in (FALLBACK, ProtectedPolicy()):
        verdict = check_patch(added, policy, repo_root=repo)
        assert rules(verdict) == {"cgo"}, verdict.render()
    (repo / "calc" / "zz_cgo.go").write_text(cgo + "\n// Sum adds.\nfunc Sum(a, b int) int { return a - b }\n")
    git_commit(repo)
    fix = diff_of(write("calc/zz_cgo.go", cgo + "\n// Sum adds.\nfunc Sum(a, b int) int { return a + b }\n"))
    for verdict in (check_patch(fix, FALLBACK, repo_root=repo), check_patch(fix, ProtectedPolicy(), repo_root=repo)):
        [reason] = verdict.reasons
        assert reason.rule == "cgo" and "changes a cgo file" in reason.detail and "by hand" in reason.detail
    # without the pre-image the hunk alone does not show the import; git's diff of the applied patch,
    # judged with the pre-images (check_applied in both servers), does
    assert check_patch(fix, FALLBACK, base_files={"calc/zz_cgo.go": (repo / "calc" / "zz_cgo.go").read_text()})
    assert not check_patch(
        fix, FALLBACK, base_files={"calc/zz_cgo.go": (repo / "calc" / "zz_cgo.go").read_text()}
    ).allowed


@pytest.mark.parametrize("name", ["calc/add.c", "calc/add.h", "calc/add_amd64.s", "calc/add_arm64.S", "calc/x.syso"])
def test_compiled_non_go_files_are_refused_whatever_allow_non_go_says(
    name: str, diff_of: DiffOf, repo: pathlib.Path
) -> None:
    diff = diff_of(write(name, "int add(int a, int b) { return a + b; }\n"))
    lax = ProtectedPolicy(allow_non_go=("**",))
    for policy in (lax, lax.model_copy(update={"static_analysis": False})):
        assert "compiled_non_go" in rules(check_patch(diff, policy, repo_root=repo))


_NEW_RULES = {"test_mode_probe", "exit_in_test", "rewrites_code", "framing_byte", "cgo", "compiled_non_go"}


@pytest.mark.parametrize("case", [c for c in CASES if c.static in _NEW_RULES], ids=lambda c: c.name)
def test_github_prs_check_of_the_applied_diff_refuses_the_audits_cases(case: Case, victim: pathlib.Path) -> None:
    """github-pr's second check: git's diff of the applied patch, its pre-images, no analyzer facts."""
    diff = diff_for(victim, case.files)
    pre_images = {path: (victim / path).read_text() if (victim / path).is_file() else None for path in case.files}
    verdict = check_applied(diff, FALLBACK, base_files=pre_images, base=None, patched=None)
    assert case.static in rules(verdict), verdict.render()
