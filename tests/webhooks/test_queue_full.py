"""A Redis near its maxmemory: the gateway refuses new events with a 503 that says the queue is full (and counts
it as such), so that what memory is left is the workers', who need it to drain the queue. Before, it took events
until Redis refused the write, and then no worker could start a job."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import structlog
from redis import Redis

from servers.webhooks.app import build_app
from tests.webhooks import support as s
from tests.webhooks.conftest import settings
from tests.workqueue.support import redis_server
from workqueue import Topic, WorkQueue
from workqueue.redis import RedisQueue


async def test_a_redis_near_maxmemory_is_a_503_saying_the_queue_is_full(tmp_path: Path) -> None:
    with redis_server(tmp_path / "redis") as url, Redis.from_url(url) as direct:
        queues: dict[Topic, WorkQueue] = {t: RedisQueue(url, t) for t in ("code-index", "tickets")}
        app = build_app(settings(), queues)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
            raw = s.dumps(s.push())
            answer = await client.post("/webhooks/github", content=raw, headers=s.github_headers("push", raw))
            assert answer.status_code == 202
            used = int(direct.info("memory")["used_memory"])  # type: ignore[index]
            direct.config_set("maxmemory", int(used / 0.95))  # 95% used: above the 90% left to new events
            raw = s.dumps(s.issue())
            delivery = str(uuid.uuid4())
            with structlog.testing.capture_logs() as logs:
                answer = await client.post(
                    "/webhooks/github", content=raw, headers=s.github_headers("issues", raw, delivery)
                )
            assert answer.status_code == 503 and answer.headers["retry-after"] == "30"
            assert answer.json() == {"error": "the queue is full; retry later", "delivery": delivery}
            (line,) = [e for e in logs if e["event"] == "webhook.queue_full"]
            assert "nearly full" in line["error"] and "GORESOLVE_QUEUE_REDIS_MEMORY_LIMIT" in line["error"]
            metrics = (await client.get("/metrics")).text
            assert 'goresolve_webhooks_rejected_total{reason="queue-full",source="github"} 1.0' in metrics
            assert await queues["tickets"].depth() == 0
            direct.config_set("maxmemory", 0)
            answer = await client.post("/webhooks/github", content=raw, headers=s.github_headers("issues", raw))
            assert answer.status_code == 202
        for queue in queues.values():
            await queue.aclose()
