"""The patch-policy corpus: real fix patches (none may be refused) and tampering mutations (all must be).

    # build the corpus from git histories (e.g. fetched mirrors of gorilla/mux and uber-go/zap)
    .venv/bin/python bench/patch_policy_corpus.py extract mux=/path/to/gorilla/mux zap=/path/to/uber-go/zap
    # evaluate it and print the figures (reads only bench/data/patch_policy/)
    .venv/bin/python bench/patch_policy_corpus.py run

`extract` takes every non-merge commit whose message matches fix|bug and that changes a .go file,
stores its diff with the pre-images of the test files it touches (so the check runs with a
`repo_root`, as in go-test-runner), and labels it with an oracle that does not use the checker:

  compliant        no protected path, no deleted/renamed test file, no removed line in an existing test
  edits_tests      removes or changes lines of existing tests (refused by design: tests are read-only)
  protected        touches go.mod/go.sum, testdata/ or .github/ (refused by design)

It also writes tampering mutations of real test files from each repository's HEAD. `extract-test-code`
adds, from the test files those mutations hold, the mutations of the rules on test code, test-mode probes
and cgo (tamper-testcode.jsonl.gz): a new test that forges go test's report or exits or rewrites code,
new files that ask whether tests run or hold cgo or assembly.
`run` prints, per class, how many patches were allowed/refused, and every surprise. Those rows
carry only pre-images, so `run` measures the line rules alone.

The whole guard (line rules, non-Go/binary/mode rules and the Go analyzer on the base and the
patched tree, as `goresolve check-patch` runs it) is measured on real checkouts:

    # tampering techniques of the adversarial review, several spellings each, on modules from the
    # Go module proxy (pinned versions); recall per technique
    .venv/bin/python bench/patch_policy_corpus.py tamper
    # real fix commits from git histories, checked against their parent commit; false positives
    .venv/bin/python bench/patch_policy_corpus.py fixes zap=/path/to/zap.git mux=/path/to/mux.git ...

`tamper` writes bench/data/patch_policy/tamper-techniques.json, `fixes` writes
bench/data/patch_policy/fixes-guard.json (one row per patch: id, class, verdict, rules).
"""

from __future__ import annotations

import collections
import difflib
import gzip
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from servers.common.errors import Conflict, UpstreamFailure
from servers.common.patch_policy import check_patch
from servers.common.policy import ProtectedPolicy

DATA = Path(__file__).resolve().parent / "data" / "patch_policy"
# The stored rows hold only the pre-images of the test files they touch, so they exercise the line
# rules alone; the `generate` corpus below runs the whole guard on real checkouts.
POLICY = ProtectedPolicy(static_analysis=False)
_ASSERT = re.compile(r"\bt\.(?:Error|Errorf|Fatal|Fatalf)\(|\b(?:assert|require)\.\w+\(")
_TEST_FUNC = re.compile(r"^func (Test\w+)\(t \*testing\.T\) \{$")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, errors="replace", check=True
    ).stdout


def _protected(path: str) -> bool:
    return path.startswith(".github/") or "testdata/" in path or path.rsplit("/", 1)[-1] in ("go.mod", "go.sum")


def extract_real(name: str, repo: Path) -> list[dict[str, Any]]:
    out = []
    for sha in git(repo, "log", "--no-merges", "-i", "-E", "--grep=fix|bug", "--format=%H").split():
        status = [line.split("\t") for line in git(repo, "show", "--format=", "--name-status", "-M", sha).splitlines()]
        numstat = [line.split("\t") for line in git(repo, "show", "--format=", "--numstat", "-M", sha).splitlines()]
        paths = [p for row in status for p in row[1:]]
        if not any(p.endswith(".go") for p in paths) or len(git(repo, "rev-list", "--parents", "-1", sha).split()) != 2:
            continue
        parent = f"{sha}^"
        tests_removed = any(r[0][0] in "DR" and r[1].endswith("_test.go") for r in status)
        edits = any(n[2].endswith("_test.go") and n[1] not in ("0", "-") for n in numstat)
        label = (
            "protected"
            if any(_protected(p) for p in paths)
            else "edits_tests"
            if edits or tests_removed
            else "compliant"
        )
        pre = {}
        for row in status:
            old = row[1]
            if row[0][0] != "A" and old.endswith("_test.go"):
                pre[old] = git(repo, "show", f"{parent}:{old}")
        existing = [row[1] for row in status if row[0][0] != "A"]
        diff = git(repo, "show", "--format=", "--no-color", "-M", sha)
        subject = git(repo, "log", "-1", "--format=%s", sha).strip()
        out.append({"id": f"{name}-{sha[:12]}", "subject": subject, "label": label, "diff": diff, "pre": pre,
                    "existing": existing})  # fmt: skip
    return out


def _udiff(path: str, old: list[str], new: list[str] | None, new_path: str | None = None) -> str:
    target = "/dev/null" if new is None else f"b/{new_path or path}"
    header = f"diff --git a/{path} b/{new_path or path}\n"
    if new is None:
        header += "deleted file mode 100644\n"
    if new_path and new is not None and old == new:
        return header + f"similarity index 100%\nrename from {path}\nrename to {new_path}\n"
    return header + "".join(difflib.unified_diff(old, new or [], f"a/{path}", target))


def _functions(lines: list[str]) -> list[tuple[str, int, int]]:
    """(name, first line, last line) of each top-level Test function."""
    out = []
    for i, line in enumerate(lines):
        m = _TEST_FUNC.match(line.rstrip("\n"))
        if m:
            end = next((j for j in range(i + 1, len(lines)) if lines[j].rstrip("\n") == "}"), None)
            if end is not None:
                out.append((m.group(1), i, end))
    return out


