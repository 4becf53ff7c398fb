"""Local mode's per-ticket run record: what the Job name is in Kubernetes mode, one row per ticket.

A SQLite file in the data directory (`<data dir>/dispatch/tickets.db`) holds, per ticket, the run that
has it: the request (queue event) that started it, the dispatcher process that owns it, a marker
the agent's processes carry in their environment, and, once it ended, its record. Every decision is
one `BEGIN IMMEDIATE` transaction, so two deliveries (or two dispatchers) never both start a run:

- no row, or a finished run older than the TTL (`ttl_after_finished_s`, as a finished Job's): start;
- a run whose owner lives: the same request follows it to its end; another request's dispatch ends at once
  (the owner records it; following it would hold a queue worker for the whole run);
- a finished run within the TTL: adopt its record, unless the request is a restart command from
  another request than the one that started it (`replaces_run`, the rule Kubernetes mode uses): start;
- a run whose owner died (a dispatcher killed mid-run): the run died with it (the kernel kills the
  agent, see local.py), and whatever of its process tree is left is killed when the next dispatcher starts
  (`reap_orphans`), or at the latest before a new run of the ticket starts.

An owner is a process id and its start time (from /proc), so a reused pid is not taken for it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.to_thread

from agent.dispatch.errors import DispatchError
from agent.dispatch.results import RunRecord
from agent.dispatch.tickets import Ticket, replaces_run

MARKER_ENV = "GORESOLVE_DISPATCH_RUN_MARKER"
"""Set in the agent's environment to the run's marker: every process of the run inherits it."""

_BUSY_S = 30.0
T = TypeVar("T")
_POLL_S = 0.5


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat); None when gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    if fields[0] in ("Z", "X"):  # a zombie has ended: it holds nothing
        return None
    return fields[19]


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def alive(pid: int, started: str, boot: str) -> bool:
    """Whether the process `pid` that started at `started` during boot `boot` still runs."""
    return boot == _boot_id() and start_time(pid) == started


def processes_with(marker: str) -> list[int]:
    """The processes whose environment carries `marker` (a run's process tree, wherever its members went)."""
    needle = f"{MARKER_ENV}={marker}".encode()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def kill_run(marker: str) -> int:
    """SIGKILL every process left of the run with `marker`; how many there were."""
    pids = processes_with(marker)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)


@dataclass(frozen=True, slots=True)
class Start:
    """This request starts the ticket's run; `marker` goes into the agent's environment."""

    marker: str
    killed: int = 0  # processes left of a run whose dispatcher had died, killed first


@dataclass(frozen=True, slots=True)
class Follow:
    """The ticket's run is going (in this dispatcher or another), started by `request`."""

    marker: str
    request: str = ""


@dataclass(frozen=True, slots=True)
class Adopt:
    """The ticket's run finished within the TTL: this is its record."""

    record: RunRecord


Decision = Start | Follow | Adopt


class TicketRuns:
    """The per-ticket records in `path` (created on first use)."""

    def __init__(self, path: Path, *, ttl_s: float) -> None:
        self.path = path
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=_BUSY_S, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS runs (ticket TEXT PRIMARY KEY, request TEXT NOT NULL, marker TEXT NOT NULL,"
                " owner_pid INTEGER NOT NULL, owner_start TEXT NOT NULL, boot TEXT NOT NULL, started_at REAL NOT NULL,"
                " finished_at REAL, record TEXT)"
            )
            self._db = db
        return self._db

    def _decide(self, ticket: Ticket) -> Decision:
        me = os.getpid()
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute(
                    "SELECT request, marker, owner_pid, owner_start, boot, finished_at, record"
                    " FROM runs WHERE ticket = ?",
                    (ticket.id,),
                ).fetchone()
                killed = 0
                if row is not None:
                    request, marker, owner_pid, owner_start, boot, finished_at, record = row
                    if finished_at is None:
                        if alive(owner_pid, owner_start, boot):
                            db.execute("COMMIT")
                            return Follow(marker, request)
                        killed = kill_run(marker)  # its dispatcher died: nothing will record it
                    elif time.time() - finished_at < self.ttl_s and not replaces_run(ticket, True, request):
                        db.execute("COMMIT")
                        return Adopt(RunRecord(**json.loads(record)))
                marker = uuid.uuid4().hex
                db.execute(
                    "INSERT OR REPLACE INTO runs (ticket, request, marker, owner_pid, owner_start, boot, started_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (ticket.id, ticket.request, marker, me, start_time(me) or "", _boot_id(), time.time()),
                )
                db.execute("COMMIT")
                return Start(marker, killed)
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def reap_orphans(self) -> int:
        """Kill what is left of every unfinished run whose dispatcher died (the kernel killed the agent itself, not
        the processes it started: a `go test`, a server); how many processes there were. A dispatcher calls it
        when it starts, rather than leaving them running until the ticket comes again."""
        killed = 0
        with self._lock:
            rows = (
                self._conn()
                .execute("SELECT marker, owner_pid, owner_start, boot FROM runs WHERE finished_at IS NULL")
                .fetchall()
            )
        for marker, owner_pid, owner_start, boot in rows:
            if not alive(owner_pid, owner_start, boot):
                killed += kill_run(marker)
        return killed

    def _finish(self, ticket: Ticket, marker: str, record: RunRecord) -> None:
        with self._lock:
            self._conn().execute(
                "UPDATE runs SET finished_at = ?, record = ? WHERE ticket = ? AND marker = ?",
                (time.time(), json.dumps(asdict(record)), ticket.id, marker),
            )

    def _drop(self, ticket: Ticket, marker: str) -> None:
        with self._lock:
            self._conn().execute("DELETE FROM runs WHERE ticket = ? AND marker = ?", (ticket.id, marker))

    def _state(self, ticket: Ticket, marker: str) -> tuple[bool, str | None]:
        """(whether the run with `marker` is over, its record if it has one)."""
        with self._lock:
            row = (
                self._conn()
                .execute(
                    "SELECT marker, owner_pid, owner_start, boot, finished_at, record FROM runs WHERE ticket = ?",
                    (ticket.id,),
                )
                .fetchone()
            )
        if row is None or row[0] != marker:
            return True, None
        if row[4] is not None:
            return True, row[5]
        return not alive(row[1], row[2], row[3]), None

    async def decide(self, ticket: Ticket) -> Decision:
        """Start, follow or adopt (see the module docstring). Raises DispatchError when the file cannot be used."""
        return await self._call(self._decide, ticket)

    async def finish(self, ticket: Ticket, marker: str, record: RunRecord) -> None:
        """Remember the end of the run with `marker`. Raises DispatchError when the file cannot be written."""
        await self._call(self._finish, ticket, marker, record)

    async def drop(self, ticket: Ticket, marker: str) -> None:
        """Forget the run with `marker`, which ended without a record (its dispatch was cancelled and killed it):
        the next delivery of the ticket starts a run. Raises DispatchError when the file cannot be written."""
        await self._call(self._drop, ticket, marker)

    async def follow(self, ticket: Ticket, marker: str) -> RunRecord | None:
        """Wait until the run with `marker` is over; its record, or None when it died without one."""
        while True:
            over, record = await self._call(self._state, ticket, marker)
            if over:
                return RunRecord(**json.loads(record)) if record else None
            await anyio.sleep(_POLL_S)

    async def _call(self, fn: Callable[..., T], *args: object) -> T:
        try:
            return await anyio.to_thread.run_sync(fn, *args)
        except (OSError, sqlite3.Error) as exc:
            raise DispatchError(f"the ticket run records in {self.path} cannot be used: {exc}") from None

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
