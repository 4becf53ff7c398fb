"""The embedded queue: persist-queue's SQLiteAckQueue (one file, no server), for one machine.

persist-queue gives the durable FIFO with acknowledgements: `get` marks a row *unacked*, `ack`
finishes it, `ack_failed` parks it (our dead-letter list), `nack` puts it back, `update` rewrites it.
What it does not give, this module adds around it, without touching its tables:

- **Leases.** One worker process consumes a queue file at a time, holding an exclusive `flock` on
  `<name>.worker.lock`. Its leases are the rows it left unacked; they end when the process ends,
  however it ends (the kernel drops the lock), and the next worker's start resumes them
  (`resume_unack_tasks`). A job that hangs is cut off by `job_timeout_s` and retried.
- **Retries with backoff.** The tries count lives in the row (`update`); the wait between tries is
  held in the worker, with the row still unacked, so a crash during the wait loses nothing.
- **Deadlines.** A writer of another process (a backup, `sqlite3` held open in a transaction) can hold
  the file's write lock. Each connection waits for it at most `busy_timeout_s`, and a call waits for
  this object's own lock no longer; the gateway passes a busy timeout below its own deadline, and its
  calls (`enqueue`, `ping`, `depth`, the dead-letter list) leave their thread behind when the caller's
  deadline cancels them, so a locked file is a 503 in time, not an answer after the lock's holder is
  done. `ping` takes the write lock (and lets it go at once), so readiness reports a locked queue.
- **Dedup.** A `deliveries` table in the same SQLite file remembers each event id for the retention
  window, a `digests` table each body digest given with one (and the id it came with). An event is
  enqueued *before* its id is recorded: a crash in between may let a redelivery through once
  (handlers are idempotent), but never loses an event.
"""

from __future__ import annotations

import fcntl
import json
import sqlite3
import threading
import time
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import persistqueue  # type: ignore[import-untyped]
import persistqueue.serializers.json as pq_json  # type: ignore[import-untyped]
from persistqueue.exceptions import Empty  # type: ignore[import-untyped]
from pydantic import ValidationError

from workqueue.base import DeadLetter, Deferred, Handler, QueueUnavailable, RetryPolicy, UnknownEvent, one_line
from workqueue.events import Event
from workqueue.metrics import DEAD_LETTERS, JOB_LAG_SECONDS, JOB_SECONDS

_ACK_FAILED = 9
_POLL_S = 0.2


