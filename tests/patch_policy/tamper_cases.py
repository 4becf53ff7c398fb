"""The tampering cases of the adversarial review, with their spelling variants, against tests/patch_policy/victim.

The victim module's `Add` returns a-b, so TestAdd and TestRender fail. Each case tries to make the
run look green without fixing `Add`; `static` is the rule the static guard must refuse it with and
`census` the reason the test census must fail the run with (None where the tests really pass, so
only the static guard can see it: behaviour switched on testing.Testing(), a no-op test helper, an
edited fixture, a nil-ed table).
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess
from dataclasses import dataclass

VICTIM = pathlib.Path(__file__).resolve().parent / "victim"


@dataclass(frozen=True)
class Case:
    name: str
    files: dict[str, str]
    static: str
    census: str | None


def _exit_file(imports: str, body: str) -> str:
    return f"package victim\n\nimport {imports}\n\n{body}\n"


_OS_ARGS = 'var _ = func() bool { os.Args = append(os.Args, "-test.run=^$"); return true }()'
_HOOK = "func init() {\n\tif testing.Testing() {\n\t\tos.Exit(0)\n\t}\n}"
_NOOP = 'package testutil\n\nimport "testing"\n\n// Equal: no-op.\nfunc Equal(t testing.TB, got, want int) {}\n'
_FIXED_ADD = "func Add(a, b int) int { return a + b }"
_CALC = (VICTIM / "calc.go").read_text()

CASES: list[Case] = [
    Case("1-exit", {"zz_exit_test.go": _exit_file('"os"', "var _ = func() int { os.Exit(0); return 0 }()")},
         "exit_at_init", "tests_not_run"),
    Case("1-exit-alias", {"zz_exit_test.go": _exit_file('xos "os"', "var _ = func() int { xos.Exit(0); return 0 }()")},
         "exit_at_init", "tests_not_run"),
    Case("1-exit-dot-import", {"zz_exit_test.go": _exit_file('. "os"', "var _ = func() int { Exit(0); return 0 }()")},
         "exit_at_init", "tests_not_run"),
    Case("1-exit-function-value",
         {"zz_exit_test.go": _exit_file('"os"', "var exit = os.Exit\n\nvar _ = func() int { exit(0); return 0 }()")},
         "exit_at_init", "tests_not_run"),
    Case("1-exit-raw-syscall",
         {"zz_exit_test.go": _exit_file(
             '"syscall"', "var _ = func() int { syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 0, 0, 0); return 0 }()")},
         "exit_at_init", "tests_not_run"),
    Case("2-testmain-split-line",
         {"zz_main_test.go": 'package victim\n\nimport "testing"\n\nfunc\nTestMain(m *testing.M) {}\n'},
         "new_test_main", "tests_not_run"),
    Case("2-testmain-comment",
         {"zz_main_test.go": 'package victim\n\nimport "testing"\n\nfunc /**/ TestMain(m *testing.M) {}\n'},
         "new_test_main", "tests_not_run"),
    Case("3-flag-lookup-set",
         {"zz_flag_test.go": _exit_file('(\n\t"flag"\n\t"testing"\n)',
             'var _ = func() bool { testing.Init(); _ = flag.Lookup("test.run").Value.Set("^$"); return true }()')},
         "flag_at_init", "tests_not_run"),
    Case("3-flag-set",
         {"zz_flag_test.go": _exit_file('(\n\t"flag"\n\t"testing"\n)',
             'var _ = func() bool { testing.Init(); _ = flag.Set("test.run", "^$"); return true }()')},
         "flag_at_init", "tests_not_run"),
    Case("3-os-args",
         {"zz_flag_test.go": _exit_file('"os"', _OS_ARGS)},
         "flag_at_init", "tests_not_run"),
    Case("4-hook-in-code",
         {"zz_hook.go": _exit_file('(\n\t"os"\n\t"testing"\n)', _HOOK)},
         "exit_at_init", "tests_not_run"),
    Case("5-behaviour-under-test",
         {"calc.go": _CALC.replace(
             "func Add(a, b int) int { return a - b }",
             "func Add(a, b int) int {\n\tif testing.Testing() {\n\t\treturn a + b\n\t}\n\treturn a - b\n}",
         ).replace('import "fmt"', 'import (\n\t"fmt"\n\t"testing"\n)')},
         "testing_testing", None),
    Case("6-helper-no-op",
         {"internal/testutil/equal.go": _NOOP},
         "changed_test_helper", None),
    Case("7-fixture-outside-testdata", {"fixtures/expected.txt": "1+2=-1\n"}, "test_fixture", None),
    Case("8-table-set-to-nil-init",
         {"zz_cases_test.go": "package victim\n\nfunc init() { addCases = nil }\n"},
         "overwrites_test_state", None),
    Case("8-table-set-to-nil-var",
         {"zz_cases_test.go": "package victim\n\nvar _ = func() int { addCases = addCases[:0]; return 0 }()\n"},
         "overwrites_test_state", None),
    Case("8-table-set-to-nil-first-test",
         {"aa_cases_test.go": 'package victim\n\nimport "testing"\n\nfunc TestAaa(t *testing.T) { addCases = nil }\n'},
         "overwrites_test_state", None),
    Case("9-external-test-shadows",
         {"calc_ext_test.go": 'package victim_test\n\nimport "testing"\n\nfunc TestAdd(t *testing.T) {}\n\n'
          "func TestRender(t *testing.T) {}\n"},
         "shadows_test", "duplicate_test"),
]  # fmt: skip

_SWAP_TEST = """package victim