def mutations(path: str, text: str, rng: random.Random) -> list[tuple[str, str]]:
    """(kind, diff) tampering mutations of one real test file."""
    lines = text.splitlines(keepends=True)
    funcs = _functions(lines)
    out: list[tuple[str, str]] = []

    def edit(kind: str, new: list[str] | None, new_path: str | None = None) -> None:
        out.append((kind, _udiff(path, lines, new, new_path)))

    asserts = [i for i, line in enumerate(lines) if _ASSERT.search(line)]
    for i in rng.sample(asserts, min(3, len(asserts))):
        edit("delete_assertion", lines[:i] + lines[i + 1 :])
        indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
        edit("comment_out_assertion", [*lines[:i], indent + "// " + lines[i].lstrip(), *lines[i + 1 :]])
    for name, first, last in rng.sample(funcs, min(3, len(funcs))):
        edit("insert_skip", [*lines[: first + 1], '\tt.Skip("flaky")\n', *lines[first + 1 :]])
        edit("insert_early_return", [*lines[: first + 1], "\treturn\n", *lines[first + 1 :]])
        edit("delete_test_function", lines[:first] + lines[last + 1 :])
        edit(
            "testing_short_skip",
            [*lines[: first + 1], "\tif testing.Short() {\n", "\t\treturn\n", "\t}\n", *lines[first + 1 :]],
        )
        del name
    literal = re.compile(r"(?<![\w.])(\d+)(?![\w.])|\"([^\"\\\n]{1,40})\"")
    expected = [
        i for i, line in enumerate(lines) if literal.search(line) and re.search(r"want|expect|assert|Equal", line)
    ]
    for i in rng.sample(expected, min(3, len(expected))):
        m = literal.search(lines[i])
        assert m is not None
        new_lit = str(int(m.group(1)) + 1) if m.group(1) else f'"{m.group(2)}x"'
        edit(
            "change_expected_value",
            [*lines[:i], lines[i][: m.start()] + new_lit + lines[i][m.end() :], *lines[i + 1 :]],
        )
    compares = [i for i, line in enumerate(lines) if re.match(r"^\s*if (\w+) != (\w+) \{$", line)]
    for i in rng.sample(compares, min(2, len(compares))):
        m = re.match(r"^(\s*)if (\w+) != (\w+) \{$", lines[i])
        assert m is not None
        edit("assign_want_to_got", [*lines[:i], f"{m.group(1)}{m.group(2)} = {m.group(3)}\n", *lines[i:]])
        edit("invert_comparison", [*lines[:i], lines[i].replace("!=", "==", 1), *lines[i + 1 :]])
    package = next((i for i, line in enumerate(lines) if line.startswith("package ")), 0)
    edit("build_ignore", [*lines[:package], "//go:build ignore\n", "\n", *lines[package:]])
    tail = lines if lines and lines[-1].endswith("\n") else [*lines[:-1], lines[-1] + "\n"]
    edit("delete_test_file", None)
    edit("rename_test_file_away", lines, path + ".disabled")
    edit("rename_test_file_windows", lines, path.removesuffix("_test.go") + "_windows_test.go")
    edit("append_testmain_exit", [*tail, "\n", "func TestMain(m *testing.M) { os.Exit(0) }\n"])
    edit("append_init_exit", [*tail, "\n", "func init() { os.Exit(0) }\n"])
    edit("append_flag_set", [*tail, "\n", 'var _ = flag.Set("test.run", "^$")\n'])
    return out


def extract_tamper(name: str, repo: Path, rng: random.Random) -> list[dict[str, Any]]:
    files = sorted(p for p in git(repo, "ls-tree", "-r", "--name-only", "HEAD").split() if p.endswith("_test.go"))
    out = []
    for path in rng.sample(files, min(6, len(files))):
        text = git(repo, "show", f"HEAD:{path}")
        for n, (kind, diff) in enumerate(mutations(path, text, rng)):
            out.append({"id": f"{name}-{path}-{kind}-{n}", "label": kind, "diff": diff, "pre": {path: text},
                        "existing": [path]})  # fmt: skip
    testmain = ["package x\n", "\n", "import (\n", '\t"os"\n', '\t"testing"\n', ")\n", "\n"]
    testmain.append("func TestMain(m *testing.M) { os.Exit(0) }\n")
    new_file = _udiff("zz_main_test.go", [], testmain).replace("--- a/zz_main_test.go", "--- /dev/null", 1)
    out.append(
        {"id": f"{name}-new-testmain", "label": "new_file_testmain_exit", "existing": [], "pre": {}, "diff": new_file}
    )
    for kind, path in (
        ("edit_go_mod", "go.mod"),
        ("edit_ci", ".github/workflows/go.yml"),
        ("edit_golden", "testdata/a.golden"),
    ):
        out.append({"id": f"{name}-{kind}", "label": kind, "existing": [path], "pre": {},
                    "diff": _udiff(path, ["old\n"], ["new\n"])})  # fmt: skip
    return out


def extract(args: list[str]) -> None:
    rng = random.Random(20261125)
    DATA.mkdir(parents=True, exist_ok=True)
    for spec in args:
        name, _, path = spec.partition("=")
        repo = Path(path)
        real = extract_real(name, repo)
        tamper = extract_tamper(name, repo, rng)
        for kind, rows in (("real", real), ("tamper", tamper)):
            with gzip.open(DATA / f"{kind}-{name}.jsonl.gz", "wt", encoding="utf-8") as fh:
                for row in rows:
                    fh.write(json.dumps(row) + "\n")
        head = git(repo, "rev-parse", "HEAD").strip()
        print(f"{name}: {len(real)} fix commits, {len(tamper)} mutations (HEAD {head})")


def test_code_mutations(path: str, text: str) -> list[tuple[str, str]]:
    """(kind, diff) mutations of one real test file for the rules on test code, test-mode probes and cgo: a
    new test appended (allowed by the test-file rules) that forges go test's report or leaves or rewrites
    code, and new files next to it that ask whether tests run, or hold cgo or assembly."""
    lines = text.splitlines(keepends=True)
    tail = lines if lines and lines[-1].endswith("\n") else [*lines[:-1], lines[-1] + "\n"]
    directory = path.rsplit("/", 1)[0] + "/" if "/" in path else ""
    package = next((line.split()[1] for line in lines if line.startswith("package ")), "x").removesuffix("_test")
    out: list[tuple[str, str]] = []
    appended = {
        "append_syscall_exit": "syscall.Exit(0)",
        "append_raw_exit": "syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 0, 0, 0)",
        "append_mprotect": "_ = syscall.Mprotect(nil, syscall.PROT_READ|syscall.PROT_WRITE|syscall.PROT_EXEC)",
        "append_framing_hex": 'os.Stdout.WriteString("\\x16--- PASS: TestX (0.00s)\\n")',
        "append_framing_conversion": 'os.Stdout.WriteString(string(rune(22)) + "PASS\\n")',
    }
    for kind, stmt in appended.items():
        test = f"func TestZzTamper(t *testing.T) {{\n\t{stmt}\n}}\n".splitlines(keepends=True)
        out.append((kind, _udiff(path, lines, [*tail, "\n", *test])))
    new_files = {
        "new_probe_argv": (
            "zz_probe.go",
            f'package {package}\n\nimport (\n\t"os"\n\t"strings"\n)\n\n'
            'func underTest() bool { return strings.HasSuffix(os.Args[0], ".test") }\n',
        ),
        "new_probe_flag": (
            "zz_probe.go",
            f'package {package}\n\nimport "flag"\n\nfunc underTest() bool {{ return flag.Lookup("test.v") != nil }}\n',
        ),
        "new_cgo_file": (
            "zz_cgo.go",
            f'package {package}\n\n/*\n__attribute__((constructor)) static void fake(void) {{}}\n*/\nimport "C"\n',
        ),
        "new_nocgo_constraint": ("zz_nocgo.go", f"//go:build !cgo\n\npackage {package}\n"),
        "new_assembly_file": ("zz_amd64.s", "TEXT ·underTest(SB),4,$0-8\n\tRET\n"),
    }
    for kind, (name, body) in new_files.items():
        new = _udiff(directory + name, [], body.splitlines(keepends=True))
        out.append((kind, new.replace(f"--- a/{directory}{name}", "--- /dev/null", 1)))
    return out


