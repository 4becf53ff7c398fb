"""The production queue: Redis with arq (at-least-once, crash-safe, job ids deduplicated).

How the interface maps onto arq:
- `enqueue` is `enqueue_job("handle", event, _job_id=event.id)`. arq refuses a job id whose job or
  result still exists, and results are kept for the retention window, so that is the dedup.
- Leases are arq's in-progress keys: a worker that dies leaves its key to expire after
  `job_timeout_s + lease_grace_s`, and then another worker runs the job again.
- Retries: a failing handler raises `arq.Retry(defer=backoff)` until `max_tries`; then the event is
  written to the dead-letter hash `goresolve:dead:<queue>` and the job finishes. A job whose runs
  keep dying (the worker is killed each time) is dead-lettered on its next start past the limit.
- Jobs are JSON (arq's serializer is swapped for json): the queue holds plain events, no pickles.

"Durable" is as durable as the Redis behind it: run it with `appendonly yes` and `appendfsync
always` (the tests do), or `everysec` when losing up to a second of accepted events on a power cut
is acceptable.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio
from arq import Retry, Worker, create_pool, func
from arq.connections import ArqRedis, RedisSettings
from pydantic import ValidationError
from redis.exceptions import RedisError

from workqueue.base import DeadLetter, Handler, QueueUnavailable, RetryPolicy, UnknownEvent, one_line
from workqueue.events import Event
from workqueue.metrics import DEAD_LETTERS, JOB_LAG_SECONDS, JOB_SECONDS


def _dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, default=str).encode()


def _loads(raw: bytes) -> dict[str, Any]:
    return json.loads(raw)


async def _wait(call: Any) -> Any:
    """redis-py types its commands as `Awaitable[T] | T`; on the asyncio client they are awaitables."""
    return await call


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
    ) -> None:
        self.name = name
        self.retry = retry or RetryPolicy()
        self.retention_s = retention_s
        self.job_timeout_s = job_timeout_s
        self.lease_grace_s = lease_grace_s
        self.poll_s = poll_s
        self._url = url
        self._queue = f"goresolve:{name}"
        self._dead = f"goresolve:dead:{name}"
        self._settings = RedisSettings.from_dsn(url)
        self._settings.conn_retries = 0
        self._settings.conn_timeout = 2
        self._pool: ArqRedis | None = None

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

    async def enqueue(self, event: Event) -> bool:
        redis = await self._redis()
        try:
            job = await redis.enqueue_job("handle", event.model_dump(mode="json"), _job_id=event.id)
        except (RedisError, OSError) as exc:
            raise QueueUnavailable(f"queue {self.name!r}: {exc}") from exc
        return job is not None

    async def ping(self) -> None:
        redis = await self._redis()
        try:
            await redis.ping()
        except (RedisError, OSError) as exc:
            raise QueueUnavailable(f"queue {self.name!r}: {exc}") from exc

    async def depth(self) -> int:
        redis = await self._redis()
        try:
            return int(await redis.zcard(self._queue))
        except (RedisError, OSError) as exc:
            raise QueueUnavailable(f"queue {self.name!r}: {exc}") from exc

    async def _dead_map(self) -> dict[str, dict[str, Any]]:
        redis = await self._redis()
        try:
            raw = await _wait(redis.hgetall(self._dead))
        except (RedisError, OSError) as exc:
            raise QueueUnavailable(f"queue {self.name!r}: {exc}") from exc
        return {k.decode(): json.loads(v) for k, v in raw.items()}

    async def dead_letters(self) -> list[DeadLetter]:
        found = (await self._dead_map()).values()
        letters = [
            DeadLetter(
                event=Event.model_validate(d["event"]), error=d["error"], tries=d["tries"], failed_at=d["failed_at"]
            )
            for d in found
        ]
        return sorted(letters, key=lambda d: d.failed_at)

    async def replay(self, event_id: str) -> None:
        dead = await self._dead_map()
        if event_id not in dead:
            raise UnknownEvent(f"no dead letter {event_id!r} in queue {self.name!r}")
        redis = await self._redis()
        replay_id = f"{event_id}#replay-{time.time_ns()}"
        try:
            await redis.enqueue_job("handle", dead[event_id]["event"], _job_id=replay_id)
            await _wait(redis.hdel(self._dead, event_id))
        except (RedisError, OSError) as exc:
            raise QueueUnavailable(f"queue {self.name!r}: {exc}") from exc

    async def purge(self, event_id: str | None = None) -> int:
        dead = await self._dead_map()
        if event_id is not None and event_id not in dead:
            raise UnknownEvent(f"no dead letter {event_id!r} in queue {self.name!r}")
        ids = [event_id] if event_id is not None else list(dead)
        if not ids:
            return 0
        redis = await self._redis()
        try:
            return int(await _wait(redis.hdel(self._dead, *ids)))
        except (RedisError, OSError) as exc:
            raise QueueUnavailable(f"queue {self.name!r}: {exc}") from exc

    async def _bury(self, redis: ArqRedis, data: dict[str, Any], error: str, tries: int) -> None:
        letter = {"event": data, "error": error, "tries": tries, "failed_at": time.time()}
        await _wait(redis.hset(self._dead, str(data.get("id", "?")), json.dumps(letter)))
        DEAD_LETTERS.labels(self.name).inc()

    async def consume(self, handler: Handler, *, concurrency: int = 4, burst: bool = False) -> None:
        redis = await self._redis()
        policy = self.retry

        async def handle(ctx: dict[str, Any], data: dict[str, Any]) -> None:
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
            keep_result=self.retention_s,
            burst=burst,
            poll_delay=self.poll_s,
            handle_signals=False,
            job_serializer=_dumps,
            job_deserializer=_loads,
        )
        worker.in_progress_timeout_s = self.job_timeout_s + 1 + self.lease_grace_s  # the lease
        try:
            await worker.main()
        finally:
            await worker.close()

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None
