"""A queue worker as its own process, for the crash and load tests.

Its handler applies an idempotent effect: in one SQLite transaction it records a run, then, unless
the event's key is already there, the effect row. `--hang-once` makes the first run of each event
stop forever after recording its run (the test kills the process there: "mid-job").

    python -m tests.workqueue.worker_proc --backend sqlite --where DIR --effects effects.db [--hang-once]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
from pathlib import Path

import anyio
from pydantic import SecretStr

from workqueue import Event, QueueSettings, open_queue


def _db(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE IF NOT EXISTS runs (event TEXT, pid INTEGER)")
    db.execute("CREATE TABLE IF NOT EXISTS effects (key TEXT PRIMARY KEY, event TEXT, applied INTEGER)")
    db.execute("CREATE TABLE IF NOT EXISTS applied (key TEXT, event TEXT)")
    return db


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--backend", choices=["sqlite", "redis"], required=True)
    p.add_argument("--where", required=True, help="queue directory (sqlite) or URL (redis)")
    p.add_argument("--effects", type=Path, required=True)
    p.add_argument("--hang-once", action="store_true")
    p.add_argument("--work-ms", type=float, default=0.0)
    p.add_argument("--job-timeout", type=float, default=5.0)
    p.add_argument("--concurrency", type=int, default=4)
    args = p.parse_args()
    db = _db(args.effects)

    async def handler(event: Event) -> None:
        runs = db.execute("SELECT COUNT(*) FROM runs WHERE event = ?", (event.id,)).fetchone()[0]
        db.execute("INSERT INTO runs VALUES (?, ?)", (event.id, os.getpid()))
        if args.hang_once and runs == 0:
            await anyio.sleep_forever()
        if args.work_ms:
            await anyio.sleep(args.work_ms / 1000)
        data = event.data
        key = f"{event.repo}@{data.after}" if data.kind == "push" else event.id
        # The idempotent effect: applied once per key, checked and written in one transaction.
        # `applied` is an append-only log of every application, so a double one would show.
        db.execute("BEGIN IMMEDIATE")
        if db.execute("SELECT 1 FROM effects WHERE key = ?", (key,)).fetchone() is None:
            db.execute("INSERT INTO effects VALUES (?, ?, 1)", (key, event.id))
            db.execute("INSERT INTO applied VALUES (?, ?)", (key, event.id))
        db.execute("COMMIT")

    settings = QueueSettings(
        backend=args.backend,
        sqlite_dir=Path(args.where) if args.backend == "sqlite" else Path(".goresolve/queue"),
        redis_url=SecretStr(args.where if args.backend == "redis" else "redis://127.0.0.1:6379/0"),
        job_timeout_s=args.job_timeout,
        lease_grace_s=0.5,
    )
    queue = open_queue(settings, "code-index")
    anyio.run(lambda: queue.consume(handler, concurrency=args.concurrency))


if __name__ == "__main__":
    main()