class SQLiteQueue:
    """One named queue in `directory/data.db`."""

    def __init__(
        self,
        directory: Path,
        name: str,
        *,
        retry: RetryPolicy | None = None,
        retention_s: float = 3 * 86400,
        job_timeout_s: float = 600.0,
        busy_timeout_s: float = 10.0,
    ) -> None:
        """`busy_timeout_s`: how long one call waits for a lock (the file's, held by another process, or
        this object's); past it the call is QueueUnavailable."""
        self.name = name
        self.busy_timeout_s = busy_timeout_s
        self.retry = retry or RetryPolicy()
        self.retention_s = retention_s
        self.job_timeout_s = job_timeout_s
        self._dir = directory
        self._table = name.replace("-", "_")
        try:
            directory.mkdir(parents=True, exist_ok=True)
            # auto_resume=False: only the worker (holding the lock) may resume unacked rows.
            self._q: Any = persistqueue.SQLiteAckQueue(
                str(directory),
                name=self._table,
                multithreading=True,
                auto_resume=False,
                serializer=pq_json,
                timeout=busy_timeout_s,
            )
            self._db = sqlite3.connect(directory / "data.db", timeout=busy_timeout_s, check_same_thread=False)
            # The dedup table is an optimisation (losing a row can only let one duplicate through,
            # which handlers absorb), so its commits skip the fsync; the queue's own commits keep it,
            # and they flush the shared WAL, rows of this connection included.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS deliveries"
                " (key TEXT PRIMARY KEY, queue TEXT NOT NULL, seen_at REAL NOT NULL)"
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS digests (digest TEXT PRIMARY KEY, key TEXT NOT NULL, seen_at REAL NOT NULL)"
            )
            self._db.commit()
        except (OSError, sqlite3.Error) as exc:
            raise QueueUnavailable(f"cannot open queue {name!r} in {directory}: {exc}") from exc
        self._lock = threading.Lock()
        self._enqueued = 0
        self._acked = 0

    # --- producer ---------------------------------------------------------------------------------

    def _enqueue(self, event: Event, digest: str | None) -> bool:
        now = time.time()
        with self._locked():
            row = self._db.execute("SELECT seen_at FROM deliveries WHERE key = ?", (event.id,)).fetchone()
            if row is not None and row[0] > now - self.retention_s:
                return False
            if digest is not None:
                seen = self._db.execute("SELECT key, seen_at FROM digests WHERE digest = ?", (digest,)).fetchone()
                if seen is not None and seen[1] > now - self.retention_s and seen[0] != event.id:
                    return False
            self._q.put({"event": event.model_dump(mode="json"), "tries": 0, "error": ""})
            self._db.execute(
                "INSERT OR REPLACE INTO deliveries (key, queue, seen_at) VALUES (?, ?, ?)", (event.id, self.name, now)
            )
            if digest is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO digests (digest, key, seen_at) VALUES (?, ?, ?)", (digest, event.id, now)
                )
            self._enqueued += 1
            if self._enqueued % 1000 == 1:
                self._db.execute("DELETE FROM deliveries WHERE seen_at < ?", (now - self.retention_s,))
                self._db.execute("DELETE FROM digests WHERE seen_at < ?", (now - self.retention_s,))
            self._db.commit()
        return True

    async def enqueue(self, event: Event, *, digest: str | None = None) -> bool:
        return await self._call(self._enqueue, event, digest, abandon=True)

    def _ping(self) -> None:
        with self._locked():
            self._db.execute("BEGIN IMMEDIATE")  # the write lock, as an enqueue needs it
            self._db.execute("ROLLBACK")

    async def ping(self) -> None:
        await self._call(self._ping, abandon=True)

    async def depth(self) -> int:
        # persist-queue's statuses: 0 inited, 1 ready, 2 unacked (below 5 acked, 9 failed).
        sql = f"SELECT COUNT(*) FROM {self._q._table_name} WHERE status < 5"  # noqa: S608 - our own table name
        return await self._call(lambda: int(self._db.execute(sql).fetchone()[0]), abandon=True)

    @contextmanager
    def _locked(self) -> Generator[None]:
        """This object's lock, waited for at most `busy_timeout_s`. Raises QueueUnavailable past it."""
        if not self._lock.acquire(timeout=self.busy_timeout_s):
            raise QueueUnavailable(
                f"queue {self.name!r}: busy: an earlier call still waits for the database"
                f" after {self.busy_timeout_s:g}s"
            )
        try:
            yield
        finally:
            self._lock.release()

    async def _call(self, fn: Any, *args: Any, abandon: bool = False) -> Any:
        """`fn(*args)` in a worker thread. With `abandon`, a cancelled caller does not wait for the thread (which
        ends within `busy_timeout_s` of waiting for a lock, its result unused)."""
        try:
            return await anyio.to_thread.run_sync(fn, *args, abandon_on_cancel=abandon)
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise QueueUnavailable(
                    f"queue {self.name!r}: the database is locked by another writer (waited {self.busy_timeout_s:g}s)"
                ) from exc
            raise QueueUnavailable(f"queue {self.name!r}: {exc}") from exc
        except (OSError, sqlite3.Error) as exc:
            raise QueueUnavailable(f"queue {self.name!r}: {exc}") from exc

    # --- dead letters -----------------------------------------------------------------------------

    def _dead_rows(self) -> list[tuple[int, dict[str, Any]]]:
        # Only the dead rows, not `queue()`, which decodes every row (finished ones are cleared every 500).
        sql = f"SELECT _id, data FROM {self._q._table_name} WHERE status = ? ORDER BY _id"  # noqa: S608
        with self._locked():
            rows = self._db.execute(sql, (_ACK_FAILED,)).fetchall()
        return [(int(pqid), json.loads(data)) for pqid, data in rows]

    async def dead_letters(self) -> list[DeadLetter]:
        rows = await self._call(self._dead_rows, abandon=True)
        return [_dead(pqid, data) for pqid, data in rows]

    async def dead_count(self) -> int:
        sql = f"SELECT COUNT(*) FROM {self._q._table_name} WHERE status = ?"  # noqa: S608 - our own table name
        return await self._call(lambda: int(self._db.execute(sql, (_ACK_FAILED,)).fetchone()[0]), abandon=True)

    def _find_dead(self, event_id: str | None) -> list[int]:
        found = [pqid for pqid, data in self._dead_rows() if event_id is None or _dead_id(pqid, data) == event_id]
        if event_id is not None and not found:
            raise UnknownEvent(f"no dead letter {event_id!r} in queue {self.name!r}")
        return found

    def _replay(self, event_id: str) -> None:
        rows = dict(self._dead_rows())
        for pqid in self._find_dead(event_id):
            letter = _dead(pqid, rows[pqid])
            if letter.event is None:  # this version's worker would only bury it again
                raise UnknownEvent(
                    f"dead letter {event_id!r} in queue {self.name!r} holds nothing to replay ({letter.invalid}): "
                    "show it, or purge it"
                )
            self._q.put({"event": rows[pqid]["event"], "tries": 0, "error": ""})
            self._q.ack(id=pqid)

    async def replay(self, event_id: str) -> None:
        await self._call(self._replay, event_id)

    def _purge(self, event_id: str | None) -> int:
        found = self._find_dead(event_id)
        for pqid in found:
            self._q.ack(id=pqid)
        return len(found)

    async def purge(self, event_id: str | None = None) -> int:
        return await self._call(self._purge, event_id)

    # --- consumer ---------------------------------------------------------------------------------

    def _get(self) -> dict[str, Any] | None:
        try:
            return self._q.get(block=True, timeout=_POLL_S, raw=True)
        except Empty:
            return None

    async def consume(self, handler: Handler, *, concurrency: int = 4, burst: bool = False) -> None:
        lock_path = self._dir / f"{self._table}.worker.lock"
        with lock_path.open("w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise QueueUnavailable(f"another worker consumes queue {self.name!r} (embedded queue)") from exc
            await self._call(self._q.resume_unack_tasks)  # the leases of a dead worker end here
            slots = anyio.Semaphore(concurrency)
            pending = [0]
            async with anyio.create_task_group() as tg:
                while True:
                    await slots.acquire()
                    item = await self._call(self._get)
                    if item is None:
                        slots.release()
                        if burst and pending[0] == 0:
                            break
                        continue
                    pending[0] += 1
                    tg.start_soon(self._run, handler, item, slots, pending)
            self._q.clear_acked_data(keep_latest=0, max_delete=0)

    async def _run(self, handler: Handler, item: dict[str, Any], slots: anyio.Semaphore, pending: list[int]) -> None:
        pqid, data = int(item["pqid"]), item["data"]
        try:
            try:
                event = Event.model_validate(data["event"])
            except (ValidationError, KeyError, TypeError) as exc:
                data = {"raw": data, "error": f"not an event: {one_line(exc)}", "failed_at": time.time()}
                await self._call(lambda: (self._q.update(data, id=pqid), self._q.ack_failed(id=pqid)))
                DEAD_LETTERS.labels(self.name).inc()
                return
            if data["tries"] == 0:
                JOB_LAG_SECONDS.labels(self.name).observe(max(time.time() - event.received_at.timestamp(), 0.0))
            while True:
                began = time.perf_counter()
                try:
                    with anyio.fail_after(self.job_timeout_s):
                        await handler(event)
                except Deferred as later:  # not now: the worker slot is free meanwhile, and it is no try
                    JOB_SECONDS.labels(self.name, "deferred").observe(time.perf_counter() - began)
                    slots.release()
                    try:
                        await anyio.sleep(later.delay_s)
                    finally:
                        await slots.acquire()
                    continue
                except Exception as exc:  # noqa: BLE001 - any handler failure is retried, then dead-lettered
                    data["tries"] += 1
                    data["error"] = one_line(exc)
                    if data["tries"] >= self.retry.max_tries:
                        data["failed_at"] = time.time()
                        await self._call(lambda: (self._q.update(data, id=pqid), self._q.ack_failed(id=pqid)))
                        JOB_SECONDS.labels(self.name, "dead").observe(time.perf_counter() - began)
                        DEAD_LETTERS.labels(self.name).inc()
                        return
                    await self._call(self._q.update, data, pqid)
                    JOB_SECONDS.labels(self.name, "retry").observe(time.perf_counter() - began)
                    slots.release()
                    try:
                        await anyio.sleep(self.retry.delay(data["tries"]))
                    finally:
                        await slots.acquire()
                    continue
                await self._call(lambda: self._q.ack(id=pqid))
                JOB_SECONDS.labels(self.name, "done").observe(time.perf_counter() - began)
                self._acked += 1
                if self._acked % 500 == 0:  # finished rows are kept by persist-queue until cleared
                    await self._call(lambda: self._q.clear_acked_data(keep_latest=0, max_delete=0))
                return
        finally:
            pending[0] -= 1
            slots.release()

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self._close)

    def _close(self) -> None:
        with self._lock:
            self._db.close()
            self._q.close()


def _dead_id(pqid: int, data: dict[str, Any]) -> str:
    """A dead row's id: its event's, or (a row that never was an event, see _run) the id it came with, else
    `#<row>`."""
    held = data["event"] if "event" in data else data.get("raw")
    if isinstance(held, dict) and "event" not in data:
        held = held.get("event")
    found = held.get("id") if isinstance(held, dict) else None
    return found if isinstance(found, str) and found else f"#{pqid}"


def _dead(pqid: int, data: dict[str, Any]) -> DeadLetter:
    common: dict[str, Any] = {
        "id": _dead_id(pqid, data),
        "error": str(data.get("error", "")),
        "tries": int(data.get("tries", 0)),
        "failed_at": float(data.get("failed_at", 0.0)),
    }
    try:
        return DeadLetter(event=Event.model_validate(data["event"]), **common)
    except (ValidationError, KeyError) as exc:
        return DeadLetter(event=None, raw=json.dumps(data), invalid=f"not an event: {one_line(exc)}", **common)
