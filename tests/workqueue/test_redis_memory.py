"""Redis at its maxmemory (the chart runs it with noeviction, so it refuses writes there).

Before: the gateway enqueued until Redis refused the write, and then the workers could not start a single job (arq
writes a lease key to start one, Redis refused it, and arq skipped the job as "already running elsewhere"), while
the worker took the refusal for a lost connection, found Redis answering pings, and went round again without end:
no event handled, every new one answered 503, for good. And each handled event left its whole payload behind
(arq's result) for the retention window, which is what filled Redis in the first place.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
import structlog
from redis import Redis as SyncRedis

from tests.workqueue.support import push_event, redis_server, wait_for
from workqueue import Event, IssueData, QueueFull
from workqueue.redis import RedisQueue


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    with redis_server(tmp_path / "redis") as where:  # its own server: these tests fill it
        yield where


def issue_event(n: int | str, marker: str = "", size: int = 1500) -> Event:
    data = IssueData(action="opened", number=1, title=marker + "x" * size, url="https://x/1", author="a")
    return push_event(n).model_copy(update={"data": data})


def used_memory(direct: SyncRedis) -> int:
    return int(direct.info("memory")["used_memory"])  # type: ignore[index]


async def test_near_maxmemory_new_events_are_refused_and_the_workers_drain_what_was_accepted(url: str) -> None:
    direct = SyncRedis.from_url(url)
    direct.config_set("maxmemory", used_memory(direct) + 10 * 1024 * 1024)  # the chart's is 160mb
    queue = RedisQueue(url, "tickets", poll_s=0.01, timeout_s=5, outage_s=5)
    accepted: list[str] = []

    async def fill() -> None:
        for n in range(5000):
            event = issue_event(n, size=8000)
            assert await queue.enqueue(event, digest=uuid.uuid4().hex * 2)
            accepted.append(event.id)

    with pytest.raises(QueueFull, match=r"nearly full \(used_memory \d+ of maxmemory \d+ bytes\).*90%"):
        await fill()
    assert len(accepted) > 300
    handled: list[str] = []

    async def handler(event: Event) -> None:
        handled.append(event.id)

    with anyio.fail_after(60):
        await queue.consume(handler, concurrency=4, burst=True)
    assert sorted(handled) == sorted(accepted)
    assert await queue.depth() == 0 and await queue.dead_letters() == []
    assert await queue.enqueue(issue_event("after")) is True  # drained: it takes events again
    assert await queue.enqueue(issue_event(0)) is False  # and still knows what it handled
    await queue.aclose()


async def test_a_handled_event_leaves_only_its_id_behind_and_is_still_a_duplicate(url: str) -> None:
    direct = SyncRedis.from_url(url)
    queue = RedisQueue(url, "tickets", poll_s=0.01)
    marker = uuid.uuid4().hex
    event = issue_event("small", marker)
    assert await queue.enqueue(event, digest="d" * 64)

    async def handler(_: Event) -> None:
        pass

    await queue.consume(handler, burst=True)
    left = {key.decode(): direct.memory_usage(key) for key in direct.scan_iter(count=1000)}
    holding = [key for key in left if marker.encode() in (direct.dump(key) or b"")]
    assert holding == []  # no copy of the payload (arq's result held it for the retention window)
    assert direct.get(f"arq:result:{event.id}") == b"1"  # what arq's own check of the id looks for
    assert direct.ttl(f"arq:result:{event.id}") > 3 * 86400 - 60
    assert await queue.enqueue(event) is False
    assert await queue.enqueue(issue_event("other"), digest="d" * 64) is False
    await queue.aclose()


async def test_a_worker_on_a_full_redis_says_so_and_stops_naming_maxmemory(url: str) -> None:
    direct = SyncRedis.from_url(url)
    queue = RedisQueue(url, "tickets", poll_s=0.01, timeout_s=1, outage_s=2)
    for n in range(5):
        assert await queue.enqueue(issue_event(n))
    direct.config_set("maxmemory", 1)  # every write refused

    async def handler(_: Event) -> None:
        raise AssertionError("no job can start on a full Redis")

    stopped = r"refused writes for want of memory for 2s .*maxmemory"
    with structlog.testing.capture_logs() as logs, anyio.fail_after(20), pytest.raises(QueueFull, match=stopped):
        await queue.consume(handler, burst=True)
    full = [e for e in logs if e["event"] == "queue.redis_full"]
    assert len(full) == 1 and full[0]["log_level"] == "error" and full[0]["maxmemory"] == 1
    assert not [e for e in logs if e["event"] == "queue.redis_lost"]  # full is not gone
    direct.config_set("maxmemory", 0)
    assert await queue.depth() == 5  # nothing lost: the next worker runs them
    await queue.aclose()


async def test_a_worker_waits_for_memory_and_goes_on_once_redis_has_some(url: str) -> None:
    direct = SyncRedis.from_url(url)
    queue = RedisQueue(url, "tickets", poll_s=0.01, timeout_s=0.5, outage_s=60)
    for n in range(5):
        assert await queue.enqueue(issue_event(n))
    direct.config_set("maxmemory", 1)
    handled: list[str] = []

    async def handler(event: Event) -> None:
        handled.append(event.id)

    with structlog.testing.capture_logs() as logs, anyio.fail_after(30):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(lambda: queue.consume(handler, burst=True))
            await anyio.to_thread.run_sync(
                lambda: wait_for(lambda: any(e["event"] == "queue.redis_full" for e in logs), 10, "the full line")
            )
            direct.config_set("maxmemory", 0)
    assert sorted(handled) == [f"github:1:{n}" for n in range(5)]
    assert [e["event"] for e in logs if e["event"].startswith("queue.redis_")] == [
        "queue.redis_full",
        "queue.redis_not_full",
    ]
    await queue.aclose()
