"""What may not run in a test binary is refused in every Go file a patch changes, not only in `_test.go`
files: a non-test function a test calls runs in the same binary, so it can print test2json's framing byte
with a fake `--- PASS` / `PASS` and leave with status 0 as well as a test can. The framing byte is read by
its constant value (`[]byte{22}`, `rune(0x16)`, `string(rune(22))`, a named constant), and replacing the
process (`syscall.Exec`, a raw execve) counts as leaving it. Both the analyzer (`goresolve check-patch`,
go-test-runner) and the line rules alone (github-pr) are checked, on the victim module."""

from __future__ import annotations

import pathlib
import shutil

import pytest

from servers.common.patch_policy import check_patch
from servers.common.policy import ProtectedPolicy
from servers.common.tamper import tool
from servers.common.tamper.facts import Facts
from servers.go_test_runner.cli_check_patch import verdict_for_checkout

from .tamper_cases import VICTIM, diff_for, victim_repo

pytestmark = pytest.mark.slow

_CALC = (VICTIM / "calc.go").read_text()


def _add(body: str, imports: str) -> dict[str, str]:
    """calc.go with `Add` replaced by one that does `body` first (a forgery in non-test code)."""
    code = _CALC.replace('import "fmt"', f'import (\n\t"fmt"\n{imports}\n)')
    code = code.replace(
        "func Add(a, b int) int { return a - b }", f"func Add(a, b int) int {{\n\t{body}\n\treturn a - b\n}}"
    )
    return {"calc.go": code}


def _test(body: str, imports: str) -> dict[str, str]:
    """A new test file, its test run after the base's (a forgery in a test file)."""
    return {
        "zz_forge_test.go": f'package victim\n\nimport (\n{imports}\n\t"testing"\n)\n\n'
        f"func TestZZForge(t *testing.T) {{\n\t{body}\n}}\n"
    }


_FORGE2 = 'os.Stdout.WriteString("\\x16--- PASS: TestAdd (0.00s)\\n\\x16PASS\\n")\n\tsyscall.Exit(0)'
_FORGE4 = (
    'f := []byte{22}\n\tos.Stdout.Write(append(f, []byte("--- PASS: TestZZForge (0.00s)\\n")...))\n\t'
    'syscall.Exec("/bin/true", []string{"true"}, nil)'
)
_OS_SYSCALL = '\t"os"\n\t"syscall"'

# (name, files, rules the analyzer must give, rules the line rules alone must give)
CASES: list[tuple[str, dict[str, str], set[str], set[str]]] = [
    (
        "forge2-non-test-code",
        _add(_FORGE2, _OS_SYSCALL),
        {"framing_byte", "exit_in_test"},
        {"framing_byte", "exit_in_test"},
    ),
    ("forge4-byte-slice-exec", _test(_FORGE4, _OS_SYSCALL), {"framing_byte", "exit_in_test"}, {"exit_in_test"}),
    (
        "exec-in-non-test-code",
        _add('syscall.Exec("/bin/true", nil, nil)', '\t"syscall"'),
        {"exit_in_test"},
        {"exit_in_test"},
    ),
    (
        "raw-execve-in-test",
        _test("syscall.RawSyscall(syscall.SYS_EXECVE, 0, 0, 0)", '\t"syscall"'),
        {"exit_in_test"},
        {"exit_in_test"},
    ),
    ("rune-conversion", _add("fmt.Print(string(rune(0x16)))", ""), {"framing_byte"}, {"framing_byte"}),
    ("rune-of-22-in-test", _test("print(string(rune(22)))", ""), {"framing_byte"}, {"framing_byte"}),
    ("constant-arithmetic", _add("fmt.Print(string([]byte{11 * 2}))", ""), {"framing_byte"}, set()),
    (
        "named-constant",
        _add("const sep byte = 0x0b + 0x0b\n\tfmt.Print(string([]byte{sep, '-'}))", ""),
        {"framing_byte"},
        set(),
    ),
    ("byte-slice-printed", _test("println(string([]byte{22}))", ""), {"framing_byte"}, set()),
    (
        "bytes-buffer-of-it",
        _test("println(bytes.NewBuffer([]byte{22}).String())", '\t"bytes"'),
        {"framing_byte"},
        set(),
    ),
    ("byte-before-text", _test("print(string([]byte{22, 'P', 'A', 'S', 'S'}))", ""), {"framing_byte"}, set()),
    # Before, a raw exit whose number is computed at run time passed both: with the framing byte built at run
    # time too (strconv), a wrong Add printed a fake full pass and left with status 0, and the run was green.
    (
        "computed-raw-exit-number",
        _add(
            'b, _ := strconv.Atoi("22")\n\tos.Stdout.Write(append([]byte{byte(b)}, "PASS\\n"...))\n\t'
            'n, _ := strconv.Atoi("231")\n\tsyscall.Syscall(uintptr(n), 0, 0, 0)',
            '\t"os"\n\t"strconv"\n\t"syscall"',
        ),
        {"exit_in_test"},
        {"exit_in_test"},
    ),
    (
        "bare-raw-exit-number",
        _test("syscall.RawSyscall(231, 0, 0, 0)", '\t"syscall"'),
        {"exit_in_test"},
        {"exit_in_test"},
    ),
    (
        "raw-syscall-as-a-value",
        _add("call := syscall.RawSyscall\n\tcall(231, 0, 0, 0)", '\t"syscall"'),
        {"exit_in_test"},
        set(),
    ),
    # Before, non-test code that found a `_test.go` file among its callers was right only under test, unseen.
    (
        "callers-name-a-test-file",
        _add(
            "pcs := make([]uintptr, 32)\n\tframes := runtime.CallersFrames(pcs[:runtime.Callers(1, pcs)])\n\t"
            "for f, more := frames.Next(); more; f, more = frames.Next() {\n\t\t"
            'if strings.HasSuffix(f.File, "_test.go") {\n\t\t\treturn a + b\n\t\t}\n\t}',
            '\t"runtime"\n\t"strings"',
        ),
        {"test_mode_probe"},
        {"test_mode_probe"},
    ),
]

