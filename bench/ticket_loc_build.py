"""Build the ticket-localization set: real GitHub issues of Go projects, each linked to its fix.

    .venv/bin/python bench/ticket_loc_build.py mine  [--mirrors DIR] [--repos owner/name ...]
    .venv/bin/python bench/ticket_loc_build.py build [--mirrors DIR]

The two halves of a row come from two places:

* The fix, from the repository's full git history (`mine`): commits whose message closes an issue
  of the same repository ("Fixes #N", "Closes #N", "Resolves #N", also "Fix #N" and "fixed #N"),
  merges included (diffed against their first parent), that change 1-6 non-test .go files outside
  vendor/testdata/examples and at most 400 lines. An issue closed by more than one such commit is
  dropped (its gold would be ambiguous). Base commit = the fix's (first) parent. Gold = the changed
  non-test .go files that exist at the base commit, and the functions/methods of the base commit
  whose lines the fix removed or changed (tree-sitter units, named as code-search names them:
  `path::pkg.Func` or `path::pkg.Type.Method`).
* The ticket, from bench/data/ticket_loc/issues.jsonl: the issue's title and its author's
  description as posted (public issue threads; comments are not part of the query: they often name
  the fix). Issues whose text could not be obtained are simply not in the set.

`build` joins the two into bench/data/ticket_loc/tickets.jsonl. Each row keeps the raw query
(title + description) and the identifier-stripped query: the fix's own identifiers removed (the
gold functions' and their receiver types' names, as words, plurals and parts of CamelCase/snake
code words, and the gold files' paths and file names), as benchmark 5 strips commit messages.
The split is by repository (SPLITS below): ranking is tuned on the dev repositories only.

Repositories come from local bare mirrors (`--mirrors DIR`, holding `owner+name/` or
`owner+name/repo/` git directories, or $GORESOLVE_MIRRORS), else they are cloned bare from GitHub
into the bench cache (see bench/data/ticket_loc/README.md). No repository code is stored in the set.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from code_search_bugs_build import mirror, strip_identifiers, touched_functions, wanted_file
from code_search_common import WORK

DATA = Path(__file__).resolve().parent / "data" / "ticket_loc"
ISSUES = DATA / "issues.jsonl"
TICKETS = DATA / "tickets.jsonl"
CANDIDATES = WORK / "ticket_loc" / "candidates"
# Split by repository: ranking changes are chosen on "dev"; "heldout" is the check.
SPLITS = {
    "dev": (
        "caddyserver/caddy",
        "junegunn/fzf",
        "nats-io/nats-server",
        "helm/helm",
        "restic/restic",
        "rclone/rclone",
        "prometheus/prometheus",
    ),
    "heldout": (
        "gohugoio/hugo",
        "etcd-io/etcd",
        "minio/minio",
        "cli/cli",
        "go-task/task",
        "containerd/containerd",
        "traefik/traefik",
    ),
}
REPOS = [r for repos in SPLITS.values() for r in repos]
CLOSES = re.compile(r"(?<![\w/])(?:fix(?:e[sd])?|close[sd]?|resolve[sd]?)\s*:?\s+#(\d+)\b", re.I)
MAX_FILES = 6
MAX_LINES = 400


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, errors="replace", timeout=600
    ).stdout


def fixes(full: str, repo: Path) -> list[dict[str, object]]:
    """Commits closing an issue of `full`, with their gold files and functions at the base commit."""
    log = git(
        repo,
        "log",
        "-i",
        "-E",
        r"--grep=(fix|fixe[sd]|close[sd]?|resolve[sd]?):? +#[0-9]+",
        "--format=%H%x00%P%x00%at%x00%B%x1e",
        "HEAD",
    )
    by_issue: dict[int, list[dict[str, object]]] = {}
    for record in log.split("\x1e"):
        fields = record.strip("\n").split("\x00")
        if len(fields) < 4 or not fields[1].strip():
            continue
        sha, parent, when, body = fields[0].strip(), fields[1].split()[0], int(fields[2]), fields[3]
        numbers = {int(n) for n in CLOSES.findall(body)}
        if len(numbers) != 1:
            continue  # one commit closing several issues: which text goes with which change is unclear
        (number,) = numbers
        try:
            diff = git(repo, "diff", "--no-renames", "--numstat", parent, sha)
        except subprocess.CalledProcessError:
            continue  # the parent is not in this history (a grafted or partial mirror)
        numstat = [line.split("\t") for line in diff.splitlines()]
        files = [(p, a, d) for a, d, p in numstat if wanted_file(p)]
        if not 1 <= len(files) <= MAX_FILES or any(a == "-" for _, a, _ in files):
            by_issue.setdefault(number, []).append({})  # counts as a fix of the issue, but not usable
            continue
        if sum(int(a) + int(d) for _, a, d in files) > MAX_LINES:
            by_issue.setdefault(number, []).append({})
            continue
        existing = [p for p, _, _ in sorted(files) if git(repo, "ls-tree", parent, "--", p).strip()]
        functions = [f"{p}::{s}" for p in existing for s in touched_functions(repo, parent, sha, p)]
        by_issue.setdefault(number, []).append(
            {
                "github": full,
                "issue": number,
                "fix_commit": sha,
                "base_commit": parent,
                "time": when,
                "subject": body.strip().split("\n", 1)[0],
                "gold_files": existing,
                "gold_functions": functions,
            }
        )
    out: list[dict[str, object]] = []
    for found in by_issue.values():
        if len(found) == 1 and found[0] and found[0]["gold_files"]:
            out.append(found[0])
    out.sort(key=lambda r: int(str(r["time"])))
    return out


def stripped_names(functions: list[str]) -> set[str]:
    """The identifiers a fix touched: function/method names and their receiver types."""
    return {n for f in functions for n in f.split("::")[1].split(".")[1:]}


def split_of(full: str) -> str:
    return next(s for s, repos in SPLITS.items() if full in repos)


def load_issues() -> dict[tuple[str, int], dict[str, object]]:
    rows = [json.loads(line) for line in ISSUES.read_text().splitlines() if line.strip()] if ISSUES.exists() else []
    return {(str(r["github"]), int(r["issue"])): r for r in rows}


def build(mirrors: Path | None) -> list[dict[str, object]]:
    issues = load_issues()
    rows: list[dict[str, object]] = []
    for full in sorted({k[0] for k in issues}):
        found = {int(str(c["issue"])): c for c in candidates(full, mirrors)}
        for (repo_name, number), issue in sorted(issues.items()):
            if repo_name != full:
                continue
            fix = found.get(number)
            if fix is None:
                print(f"  {full}#{number}: no usable fix commit, skipped", file=sys.stderr)
                continue
            opened = datetime.date.fromisoformat(str(issue["opened"]))
            if opened > datetime.datetime.fromtimestamp(int(str(fix["time"])), datetime.UTC).date():
                print(
                    f"  {full}#{number}: opened after its fix commit (another issue's number?), skipped",
                    file=sys.stderr,
                )
                continue
            raw = f"{issue['title']}\n\n{issue['body']}".strip()
            names = stripped_names(list(fix["gold_functions"]))  # type: ignore[arg-type]
            query = strip_identifiers(raw, names, list(fix["gold_files"]))  # type: ignore[arg-type]
            rows.append(
                {
                    "id": f"{full.split('/')[1]}#{number}",
                    "repo": full,
                    "split": split_of(full),
                    "issue": number,
                    "url": issue["url"],
                    "opened": issue["opened"],
                    "truncated": issue["truncated"],
                    "fix_commit": fix["fix_commit"],
                    "base_commit": fix["base_commit"],
                    "time": fix["time"],
                    "query_raw": raw,
                    "query": query,
                    "stripped": sorted(names),
                    "gold_files": fix["gold_files"],
                    "gold_functions": fix["gold_functions"],
                }
            )
    rows.sort(key=lambda r: (str(r["repo"]), int(str(r["time"]))))
    return rows


def candidates(full: str, mirrors: Path | None, refresh: bool = False) -> list[dict[str, object]]:
    """The usable fixes of `full`, cached per repository (mining a large history takes a minute)."""
    cache = CANDIDATES / f"{full.replace('/', '+')}.jsonl"
    if cache.exists() and not refresh:
        return [json.loads(line) for line in cache.read_text().splitlines()]
    found = fixes(full, mirror(full, mirrors))
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text("".join(json.dumps(r) + "\n" for r in found))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("mine", "build"))
    parser.add_argument("--mirrors", type=Path, help="Directory of bare mirrors (owner+name[/repo]).")
    parser.add_argument("--repos", nargs="*", default=REPOS)
    args = parser.parse_args()
    if args.step == "mine":
        for full in args.repos:
            found = candidates(full, args.mirrors, refresh=True)
            print(f"{full}: {len(found)} usable issue fixes -> {CANDIDATES}", flush=True)
        return
    rows = build(args.mirrors)
    TICKETS.parent.mkdir(parents=True, exist_ok=True)
    TICKETS.write_text("".join(json.dumps(r) + "\n" for r in rows))
    per_repo = Counter(str(r["repo"]) for r in rows)
    print(f"{len(rows)} tickets from {len(per_repo)} repositories -> {TICKETS}")
    for full, n in sorted(per_repo.items()):
        print(f"  {full} ({split_of(full)}): {n}")


if __name__ == "__main__":
    main()
