"""Crash tests with real processes on both queues: kill -9 a worker mid-job; a new worker finishes it.

The worker's handler records each run, hangs in the first run of every event (`--hang-once`), and
applies an idempotent effect keyed by (repo, commit). After the kill, a fresh worker gets the event
once the dead worker's lease has ended, and exactly one effect results for each event.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import pytest

from tests.workqueue.conftest import make_queue
from tests.workqueue.support import WorkerProcess, push_event, wait_for


def _count(db: Path, sql: str) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db, timeout=30) as conn:
        try:
            return int(conn.execute(sql).fetchone()[0])
        except sqlite3.OperationalError:
            return 0


@pytest.mark.slow
def test_kill_9_mid_job_the_event_is_processed_after_the_lease_and_has_one_effect(
    backend: tuple[str, str], tmp_path: Path
) -> None:
    kind, where = backend
    effects = tmp_path / "effects.db"
    queue = make_queue(kind, where, "code-index")

    async def fill() -> None:
        for n in range(3):
            assert await queue.enqueue(push_event(f"crash{n}", after=f"{n:040d}"))
        await queue.aclose()

    anyio.run(fill)
    args = ["--backend", kind, "--where", where, "--effects", str(effects), "--job-timeout", "2"]
    first = WorkerProcess([*args, "--hang-once"], tmp_path / "w1.log").start()
    try:
        wait_for(lambda: _count(effects, "SELECT COUNT(DISTINCT event) FROM runs") == 3, 30, "three jobs to start")
        first.kill()
    finally:
        first.kill()
    assert _count(effects, "SELECT COUNT(*) FROM effects") == 0
    second = WorkerProcess(args, tmp_path / "w2.log").start()
    try:
        wait_for(lambda: _count(effects, "SELECT COUNT(*) FROM effects") == 3, 30, "the events to be processed again")
    finally:
        second.stop()
    assert _count(effects, "SELECT COUNT(*) FROM effects") == 3
    assert _count(effects, "SELECT COUNT(*) FROM applied") == 3
    assert _count(effects, "SELECT COUNT(*) FROM runs") == 6
