"""The production queue: Redis with arq (at-least-once, crash-safe, job ids deduplicated).

How the interface maps onto arq:
- `enqueue` is `enqueue_job("handle", event, _job_id=event.id, _expires=retention_s)`. arq refuses a
  job id whose job or result still exists. The job's key lives `retention_s` from the enqueue (arq's
  own default would be one day). arq itself keeps no result (its result holds the whole event): once
  the handler is done with an event, its result key is written with a one-byte value for `retention_s`,
  before arq drops the job, so one of the two keys always exists and arq's check (one EXISTS under
  WATCH) sees it. So an id is remembered for at least the retention window from its enqueue: that is
  the dedup.
- Expiry: a job that no worker started within `retention_s` (no consumer for that long, or retries
  pushing it past the window) loses its key. So that it is not lost silently, `enqueue` also writes
  the event to the pending hash `goresolve:pending:<queue>` (removed when the handler is done with
  it), and each worker, when it starts and then periodically, moves every pending event whose job
  expired to the dead-letter list ("expired: ..."), from where it can be replayed.
- Leases are arq's in-progress keys: a worker that dies leaves its key to expire after
  `job_timeout_s + lease_grace_s`, and then another worker runs the job again.
- Deferrals: a handler that raises `Deferred` gets `arq.Retry(defer=delay)`, and the try arq counted at
  the job's start (its retry key) is given back, so deferrals never use up `max_tries`.
- Retries: a failing handler raises `arq.Retry(defer=backoff)` until `max_tries`; then the event is
  written to the dead-letter hash `goresolve:dead:<queue>` and the job finishes. A job whose runs
  keep dying (the worker is killed each time) is dead-lettered on its next start past the limit.
- Jobs are JSON (arq's serializer is swapped for json): the queue holds plain events, no pickles.
- Deadline: every call (enqueue, ping, depth, the dead-letter list, replay, purge, each round trip of a
  sweep) answers within `timeout_s` (GORESOLVE_QUEUE_REDIS_TIMEOUT_S) or raises QueueUnavailable: a
  Redis that accepts connections but does not answer (stalled, paused, swapping) would otherwise be
  waited on forever. A worker (`consume`) pings Redis every `timeout_s` beside arq's loop and stops with
  QueueUnavailable when a ping gets no answer in time.
- Outages: a worker whose connection to Redis is lost (Redis restarted, a fail-over) logs one line
  (`queue.redis_lost`) and waits for Redis with its handlers still running, pinging it, for up to
  `outage_s` (GORESOLVE_QUEUE_REDIS_OUTAGE_S); when Redis is back it goes on (`queue.redis_back`),
  past that it stops with QueueUnavailable. A worker that stops (for that, or cancelled) gives back the
  leases of the jobs it cancelled, so another worker takes them at once rather than after the lease.

- Memory: Redis must run with `maxmemory-policy noeviction`: any other policy may evict job keys,
  pending copies and remembered ids (they have TTLs, which is all `volatile-*` needs), dropping events
  already answered 202. `ping` (so /readyz), `enqueue` and `consume` read the policy (INFO memory, else
  CONFIG GET: a managed Redis may refuse either) and refuse any other with QueueMisconfigured naming
  it; when neither can be read they log `queue.redis_policy_unknown` once and go on. At maxmemory,
  Redis refuses writes. So that workers can always drain it, `enqueue` refuses new
  events (QueueFull) once Redis uses `memory_limit` (GORESOLVE_QUEUE_REDIS_MEMORY_LIMIT, 0.9) of its
  maxmemory. A worker that finds Redis refusing writes all the same (it cannot start jobs: arq would
  skip them without a word) logs `queue.redis_full` as an error, sets the gauge
  `goresolve_queue_redis_full`, and waits for memory, its running jobs going on, for up to `outage_s`;
  past that it stops with QueueFull, naming maxmemory.

"Durable" is as durable as the Redis behind it: run it with `appendonly yes` and `appendfsync
always` (the tests do), or `everysec` when losing up to a second of accepted events on a power cut
is acceptable.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Generator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio
import structlog
from arq import Retry, Worker, create_pool, func
from arq.connections import ArqRedis, RedisSettings
from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix, retry_key_prefix
from pydantic import ValidationError
from redis.exceptions import OutOfMemoryError, RedisError, ResponseError

from workqueue.base import (
    DeadLetter,
    Deferred,
    Handler,
    QueueFull,
    QueueMisconfigured,
    QueueUnavailable,
    RetryPolicy,
    UnknownEvent,
    one_line,
)
from workqueue.events import Event
from workqueue.metrics import DEAD_LETTERS, JOB_LAG_SECONDS, JOB_SECONDS, REDIS_FULL
from workqueue.settings import REDIS_MEMORY_SETTING, REDIS_OUTAGE_SETTING, REDIS_TIMEOUT_SETTING, REDIS_URL_SHAPE

log = structlog.get_logger(__name__)


def _dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, default=str).encode()


def _loads(raw: bytes) -> dict[str, Any]:
    return json.loads(raw)


async def _wait(call: Any) -> Any:
    """redis-py types its commands as `Awaitable[T] | T`; on the asyncio client they are awaitables."""
    return await call


@dataclass(frozen=True, slots=True)
class Memory:
    """What Redis says of its memory; None where it would not say (INFO or CONFIG renamed or not permitted)."""

    used: int | None
    limit: int | None  # maxmemory in bytes; 0: none
    policy: str | None  # maxmemory-policy

    def describe(self) -> str:
        used = "?" if self.used is None else f"{self.used}"
        limit = "?" if self.limit is None else f"{self.limit}"
        return f"used_memory {used} of maxmemory {limit} bytes"


def safe_url(url: str) -> str:
    """`url` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class RedisQueue:
    """One named arq queue (`goresolve:<name>`) on the Redis at `url`."""

    def __init__(
        self,
        url: str,
        name: str,
        *,
        retry: RetryPolicy | None = None,
        retention_s: float = 3 * 86400,
        job_timeout_s: float = 600.0,
        lease_grace_s: float = 10.0,
        poll_s: float = 0.05,
        timeout_s: float = 10.0,
        outage_s: float = 60.0,
        memory_limit: float = 0.9,
    ) -> None:
        self.name = name
        self.memory_limit = memory_limit
        self.outage_s = outage_s
        self.retry = retry or RetryPolicy()
        self.retention_s = retention_s
        self.job_timeout_s = job_timeout_s
        self.lease_grace_s = lease_grace_s
        self.poll_s = poll_s
        self.timeout_s = timeout_s
        self._url = url
        self._queue = f"goresolve:{name}"
        self._dead = f"goresolve:dead:{name}"
        self._pending = f"goresolve:pending:{name}"
        self._done = result_key_prefix  # arq's result key, a one-byte marker (see above)
        self._probe = f"goresolve:probe:{name}"
        try:
            self._settings = RedisSettings.from_dsn(url)
        except (RuntimeError, ValueError):
            raise ValueError(f"queue {name!r}: {REDIS_URL_SHAPE}") from None  # the URL may hold a password
        self._settings.conn_retries = 0
        self._settings.conn_timeout = 2
        self._pool: ArqRedis | None = None
        self._policy_unknown_told = False

    @contextmanager
    def _deadline(self) -> Generator[None]:
        """Redis work that must be done within `timeout_s`.

        Raises:
            QueueUnavailable: it was not (the message names Redis and the setting, never the password).
        """
        try:
            with anyio.fail_after(self.timeout_s):
                yield
        except TimeoutError:
            raise QueueUnavailable(
                f"queue {self.name!r}: Redis at {safe_url(self._url)} did not answer within {self.timeout_s:g}s "
                f"(it is stalled or overloaded; the deadline is {REDIS_TIMEOUT_SETTING})"
            ) from None

    async def _redis(self) -> ArqRedis:
        if self._pool is None:
            try:
                self._pool = await create_pool(
                    self._settings,
                    job_serializer=_dumps,
                    job_deserializer=_loads,
                    default_queue_name=self._queue,
                )
            except (RedisError, OSError) as exc:
                raise QueueUnavailable(f"cannot reach redis at {safe_url(self._url)}: {exc}") from exc
        return self._pool

    async def _enqueue(self, redis: ArqRedis, data: dict[str, Any], job_id: str, digest: str | None = None) -> bool:
        """The job `job_id`, unless that id is remembered, or `digest` is remembered for another id; its
        pending copy is written first (see above).

        The digest key holds the id that claimed it, for the retention window: the same id coming back
        (its first write's answer was lost) goes on to arq's own check of the id.
        """
        claimed = False
        key = f"goresolve:digest:{digest}"
        if digest is not None:
            claimed = bool(await _wait(redis.set(key, job_id, nx=True, ex=max(int(self.retention_s), 1))))
            if not claimed:
                owner = await _wait(redis.get(key))
                if owner is not None and owner.decode() != job_id:
                    return False
        copy = json.dumps({"event": data, "at": time.time()})
        copied = await _wait(redis.hsetnx(self._pending, job_id, copy))
        job = await redis.enqueue_job("handle", data, _job_id=job_id, _expires=self.retention_s)
        if job is None and copied:  # a duplicate: the copy belongs to no job
            await _wait(redis.hdel(self._pending, job_id))
        if job is None and claimed:  # nor does the digest this call claimed: the body may come under another id
            await _wait(redis.delete(key))
        return job is not None

    async def enqueue(self, event: Event, *, digest: str | None = None) -> bool:
        with self._deadline():
            redis = await self._redis()
            try:
                await self._admit(redis)
                return await self._enqueue(redis, event.model_dump(mode="json"), event.id, digest)
            except OutOfMemoryError as exc:
                raise QueueFull(f"queue {self.name!r}: Redis at {safe_url(self._url)} is full: {exc}") from exc
            except (RedisError, OSError) as exc:
                raise QueueUnavailable(f"queue {self.name!r}: {exc}") from exc

    async def memory(self, redis: ArqRedis) -> Memory:
        """Redis's memory use, limit and policy: INFO memory, else CONFIG GET (a managed Redis may refuse either)."""
        info: dict[str, Any] = {}
        with contextlib.suppress(ResponseError):
            info = dict(await _wait(redis.info("memory")))
        used, limit, policy = info.get("used_memory"), info.get("maxmemory"), info.get("maxmemory_policy")
        if limit is None or policy is None:
            config: dict[str, Any] = {}
            with contextlib.suppress(ResponseError):
                config = dict(await _wait(redis.config_get("maxmemory*")))
            limit = config.get("maxmemory", limit)
            policy = config.get("maxmemory-policy", policy)
        return Memory(
            used=None if used is None else int(used),
            limit=None if limit is None else int(limit),
            policy=None if policy is None else str(policy),
        )

    async def _admit(self, redis: ArqRedis) -> None:
        """Refuse a new event once Redis uses `memory_limit` of its maxmemory: the rest is the workers'.

        Raises:
            QueueFull: it does.
        """
        memory = await self.memory(redis)
        self._check_policy(memory)
        if memory.used is None or not memory.limit or memory.used < self.memory_limit * memory.limit:
            return
        raise QueueFull(
            f"queue {self.name!r}: Redis at {safe_url(self._url)} is nearly full ({memory.describe()}); new events "
            f"are refused above {self.memory_limit:.0%} of maxmemory ({REDIS_MEMORY_SETTING}) so that workers can "
            "drain the queue: raise maxmemory, or purge dead letters"
        )

    async def ping(self) -> None:
        """Redis answers, and keeps what it is given (see the module docstring: the eviction policy).

        Raises:
            QueueUnavailable: it does not answer.
            QueueMisconfigured: its maxmemory-policy evicts keys.
        """
        with self._deadline():
            redis = await self._redis()
            try:
                await redis.ping()
                self._check_policy(await self.memory(redis))
            except (RedisError, OSError) as exc:
                raise QueueUnavailable(f"queue {self.name!r}: {exc}") from exc

    def _check_policy(self, memory: Memory) -> None:
        """Raises QueueMisconfigured unless Redis's maxmemory-policy is noeviction (or could not be read)."""
        if memory.policy is None:
            if not self._policy_unknown_told:
                self._policy_unknown_told = True
                log.warning(
                    "queue.redis_policy_unknown",
                    queue=self.name,
                    redis=safe_url(self._url),
                    hint="Redis refused INFO and CONFIG GET: make sure its maxmemory-policy is noeviction, or it "
                    "may evict events already accepted",
                )
            return
        if memory.policy != "noeviction":
            raise QueueMisconfigured(
                f"queue {self.name!r}: Redis at {safe_url(self._url)} has maxmemory-policy {memory.policy}: under "
                "memory pressure it may evict queued events and remembered delivery ids, losing events already "
                "accepted; set maxmemory-policy noeviction (a managed Redis: in its parameter group or configuration)"
            )

    async def depth(self) -> int:
        with self._deadline():
            redis = await self._redis()
            try:
                return int(await redis.zcard(self._queue))
            except (RedisError, OSError) as exc:
                raise QueueUnavailable(f"queue {self.name!r}: {exc}") from exc

    async def _dead_map(self) -> dict[str, bytes]:
        """The dead-letter hash as stored: id -> the letter's JSON, not read (one may not be an event)."""
        redis = await self._redis()
        try:
            raw = await _wait(redis.hgetall(self._dead))
        except (RedisError, OSError) as exc:
            raise QueueUnavailable(f"queue {self.name!r}: {exc}") from exc
        return {k.decode(errors="replace"): bytes(v) for k, v in raw.items()}

    async def dead_letters(self) -> list[DeadLetter]:
        with self._deadline():
            found = await self._dead_map()
        return sorted((_letter(key, raw) for key, raw in found.items()), key=lambda d: d.failed_at)

    async def dead_count(self) -> int:
        with self._deadline():
            redis = await self._redis()
            try:
                return int(await _wait(redis.hlen(self._dead)))
            except (RedisError, OSError) as exc:
                raise QueueUnavailable(f"queue {self.name!r}: {exc}") from exc

    async def replay(self, event_id: str) -> None:
        with self._deadline():
            dead = await self._dead_map()
            if event_id not in dead:
                raise UnknownEvent(f"no dead letter {event_id!r} in queue {self.name!r}")
            letter = _letter(event_id, dead[event_id])
            if letter.event is None:  # this version's worker would only bury it again
                raise UnknownEvent(
                    f"dead letter {event_id!r} in queue {self.name!r} holds nothing to replay ({letter.invalid}): "
                    "show it, or purge it"
                )
            data = json.loads(dead[event_id])["event"]
            redis = await self._redis()
            replay_id = f"{event_id}#replay-{time.time_ns()}"
            try:
                await self._enqueue(redis, data, replay_id)
                await _wait(redis.hdel(self._dead, event_id))
            except (RedisError, OSError) as exc:
                raise QueueUnavailable(f"queue {self.name!r}: {exc}") from exc

    async def purge(self, event_id: str | None = None) -> int:
        with self._deadline():
            redis = await self._redis()
            try:
                ids = [event_id] if event_id is not None else [k.decode() for k in await _wait(redis.hkeys(self._dead))]
                dropped = int(await _wait(redis.hdel(self._dead, *ids))) if ids else 0
            except (RedisError, OSError) as exc:
                raise QueueUnavailable(f"queue {self.name!r}: {exc}") from exc
            if event_id is not None and not dropped:
                raise UnknownEvent(f"no dead letter {event_id!r} in queue {self.name!r}")
            return dropped

    async def _bury(self, redis: ArqRedis, data: dict[str, Any], error: str, tries: int) -> None:
        letter = {"event": data, "error": error, "tries": tries, "failed_at": time.time()}
        await _wait(redis.hset(self._dead, str(data.get("id", "?")), json.dumps(letter)))
        DEAD_LETTERS.labels(self.name).inc()

    async def sweep_expired(self) -> int:
        """Dead-letter every pending event whose job expired before a worker started it; returns how many.

        A pending copy is at least as old as its job, whose key lives `retention_s`: a copy that old
        without its job is an expired job (or an enqueue that failed half-way). Whoever deletes the
        copy first owns it, so a handler finishing meanwhile is never dead-lettered as well.
        """
        with self._deadline():
            redis = await self._redis()
        now = time.time()
        swept = 0
        cursor = 0
        while True:  # each round trip within the deadline: a long pending list is not one call
            with self._deadline():
                cursor, batch = await _wait(redis.hscan(self._pending, cursor, count=100))
            for raw_id, raw in batch.items():
                job_id = raw_id.decode()
                copy = json.loads(raw)
                with self._deadline():
                    if now - float(copy["at"]) < self.retention_s or await _wait(redis.exists(job_key_prefix + job_id)):
                        continue
                    if not await _wait(redis.hdel(self._pending, job_id)):
                        continue
                    error = f"expired: no worker started it within the retention window ({self.retention_s:g}s)"
                    await self._bury(redis, copy["event"], error, 0)
                    await _wait(redis.zrem(self._queue, job_id))
                swept += 1
            if cursor == 0:
                return swept

    async def consume(self, handler: Handler, *, concurrency: int = 4, burst: bool = False) -> None:
        await self.ping()  # reachable, and it keeps what it is given (the eviction policy)
        with self._deadline():
            redis = await self._redis()
        policy = self.retry

        async def handle(ctx: dict[str, Any], data: dict[str, Any]) -> None:
            await run(ctx, data)  # a retry raises past the lines below
            # Done with (handled or dead-lettered): the pending copy goes and the id is remembered, before arq
            # drops the job (it keeps no result).
            job_id = str(ctx["job_id"])
            await _wait(redis.hdel(self._pending, job_id))
            try:
                await _wait(redis.set(self._done + job_id, b"1", ex=max(int(self.retention_s), 1)))
            except OutOfMemoryError:  # the event is done all the same; a redelivery of it would run again
                log.warning("queue.done_not_remembered", queue=self.name, id=job_id, error="Redis is full")

        async def run(ctx: dict[str, Any], data: dict[str, Any]) -> None:
            tries = int(ctx["job_try"])
            if tries > policy.max_tries:  # earlier runs died mid-job: the lease expired each time
                await self._bury(redis, data, "the worker died during every try", tries - 1)
                return
            try:
                event = Event.model_validate(data)
            except ValidationError as exc:
                await self._bury(redis, data, f"not an event: {one_line(exc)}", tries)
                return
            if tries == 1:
                JOB_LAG_SECONDS.labels(self.name).observe(max(time.time() - event.received_at.timestamp(), 0.0))
            began = time.perf_counter()
            try:
                with anyio.fail_after(self.job_timeout_s):
                    await handler(event)
            except Deferred as later:
                JOB_SECONDS.labels(self.name, "deferred").observe(time.perf_counter() - began)
                # arq counted this start as a try (its retry key); a deferral gives it back. Should Redis not
                # answer, the deferral counts as one try, as a failure would.
                with contextlib.suppress(RedisError, OSError, QueueUnavailable), self._deadline():
                    await _wait(redis.decr(retry_key_prefix + str(ctx["job_id"])))
                raise Retry(defer=later.delay_s) from None
            except Exception as exc:
                if tries >= policy.max_tries:
                    JOB_SECONDS.labels(self.name, "dead").observe(time.perf_counter() - began)
                    await self._bury(redis, data, one_line(exc), tries)
                    return
                JOB_SECONDS.labels(self.name, "retry").observe(time.perf_counter() - began)
                raise Retry(defer=policy.delay(tries)) from exc
            JOB_SECONDS.labels(self.name, "done").observe(time.perf_counter() - began)

        worker = Worker(
            functions=[func(handle, name="handle", max_tries=policy.max_tries + 1)],
            redis_settings=self._settings,
            queue_name=self._queue,
            max_jobs=concurrency,
            job_timeout=self.job_timeout_s + 1,  # ours (above) fires first and counts as a failed try
            keep_result=0,  # the result would hold the whole event; `handle` writes a marker in its place
            burst=burst,
            poll_delay=self.poll_s,
            handle_signals=False,
            job_serializer=_dumps,
            job_deserializer=_loads,
        )
        worker.in_progress_timeout_s = self.job_timeout_s + 1 + self.lease_grace_s  # the lease

        async def sweep_periodically() -> None:
            while True:
                await anyio.sleep(min(max(self.retention_s / 4, 1.0), 600.0))
                try:
                    await self.sweep_expired()
                except (RedisError, OSError, QueueUnavailable):
                    continue  # Redis is away: the worker itself waits for it; sweep next time

        stalled: list[QueueUnavailable] = []
        full = _Full()

        async def watch(worker_scope: anyio.CancelScope) -> None:
            """End the worker when Redis stops answering (arq's own calls would wait on it without end), or has
            refused connections, or writes for want of memory, for longer than `outage_s` (arq, its slots all
            taken by running jobs, may not be calling Redis at all; and it skips, without a word, a job whose
            lease Redis would not write)."""
            down_since: float | None = None
            while True:
                await anyio.sleep(min(self.timeout_s, max(self.outage_s, 0.5)))
                try:
                    with self._deadline():
                        await redis.ping()
                        await _wait(redis.set(self._probe, b"1", px=60_000))
                    down_since = None
                    self._not_full(full)
                except QueueUnavailable as exc:
                    stalled.append(exc)
                    worker_scope.cancel()
                    return
                except OutOfMemoryError as exc:
                    down_since = None
                    if (gave_up := await self._full(redis, full, exc)) is not None:
                        stalled.append(gave_up)
                        worker_scope.cancel()
                        return
                except (RedisError, OSError) as exc:
                    now = time.monotonic()
                    down_since = now if down_since is None else down_since
                    if now - down_since >= self.outage_s:
                        stalled.append(self._gone(exc))
                        worker_scope.cancel()
                        return

        try:
            await self.sweep_expired()
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(watch, tasks.cancel_scope)
                if not burst:
                    tasks.start_soon(sweep_periodically)
                await self._work(worker, redis, full)
                tasks.cancel_scope.cancel()
            if stalled:
                raise stalled[0]
        finally:
            REDIS_FULL.labels(self.name).set(0)
            ongoing = [job_id for job_id, task in worker.tasks.items() if not task.done()]
            with anyio.CancelScope(shield=True):
                with anyio.move_on_after(self.timeout_s):  # closing writes to Redis too (arq's health key)
                    with contextlib.suppress(RedisError, OSError):  # Redis is away: nothing more to tell it
                        await worker.close()
                await self._release(redis, ongoing)

    async def _work(self, worker: Worker, redis: ArqRedis, full: _Full) -> None:
        """arq's loop, entered again after each lost connection once Redis answers (see the module docstring).

        Raises:
            QueueUnavailable: Redis did not come back within `outage_s`.
            QueueFull: Redis refused writes for want of memory for `outage_s`.
        """
        while True:
            try:
                await worker.main()
                return
            except OutOfMemoryError as exc:  # Redis answers: it is full, not gone
                if (gave_up := await self._full(redis, full, exc)) is not None:
                    raise gave_up from None
                await anyio.sleep(min(1.0, max(self.outage_s, 0.1)))
                continue
            except (RedisError, OSError) as exc:
                lost = self._one_line(exc)
            log.warning(
                "queue.redis_lost",
                queue=self.name,
                redis=safe_url(self._url),
                error=lost,
                running=sum(not t.done() for t in worker.tasks.values()),
                wait_s=self.outage_s,
            )
            began = time.monotonic()
            while True:
                try:
                    with self._deadline():
                        await redis.ping()
                    break
                except (RedisError, OSError, QueueUnavailable) as exc:
                    if time.monotonic() - began >= self.outage_s:
                        raise self._gone(exc) from None
                await anyio.sleep(min(0.5, self.outage_s))
            log.info("queue.redis_back", queue=self.name, down_s=round(time.monotonic() - began, 1))

    async def _full(self, redis: ArqRedis, full: _Full, exc: OutOfMemoryError) -> QueueFull | None:
        """Redis refused a write for want of memory: one loud line (and the gauge) when that starts; past
        `outage_s` of it, the error that stops the worker."""
        now = time.monotonic()
        if full.since is None:
            full.since = now
            memory = Memory(None, None, None)
            with contextlib.suppress(RedisError, OSError, QueueUnavailable), self._deadline():
                memory = await self.memory(redis)
            REDIS_FULL.labels(self.name).set(1)
            log.error(
                "queue.redis_full",
                queue=self.name,
                redis=safe_url(self._url),
                error=self._one_line(exc),
                used_memory=memory.used,
                maxmemory=memory.limit,
                wait_s=self.outage_s,
                hint="Redis reached its maxmemory and refuses writes, so no job can start: raise maxmemory or "
                "purge dead letters (goresolve queue purge); the worker stops if it lasts",
            )
            return None
        if now - full.since < self.outage_s:
            return None
        return QueueFull(
            f"queue {self.name!r}: Redis at {safe_url(self._url)} has refused writes for want of memory for "
            f"{self.outage_s:g}s ({REDIS_OUTAGE_SETTING}): it reached its maxmemory; raise maxmemory or purge "
            f"dead letters (goresolve queue purge): {self._one_line(exc)}"
        )

    def _not_full(self, full: _Full) -> None:
        if full.since is not None:
            log.info("queue.redis_not_full", queue=self.name, full_s=round(time.monotonic() - full.since, 1))
            full.since = None
            REDIS_FULL.labels(self.name).set(0)

    def _gone(self, exc: BaseException) -> QueueUnavailable:
        return QueueUnavailable(
            f"queue {self.name!r}: Redis at {safe_url(self._url)} has been unreachable for {self.outage_s:g}s "
            f"({REDIS_OUTAGE_SETTING}): {self._one_line(exc)}"
        )

    def _one_line(self, exc: BaseException) -> str:
        password = urlsplit(self._url).password
        line = one_line(exc)
        return line.replace(password, "***") if password else line

    async def _release(self, redis: ArqRedis, job_ids: list[str]) -> None:
        """Give back the leases of the jobs this worker cancelled, so that the next worker takes them at once.

        arq deletes a cancelled job's lease itself, unless Redis was away just then; best effort, within
        the deadline."""
        if not job_ids:
            return
        with anyio.move_on_after(self.timeout_s):
            try:
                await _wait(redis.delete(*(in_progress_key_prefix + job_id for job_id in job_ids)))
            except (RedisError, OSError):
                log.warning("queue.leases_kept", queue=self.name, jobs=len(job_ids))

    async def aclose(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            with anyio.move_on_after(self.timeout_s):
                await pool.aclose()


def _letter(key: str, raw: bytes) -> DeadLetter:
    """One stored dead letter; one that holds no event this version reads is kept, as its text and why."""
    text = raw.decode(errors="replace")
    try:
        stored = json.loads(text)
    except ValueError as exc:
        return DeadLetter(id=key, event=None, error="", tries=0, failed_at=0.0, raw=text, invalid=f"not JSON: {exc}")
    meta = stored if isinstance(stored, dict) else {}
    error, tries, failed_at = meta.get("error", ""), meta.get("tries", 0), meta.get("failed_at", 0.0)
    common: dict[str, Any] = {
        "id": key,
        "error": str(error),
        "tries": tries if isinstance(tries, int) else 0,
        "failed_at": float(failed_at) if isinstance(failed_at, int | float) else 0.0,
    }
    try:
        return DeadLetter(event=Event.model_validate(meta["event"]), **common)
    except (ValidationError, KeyError) as exc:
        return DeadLetter(event=None, raw=text, invalid=f"not an event: {one_line(exc)}", **common)


@dataclass(slots=True)
class _Full:
    """Since when (monotonic) a worker has found Redis refusing writes for want of memory; None: it has not."""

    since: float | None = None
