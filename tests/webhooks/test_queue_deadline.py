"""A stalled Redis (SIGSTOP) costs a sender at most the queue deadline: 503 with Retry-After, and /readyz
says so; once Redis resumes, the redelivery is accepted (or is a duplicate of the write that landed late)."""

from __future__ import annotations

import os
import signal
import time
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


async def test_a_stalled_redis_is_a_503_within_the_deadline_and_readyz_says_which_queue(tmp_path: Path) -> None:
    with redis_server(tmp_path / "redis") as url:
        with Redis.from_url(url) as direct:
            info: dict[str, object] = direct.info("server")  # type: ignore[assignment]
        pid = int(str(info["process_id"]))
        queues: dict[Topic, WorkQueue] = {t: RedisQueue(url, t) for t in ("code-index", "tickets")}
        app = build_app(settings(queue_timeout_s=1.0), queues)
        raw = s.dumps(s.push())
        delivery = str(uuid.uuid4())
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
            assert (await client.get("/readyz")).status_code == 200  # connected before the stall
            os.kill(pid, signal.SIGSTOP)
            try:
                began = time.monotonic()
                with structlog.testing.capture_logs() as logs:
                    answer = await client.post(
                        "/webhooks/github", content=raw, headers=s.github_headers("push", raw, delivery)
                    )
                assert time.monotonic() - began < 3
                assert answer.status_code == 503 and answer.headers["Retry-After"] == "30"
                assert answer.json() == {
                    "error": "the queue cannot take the event now; retry later",
                    "delivery": delivery,
                }
                (line,) = [e for e in logs if e["event"] == "webhook.queue_unavailable"]
                assert line["delivery"] == delivery and line["error"] == "no answer within 1s"
                began = time.monotonic()
                with structlog.testing.capture_logs() as logs:
                    ready = await client.get("/readyz")
                assert time.monotonic() - began < 3
                assert ready.status_code == 503
                assert ready.json() == {"error": "queue code-index unreachable: no answer within 1s"}
                assert [(e["event"], e["queue"]) for e in logs] == [("webhook.not_ready", "code-index")]
                metrics = await client.get("/metrics")
                assert metrics.status_code == 200 and 'goresolve_queue_depth{queue="code-index"} NaN' in metrics.text
            finally:
                os.kill(pid, signal.SIGCONT)
            again = await client.post("/webhooks/github", content=raw, headers=s.github_headers("push", raw, delivery))
            assert again.status_code == 202 and again.json()["status"] in ("queued", "duplicate")
            assert (await client.get("/readyz")).status_code == 200
            assert await queues["code-index"].depth() == 1  # one event, however the stall fell
        for queue in queues.values():
            await queue.aclose()
