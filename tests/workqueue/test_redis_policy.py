"""A Redis whose maxmemory-policy evicts keys (volatile-lru is the default of ElastiCache, Memorystore and Azure)
would, under memory pressure, drop job keys, pending copies and remembered ids, which all have TTLs: events
already answered 202 lost without a word. The queue reads the policy (INFO memory, else CONFIG GET, since a
managed Redis may refuse either) and refuses to take or give work on any but noeviction. Before, it used such a
Redis as any other."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
import structlog
from redis import Redis as SyncRedis

from tests.workqueue.support import push_event, redis_server
from workqueue import Event, QueueMisconfigured
from workqueue.redis import RedisQueue

EVICTS = r"maxmemory-policy volatile-lru: .*losing events already accepted; set maxmemory-policy noeviction"


async def handler(_: Event) -> None:
    raise AssertionError("no worker may run on an evicting Redis")


async def test_an_evicting_redis_is_refused_by_ping_enqueue_and_consume(tmp_path: Path) -> None:
    with redis_server(tmp_path / "redis", "--maxmemory-policy", "volatile-lru") as url:
        queue = RedisQueue(url, "tickets", timeout_s=5)
        with pytest.raises(QueueMisconfigured, match=EVICTS):
            await queue.ping()
        with pytest.raises(QueueMisconfigured, match=EVICTS):
            await queue.enqueue(push_event(1))
        with anyio.fail_after(10), pytest.raises(QueueMisconfigured, match=EVICTS):
            await queue.consume(handler, burst=True)
        assert await queue.depth() == 0
        with SyncRedis.from_url(url) as direct:
            direct.config_set("maxmemory-policy", "noeviction")
        await queue.ping()
        assert await queue.enqueue(push_event(1)) is True
        await queue.aclose()


@pytest.mark.parametrize(
    ("renamed", "told"),
    [(["CONFIG"], False), (["INFO"], False), (["INFO", "CONFIG"], True)],
    ids=["no-config", "no-info", "neither"],
)
async def test_the_policy_is_read_however_a_managed_redis_restricts_its_commands(
    tmp_path: Path, renamed: list[str], told: bool
) -> None:
    options = [arg for command in renamed for arg in ("--rename-command", command, "")]
    with redis_server(tmp_path / "redis", "--maxmemory-policy", "volatile-lru", *options) as url:
        queue = RedisQueue(url, "tickets", timeout_s=5)
        with structlog.testing.capture_logs() as logs:
            if told:  # it cannot know: it says so, once, and goes on
                await queue.ping()
                await queue.ping()
            else:
                with pytest.raises(QueueMisconfigured, match=EVICTS):
                    await queue.ping()
        unknown = [e for e in logs if e["event"] == "queue.redis_policy_unknown"]
        assert len(unknown) == (1 if told else 0)
        await queue.aclose()
