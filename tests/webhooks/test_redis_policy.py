"""The gateway on a Redis that evicts keys (volatile-lru, a managed Redis's default): it does not start, and should
the policy change under it, /readyz fails naming it and deliveries get 503, not a 202 for an event Redis may drop.
Before, it served such a Redis as any other."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
from redis import Redis

from servers.webhooks.app import build_app
from tests.webhooks import support as s
from tests.webhooks.conftest import settings
from tests.workqueue.support import free_port, redis_server
from workqueue import Topic, WorkQueue
from workqueue.redis import RedisQueue


def test_serve_webhooks_on_an_evicting_redis_exits_2_naming_the_policy(tmp_path: Path) -> None:
    with redis_server(tmp_path / "redis", "--maxmemory-policy", "volatile-lru") as url:
        env = {"GORESOLVE_QUEUE_BACKEND": "redis", "GORESOLVE_QUEUE_REDIS_URL": url, "COLUMNS": "200"}
        done = subprocess.run(
            [sys.executable, "-m", "goresolve.cli", "serve", "webhooks", "--port", str(free_port())],
            cwd=tmp_path,
            env=s.gateway_env(tmp_path, GORESOLVE_WEBHOOKS_GITHUB_SECRET="x", **env),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2, done.stderr
    assert "has maxmemory-policy volatile-lru" in done.stderr and "set maxmemory-policy noeviction" in done.stderr
    assert "Traceback" not in done.stderr


async def test_readyz_and_deliveries_refuse_once_redis_evicts(tmp_path: Path) -> None:
    with redis_server(tmp_path / "redis") as url, Redis.from_url(url) as direct:
        queues: dict[Topic, WorkQueue] = {t: RedisQueue(url, t) for t in ("code-index", "tickets")}
        app = build_app(settings(), queues)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
            assert (await client.get("/readyz")).status_code == 200
            direct.config_set("maxmemory-policy", "allkeys-lru")
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["error"].startswith("queue code-index misconfigured: ")
            assert "maxmemory-policy allkeys-lru" in ready.json()["error"]
            raw = s.dumps(s.push())
            answer = await client.post("/webhooks/github", content=raw, headers=s.github_headers("push", raw))
            assert answer.status_code == 503
            metrics = (await client.get("/metrics")).text
            assert 'goresolve_webhooks_rejected_total{reason="queue-misconfigured",source="github"} 1.0' in metrics
            assert await queues["code-index"].depth() == 0
        for queue in queues.values():
            await queue.aclose()
