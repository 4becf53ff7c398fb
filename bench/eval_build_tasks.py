"""Build eval tasks from real bug-fix commits of a public Go module's git history.

    python bench/eval_build_tasks.py --git MIRROR_DIR --out tasks.jsonl [--max 10] [--since 2019-01-01]

For each non-merge commit C whose message reads like a fix and whose diff touches both non-test Go
code and `_test.go` files (nothing else but docs), with parent P:
  1. the base is the newest release tag before C, downloaded from the Go module proxy
     (`go mod download MOD@TAG`, checked against the checksum database) — the task's `version`;
  2. C's diff is split into the test patch (`_test.go`, testdata) and the gold fix (the rest);
     both must apply to the release (commits after it may have moved the code: those are skipped);
  3. `go test -json` runs on the touched packages with only the test patch, then with both;
     fail-to-pass are the top-level tests that fail (or do not build) before and pass after,
     pass-to-pass the ones that pass both times (sorted; tests that flip are dropped);
  4. the gold functions are the `func` declarations enclosing the fix's changed lines.
The commit is kept only when at least one test goes from failing to passing. Test code runs on the
host here (public, well-known modules); the harness itself runs every task through go-test-runner.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import anyio

from agent.eval.tasks import Task, TestRef
from agent.eval.workspace import WorkspaceError, download_module, materialize_module

FIX_WORDS = re.compile(r"\b(fix(e[sd])?|bug|panic|crash|incorrect|wrong|broken|regression|race|leak)\b", re.I)
MAX_FIX_LINES = 80
MAX_TEST_LINES = 600
MAX_F2P = 12
GO_ENV = {"GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod -buildvcs=false"}


def sh(*argv: str, cwd: Path | None = None, check: bool = True, timeout: float = 300) -> str:
    return subprocess.run(
        argv, cwd=cwd, check=check, capture_output=True, text=True, timeout=timeout, env=os.environ | GO_ENV
    ).stdout


def is_test_path(path: str) -> bool:
    return path.endswith("_test.go") or "/testdata/" in f"/{path}"


def split_diff(diff: str) -> dict[str, str]:
    """Per-file sections of a `git diff` output, keyed by the b/ path."""
    parts: dict[str, str] = {}
    for section in re.split(r"(?m)^(?=diff --git )", diff):
        m = re.match(r"diff --git a/(\S+) b/(\S+)", section)
        if m:
            parts[m.group(2)] = section
    return parts


def changed_lines(section: str) -> int:
    return sum(1 for line in section.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---")))


def gold_functions(repo: Path, sha: str, sections: dict[str, str]) -> list[str]:
    """`file:Func` (or `file:Type.Method`) for each func declaration enclosing a changed line of the fix."""
    found: set[str] = set()
    for path, section in sections.items():
        try:
            text = sh("git", "--git-dir", str(repo), "show", f"{sha}:{path}")
        except subprocess.CalledProcessError:
            continue
        lines = text.splitlines()
        for hunk in re.finditer(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@", section, re.M):
            start, count = int(hunk.group(1)), int(hunk.group(2) or 1)
            for n in range(start, start + max(count, 1)):
                for k in range(min(n, len(lines)) - 1, -1, -1):
                    m = re.match(r"func (?:\(\w*\s*\*?(\w+)(?:\[[^\]]*\])?\) )?(\w+)", lines[k])
                    if m:
                        found.add(f"{path}:{m.group(1) + '.' if m.group(1) else ''}{m.group(2)}")
                        break
                    if k < n - 1 and lines[k].startswith("}"):
                        break  # a changed line between declarations
    return sorted(found)


def run_tests(work: Path, packages: list[str]) -> tuple[dict[tuple[str, str], str], set[str]]:
    """Top-level test outcomes {(package dir, Test): pass|fail|skip} and packages that did not build."""
    proc = subprocess.run(
        ["go", "test", "-json", "-count=1", "-timeout=240s", *packages],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=400,
        env=os.environ | GO_ENV,
        check=False,
    )
    module = sh("go", "list", "-m", cwd=work).strip()
    outcomes: dict[tuple[str, str], str] = {}
    failed_pkgs: set[str] = set()
    for line in proc.stdout.splitlines():
        try:
            ev = json.loads(line)
        except json.JSONDecodeError:
            continue
        pkg = "./" + ev.get("Package", "").removeprefix(module).lstrip("/")
        pkg = "." if pkg == "./" else pkg
        test = ev.get("Test")
        action = ev.get("Action")
        if test and "/" not in test and action in ("pass", "fail", "skip"):
            outcomes[(pkg, test)] = action
        if not test and action == "fail":
            failed_pkgs.add(pkg)
    ran = {p for p, _ in outcomes}
    return outcomes, {p for p in failed_pkgs if p not in ran}


def build_task(mirror: Path, module_hint: str, sha: str, scratch: Path) -> Task | None:
    parent = sh("git", "--git-dir", str(mirror), "rev-parse", f"{sha}^").strip()
    try:
        # The module proxy serves released versions: the base is the newest release before the fix.
        tag = sh("git", "--git-dir", str(mirror), "describe", "--tags", "--abbrev=0", "--match=v*", parent).strip()
        base = sh("git", "--git-dir", str(mirror), "rev-parse", f"{tag}^{{commit}}").strip()
        gomod = sh("git", "--git-dir", str(mirror), "show", f"{base}:go.mod")
    except subprocess.CalledProcessError:
        return None
    m = re.search(r"^module\s+(\S+)", gomod, re.M)
    if not m or not m.group(1).startswith(module_hint):
        return None
    module = m.group(1)
    diff = sh("git", "--git-dir", str(mirror), "diff", "--no-color", "--no-ext-diff", "--binary", parent, sha)
    sections = split_diff(diff)
    tests = {p: s for p, s in sections.items() if is_test_path(p)}
    fix = {p: s for p, s in sections.items() if p.endswith(".go") and not is_test_path(p)}
    other = [p for p in sections if p not in tests and p not in fix and not p.endswith(".md")]
    if not tests or not fix or other or "GIT binary patch" in diff:
        return None
    if any("/" in p.split("/", 1)[0] or p.startswith(("internal/cmd", "cmd/", "gen")) for p in fix):
        return None
    if sum(changed_lines(s) for s in fix.values()) > MAX_FIX_LINES:
        return None
    if sum(changed_lines(s) for s in tests.values()) > MAX_TEST_LINES:
        return None
    try:
        version = anyio.run(download_module, module, tag)
    except WorkspaceError as exc:
        print(f"  skip {sha[:12]}: {exc}", file=sys.stderr)
        return None
    test_patch = "".join(tests.values())
    gold_patch = "".join(fix.values())
    packages = sorted({"./" + str(Path(p).parent) if "/" in p else "." for p in tests if p.endswith("_test.go")})
    packages = [p.replace("./.", ".") for p in packages]
    if not packages:
        return None
    work = scratch / sha[:12]
    shutil.rmtree(work, ignore_errors=True)
    try:
        anyio.run(lambda: materialize_module(module, version, work, test_patch=test_patch))
    except WorkspaceError as exc:
        print(f"  skip {sha[:12]}: {exc}", file=sys.stderr)
        return None
    before, broken = run_tests(work, packages)
    applied = subprocess.run(
        ["git", "apply", "-"], cwd=work, input=gold_patch, text=True, capture_output=True, timeout=60, check=False
    )
    if applied.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        return None
    after, broken_after = run_tests(work, packages)
    shutil.rmtree(work, ignore_errors=True)
    if broken_after:
        return None
    added = set(re.findall(r"(?m)^\+func (Test\w+)\(", test_patch))
    added |= set(re.findall(r"(?m)^@@[^@]*@@ func (Test\w+)\(", test_patch))
    f2p, p2p = [], []
    for (pkg, test), status in sorted(after.items()):
        if status != "pass":
            continue
        was = before.get((pkg, test))
        if was == "fail" or (was is None and pkg in broken and test in added):
            f2p.append(TestRef(package=pkg, test=test))
        elif was == "pass":
            p2p.append(TestRef(package=pkg, test=test))
    if not f2p or len(f2p) > MAX_F2P:
        return None
    message = sh("git", "--git-dir", str(mirror), "log", "-1", "--format=%B", sha).strip()
    name = module.rsplit("/", 2)
    slug = re.sub(r"[^A-Za-z0-9._-]", "-", "-".join(n for n in name[-2:] if not re.fullmatch(r"v\d+", n)))
    return Task(
        instance_id=f"{slug}-{sha[:12]}",
        module=module,
        version=version,
        base_commit=base,
        fix_commit=sha,
        problem_statement=message,
        test_patch=test_patch,
        gold_patch=gold_patch,
        fail_to_pass=f2p,
        pass_to_pass=p2p,
        gold_functions=gold_functions(mirror, sha, fix),
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--git", type=Path, required=True, help="a git directory (bare mirror or .git) with history")
    ap.add_argument("--module", required=True, help="module path prefix, e.g. golang.org/x/text")
    ap.add_argument("--out", type=Path, required=True, help="JSONL to append to")
    ap.add_argument("--max", type=int, default=8)
    ap.add_argument("--since", default="2019-01-01")
    ap.add_argument("--skip", default="", help="comma-separated commit prefixes to skip")
    args = ap.parse_args()
    skip = tuple(s for s in args.skip.split(",") if s)
    log = sh(
        "git", "--git-dir", str(args.git), "log", "--no-merges", f"--since={args.since}", "--format=%H%x00%s", "HEAD"
    )
    have = set()
    if args.out.exists():
        have = {json.loads(line)["fix_commit"] for line in args.out.read_text().splitlines() if line.strip()}
    kept = 0
    with tempfile.TemporaryDirectory() as tmp:
        for entry in log.splitlines():
            sha, _, subject = entry.partition("\0")
            if kept >= args.max:
                break
            if sha in have or sha.startswith(skip) or not FIX_WORDS.search(subject):
                continue
            task = build_task(args.git, args.module, sha, Path(tmp))
            if task is None:
                continue
            print(f"kept {task.instance_id}: {subject[:70]} ({len(task.fail_to_pass)} f2p)", flush=True)
            with args.out.open("a", encoding="utf-8") as fh:
                fh.write(task.model_dump_json() + "\n")
            have.add(sha)
            kept += 1
    print(f"{kept} task(s) written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
