"""A stalled Redis (SIGSTOP) costs a sender at most the queue deadline: 503 with Retry-After, and /readyz
says so; once Redis resumes, the redelivery is accepted (or is a duplicate of the write that landed late)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import anyio
import httpx
import structlog
from redis import Redis

from servers.webhooks.app import build_app
from tests.webhooks import support as s
from tests.webhooks.conftest import settings
from tests.workqueue.support import redis_server
from workqueue import TOPICS, QueueSettings, Topic, WorkQueue, open_queue
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


HOLD_WRITE_LOCK = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
"""


async def test_a_sqlite_queue_locked_by_another_process_is_a_503_within_the_deadline(tmp_path: Path) -> None:
    """Another process holds the SQLite file's write lock. Before, the answers came after the busy timeout
    (10 s) and one after another (10.2, 20.0, 29.6 s: the queue's lock serialised the waits, and the deadline
    could not cancel the thread), and /readyz said 200 (SELECT 1 needs no write lock). Now each is a 503 within
    the deadline, /readyz says the queue is locked, and once the lock goes the redelivery is accepted."""
    deadline = 1.0
    made: dict[Topic, WorkQueue] = {
        t: open_queue(QueueSettings(sqlite_dir=tmp_path / "queue"), t, deadline_s=deadline) for t in TOPICS
    }
    app = build_app(settings(queue_timeout_s=deadline), made)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITE_LOCK, str(tmp_path / "queue" / "data.db")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    bodies = [s.dumps(s.issue("opened", n)) for n in (1, 2, 3)]
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:

            async def deliver(raw: bytes) -> tuple[int, float]:
                began = time.monotonic()
                answer = await client.post("/webhooks/github", content=raw, headers=s.github_headers("issues", raw))
                return answer.status_code, time.monotonic() - began

            answers: list[tuple[int, float]] = []
            async with anyio.create_task_group() as tg:

                async def one(raw: bytes) -> None:
                    answers.append(await deliver(raw))

                for raw in bodies:
                    tg.start_soon(one, raw)
            assert [code for code, _ in answers] == [503, 503, 503]
            assert max(took for _, took in answers) < deadline + 4  # before: 10.2, 20.0 and 29.6 s
            ready = await client.get("/readyz")
            assert ready.status_code == 503 and "locked" in ready.json()["error"]

            holder.communicate("", timeout=30)
            for raw in bodies:
                again = await client.post("/webhooks/github", content=raw, headers=s.github_headers("issues", raw))
                assert again.status_code == 202
            assert (await client.get("/readyz")).status_code == 200
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait()
        for queue in made.values():
            await queue.aclose()
