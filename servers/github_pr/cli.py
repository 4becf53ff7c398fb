"""`goresolve prs`: the local backend's pull requests, for people (a table) and scripts (--json)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from .store import read_pulls

_ROW = "{:>4}  {:<16} {:<10} {:<6} {:<5} {:<9} {:<16}  {}"


def prs_command(db: Path, as_json: bool, also: Path | None = None) -> int:
    """Print every pull request recorded in `db` (the local backend's SQLite file); return the exit code.

    `also` is another database worth naming when `db` is missing (the demo's own, which keeps its
    state apart from the user's). Exit codes: 0 printed (possibly an empty list), 1 the file does not
    exist. Never raises for a missing file, and never writes to `db`; a database that is not the local
    backend's raises sqlite3.Error.
    """
    if not db.exists():
        print(f"no pull requests recorded: {db} does not exist", file=sys.stderr)
        if also is not None and also.exists():
            print(f"`goresolve demo` recorded its own; list them with: goresolve prs --db {also}", file=sys.stderr)
        return 1
    rows = read_pulls(db)
    if as_json:
        print(json.dumps([{k: getattr(r, k) for k in r.__slots__} for r in rows], indent=2))
        return 0
    if not rows:
        print("no pull requests")
        return 0
    print(_ROW.format("#", "repo", "ticket", "state", "draft", "head", "updated (UTC)", "branch / title"))
    for r in rows:
        updated = time.strftime("%Y-%m-%d %H:%M", time.gmtime(r.updated_at))
        draft = "yes" if r.draft else "no"
        print(_ROW.format(r.number, r.repo, r.ticket, r.state, draft, r.head_sha[:8], updated, r.branch))
        print(_ROW.format("", "", "", "", "", "", "", r.title))
    return 0
