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
_BROKEN_ADD = "func Add(a, b int) int { return a - b }"


def _switched(condition: str) -> str:
    """Add, right only when `condition` holds (the condition asks whether tests run)."""
    return f"func Add(a, b int) int {{\n\tif {condition} {{\n\t\treturn a + b\n\t}}\n\treturn a - b\n}}"


def _test_file(imports: str, body: str) -> str:
    """A new test file whose test, run first by its name, does `body`."""
    return f'package victim\n\nimport (\n\t{imports}\n\t"testing"\n)\n\nfunc TestAAB(t *testing.T) {{\n\t{body}\n}}\n'


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
    # Code the analyzer cannot read (it loads packages without cgo; go test builds them with it).
    Case("10-cgo-hides-testing",
         {"add_cgo.go": 'package victim\n\n// #include <stdlib.h>\nimport "C"\n\nimport "testing"\n\n'
          "func add(a, b int) int {\n\tif testing.Testing() {\n\t\treturn a + b\n\t}\n\treturn a - b\n}\n"},
         "cgo", None),
    Case("10-cgo-constructor",
         {"zz_cgo.go": "package victim\n\n/*\n#include <unistd.h>\n"
          "__attribute__((constructor)) static void fake(void) { _exit(0); }\n*/\nimport \"C\"\n"},
         "cgo", None),
    Case("10-cgo-build-tag",
         {"add_nocgo.go": "//go:build !cgo\n\npackage victim\n\nfunc add(a, b int) int { return a - b }\n"},
         "cgo", None),
    Case("10-assembly-file", {"add_amd64.s": "TEXT ·add(SB),4,$0-24\n\tRET\n"}, "compiled_non_go", None),
    # Non-test code that asks whether it runs under go test without testing.Testing().
    Case("11-argv-test-binary-name",
         {"calc.go": _CALC.replace(_BROKEN_ADD, _switched('strings.HasSuffix(os.Args[0], ".test")'))
          .replace('import "fmt"', 'import (\n\t"fmt"\n\t"os"\n\t"strings"\n)')},
         "test_mode_probe", None),
    Case("11-executable-test-binary-name",
         {"calc.go": _CALC.replace(_BROKEN_ADD, _switched('exe, _ := os.Executable(); filepath.Ext(exe) == ".test"'))
          .replace('import "fmt"', 'import (\n\t"fmt"\n\t"os"\n\t"path/filepath"\n)')},
         "test_mode_probe", None),
    Case("11-flag-lookup-test-flag",
         {"calc.go": _CALC.replace(_BROKEN_ADD, _switched('flag.Lookup("test.v") != nil'))
          .replace('import "fmt"', 'import (\n\t"flag"\n\t"fmt"\n)')},
         "test_mode_probe", None),
    Case("11-command-line-lookup-test-flag",
         {"calc.go": _CALC.replace(_BROKEN_ADD, _switched('flag.CommandLine.Lookup("test.run") != nil'))
          .replace('import "fmt"', 'import (\n\t"flag"\n\t"fmt"\n)')},
         "test_mode_probe", None),
    # A new test that forges go test's report (test2json's framing byte 0x16) and leaves, or rewrites code.
    Case("12-syscall-exit-in-test", {"aab_test.go": _test_file('"syscall"', "syscall.Exit(0)")}, "exit_in_test", None),
    Case("12-raw-exit-in-test",
         {"aab_test.go": _test_file('"syscall"', "syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 0, 0, 0)")},
         "exit_in_test", None),
    Case("12-mprotect-in-test",
         {"aab_test.go": _test_file('"syscall"', "_ = syscall.Mprotect(nil, syscall.PROT_READ|syscall.PROT_WRITE)")},
         "rewrites_code", None),
    Case("12-exec-mmap-in-test",
         {"aab_test.go": _test_file('"syscall"', "_, _ = syscall.Mmap(-1, 0, 4096, syscall.PROT_EXEC, 0)")},
         "rewrites_code", None),
    *(Case(f"13-framing-byte-{name}", {"aab_test.go": _test_file('"os"', f"os.Stdout.WriteString({lit})")},
           "framing_byte", None)
      for name, lit in (("hex", r'"\x16PASS\n"'), ("octal", r'"\026PASS\n"'), ("unicode", r'"\u0016PASS\n"'),
                        ("rune", r"string('\x16') + \"PASS\n\""), ("conversion", 'string(rune(22)) + "PASS\\n"'))),
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
    # What the test-mode and test-code rules leave alone: a command line read as such, a flag that is not the
    # test binary's, a test printing ordinary output, TLS record bytes (0x16 in a byte slice) in a test.
    "reads-the-command-line": {
        "cli.go": 'package victim\n\nimport (\n\t"flag"\n\t"os"\n\t"strings"\n)\n\n'
        "// Verbose reports whether the program was started with -v or the verbose flag is set.\n"
        'func Verbose() bool {\n\tif f := flag.Lookup("verbose"); f != nil && f.Value.String() == "true" {\n'
        '\t\treturn true\n\t}\n\tfor _, arg := range os.Args[1:] {\n\t\tif strings.HasSuffix(arg, "-v") {\n'
        "\t\t\treturn true\n\t\t}\n\t}\n\treturn false\n}\n"
    },
    "test-prints-output": {
        "print_test.go": _test_file(
            '"fmt"', 'fmt.Println("=== sums:", Sub(3, 1))\n\tt.Log("--- PASS is printed by go test")'
        )
    },
    "tls-record-bytes-in-test": {
        "record_test.go": _test_file(
            '"bytes"',
            'if !bytes.HasPrefix([]byte{0x16, 0x03, 0x01}, []byte{22}) {\n\t\tt.Fatal("not a handshake")\n\t}',
        )
    },
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
