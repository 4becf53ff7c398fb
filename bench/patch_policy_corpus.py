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

It also writes tampering mutations of real test files from each repository's HEAD.
`run` prints, per class, how many patches were allowed/refused, and every surprise.
"""

from __future__ import annotations

import collections
import difflib
import gzip
import json
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "extract":
        extract(sys.argv[2:])
    else:
        sys.exit(run())
