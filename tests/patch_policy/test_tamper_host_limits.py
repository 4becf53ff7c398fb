"""The analyzer's go processes run on the host within file-size, memory and open-file limits, and fail closed
at them; the text policy's walks of the syntax tree are loops, however deeply a patch nests."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from servers.common.errors import UpstreamFailure
from servers.common.go_syntax import read_file
from servers.common.patch_policy import check_patch
from servers.common.policy import ProtectedPolicy
from servers.common.tamper import tool
from servers.common.tamper.guard import check_applied

# three 1 GiB arrays with a last element: the compiler builds each in memory and writes it into its object
BIG = "package a\n\n" + "".join(f"var Big{n} = [1 << 30]byte{{1<<30 - 1: {n}}}\n" for n in (1, 2, 3))
NESTED = 'package a\n\nimport "os"\n\nvar _ = ' + "(" * 3000 + "os.Exit" + ")" * 3000 + "(1)\n"


def _new_file(path: str, source: str) -> str:
    lines = source.rstrip("\n").split("\n")
    head = f"diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n"
    return head + f"@@ -0,0 +1,{len(lines)} @@\n" + "".join(f"+{line}\n" for line in lines)


def _module(root: Path, files: dict[str, str]) -> Path:
    """A module with packages that import nothing: a private GOCACHE compiles them in seconds."""
    for rel, text in {"go.mod": "module example.com/m\n\ngo 1.22\n", "a/a.go": "package a\n", **files}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def _size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file() and not p.is_symlink())


@pytest.fixture(scope="module")
def go() -> str:
    found = shutil.which("go")
    if found is None:
        pytest.skip("no go toolchain")
    return found


@pytest.fixture(scope="module")
def analyzer(go: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tool.build_analyzer(go, tmp_path_factory.mktemp("bin"))


@pytest.mark.slow
def test_a_patch_that_compiles_huge_objects_is_refused_and_the_cache_stays_small(
    go: str, analyzer: Path, tmp_path: Path
) -> None:
    if shutil.which("prlimit", path="/usr/bin:/bin") is None:
        pytest.skip("prlimit is not installed")
    gocache = tmp_path / "gocache"
    base = tool.analyze(analyzer, go, _module(tmp_path / "base", {}), ProtectedPolicy(), gocache=gocache)
    patched = _module(tmp_path / "patched", {"a/big.go": BIG})
    with pytest.raises(UpstreamFailure, match="could not be analysed within the host limits"):
        tool.analyze(analyzer, go, patched, ProtectedPolicy(), gocache=gocache)
    assert _size(gocache) < tool.ANALYZE_FSIZE
    # the runner's guard turns a failed analysis into a refusal
    verdict = check_applied(_new_file("a/big.go", BIG), ProtectedPolicy(), base_files={}, base=base, patched=None)
    assert [r.rule for r in verdict.reasons] == ["analysis_failed"]


@pytest.mark.slow
def test_a_normal_patch_still_passes_within_the_limits(go: str, analyzer: Path, tmp_path: Path) -> None:
    gocache = tmp_path / "gocache"
    source = "package a\n\n// Add returns a+b.\nfunc Add(a, b int) int { return a + b }\n"
    base = tool.analyze(analyzer, go, _module(tmp_path / "base", {}), ProtectedPolicy(), gocache=gocache)
    patched = tool.analyze(
        analyzer, go, _module(tmp_path / "patched", {"a/add.go": source}), ProtectedPolicy(), gocache=gocache
    )
    verdict = check_applied(_new_file("a/add.go", source), ProtectedPolicy(), base_files={}, base=base, patched=patched)
    assert verdict.allowed, verdict.render()


@pytest.mark.slow
def test_a_go_work_of_the_tree_is_ignored(go: str, analyzer: Path, tmp_path: Path) -> None:
    """A go.work could `use` or `replace` with directories of the host; here it names one that is not there."""
    root = _module(tmp_path / "tree", {"go.work": "go 1.22\n\nuse (\n\t.\n\t./elsewhere\n)\n"})
    assert tool.analyze(analyzer, go, root, ProtectedPolicy(), gocache=tmp_path / "gocache").errors in (None, [])


@pytest.mark.slow
def test_a_file_linked_to_stdin_does_not_wait_for_input(go: str, analyzer: Path, tmp_path: Path) -> None:
    """`z.go -> /proc/self/fd/0`: the analyzer's stdin is empty, so a check run from a terminal does not wait."""
    root = _module(tmp_path / "tree", {})
    (root / "a" / "z.go").symlink_to("/proc/self/fd/0")
    code = (
        "import sys; from pathlib import Path; from servers.common.tamper import tool; "
        "from servers.common.policy import ProtectedPolicy; from servers.common.errors import UpstreamFailure\n"
        "a = sys.argv\n"
        "try: tool.analyze(Path(a[1]), a[2], Path(a[3]), ProtectedPolicy(), gocache=Path(a[4]))\n"
        "except UpstreamFailure: pass\n"
    )
    argv = [sys.executable, "-c", code, str(analyzer), go, str(root), str(tmp_path / "gocache")]
    # stdin is a pipe nobody writes to or closes: an inherited stdin would block go until the timeout
    with subprocess.Popen(argv, stdin=subprocess.PIPE, cwd=Path(__file__).resolve().parents[2]) as proc:
        assert proc.wait(timeout=120) == 0


def test_deeply_nested_parentheses_are_judged_not_raised() -> None:
    """3000 parentheses around os.Exit: the same spelling as none, refused by the text rules without the analyzer."""
    assert read_file(NESTED).decls[-1].calls[0].callee == ("os", "Exit")
    verdict = check_patch(_new_file("a/x.go", NESTED), ProtectedPolicy(static_analysis=False))
    assert [r.rule for r in verdict.reasons] == ["exit_at_init"]