# Binary data holding 0x16 followed by a non-text byte (a TLS handshake record) is not the framing byte.
ALLOWED = {
    "tls-record-in-code": _add("_ = []byte{0x16, 0x03, 0x01}", ""),
    "tls-record-in-test": _test("_ = []byte{0x16, 0x03, 0x01, 0x00}", ""),
    "compared-prefix-byte": _test("_ = bytes.HasPrefix([]byte{0x16, 0x03}, []byte{22})", '\t"bytes"'),
    # a raw system call by its name, and a caller's file and line in a message: ordinary code
    "named-raw-syscall": _add("_, _, _ = syscall.Syscall(syscall.SYS_GETPID, 0, 0, 0)", '\t"syscall"'),
    "caller-in-a-message": _add(
        '_, file, line, _ := runtime.Caller(1)\n\tfmt.Printf("%s:%d\\n", file, line)', '\t"runtime"'
    ),
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return victim_repo(tmp_path_factory.mktemp("binary"))


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def base(repo: pathlib.Path, cache: pathlib.Path) -> Facts:
    go = shutil.which("go")
    assert go is not None
    return tool.analyze(tool.build_analyzer(go, cache), go, repo, ProtectedPolicy())


@pytest.mark.parametrize(("name", "files", "static", "lines"), CASES, ids=[c[0] for c in CASES])
def test_the_analyzer_refuses_what_may_not_run_in_a_test_binary(
    name: str,
    files: dict[str, str],
    static: set[str],
    lines: set[str],
    repo: pathlib.Path,
    cache: pathlib.Path,
    base: Facts,
) -> None:
    verdict = verdict_for_checkout(repo, diff_for(repo, files), ProtectedPolicy(), cache, base=base)
    assert not verdict.allowed
    assert static <= {r.rule for r in verdict.reasons}, verdict.render()


@pytest.mark.parametrize(
    ("name", "files", "static", "lines"), [c for c in CASES if c[3]], ids=[c[0] for c in CASES if c[3]]
)
def test_the_line_rules_alone_refuse_it_too(
    name: str, files: dict[str, str], static: set[str], lines: set[str], repo: pathlib.Path
) -> None:
    base_files = {rel: (repo / rel).read_text() if (repo / rel).exists() else None for rel in files}
    verdict = check_patch(diff_for(repo, files), ProtectedPolicy(static_analysis=False), base_files=base_files)
    assert not verdict.allowed
    assert lines <= {r.rule for r in verdict.reasons}, verdict.render()


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_binary_data_is_not_the_framing_byte(name: str, repo: pathlib.Path, cache: pathlib.Path, base: Facts) -> None:
    verdict = verdict_for_checkout(repo, diff_for(repo, ALLOWED[name]), ProtectedPolicy(), cache, base=base)
    assert verdict.allowed, verdict.render()


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_the_line_rules_alone_allow_it_too(name: str, repo: pathlib.Path) -> None:
    files = ALLOWED[name]
    base_files = {rel: (repo / rel).read_text() if (repo / rel).exists() else None for rel in files}
    verdict = check_patch(diff_for(repo, files), ProtectedPolicy(static_analysis=False), base_files=base_files)
    assert verdict.allowed, verdict.render()