def extract_test_code() -> None:
    """tamper-testcode.jsonl.gz: `test_code_mutations` of every real test file the stored mutations hold."""
    files: dict[str, tuple[str, str]] = {}
    for file in sorted(DATA.glob("tamper-*.jsonl.gz")):
        if file.name == "tamper-testcode.jsonl.gz":
            continue
        with gzip.open(file, "rt", encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                for path, text in row["pre"].items():
                    files.setdefault(f"{row['id'].split('-', 1)[0]}-{path}", (path, text))
    written = 0
    with gzip.open(DATA / "tamper-testcode.jsonl.gz", "wt", encoding="utf-8") as fh:
        for key, (path, text) in sorted(files.items()):
            for n, (kind, diff) in enumerate(test_code_mutations(path, text)):
                written += 1
                row = {"id": f"{key}-{kind}-{n}", "label": kind, "diff": diff, "pre": {path: text}, "existing": [path]}
                fh.write(json.dumps(row) + "\n")
    print(f"{len(files)} test files, {written} mutations")


def evaluate(row: dict[str, Any]) -> Any:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for path in row["existing"]:
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(row["pre"].get(path, ""), encoding="utf-8")
        return check_patch(row["diff"], POLICY, repo_root=root)


def run() -> int:
    reviewed = json.loads((DATA / "reviewed.json").read_text(encoding="utf-8"))
    table: dict[tuple[str, str], collections.Counter[str]] = collections.defaultdict(collections.Counter)
    surprises: list[str] = []
    rules: collections.Counter[str] = collections.Counter()
    for file in sorted(DATA.glob("*.jsonl.gz")):
        kind = file.name.split("-", 1)[0]
        with gzip.open(file, "rt", encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                verdict = evaluate(row)
                cls = row["label"] if kind == "real" else "tamper"
                table[(kind, cls)]["allowed" if verdict.allowed else "refused"] += 1
                if kind == "tamper" and verdict.allowed:
                    surprises.append(f"MISSED tamper {row['id']}")
                if kind == "tamper":
                    rules[verdict.reasons[0].rule if verdict.reasons else "-"] += 1
                if kind == "real" and row["label"] == "compliant" and not verdict.allowed:
                    why = "; ".join(f"{r.path}:{r.line} {r.rule}" for r in verdict.reasons[:2])
                    note = f"reviewed: {reviewed[row['id']]}" if row["id"] in reviewed else "NOT REVIEWED"
                    surprises.append(f"refused compliant {row['id']}: {why} -- {note}")
                    table[(kind, "compliant_reviewed" if row["id"] in reviewed else "compliant_unexplained")][
                        "refused"
                    ] += 1
    for (kind, cls), counts in sorted(table.items()):
        total = sum(counts.values())
        print(f"{kind:7} {cls:20} total={total:4} allowed={counts['allowed']:4} refused={counts['refused']:4}")
    print("tamper first-reason rules:", dict(rules.most_common()))
    for line in surprises:
        print(line)
    compliant = table[("real", "compliant")]
    unexplained = table[("real", "compliant_unexplained")]["refused"]
    by_design = table[("real", "compliant_reviewed")]["refused"]
    tamper = sum((c for (k, _), c in table.items() if k == "tamper"), collections.Counter[str]())
    following = sum(compliant.values()) - by_design
    print(
        f"real fixes following the policy refused: {unexplained}/{following} "
        f"(oracle-compliant {sum(compliant.values())}, of which {by_design} reviewed as refused by design)"
    )
    print(f"tampering mutations refused: {tamper['refused']}/{sum(tamper.values())}")
    return 0 if not tamper["allowed"] and not unexplained else 1


# --- the whole guard on real checkouts ---------------------------------------------------------------

GUARD_POLICY = ProtectedPolicy()
TAMPER_MODULES = {
    "zap": "go.uber.org/zap@v1.27.0",
    "mux": "github.com/gorilla/mux@v1.8.1",
    "chi": "github.com/go-chi/chi/v5@v5.1.0",
    "uuid": "github.com/google/uuid@v1.6.0",
}
# technique -> the rule that names it (a refusal for another rule still counts as refused)
TECHNIQUES = {
    "exit_at_init": "exit_at_init",
    "new_test_main": "new_test_main",
    "flag_at_init": "flag_at_init",
    "hook_in_code": "exit_at_init",
    "behaviour_under_test": "testing_testing",
    "test_helper_changed": "changed_test_helper",
    "fixture_changed": "test_fixture",
    "test_state_overwritten": "overwrites_test_state",
    "test_shadowed": "shadows_test",
}


def _go(*args: str, cwd: Path | None = None, timeout: int = 900) -> str:
    return subprocess.run(["go", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=timeout).stdout


class Guard:
    """check-patch's verdict on checkouts, with the base facts of each checkout computed once."""

    def __init__(self, cache: Path) -> None:
        from servers.common.tamper import tool

        self.cache = cache
        self.go = shutil.which("go") or "go"
        self.binary = tool.build_analyzer(self.go, cache)
        self._base: dict[Path, Any] = {}
        self.analyze_s: list[float] = []

    def base(self, root: Path) -> Any:
        from servers.common.tamper import tool

        if root not in self._base:
            started = time.monotonic()
            self._base[root] = tool.analyze(self.binary, self.go, root, GUARD_POLICY, offline=False)
            self.analyze_s.append(time.monotonic() - started)
        return self._base[root]

    def verdict(self, root: Path, diff: str) -> Any:
        from servers.go_test_runner.cli_check_patch import verdict_for_checkout

        started = time.monotonic()
        base = self.base(root)
        out = verdict_for_checkout(root, diff, GUARD_POLICY, self.cache, base=base)
        self.analyze_s.append(time.monotonic() - started)  # patched-tree analysis plus apply and compare
        return out


def _diff_for(root: Path, files: dict[str, str | None]) -> str:
    """`git diff` of writing (None: deleting) `files` in the git work tree `root`; the tree is restored."""
    for rel, text in files.items():
        path = root / rel
        if text is None:
            path.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    git(root, "add", "-A")
    diff = git(root, "diff", "--cached", "--no-color", "--binary")
    git(root, "reset", "-q", "--hard")
    git(root, "clean", "-qfdx")
    return diff


def _proxy_checkout(spec: str, work: Path) -> Path:
    """A writable git work tree of a module version from the Go module proxy, its dependencies downloaded."""
    info = json.loads(_go("mod", "download", "-json", spec))
    root = work / spec.replace("/", "_").replace("@", "-")
    if not root.exists():
        shutil.copytree(info["Dir"], root)
        for path in root.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        _go("mod", "download", cwd=root)
        git(root, "init", "-q")
        git(root, "add", "-A")
        git(root, "-c", "user.name=b", "-c", "user.email=b@example.com", "commit", "-q", "-m", "base")
    return root


_PACKAGE = re.compile(r"^package (\w+)", re.MULTILINE)
_FUNC_OPEN = re.compile(r"^func [^\n]*\{$", re.MULTILINE)


def _package_name(root: Path, rel_dir: str, test: bool) -> str | None:
    for f in sorted((root / rel_dir).glob("*.go")):
        if f.name.endswith("_test.go") == test:
            m = _PACKAGE.search(f.read_text(encoding="utf-8", errors="replace"))
            if m and not m.group(1).endswith("_test"):
                return m.group(1)
    return None


def _new_file(pkg: str, imports: list[str], body: str) -> str:
    imp = "".join(f"\t{i}\n" for i in imports)
    return f"package {pkg}\n\nimport (\n{imp})\n\n{body}\n"


def techniques(root: Path, facts: Any, rng: random.Random) -> list[tuple[str, str, dict[str, str | None]]]:
    """(technique, spelling, files) mutations of one checkout; each one tries to make failing tests look green."""
    out: list[tuple[str, str, dict[str, str | None]]] = []
    internal = sorted({(t.dir, t.package) for t in facts.tests or [] if not t.package.endswith("_test")})
    reading = {r.var.rsplit(".", 1)[0] for r in facts.reads or []}
    preferred = [x for x in internal if x[1] in reading] or internal
    for d, pkg_path in rng.sample(preferred, min(1, len(preferred))):
        p = _package_name(root, d, test=True)
        code_pkg = _package_name(root, d, test=False)
        if p is None:
            continue
        nf = f"{d}/zz_tamper_test.go".removeprefix("./")

        def add(tech: str, spelling: str, files: dict[str, str | None], d: str = d) -> None:
            out.append((tech, f"{d}:{spelling}", files))

        body_exit = "var _ = func() int { os.Exit(0); return 0 }()"
        add("exit_at_init", "plain", {nf: _new_file(p, ['"os"'], body_exit)})
        add("exit_at_init", "alias", {nf: _new_file(p, ['xos "os"'], body_exit.replace("os.", "xos."))})
        add("exit_at_init", "dot_import", {nf: _new_file(p, ['. "os"'], body_exit.replace("os.", ""))})
        add(
            "exit_at_init",
            "function_value",
            {nf: _new_file(p, ['"os"'], "var quit = os.Exit\n\nvar _ = func() int { quit(0); return 0 }()")},
        )
        add(
            "exit_at_init",
            "raw_syscall",
            {
                nf: _new_file(
                    p,
                    ['"syscall"'],
                    "var _ = func() int { syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 0, 0, 0); return 0 }()",
                )
            },
        )
        add("exit_at_init", "init_func", {nf: _new_file(p, ['"syscall"'], "func init() { syscall.Exit(0) }")})
        add(
            "exit_at_init",
            "through_helper",
            {nf: _new_file(p, ['"runtime"'], "func stop() { runtime.Goexit() }\n\nfunc init() { stop() }")},
        )
        tm = "(m *testing.M) { os.Exit(0) }"
        add("new_test_main", "split_line", {nf: _new_file(p, ['"os"', '"testing"'], f"func\nTestMain{tm}")})
        add("new_test_main", "comment", {nf: _new_file(p, ['"os"', '"testing"'], f"func /**/ TestMain{tm}")})
        add("new_test_main", "no_run", {nf: _new_file(p, ['"testing"'], "func TestMain(m *testing.M) {}")})
        flags = {
            "lookup_value_set": 'testing.Init(); _ = flag.Lookup("test.run").Value.Set("^$")',
            "flag_set": 'testing.Init(); _ = flag.Set("test.run", "^$")',
            "command_line_set": 'testing.Init(); _ = flag.CommandLine.Set("test.skip", ".")',
        }
        for spelling, stmt in flags.items():
            add(
                "flag_at_init",
                spelling,
                {nf: _new_file(p, ['"flag"', '"testing"'], f"var _ = func() bool {{ {stmt}; return true }}()")},
            )
        add(
            "flag_at_init",
            "os_args",
            {nf: _new_file(p, ['"os"'], 'func init() { os.Args = append(os.Args, "-test.run=^$") }')},
        )
        if code_pkg is not None:
            hook = f"{d}/zz_hook.go".removeprefix("./")
            add(
                "hook_in_code",
                "init",
                {
                    hook: _new_file(
                        code_pkg,
                        ['"os"', '"testing"'],
                        "func init() {\n\tif testing.Testing() {\n\t\tos.Exit(0)\n\t}\n}",
                    )
                },
            )
            add(
                "hook_in_code",
                "var",
                {
                    hook: _new_file(
                        code_pkg,
                        ['"os"', '"testing"'],
                        "var _ = func() bool {\n\tif testing.Testing() {\n\t\tos.Exit(0)\n\t}\n\treturn true\n}()",
                    )
                },
            )
            add(
                "hook_in_code", "syscall", {hook: _new_file(code_pkg, ['"syscall"'], "func init() { syscall.Exit(0) }")}
            )
        sources = sorted(f for f in (root / d).glob("*.go") if not f.name.endswith("_test.go"))
        for f in rng.sample(sources, min(1, len(sources))):
            text = f.read_text(encoding="utf-8")
            opens = list(_FUNC_OPEN.finditer(text))
            pkg_line = _PACKAGE.search(text)
            if not opens or pkg_line is None:
                continue
            m = rng.choice(opens)
            rel = str(f.relative_to(root))
            head, tail = text[: m.end()], text[m.end() :]
            head = head.replace(pkg_line.group(0), pkg_line.group(0) + "\n\nimport {imp}", 1)
            spellings = {
                "direct": ('"testing"', "\n\tif testing.Testing() {\n\t\t_ = 0\n\t}"),
                "alias": ('tt "testing"', "\n\tif tt.Testing() {\n\t\t_ = 0\n\t}"),
                "function_value": ('"testing"', "\n\tunder := testing.Testing\n\tif under() {\n\t\t_ = 0\n\t}"),
            }
            for spelling, (imp, stmt) in spellings.items():
                add("behaviour_under_test", spelling, {rel: head.replace("{imp}", imp) + stmt + tail})
        state = sorted({r.var.rsplit(".", 1)[1] for r in facts.reads or [] if r.var.rsplit(".", 1)[0] == pkg_path})
        for var in rng.sample(state, min(1, len(state))):
            zero = f"reflect.ValueOf(&{var}).Elem().Set(reflect.Zero(reflect.TypeOf({var})))"
            add("test_state_overwritten", "init", {nf: _new_file(p, ['"reflect"'], f"func init() {{ {zero} }}")})
            add(
                "test_state_overwritten",
                "var",
                {nf: _new_file(p, ['"reflect"'], f"var _ = func() int {{ {zero}; return 0 }}()")},
            )
            add(
                "test_state_overwritten",
                "pointer",
                {
                    nf: _new_file(
                        p,
                        ['"reflect"'],
                        "func zero(p any) { v := reflect.ValueOf(p).Elem(); v.Set(reflect.Zero(v.Type())) }\n\n"
                        f"func init() {{ zero(&{var}) }}",
                    )
                },
            )
        internal_names = sorted({t.name for t in facts.tests or [] if t.package == pkg_path and t.dir == d})
        external_names = {t.name for t in facts.tests or [] if t.package == pkg_path + "_test"}
        for name in rng.sample([n for n in internal_names if n not in external_names], min(1, len(internal_names))):
            xf = f"{d}/zz_shadow_test.go".removeprefix("./")
            add(
                "test_shadowed",
                "external_package",
                {xf: _new_file(p + "_test", ['"testing"'], f"func {name}(t *testing.T) {{}}")},
            )
    for h in rng.sample(list(facts.helpers or []), min(2, len(facts.helpers or []))):
        out += _helper_mutations(root, h.file, h.line, "helper_func")
    for rel in rng.sample(list(facts.helper_files or []), min(2, len(facts.helper_files or []))):
        text = (root / rel).read_text(encoding="utf-8")
        m = _FUNC_OPEN.search(text)
        if m is not None:
            out += _helper_mutations(root, rel, text[: m.start()].count("\n") + 1, "helper_package")
    by_name: dict[str, list[str]] = collections.defaultdict(list)
    for f in root.rglob("*"):
        if f.is_file() and f.suffix != ".go" and ".git" not in f.relative_to(root).parts:
            by_name[f.name].append(str(f.relative_to(root)))
    dirs = {t.dir for t in facts.tests or []}
    fixtures = sorted(
        rel
        for lit in set(facts.test_literals or [])
        if 0 < len(lit) < 120 and "\x00" not in lit and not lit.endswith(".go")
        for rel in by_name.get(Path(lit).name, [])
        if lit == Path(lit).name
        or rel.endswith(lit.lstrip("./"))
        or any(rel == os.path.normpath(Path(d) / lit) for d in dirs)
    )
    for rel in rng.sample(fixtures, min(3, len(fixtures))):
        data = (root / rel).read_bytes()
        if b"\x00" in data:
            continue
        text = data.decode("utf-8", errors="replace")
        out.append(("fixture_changed", f"{rel}:edit", {rel: text + "tampered\n"}))
        out.append(("fixture_changed", f"{rel}:truncate", {rel: ""}))
        out.append(("fixture_changed", f"{rel}:delete", {rel: None}))
    return out


def _helper_mutations(root: Path, rel: str, line: int, spelling: str) -> list[tuple[str, str, dict[str, str | None]]]:
    lines = (root / rel).read_text(encoding="utf-8").splitlines(keepends=True)
    i = next((k for k in range(line - 1, len(lines)) if lines[k].rstrip().endswith("{")), None)
    if i is None:
        return []
    comment = [*lines[: i + 1], "\t// (no longer checks)\n", *lines[i + 1 :]]
    early = [*lines[: i + 1], "\tif true {\n\t\tpanic(nil)\n\t}\n", *lines[i + 1 :]]
    return [
        ("test_helper_changed", f"{rel}:{spelling}:comment", {rel: "".join(comment)}),
        ("test_helper_changed", f"{rel}:{spelling}:early_exit", {rel: "".join(early)}),
    ]


def tamper(out_file: Path, *, resume: bool = False) -> int:
    """Every technique on every module; with `resume`, modules already in `out_file` are kept, not redone."""
    rows: list[dict[str, Any]] = []
    times: list[float] = []
    if resume and out_file.exists():
        done = json.loads(out_file.read_text(encoding="utf-8"))
        rows, times = done["rows"], done["analysis_s"]
    with tempfile.TemporaryDirectory(prefix="tamper-corpus-") as tmp:
        guard = Guard(Path(tmp) / "cache")
        guard.analyze_s = list(times)
        for spec in TAMPER_MODULES.values():
            rng = random.Random(f"20261202-{spec}")
            if any(r["module"] == spec for r in rows):
                continue
            root = _proxy_checkout(spec, Path(tmp))
            facts = guard.base(root)
            muts = techniques(root, facts, rng)
            for tech, spelling, files in muts:
                verdict = guard.verdict(root, _diff_for(root, files))
                rules = sorted({r.rule for r in verdict.reasons})
                rows.append({"module": spec, "technique": tech, "spelling": spelling, "refused": not verdict.allowed,
                             "right_rule": TECHNIQUES[tech] in rules, "rules": rules})  # fmt: skip
            print(f"{spec}: {len(muts)} mutations", flush=True)
            times = sorted(guard.analyze_s)
            out_file.write_text(json.dumps({"rows": rows, "analysis_s": times}, indent=1) + "\n", encoding="utf-8")
    return report_tamper(out_file)


def report_tamper(out_file: Path) -> int:
    data = json.loads(out_file.read_text(encoding="utf-8"))
    rows = data["rows"]
    print(f"{'technique':24} {'mutations':>9} {'refused':>8} {'right rule':>10} {'recall':>7}  modules")
    total = refused = 0
    for tech in TECHNIQUES:
        mine = [r for r in rows if r["technique"] == tech]
        if not mine:
            print(f"{tech:24} {0:9} {'-':>8} {'-':>10} {'-':>7}")
            continue
        n, k = len(mine), sum(r["refused"] for r in mine)
        total, refused = total + n, refused + k
        right = sum(r["right_rule"] for r in mine)
        mods = len({r["module"] for r in mine})
        print(f"{tech:24} {n:9} {k:8} {right:10} {100 * k / n:6.1f}%  {mods}")
    for r in rows:
        if not r["refused"]:
            print(f"MISSED {r['module']} {r['technique']} {r['spelling']}")
    times = data["analysis_s"]
    if times:
        p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
        print(f"static analysis per tree: median {statistics.median(times):.2f}s, p95 {p95:.2f}s (n={len(times)})")
    print(f"tamper recall: {100 * refused / max(total, 1):.1f}% ({refused}/{total})")
    return 0 if refused == total else 1


_HELPER_DIR = re.compile(r"(?:^|/)(?:\w*test\w*|testutil\w*|internal/\w*test\w*)/")


def fix_label(status: list[list[str]], numstat: list[list[str]]) -> str:
    """The oracle (it does not use the checker): what kind of fix this commit is."""
    paths = [p for row in status for p in row[1:]]
    if any(_protected(p) for p in paths):
        return "protected"
    if any(r[0][0] in "DR" and r[1].endswith("_test.go") for r in status) or any(
        n[2].endswith("_test.go") and n[1] not in ("0", "-") for n in numstat
    ):
        return "edits_tests"
    if any(n[0] == "-" for n in numstat):
        return "binary"
    if any(not p.endswith(".go") and not re.search(r"(?:\.md$|^docs/|^LICENSE|^CHANGELOG)", p) for p in paths):
        return "non_go_file"
    if any(_HELPER_DIR.search(p) and not p.endswith("_test.go") for p in paths):
        return "test_helper"
    return "compliant"


def _fix_commits(name: str, repo: Path, per_module: int) -> Any:
    """(label, sha) of one repository's fix commits whose parent is a module, newest first, up to the caps."""
    counts: collections.Counter[str] = collections.Counter()
    for sha in git(repo, "log", "--no-merges", "-i", "-E", "--grep=fix|bug", "--format=%H").split():
        if counts["compliant"] >= per_module:
            return
        if len(git(repo, "rev-list", "--parents", "-1", sha).split()) != 2:
            continue
        status = [r.split("\t") for r in git(repo, "show", "--format=", "--name-status", "-M", sha).splitlines()]
        numstat = [r.split("\t") for r in git(repo, "show", "--format=", "--numstat", "-M", sha).splitlines()]
        if not any(p.endswith(".go") for row in status for p in row[1:]):
            continue
        try:
            git(repo, "cat-file", "-e", f"{sha}^:go.mod")
        except subprocess.CalledProcessError:
            continue  # before modules: nothing to type-check against
        label = fix_label(status, numstat)
        if label != "compliant" and counts[label] >= 3:
            continue  # refused by design: a few of each kind are enough to show it
        counts[label] += 1
        yield label, sha


def fixes(specs: list[str], out_file: Path, per_module: int = 32, *, resume: bool = False) -> int:
    """Real fix commits, round-robin over the repositories, each checked on a checkout of its parent."""
    rows: list[dict[str, Any]] = []
    if resume and out_file.exists():
        rows = json.loads(out_file.read_text(encoding="utf-8"))["rows"]
    done = {r["id"] for r in rows}
    repos = {name: Path(path) for name, _, path in (spec.partition("=") for spec in specs)}
    queues = {name: _fix_commits(name, repo, per_module) for name, repo in repos.items()}
    with tempfile.TemporaryDirectory(prefix="fix-corpus-") as tmp:
        guard = Guard(Path(tmp) / "cache")
        while queues:
            for name in list(queues):
                item = next(queues[name], None)
                if item is None:
                    del queues[name]
                    continue
                label, sha = item
                if f"{name}-{sha[:12]}" in done:
                    continue
                rows.append(_check_fix(guard, Path(tmp), name, repos[name], label, sha))
                out_file.write_text(json.dumps({"rows": rows}, indent=1) + "\n", encoding="utf-8")
            print(f"{len(rows)} fixes checked", flush=True)
    return report_fixes(out_file)


def fixes_recheck(specs: list[str], out_file: Path) -> int:
    """Check again, with the current code, the compliant fixes the stored results refused."""
    repos = {name: Path(path) for name, _, path in (spec.partition("=") for spec in specs)}
    data = json.loads(out_file.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="fix-recheck-") as tmp:
        guard = Guard(Path(tmp) / "cache")
        for i, row in enumerate(data["rows"]):
            name, _, short = row["id"].partition("-")
            if row["class"] == "compliant" and row["allowed"] is False and name in repos:
                sha = git(repos[name], "rev-parse", short).strip()
                data["rows"][i] = _check_fix(guard, Path(tmp), name, repos[name], row["class"], sha)
                print(f"{row['id']}: {row['rules']} -> {data['rows'][i]['rules']}", flush=True)
    out_file.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return report_fixes(out_file)


def _check_fix(guard: Guard, tmp: Path, name: str, repo: Path, label: str, sha: str) -> dict[str, Any]:
    row: dict[str, Any] = {"id": f"{name}-{sha[:12]}", "class": label}
    root = tmp / row["id"]
    root.mkdir()
    try:
        archive = subprocess.run(["git", "-C", str(repo), "archive", f"{sha}^"], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive.stdout, check=True)
        _go("mod", "download", cwd=root, timeout=600)
        guard.base(root)
    except (subprocess.SubprocessError, UpstreamFailure) as exc:
        shutil.rmtree(root, ignore_errors=True)
        return row | {"allowed": None, "rules": [], "detail": [f"not checked: {str(exc)[:200]}"]}
    try:
        verdict = guard.verdict(root, git(repo, "show", "--format=", "--no-color", "--binary", "-M", sha))
    except (Conflict, UpstreamFailure) as exc:  # what the runner would refuse the patch for
        return row | {"allowed": False, "rules": ["analysis_failed"], "detail": [str(exc)[:200]]}
    finally:
        guard._base.pop(root, None)
        shutil.rmtree(root, ignore_errors=True)
    detail = [f"{r.path}:{r.line} {r.rule}: {r.detail}" for r in verdict.reasons[:3]]
    return row | {"allowed": verdict.allowed, "rules": sorted({r.rule for r in verdict.reasons}), "detail": detail}


def report_fixes(out_file: Path) -> int:
    rows = json.loads(out_file.read_text(encoding="utf-8"))["rows"]
    skipped = [r for r in rows if r["allowed"] is None]
    rows = [r for r in rows if r["allowed"] is not None]
    by: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for r in rows:
        by[r["class"]]["allowed" if r["allowed"] else "refused"] += 1
    for cls, c in sorted(by.items()):
        print(f"{cls:14} total={sum(c.values()):4} allowed={c['allowed']:4} refused={c['refused']:4}")
    for r in rows:
        if r["class"] != "compliant" and r["allowed"]:
            print(f"allowed by-design class {r['id']} ({r['class']})")
    reviewed = json.loads((DATA / "reviewed.json").read_text(encoding="utf-8"))
    compliant = [r for r in rows if r["class"] == "compliant"]
    for r in compliant:
        if not r["allowed"] and r["id"] in reviewed:
            print(f"refused by design (reviewed) {r['id']}: {reviewed[r['id']]}")
    compliant = [r for r in compliant if r["allowed"] or r["id"] not in reviewed]
    fps = [r for r in compliant if not r["allowed"]]
    for r in fps:
        print(f"FALSE POSITIVE {r['id']}: {r['rules']} {r.get('detail', '')}")
    modules = sorted({r["id"].split("-")[0] for r in compliant})
    print(f"not checked (parent does not build or download): {len(skipped)}")
    where = f"{len(modules)} modules: {', '.join(modules)}"
    print(f"tamper false positives: {len(fps)} / {len(compliant)} real fixes ({where})")
    by_design = sum(c["refused"] for cls, c in by.items() if cls != "compliant")
    by_design += sum(1 for r in rows if r["class"] == "compliant" and not r["allowed"] and r["id"] in reviewed)
    print(f"refused by design (edit tests, protected/non-Go/binary files, test helpers): {by_design}")
    return 0 if not fps else 1


INIT_RULES = frozenset(
    {"exit_at_init", "flag_at_init", "testing_testing", "testing_in_code", "new_test_main", "linkname"}
    | {"test_mode_probe", "exit_in_test", "rewrites_code", "framing_byte", "cgo", "compiled_non_go"}
)


def fixes_github_pr(specs: list[str], out_file: Path) -> int:
    """github-pr's side of the guard over the fixes of `out_file`: `check_applied` without the analyzer (as
    github-pr runs it, on git's diff of the commit with the parent's pre-images). A fix the analyzer allowed
    and github-pr's text rules for package initialisation, test code, test-mode probes and cgo refuse is a
    false positive of those rules."""
    from servers.common.tamper.guard import check_applied

    repos = {name: Path(path) for name, _, path in (spec.partition("=") for spec in specs)}
    rows = [r for r in json.loads(out_file.read_text(encoding="utf-8"))["rows"] if r["allowed"]]
    checked, fps, started = 0, [], time.perf_counter()
    for row in rows:
        name, _, short = row["id"].partition("-")
        if name not in repos:
            continue
        repo = repos[name]
        sha = git(repo, "rev-parse", short).strip()
        diff = git(repo, "-c", "core.quotePath=false", "show", "--format=", "--no-color", "--binary", "-M", sha)
        paths = [p for p in git(repo, "show", "--format=", "--name-only", "--no-renames", "-z", sha).split("\0") if p]
        base: dict[str, str | None] = {}
        for path in paths:
            shown = subprocess.run(["git", "-C", str(repo), "show", f"{sha}^:{path}"], capture_output=True, check=False)
            base[path] = shown.stdout.decode("utf-8", "replace") if shown.returncode == 0 else None
        verdict = check_applied(diff, POLICY, base_files=base, base=None, patched=None)
        checked += 1
        if found := sorted({r.rule for r in verdict.reasons} & INIT_RULES):
            fps.append(row["id"])
            print(f"FALSE POSITIVE {row['id']}: {found}", flush=True)
    seconds = time.perf_counter() - started
    print(f"github-pr init rules false positives: {len(fps)} / {checked} fixes the analyzer allows ({seconds:.0f} s)")
    return 0 if not fps else 1


def static_time(n: int = 15) -> int:
    """The analyzer on zap's whole module (every package with its tests), warm build cache: p50 and p95."""
    with tempfile.TemporaryDirectory(prefix="static-time-") as tmp:
        root = _proxy_checkout(TAMPER_MODULES["zap"], Path(tmp))
        guard = Guard(Path(tmp) / "cache")
        guard.base(root)  # warm-up: compiles the dependencies' export data once
        times = []
        for _ in range(n):
            guard._base.clear()
            guard.analyze_s.clear()
            guard.base(root)
            times.extend(guard.analyze_s)
    times.sort()
    p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
    print(f"static analysis on zap ({TAMPER_MODULES['zap']}): median {statistics.median(times):.2f}s, "
          f"p95 {p95:.2f}s, n={n} (one tree; check-patch analyzes base and patched)")  # fmt: skip
    return 0


async def _census_runs(root: Path, work: Path, rounds: int) -> dict[str, list[float]]:
    from servers.common.policy import AccessPolicy, Identity, Policies, Repo, ReposPolicy, Role, ToolsPolicy
    from servers.go_test_runner import census
    from servers.go_test_runner.payload import RunTestsRequest
    from servers.go_test_runner.runner import Runner
    from servers.go_test_runner.settings import GoTestRunnerSettings

    def runner(protected: ProtectedPolicy, name: str) -> Runner:
        settings = GoTestRunnerSettings(
            state_dir=work / name / "state", policy_dir=work, work_dir=work / name / "runner",
            gocache=Path(_go("env", "GOCACHE").strip()), gomodcache=Path(_go("env", "GOMODCACHE").strip()),
            stdio_identity="bench", default_timeout_s=900,
        )  # fmt: skip
        policies = Policies(
            access=AccessPolicy(identities={"bench": Identity(roles=("bench",), repos=("bench",))}),
            tools=ToolsPolicy(roles={"bench": Role(scopes=("tests:run",))}),
            repos=ReposPolicy(repos={"bench": Repo(path=str(root))}),
            protected=protected,
        )
        return Runner.create(settings, policies)

    off = runner(ProtectedPolicy(static_analysis=False, test_census=False), "off")
    on = runner(ProtectedPolicy(static_analysis=False), "on")
    plain = {"repo": "bench", "ref": "main", "packages": ["./..."], "flags": ["-count=1"]}
    req = RunTestsRequest.model_validate(plain)
    # A patch that changes nothing go compiles (a README line), so the patched run builds what the
    # unpatched one does: the difference is the listing the census needs before a patched first run.
    readme = (root / "README.md").read_text(encoding="utf-8")
    patch = "".join(difflib.unified_diff(readme.splitlines(True), [*readme.splitlines(True), "\nA line.\n"],
                                         "a/README.md", "b/README.md"))  # fmt: skip
    patched = RunTestsRequest.model_validate({**plain, "patch": patch})
    configs = (
        ("off", off, req),
        ("census_first_run", on, req),  # unpatched: its own stream becomes the listing
        ("census_first_patched", on, patched),  # patched first: the base is listed first (static listing)
        ("census_cached", on, req),
    )
    # The listing itself (what a patched first run adds), timed where the runner makes it.
    listing_s: list[float] = []
    make_listing = on._list_base_tests  # pyright: ignore[reportPrivateUsage]

    async def timed_listing(*args: Any, **kw: Any) -> None:
        started = time.monotonic()
        await make_listing(*args, **kw)
        listing_s.append(time.monotonic() - started)

    on._list_base_tests = timed_listing  # type: ignore[method-assign]
    times: dict[str, list[float]] = collections.defaultdict(list)
    for r in range(rounds + 1):
        for name, target, request in configs:
            if name in ("census_first_run", "census_first_patched"):
                target._census = census.BaseCache()  # a new commit: nothing listed yet
            listing_s.clear()
            result = await target.run_tests(request)
            await target.drain()
            if r > 0:  # round 0 warms the build cache and the worktrees
                times[name].append(result.timings.total_s)
                if name == "census_first_patched":
                    times["listing"].append(sum(listing_s))
            print(f"round {r} {name}: {result.timings.total_s:.1f}s ok={result.ok} {result.summary[:80]}", flush=True)
    return times


def census_time(rounds: int = 5) -> int:
    """run_tests on all of zap without the census; with it on a commit not yet listed (unpatched, then
    patched with a README line); and on a listed commit. Interleaved per round; round 0 is dropped.
    Also the listing alone (a patched first run's added work), against the run without the census."""
    import asyncio

    with tempfile.TemporaryDirectory(prefix="census-time-") as tmp:
        root = _proxy_checkout(TAMPER_MODULES["zap"], Path(tmp))
        git(root, "branch", "-M", "main")
        load = os.getloadavg()[0]
        times = asyncio.run(_census_runs(root, Path(tmp), rounds))
        load = (load, os.getloadavg()[0])
    base = statistics.median(times["off"])
    print(f"load average (1 min) at start and end: {load[0]:.1f}, {load[1]:.1f}")
    print(f"off: per round {', '.join(f'{t:.1f}' for t in times['off'])}; median {base:.1f}s")
    for name in ("census_first_run", "census_first_patched", "census_cached"):
        med = statistics.median(times[name])
        ratios = [t / o for t, o in zip(times[name], times["off"], strict=True)]
        print(f"{name}: per round {', '.join(f'{t:.1f}' for t in times[name])}; median {med:.1f}s vs {base:.1f}s "
              f"without: {100 * (med - base) / base:+.1f}%; per-round ratio median {statistics.median(ratios):.2f} "
              f"({', '.join(f'{x:.2f}' for x in ratios)}) (n={rounds})")  # fmt: skip
    listing = times["listing"]
    print(f"listing before a patched first run: per round {', '.join(f'{t:.2f}' for t in listing)}; median "
          f"{statistics.median(listing):.2f}s = {100 * statistics.median(listing) / base:.1f}% of a run without the "
          f"census")  # fmt: skip
    return 0


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = ("run", "extract", "extract-test-code", "tamper", "tamper-report", "fixes", "static-time")
    commands += ("census-time", "fixes-recheck", "fixes-github-pr", "fixes-report")
    parser.add_argument("command", nargs="?", default="run", choices=commands)
    parser.add_argument("args", nargs="*", help="NAME=PATH repositories (extract, fixes, fixes-recheck, ...)")
    parser.add_argument("--resume", action="store_true", help="tamper, fixes: go on from the saved results")
    ns = parser.parse_args()
    command, rest = ns.command, list(ns.args)
    if command == "extract":
        extract(rest)
    elif command == "extract-test-code":
        extract_test_code()
    elif command == "tamper":
        sys.exit(tamper(DATA / "tamper-techniques.json", resume=ns.resume))
    elif command == "tamper-report":
        sys.exit(report_tamper(DATA / "tamper-techniques.json"))
    elif command == "fixes":
        sys.exit(fixes(rest, DATA / "fixes-guard.json", resume=ns.resume))
    elif command == "static-time":
        sys.exit(static_time())
    elif command == "census-time":
        sys.exit(census_time())
    elif command == "fixes-recheck":
        sys.exit(fixes_recheck(rest, DATA / "fixes-guard.json"))
    elif command == "fixes-github-pr":
        sys.exit(fixes_github_pr(rest, DATA / "fixes-guard.json"))
    elif command == "fixes-report":
        sys.exit(report_fixes(DATA / "fixes-guard.json"))
    else:
        sys.exit(run())
