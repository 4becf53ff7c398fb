"""The cost ledger (SQLite): every model call's spend by run, model, tier and day, and every run's result.

The daily budget is held here before each model call (`reserve`: the call's worst case, against the day's spend
and the other calls in flight, in one transaction across processes) and settled to the call's cost after it;
`goresolve runs` lists from here; the anomaly alert remembers here when it last fired, so it fires at most once
per window across processes.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Generator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

SCHEMA = """
CREATE TABLE IF NOT EXISTS spend (
    run_id TEXT NOT NULL, model TEXT NOT NULL, tier TEXT NOT NULL, day TEXT NOT NULL, at REAL NOT NULL,
    input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL,
    cost_usd REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS spend_day ON spend(day);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, ticket TEXT, repo TEXT, tier TEXT, model TEXT, outcome TEXT, exit TEXT, reason TEXT,
    cost_usd REAL, tokens INTEGER, duration_s REAL, started_at REAL, trace_id TEXT, run_dir TEXT
);
CREATE TABLE IF NOT EXISTS alerts (kind TEXT NOT NULL, fired_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS reservations (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, day TEXT NOT NULL, at REAL NOT NULL,
    expires_at REAL NOT NULL, cost_usd REAL NOT NULL
);
"""


def private_dir(path: Path) -> Path:
    """`path` as a directory, each missing part of it made 0700: run records, transcripts, hand-offs and the ledger
    hold ticket text and code, for this user alone. A directory that exists keeps its mode (it may be one the
    user made and shares on purpose)."""
    missing: list[Path] = []
    at = path
    while not at.is_dir() and at != at.parent:
        missing.append(at)
        at = at.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile (by another run), or a file: the write says so
            folder.mkdir(mode=0o700)
    return path


def open_private(path: Path, mode: str = "w") -> IO[str]:
    """`path` opened for writing ("w") or appending ("a") as text; made 0600 when it is new (an existing file
    keeps its mode)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "a" else os.O_TRUNC)
    return os.fdopen(os.open(path, flags, 0o600), mode, encoding="utf-8")


