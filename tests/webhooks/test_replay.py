"""A captured signed delivery replayed against `goresolve serve webhooks` on a real redis-server: under a new
delivery id it is a duplicate (its body was seen), and it stays one after the gateway restarts."""

from __future__ import annotations

import uuid
from pathlib import Path

import anyio
import httpx

from tests.webhooks import support as s
from tests.workqueue.support import redis_server
from workqueue.redis import RedisQueue


def test_a_captured_delivery_replayed_under_new_delivery_ids_is_queued_once(tmp_path: Path) -> None:
    raw = s.dumps(s.issue(number=41))
    with redis_server(tmp_path / "redis") as url:
        env = s.gateway_env(
            tmp_path,
            GORESOLVE_WEBHOOKS_GITHUB_SECRET=s.SECRET.get_secret_value(),
            GORESOLVE_QUEUE_BACKEND="redis",
            GORESOLVE_QUEUE_REDIS_URL=url,
        )
        answers = []
        for _ in range(2):  # the second round after a restart: the digest lives in Redis, not in the process
            with s.serving_gateway(tmp_path, env) as base:
                for _ in range(3):
                    headers = s.github_headers("issues", raw, str(uuid.uuid4()).upper())
                    answers.append(httpx.post(f"{base}/webhooks/github", content=raw, headers=headers, timeout=30))
        assert [a.status_code for a in answers] == [202] * 6
        assert [a.json()["status"] for a in answers] == ["queued"] + ["duplicate"] * 5

        async def depth() -> int:
            queue = RedisQueue(url, "tickets")
            try:
                return await queue.depth()
            finally:
                await queue.aclose()

        assert anyio.run(depth) == 1
