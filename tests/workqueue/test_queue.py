"""The shared suite: SQLite (persist-queue) and Redis (arq) behave the same behind `WorkQueue`."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import anyio
import jsonschema
import pytest
from redis.asyncio import Redis

from tests.workqueue.conftest import FAST, make_queue
from tests.workqueue.support import push_event
from workqueue import Deferred, Event, QueueUnavailable, UnknownEvent, WorkQueue
from workqueue.events import SCHEMA_FILE, json_schema
from workqueue.redis import RedisQueue


async def _drain(queue: WorkQueue, handler: object) -> None:
    with anyio.fail_after(30):
        await queue.consume(handler, concurrency=2, burst=True)  # type: ignore[arg-type]


async def test_an_enqueued_event_reaches_the_handler_once_and_a_duplicate_is_refused(queue: WorkQueue) -> None:
    seen: list[Event] = []

    async def handler(event: Event) -> None:
        seen.append(event)

    event = push_event(1)
    assert await queue.enqueue(event) is True
    assert await queue.enqueue(event) is False
    assert await queue.depth() == 1
    await _drain(queue, handler)
    assert seen == [event]
    assert await queue.depth() == 0
    assert await queue.enqueue(event) is False  # remembered after it was handled


async def test_a_body_digest_seen_under_another_id_is_a_duplicate_and_the_same_id_is_judged_by_its_id(
    queue: WorkQueue,
) -> None:
    digest, other = uuid.uuid4().hex * 2, uuid.uuid4().hex * 2  # sha256-shaped, unique per run
    first = push_event(f"b{digest[:8]}")
    assert await queue.enqueue(first, digest=digest) is True
    assert await queue.enqueue(push_event(f"r{digest[:8]}"), digest=digest) is False  # a replay under a new id
    assert await queue.enqueue(first, digest=digest) is False  # the same delivery again: its id
    assert await queue.enqueue(push_event(f"n{digest[:8]}"), digest=other) is True
    assert await queue.enqueue(push_event(f"x{digest[:8]}")) is True  # no digest given: the id alone
    assert await queue.depth() == 3


async def test_a_body_refused_under_a_reused_id_can_still_come_under_its_own_id(queue: WorkQueue) -> None:
    """Body A under id D, then body B under D (a duplicate, by its id), then B under a new id: queued. Before,
    Redis kept B's digest from the refused write, owned by no job, and refused B for the retention window
    (SQLite took it: the two backends disagreed)."""
    a, b = uuid.uuid4().hex * 2, uuid.uuid4().hex * 2
    reused = push_event(f"d{a[:8]}")
    assert await queue.enqueue(reused, digest=a) is True
    assert await queue.enqueue(reused, digest=b) is False
    assert await queue.enqueue(push_event(f"e{b[:8]}"), digest=b) is True
    assert await queue.enqueue(push_event(f"f{b[:8]}"), digest=b) is False  # and B is remembered now
    assert await queue.depth() == 2


async def test_a_lost_enqueue_whose_digest_landed_lets_the_same_delivery_through(redis_url: str) -> None:
    """The digest is claimed before the job is written: a write cut off in between must not turn the sender's
    redelivery of that same delivery (same id, same bytes) into a duplicate that is never queued."""
    queue = RedisQueue(redis_url, f"t{uuid.uuid4().hex[:8]}", poll_s=0.01)
    digest = uuid.uuid4().hex * 2
    event = push_event(f"lost{digest[:8]}")
    client = Redis.from_url(redis_url)
    await client.set(f"goresolve:digest:{digest}", event.id)  # what the lost write left
    await client.aclose()
    assert await queue.enqueue(event, digest=digest) is True
    assert await queue.enqueue(push_event(f"other{digest[:8]}"), digest=digest) is False
    assert await queue.depth() == 1
    await queue.aclose()


async def test_dedup_is_durable_across_reopening(backend: tuple[str, str]) -> None:
    first = make_queue(*backend, "durable")
    await first.enqueue(push_event("d1"))
    await first.aclose()
    second = make_queue(*backend, "durable")
    assert await second.enqueue(push_event("d1")) is False
    assert await second.depth() == 1
    await second.aclose()


async def test_a_failing_handler_is_retried_with_backoff_then_succeeds(queue: WorkQueue) -> None:
    calls: list[str] = []

    async def handler(event: Event) -> None:
        calls.append(event.id)
        if len(calls) < 3:
            raise RuntimeError("transient")

    await queue.enqueue(push_event(2))
    await _drain(queue, handler)
    assert calls == ["github:1:2"] * 3
    assert await queue.dead_letters() == []


async def test_a_deferred_event_comes_back_and_its_deferrals_are_no_tries(backend: tuple[str, str]) -> None:
    """Four deferrals, then two failures, then success: with max_tries 3 it is handled, not dead-lettered
    (counted as tries, the deferrals would have buried it). Each run has the whole job timeout: the
    deferred runs' time (0.2 s each) does not add up against the 0.5 s timeout."""
    queue = make_queue(*backend, f"d{uuid.uuid4().hex[:8]}", retry=FAST, job_timeout_s=0.5)
    calls: list[str] = []

    async def handler(event: Event) -> None:
        calls.append(event.id)
        await anyio.sleep(0.2)
        if len(calls) <= 4:
            raise Deferred(0.05, "no run slot is free")
        if len(calls) <= 6:
            raise RuntimeError("transient")

    try:
        await queue.enqueue(push_event(8))
        await _drain(queue, handler)
        assert calls == ["github:1:8"] * 7
        assert await queue.dead_letters() == [] and await queue.depth() == 0
    finally:
        await queue.aclose()


