"""Build the bug-localization set for benchmark 5 from real Go history.

    .venv/bin/python bench/code_search_bugs_build.py [--per-repo 45]

For each repository (full history: a bare mirror in $GORESOLVE_MIRRORS/<owner>+<name>/repo, or a
clone made here from GitHub) it keeps non-merge commits whose message says they fix something
(fix/bug/panic/race/crash/leak/deadlock/nil pointer/wrong/incorrect) and are not chores (typos,
docs, lint, CI, deps, tests only), that change 1-4 non-test .go files (outside vendor/testdata/
examples) and at most 150 lines. Gold = those files, and the functions/methods of the parent
commit whose lines the fix touched (from the -U0 hunks). Query = the commit message (subject +
body, trailers and PR numbers dropped) with every changed identifier removed: the gold functions'
names and their receiver types (as words, plurals, and parts of CamelCase/snake code words such as
TestRouteMatch) and the gold files' paths. The raw message is kept too.
Output: bench/data/code_search/bugs.jsonl, in date order.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
from pathlib import Path

from code_search_common import WORK

from servers.code_search.chunker import GoChunker, GoOptions
from servers.code_search.model import split_identifier

REPOS = ["gorilla/mux", "sirupsen/logrus", "spf13/viper", "etcd-io/bbolt", "uber-go/zap"]
OUT = Path(__file__).resolve().parent / "data" / "code_search" / "bugs.jsonl"
FIX = re.compile(r"\b(fix(e[sd])?|bug|panic|race|crash|leak|deadlock|nil pointer|wrong|incorrect|broken)\b", re.I)
CHORE = re.compile(
    r"\b(typo|spelling|docs?|readme|lint(er|ers|ing)?|golangci|ci|travis|deps|bump|go\.mod|changelog|comment|"
    r"example|test(s|ing)? only|fix(ed)? tests?|flaky|vet|gofmt|license|revert|badge)\b",
    re.I,
)
TRAILER = re.compile(r"^(signed-off-by|co-authored-by|reviewed-by|change-id|cc):.*$", re.I | re.M)
HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@", re.M)


def mirror(full: str, mirrors: Path | None = None) -> Path:
    """The bare git directory of `full` (owner/name): a mirror under `mirrors` or $GORESOLVE_MIRRORS
    (`owner+name/repo` or `owner+name`), else a bare clone made once in the bench cache."""
    slug = full.replace("/", "+")
    for base in [p for p in (mirrors, os.environ.get("GORESOLVE_MIRRORS")) if p]:
        for candidate in (Path(base) / slug / "repo", Path(base) / slug):
            if (candidate / "HEAD").exists() or (candidate / ".git").exists():
                return candidate
    target = WORK / "mirrors" / slug
    if not (target / "HEAD").exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["git", "clone", "-q", "--bare", f"https://github.com/{full}", str(target)], check=True, timeout=3600
        )
    return target


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, errors="replace"
    ).stdout


def wanted_file(path: str) -> bool:
    parts = path.split("/")
    skip = {"vendor", "testdata", "example", "examples", "_examples", "benchmarks", "internal/tools"}
    return path.endswith(".go") and not path.endswith("_test.go") and not skip & set(parts[:-1])


def touched_functions(repo: Path, parent: str, commit: str, path: str) -> list[str]:
    """Functions/methods of `path` at `parent` whose lines the fix removed or changed (or inserted into)."""
    diff = git(repo, "diff", "-U0", parent, commit, "--", path)
    ranges = []
    for start, count in HUNK.findall(diff):
        a, n = int(start), int(count or 1)
        ranges.append((a, a + n - 1) if n else (a, a + 1))
    try:
        source = git(repo, "show", f"{parent}:{path}").encode()
    except subprocess.CalledProcessError:
        return []  # a new file: no function existed before the fix
    units = GoChunker(GoOptions(max_tokens=10**9)).chunk(path, source) or []
    hit = []
    for unit in units:
        code_start = unit.start_line + (unit.doc.count("\n") + 1 if unit.doc else 0)
        if unit.kind in ("func", "method") and any(lo <= unit.end_line and hi >= code_start for lo, hi in ranges):
            hit.append(unit.symbol)
    return sorted(set(hit))


def strip_identifiers(text: str, names: set[str], paths: list[str]) -> str:
    """Drop every mention of a changed identifier: the word itself (or its plural), a code word that
    contains it as a CamelCase/snake part sequence (TestRouteMatch for Match), and the changed files' paths."""
    lowered = {n.lower() for n in names if len(n) > 1}
    parts = [split_identifier(n) for n in names if len(n) > 1]
    for path in paths:
        text = text.replace(path, "").replace(Path(path).name, "")

    def keep(match: re.Match[str]) -> str:
        word = match.group(0)
        low = word.lower()
        if low in lowered or low.rstrip("s") in lowered or low.removesuffix("es") in lowered:
            return ""
        pieces = split_identifier(word)
        if len(pieces) > 1 and any(_contains(pieces, p) for p in parts if p):
            return ""
        return word

    out = re.sub(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*", keep, text)
    return re.sub(r"[ \t]+", " ", out).strip()


def _contains(seq: list[str], sub: list[str]) -> bool:
    return any(seq[i : i + len(sub)] == sub for i in range(len(seq) - len(sub) + 1))


def message(raw: str) -> str:
    text = TRAILER.sub("", raw)
    text = re.sub(r"\(#\d+\)|#\d+", "", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def candidates(full: str, repo: Path, per_repo: int) -> list[dict[str, object]]:
    name = full.split("/")[1]
    log = git(repo, "log", "--no-merges", "--format=%H%x00%P%x00%at%x00%B%x1e", "HEAD")
    out: list[dict[str, object]] = []
    for record in log.split("\x1e"):
        fields = record.strip("\n").split("\x00")
        if len(fields) < 4 or " " in fields[1].strip() or not fields[1].strip():
            continue
        sha, parent, when, body = fields[0].strip(), fields[1].strip(), int(fields[2]), fields[3]
        subject = body.strip().split("\n", 1)[0]
        if not FIX.search(subject) or CHORE.search(subject):
            continue
        numstat = [line.split("\t") for line in git(repo, "diff", "--numstat", parent, sha).splitlines()]
        files = [(p, a, d) for a, d, p in numstat if wanted_file(p)]
        if not 1 <= len(files) <= 4 or any(a == "-" for _, a, _ in files):
            continue
        if sum(int(a) + int(d) for _, a, d in files) > 150:
            continue
        gold_files = sorted(p for p, _, _ in files)
        existing = [p for p in gold_files if git(repo, "ls-tree", parent, "--", p).strip()]
        if not existing:
            continue  # the fix only adds files: nothing to localize at the parent
        functions = [f"{p}::{s}" for p in existing for s in touched_functions(repo, parent, sha, p)]
        names = {n for f in functions for n in f.split("::")[1].split(".")[1:]}
        raw = message(body)
        query = strip_identifiers(raw, names, existing)
        if len(re.findall(r"[A-Za-z]{3,}", query)) < 3:
            continue
        out.append(
            {
                "id": f"{name}@{sha[:12]}",
                "repo": name,
                "github": full,
                "commit": sha,
                "parent": parent,
                "time": when,
                "query": query,
                "query_raw": raw,
                "gold_files": existing,
                "gold_functions": functions,
            }
        )
    out.sort(key=lambda r: int(str(r["time"])))
    return out[-per_repo:]  # the most recent ones when a repo has more


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-repo", type=int, default=45)
    parser.add_argument("--repos", nargs="*", default=REPOS)
    args = parser.parse_args()
    rows: list[dict[str, object]] = []
    for full in args.repos:
        found = candidates(full, mirror(full), args.per_repo)
        print(f"{full}: {len(found)} bug-fix commits", flush=True)
        rows += found
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with_funcs = sum(1 for r in rows if r["gold_functions"])
    print(f"{len(rows)} commits ({with_funcs} with gold functions) -> {OUT}")


if __name__ == "__main__":
    main()
