"""The local backend's pull requests and branch heads: one SQLite file (WAL), safe for several processes.

A row per pull request, unique per (repo, ticket), so two processes racing to open the same
ticket's pull request end with one row: the loser's INSERT fails and it reads the winner's row.

`branch_heads` is the bot's own record of what it pushed: the head it last pushed to each branch,
and the one it is pushing now (written before the push, so a crash between push and record still
leaves the bot owning its branch). Ownership of a branch comes only from here, never from a commit's
author or trailers, which anyone with push access can forge.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Generator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from servers.common.errors import NotFound

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pulls (
    number INTEGER PRIMARY KEY AUTOINCREMENT,
    repo TEXT NOT NULL,
    ticket TEXT NOT NULL,
    branch TEXT NOT NULL,
    base TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    draft INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'open',
    head_sha TEXT NOT NULL,
    labels TEXT NOT NULL DEFAULT '[]',
    assignees TEXT NOT NULL DEFAULT '[]',
    reviewers TEXT NOT NULL DEFAULT '[]',
    teams TEXT NOT NULL DEFAULT '[]',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    UNIQUE (repo, ticket)
);
CREATE TABLE IF NOT EXISTS branch_heads (
    repo TEXT NOT NULL,
    branch TEXT NOT NULL,
    pushed TEXT,
    pending TEXT,
    PRIMARY KEY (repo, branch)
);
CREATE TABLE IF NOT EXISTS comments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    repo TEXT NOT NULL,
    number INTEGER NOT NULL REFERENCES pulls(number),
    body TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS issue_comments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    repo TEXT NOT NULL,
    number INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class PullRow:
    number: int
    repo: str
    ticket: str
    branch: str
    base: str
    title: str
    body: str
    draft: bool
    state: str
    head_sha: str
    labels: list[str]
    assignees: list[str]
    reviewers: list[str]
    teams: list[str]
    created_at: float
    updated_at: float


class PullStore:
    """Pull requests and their comments in SQLite. Every method opens its own short connection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Generator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            yield db
        finally:
            db.close()

    def by_ticket(self, repo: str, ticket: str) -> PullRow | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM pulls WHERE repo = ? AND ticket = ?", (repo, ticket)).fetchone()
        return _row(row) if row else None

    def get(self, repo: str, number: int) -> PullRow:
        """Raises: NotFound: no such pull request in `repo`."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM pulls WHERE repo = ? AND number = ?", (repo, number)).fetchone()
        if row is None:
            raise NotFound(f"no pull request #{number} in {repo}")
        return _row(row)

    def insert(
        self, *, repo: str, ticket: str, branch: str, base: str, title: str, body: str, draft: bool, head_sha: str
    ) -> PullRow | None:
        """Record a new pull request; None when (repo, ticket) already has one (a concurrent opener won)."""
        now = time.time()
        try:
            with self._connect() as db:
                cur = db.execute(
                    "INSERT INTO pulls (repo, ticket, branch, base, title, body, draft, head_sha,"
                    " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (repo, ticket, branch, base, title, body, int(draft), head_sha, now, now),
                )
                number = cur.lastrowid
        except sqlite3.IntegrityError:
            return None
        assert number is not None
        return self.get(repo, number)

    def update(self, repo: str, number: int, **fields: object) -> PullRow:
        """Set columns (lists are stored as JSON) and bump updated_at.

        Raises:
            NotFound: no such pull request in `repo`.
        """
        allowed = {"title", "body", "head_sha", "labels", "assignees", "reviewers", "teams"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        values = {k: json.dumps(v) if isinstance(v, list) else v for k, v in fields.items()}
        sets = ", ".join(f"{k} = ?" for k in values)  # keys come from `allowed`, not from callers' data
        with self._connect() as db:
            db.execute(
                f"UPDATE pulls SET {sets}, updated_at = ? WHERE repo = ? AND number = ?",  # noqa: S608
                (*values.values(), time.time(), repo, number),
            )
        return self.get(repo, number)

    def add_comment(self, repo: str, number: int, body: str) -> int:
        """Raises: NotFound: no such pull request in `repo`."""
        self.get(repo, number)
        with self._connect() as db:
            cur = db.execute(
                "INSERT INTO comments (repo, number, body, created_at) VALUES (?, ?, ?, ?)",
                (repo, number, body, time.time()),
            )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def comments(self, repo: str, number: int) -> list[str]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT body FROM comments WHERE repo = ? AND number = ? ORDER BY id", (repo, number)
            ).fetchall()
        return [r["body"] for r in rows]

    def add_issue_comment(self, repo: str, number: int, body: str) -> int:
        """Record a comment on issue `number` of `repo` (the local stand-in for the ticket's issue)."""
        with self._connect() as db:
            cur = db.execute(
                "INSERT INTO issue_comments (repo, number, body, created_at) VALUES (?, ?, ?, ?)",
                (repo, number, body, time.time()),
            )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def issue_comments(self, repo: str, number: int) -> list[str]:
        return [body for _, _, body in self.issue_comment_rows(repo, number)]

    def issue_comment_rows(self, repo: str, number: int) -> list[tuple[int, float, str]]:
        """The comments recorded on issue `number` of `repo`, oldest first: (id, created_at, body)."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT id, created_at, body FROM issue_comments WHERE repo = ? AND number = ? ORDER BY id",
                (repo, number),
            ).fetchall()
        return [(r["id"], r["created_at"], r["body"]) for r in rows]

    def begin_push(self, repo: str, branch: str, sha: str) -> None:
        """Record that `sha` is about to be pushed to `branch` (before the push)."""
        with self._connect() as db:
            db.execute(
                "INSERT INTO branch_heads (repo, branch, pending) VALUES (?, ?, ?)"
                " ON CONFLICT (repo, branch) DO UPDATE SET pending = excluded.pending",
                (repo, branch, sha),
            )

    def end_push(self, repo: str, branch: str, sha: str) -> None:
        """Record that `sha` is now the head of `branch` (after the push succeeded)."""
        with self._connect() as db:
            db.execute(
                "UPDATE branch_heads SET pushed = ?, pending = NULL WHERE repo = ? AND branch = ?", (sha, repo, branch)
            )

    def bot_heads(self, repo: str, branch: str) -> set[str] | None:
        """The heads the bot last pushed to `branch` or is pushing now; None when it never pushed there."""
        with self._connect() as db:
            row = db.execute(
                "SELECT pushed, pending FROM branch_heads WHERE repo = ? AND branch = ?", (repo, branch)
            ).fetchone()
        return None if row is None else {sha for sha in (row["pushed"], row["pending"]) if sha}

    def all(self) -> list[PullRow]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM pulls ORDER BY number").fetchall()
        return [_row(r) for r in rows]


def read_pulls(path: Path) -> list[PullRow]:
    """Every pull request in the database at `path`, read without writing to it (a listing never creates the
    schema in a file someone pointed it at).

    Raises:
        sqlite3.Error: `path` is not such a database (no `pulls` table, not SQLite).
    """
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
    db.row_factory = sqlite3.Row
    try:
        rows = db.execute("SELECT * FROM pulls ORDER BY number").fetchall()
    finally:
        db.close()
    return [_row(r) for r in rows]


def _row(row: sqlite3.Row) -> PullRow:
    data = dict(row)
    for key in ("labels", "assignees", "reviewers", "teams"):
        data[key] = json.loads(data[key])
    data["draft"] = bool(data["draft"])
    return PullRow(**data)