async def test_a_deferred_event_frees_its_worker_slot_for_the_next_event(backend: tuple[str, str]) -> None:
    queue = make_queue(*backend, f"f{uuid.uuid4().hex[:8]}", retry=FAST, job_timeout_s=5.0)
    calls: list[str] = []

    async def handler(event: Event) -> None:
        calls.append(event.id)
        if event.id == "github:1:10" and calls.count(event.id) == 1:
            raise Deferred(1.0)

    try:
        await queue.enqueue(push_event(10))
        await queue.enqueue(push_event(11))
        with anyio.fail_after(30):
            await queue.consume(handler, concurrency=1, burst=True)
        assert calls == ["github:1:10", "github:1:11", "github:1:10"]
        assert await queue.dead_letters() == []
    finally:
        await queue.aclose()


def test_a_deferral_needs_a_positive_delay() -> None:
    with pytest.raises(ValueError, match="positive delay"):
        Deferred(0)


async def test_after_max_tries_the_event_is_a_dead_letter_that_can_be_replayed_or_purged(queue: WorkQueue) -> None:
    fail = [True]
    handled: list[str] = []

    async def handler(event: Event) -> None:
        if fail[0]:
            raise ValueError("index is corrupt\nsecond line")
        handled.append(event.id)

    await queue.enqueue(push_event(3))
    await queue.enqueue(push_event(4))
    await _drain(queue, handler)
    dead = await queue.dead_letters()
    assert sorted(d.id for d in dead) == ["github:1:3", "github:1:4"]
    assert {(d.tries, d.error) for d in dead} == {(FAST.max_tries, "ValueError: index is corrupt")}
    fail[0] = False
    await queue.replay("github:1:3")
    await _drain(queue, handler)
    assert handled == ["github:1:3"]
    assert [d.id for d in await queue.dead_letters()] == ["github:1:4"]
    with pytest.raises(UnknownEvent):
        await queue.replay("github:1:3")
    assert await queue.purge() == 1
    assert await queue.dead_letters() == []
    with pytest.raises(UnknownEvent):
        await queue.purge("github:1:4")


async def test_a_hung_handler_is_cut_off_by_the_job_timeout_and_retried(backend: tuple[str, str]) -> None:
    queue = make_queue(*backend, "hung", retry=FAST, job_timeout_s=0.3)
    runs: list[int] = []

    async def handler(event: Event) -> None:
        runs.append(1)
        if len(runs) == 1:
            await anyio.sleep_forever()

    await queue.enqueue(push_event(5))
    await _drain(queue, handler)
    assert len(runs) == 2
    await queue.aclose()


async def test_ping_and_enqueue_fail_as_unavailable_when_the_backend_is_gone(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    with pytest.raises(QueueUnavailable):
        make_queue("sqlite", str(blocked / "q"), "x")
    from tests.workqueue.support import free_port

    redis = make_queue("redis", f"redis://:hunter2@127.0.0.1:{free_port()}/0", "x")
    with pytest.raises(QueueUnavailable) as err:
        await redis.enqueue(push_event(6))
    assert "hunter2" not in str(err.value)
    with pytest.raises(QueueUnavailable):
        await redis.ping()


def test_the_published_event_schema_is_current_and_validates_events() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == json_schema(), "run: python -m workqueue.events"
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(json.loads(push_event(7).dumps()), schema)
    bad = json.loads(push_event(7).dumps())
    bad["data"]["after"] = "not-a-sha"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


async def test_a_redis_job_lives_for_the_retention_window_not_arqs_one_day(redis_url: str) -> None:
    queue = RedisQueue(redis_url, f"t{uuid.uuid4().hex[:8]}", retention_s=3 * 86400)
    event = push_event("long")
    assert await queue.enqueue(event) is True
    client = Redis.from_url(redis_url)
    try:
        ttl_ms = await client.pttl(f"arq:job:{event.id}")
    finally:
        await client.aclose()
    assert 3 * 86400_000 - 60_000 < ttl_ms <= 3 * 86400_000
    await queue.aclose()


async def test_a_redis_job_that_expires_unstarted_is_dead_lettered_not_lost(redis_url: str) -> None:
    queue = RedisQueue(redis_url, f"t{uuid.uuid4().hex[:8]}", retry=FAST, retention_s=1.0, poll_s=0.01)
    event = push_event("expires")
    assert await queue.enqueue(event) is True
    client = Redis.from_url(redis_url)
    try:
        with anyio.fail_after(10):
            while await client.exists(f"arq:job:{event.id}"):
                await anyio.sleep(0.05)
    finally:
        await client.aclose()
    handled: list[Event] = []

    async def handler(seen: Event) -> None:
        handled.append(seen)

    await _drain(queue, handler)
    assert handled == []
    (dead,) = await queue.dead_letters()
    assert dead.event == event and dead.error.startswith("expired: no worker started it") and dead.tries == 0
    assert await queue.depth() == 0
    await queue.replay(event.id)  # and it can be replayed like any other dead letter
    await _drain(queue, handler)
    assert handled == [event] and await queue.dead_letters() == []
    await queue.aclose()


async def test_a_handled_redis_job_leaves_no_pending_copy_to_be_swept(redis_url: str) -> None:
    # retention long enough that the duplicate below is still within it on a loaded machine (at 0.2 s it was not)
    queue = RedisQueue(redis_url, f"t{uuid.uuid4().hex[:8]}", retry=FAST, retention_s=1.5, poll_s=0.01)
    for n in range(5):
        assert await queue.enqueue(push_event(f"h{n}")) is True
    assert await queue.enqueue(push_event("h0")) is False

    async def handler(event: Event) -> None:
        return None

    await _drain(queue, handler)
    await anyio.sleep(1.6)
    assert await queue.sweep_expired() == 0
    assert await queue.dead_letters() == []
    await queue.aclose()