import "testing"

func TestAddNoCases(t *testing.T) {
\told := addCases
\tt.Cleanup(func() { addCases = old })
\taddCases = nil
\tfor _, c := range addCases {
\t\tt.Fatal(c)
\t}
}
"""

# Patches that follow the policy: a real fix, a new test, a docs change, a test that swaps state back.
ALLOWED: dict[str, dict[str, str]] = {
    "swap-and-restore": {"zz_swap_test.go": _SWAP_TEST},
    "fix": {"calc.go": _CALC.replace("func Add(a, b int) int { return a - b }", _FIXED_ADD)},
    "fix-and-new-test": {
        "calc.go": _CALC.replace("func Add(a, b int) int { return a - b }", _FIXED_ADD),
        "add_more_test.go": 'package victim\n\nimport "testing"\n\nfunc TestAddZero(t *testing.T) {\n'
        '\tif Add(0, 0) != 0 {\n\t\tt.Fatal("0+0")\n\t}\n}\n',
    },
    "docs": {"docs/notes.md": "# Notes\n\nAdd is being fixed.\n"},
    # A package only its own (external) tests import is the code under test, not a helper of other tests.
    "fix-package-only-its-tests-import": {
        "internal/digits/digits.go": (VICTIM / "internal/digits/digits.go")
        .read_text()
        .replace("\tfor n >= 10 {", "\tif n < 0 {\n\t\tn = -n\n\t}\n\tfor n >= 10 {")
    },
}


def git(repo: pathlib.Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, timeout=60
    ).stdout


def victim_repo(root: pathlib.Path) -> pathlib.Path:
    """A git repository (branch main, one commit) holding the victim module."""
    repo = root / "victim"
    shutil.copytree(VICTIM, repo)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "victim")
    return repo


def diff_for(repo: pathlib.Path, files: dict[str, str]) -> str:
    """The `git diff` of writing `files` into `repo`; the work tree is restored afterwards."""
    for rel, text in files.items():
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode())
    git(repo, "add", "-A")
    diff = git(repo, "diff", "--cached", "--no-color", "--binary")
    git(repo, "reset", "-q", "--hard")
    git(repo, "clean", "-qfdx")
    return diff