def day_of(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


class DailyCapReached(Exception):
    """A call's worst case does not fit in what is left of the day's cap: `spent` is settled today, `held` the
    worst cases of the calls in flight (this process's and others'), `asked` this call's."""

    def __init__(self, spent: float, held: float, asked: float, cap: float) -> None:
        super().__init__(f"{spent} spent + {held} held + {asked} asked > {cap}")
        self.spent, self.held, self.asked, self.cap = spent, held, asked, cap


@dataclass(frozen=True)
class RunRow:
    run_id: str
    ticket: str
    repo: str
    tier: str
    model: str
    outcome: str
    exit: str
    reason: str
    cost_usd: float
    tokens: int
    duration_s: float
    started_at: float
    trace_id: str
    run_dir: str


class Ledger:
    def __init__(self, path: Path) -> None:
        private_dir(path.parent)
        # made 0600 before SQLite opens it: its -wal and -shm files take the database file's mode
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        self.path = path
        self._lock = threading.Lock()
        # autocommit mode: every transaction is begun explicitly by `_tx` (so a write can take the lock up front)
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=10, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        with self._tx(write=True) as db:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)

    @contextmanager
    def _tx(self, *, write: bool = False) -> Generator[sqlite3.Connection]:
        """One transaction, committed on success and rolled back on any exception.

        A `write` transaction is BEGIN IMMEDIATE: it takes the database's write lock before its first read, so a
        check and the insert it decides on are one step for every process sharing the file (another one waits for
        the lock, up to the connection's timeout). A deferred transaction that reads and then writes is not: two
        processes both read "not yet", then both insert.
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def record_call(
        self,
        run_id: str,
        model: str,
        tier: str | None,
        usage: tuple[int, int, int],
        cost: float,
        at: float | None = None,
    ) -> None:
        with self._tx(write=True) as db:
            _spend(db, run_id, model, tier, usage, cost, at)

    def reserve(self, run_id: str, cost: float, cap: float, ttl_s: float, now: float | None = None) -> int:
        """Hold `cost` (a call's worst case) of today's `cap` until the call is settled or released; the hold's id.

        The day's spend, the holds of calls in flight and the new hold are read and written in one write
        transaction, so runs in several processes cannot together pass the cap. Every live hold counts, the day
        before's too (a call in flight at midnight is settled into the new day). A hold older than `ttl_s` (its
        process died mid-call: the run's deadline has passed) no longer counts.

        Raises:
            DailyCapReached: today's spend, the live holds and `cost` together pass `cap`.
        """
        now = time.time() if now is None else now
        day = day_of(now)
        with self._tx(write=True) as db:
            db.execute("DELETE FROM reservations WHERE expires_at <= ?", (now,))
            spent = db.execute("SELECT COALESCE(SUM(cost_usd), 0) FROM spend WHERE day = ?", (day,)).fetchone()[0]
            # every live hold, whatever day it was taken: a call in flight at midnight is settled into the new day
            held = db.execute("SELECT COALESCE(SUM(cost_usd), 0) FROM reservations").fetchone()[0]
            if float(spent) + float(held) + cost > cap:
                refused = DailyCapReached(float(spent), float(held), cost, cap)
            else:
                cursor = db.execute(
                    "INSERT INTO reservations (run_id, day, at, expires_at, cost_usd) VALUES (?, ?, ?, ?, ?)",
                    (run_id, day, now, now + ttl_s, cost),
                )
                assert cursor.lastrowid is not None
                return cursor.lastrowid
        raise refused  # outside the transaction: the expired holds stay deleted

    def resize(self, reservation: int, cost: float, cap: float, now: float | None = None) -> None:
        """Make a live hold `cost` (a call whose earlier attempts were billed: their cost and the next attempt's
        worst case), checked against today's `cap` as `reserve` checks a new one, in one write transaction.
        A hold that has expired or gone is not revived: the run's deadline has passed.

        Raises:
            DailyCapReached: today's spend, the other live holds and `cost` together pass `cap`.
        """
        now = time.time() if now is None else now
        day = day_of(now)
        with self._tx(write=True) as db:
            spent = db.execute("SELECT COALESCE(SUM(cost_usd), 0) FROM spend WHERE day = ?", (day,)).fetchone()[0]
            held = db.execute(
                "SELECT COALESCE(SUM(cost_usd), 0) FROM reservations WHERE expires_at > ? AND id != ?",
                (now, reservation),
            ).fetchone()[0]
            if float(spent) + float(held) + cost > cap:
                refused = DailyCapReached(float(spent), float(held), cost, cap)
            else:
                db.execute(
                    "UPDATE reservations SET cost_usd = ? WHERE id = ? AND expires_at > ?", (cost, reservation, now)
                )
                return
        raise refused

    def settle(
        self,
        reservation: int,
        run_id: str,
        model: str,
        tier: str | None,
        usage: tuple[int, int, int],
        cost: float,
        at: float | None = None,
    ) -> None:
        """Replace a hold with the call's spend (`record_call`), in one transaction."""
        with self._tx(write=True) as db:
            db.execute("DELETE FROM reservations WHERE id = ?", (reservation,))
            _spend(db, run_id, model, tier, usage, cost, at)

    def release(self, reservation: int) -> None:
        """Drop a hold whose call spent nothing (it failed, or was cancelled, before an answer)."""
        with self._tx(write=True) as db:
            db.execute("DELETE FROM reservations WHERE id = ?", (reservation,))

    def held(self, day: str | None = None, now: float | None = None) -> float:
        """What the calls in flight hold of the day's cap (live holds only)."""
        now = time.time() if now is None else now
        with self._tx() as db:
            row = db.execute(
                "SELECT COALESCE(SUM(cost_usd), 0) FROM reservations WHERE day = ? AND expires_at > ?",
                (day or day_of(now), now),
            ).fetchone()
        return float(row[0])

    def day_spend(self, day: str | None = None) -> float:
        with self._tx() as db:
            row = db.execute(
                "SELECT COALESCE(SUM(cost_usd), 0) FROM spend WHERE day = ?", (day or day_of(time.time()),)
            ).fetchone()
        return float(row[0])

    def trailing_average(self, day: str, days: int = 7) -> float:
        """Average daily spend over the `days` days before `day` (days without spend count as zero)."""
        end = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
        start = (end - timedelta(days=days)).strftime("%Y-%m-%d")
        with self._tx() as db:
            row = db.execute(
                "SELECT COALESCE(SUM(cost_usd), 0) FROM spend WHERE day >= ? AND day < ?", (start, day)
            ).fetchone()
        return float(row[0]) / days

    def by(self, column: str, day: str | None = None) -> dict[str, float]:
        if column not in ("model", "tier", "run_id", "day"):
            raise ValueError(column)
        query = f"SELECT {column}, SUM(cost_usd) FROM spend {'WHERE day = ?' if day else ''} GROUP BY {column}"  # noqa: S608
        with self._tx() as db:
            return {str(k): float(v) for k, v in db.execute(query, (day,) if day else ())}

    def record_run(self, row: RunRow) -> None:
        with self._tx(write=True) as db:
            db.execute(
                "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                tuple(row.__dict__.values()),
            )

    def runs(self, limit: int = 20) -> list[RunRow]:
        with self._tx() as db:
            rows = db.execute("SELECT * FROM runs ORDER BY started_at DESC LIMIT ?", (limit,)).fetchall()
        return [RunRow(*r) for r in rows]

    def run(self, run_id: str) -> RunRow | None:
        with self._tx() as db:
            row = db.execute("SELECT * FROM runs WHERE run_id = ? OR run_id LIKE ?", (run_id, run_id + "%")).fetchone()
        return RunRow(*row) if row else None

    def claim_alert(self, kind: str, window_s: float, now: float | None = None) -> bool:
        """True (and remembered) when no alert of `kind` fired within the window; False otherwise.

        The check and the insert are one write transaction, so of several processes claiming at once one wins."""
        now = time.time() if now is None else now
        with self._tx(write=True) as db:
            row = db.execute("SELECT MAX(fired_at) FROM alerts WHERE kind = ?", (kind,)).fetchone()
            if row[0] is not None and now - float(row[0]) < window_s:
                return False
            db.execute("INSERT INTO alerts VALUES (?, ?)", (kind, now))
            return True

    def close(self) -> None:
        self._db.close()


def _spend(
    db: sqlite3.Connection,
    run_id: str,
    model: str,
    tier: str | None,
    usage: tuple[int, int, int],
    cost: float,
    at: float | None,
) -> None:
    """Insert one call's spend (inside the caller's write transaction)."""
    at = time.time() if at is None else at
    row = (run_id, model, tier or "-", day_of(at), at, *usage, cost)
    db.execute("INSERT INTO spend VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
