"""A dead letter that holds no event this version reads (a newer gateway's `version: 2`, one written by hand, a
damaged one) is listed as it is stored, with why, and can be shown and purged; the gateway's dead-letter gauge
counts letters without reading them. Before, on Redis, one such letter made `goresolve queue ls` and `show` fail
("unexpected ValidationError", exit 1) and the gateway's /metrics answer 500."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest
from redis import Redis as SyncRedis
from typer.testing import CliRunner

from servers.webhooks.app import build_app
from tests.webhooks.conftest import settings
from tests.workqueue.conftest import FAST, make_queue
from tests.workqueue.support import push_event
from workqueue import Event, Topic, UnknownEvent, WorkQueue
from workqueue.cli import queue_app
from workqueue.redis import RedisQueue
from workqueue.sqlite import SQLiteQueue


def newer_event(event_id: str) -> dict[str, Any]:
    data = push_event(event_id).model_dump(mode="json")
    return {**data, "id": event_id, "version": 2}


async def put_job(queue: WorkQueue, data: dict[str, Any]) -> None:
    """A job as a newer gateway would enqueue it (this version's `enqueue` takes only its own events)."""
    if isinstance(queue, RedisQueue):
        await queue._enqueue(await queue._redis(), data, data["id"])
    else:
        assert isinstance(queue, SQLiteQueue)
        queue._q.put({"event": data, "tries": 0, "error": ""})


async def test_a_dead_letter_that_is_no_event_is_listed_shown_counted_and_purged(queue: WorkQueue) -> None:
    await put_job(queue, newer_event("github:1:future"))
    assert await queue.enqueue(push_event("bad"))

    async def handler(event: Event) -> None:
        raise RuntimeError("no mirror")

    await queue.consume(handler, burst=True)
    assert await queue.dead_count() == 2
    by_id = {d.id: d for d in await queue.dead_letters()}
    assert set(by_id) == {"github:1:future", "github:1:bad"}
    future, bad = by_id["github:1:future"], by_id["github:1:bad"]
    assert future.event is None and future.invalid.startswith("not an event:") and '"version": 2' in future.raw
    assert future.error.startswith("not an event:")
    assert bad.event is not None and bad.event.id == "github:1:bad"
    assert (bad.error, bad.tries) == ("RuntimeError: no mirror", FAST.max_tries)
    with pytest.raises(UnknownEvent, match="holds nothing to replay"):
        await queue.replay("github:1:future")  # a newer gateway's event only a newer worker could read
    assert await queue.purge("github:1:future") == 1
    assert [d.id for d in await queue.dead_letters()] == ["github:1:bad"] and await queue.dead_count() == 1


async def test_a_redis_letter_that_is_not_even_json_is_listed_and_purged(redis_url: str) -> None:
    queue = make_queue("redis", redis_url, f"t{uuid.uuid4().hex[:8]}")
    assert isinstance(queue, RedisQueue)
    with SyncRedis.from_url(redis_url) as direct:
        direct.hset(f"goresolve:dead:{queue.name}", "by-hand", "{not json")
    (letter,) = await queue.dead_letters()
    assert (letter.id, letter.event, letter.raw) == ("by-hand", None, "{not json")
    assert letter.invalid.startswith("not JSON:")
    assert await queue.purge() == 1 and await queue.dead_count() == 0
    await queue.aclose()


def put_letter(redis_url: str, name: str) -> None:
    with SyncRedis.from_url(redis_url) as direct:
        direct.delete(f"goresolve:dead:{name}")
        letter = {"event": newer_event("[/x]"), "error": "not an event: ...", "tries": 1, "failed_at": time.time()}
        direct.hset(f"goresolve:dead:{name}", "[/x]", json.dumps(letter))


def test_queue_ls_and_show_get_past_an_invalid_redis_letter(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    put_letter(redis_url, "tickets")
    monkeypatch.setenv("GORESOLVE_QUEUE_BACKEND", "redis")
    monkeypatch.setenv("GORESOLVE_QUEUE_REDIS_URL", redis_url)
    runner = CliRunner()
    listed = runner.invoke(queue_app, ["ls", "--queue", "tickets"])
    assert listed.exit_code == 0, listed.output
    assert "(invalid)" in listed.output and "[/x]" in listed.output
    body = json.loads(runner.invoke(queue_app, ["ls", "--queue", "tickets", "--json"]).stdout)
    assert [(d["id"], d["event"]) for d in body["dead"]] == [("[/x]", None)]
    shown = runner.invoke(queue_app, ["show", "[/x]", "--queue", "tickets"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(json.loads(shown.stdout)["raw"])["event"]["version"] == 2
    replayed = runner.invoke(queue_app, ["replay", "[/x]", "--queue", "tickets"])
    assert replayed.exit_code == 1 and "holds nothing to replay" in replayed.output
    assert runner.invoke(queue_app, ["purge", "[/x]", "--queue", "tickets"]).exit_code == 0
    assert json.loads(runner.invoke(queue_app, ["ls", "--queue", "tickets", "--json"]).stdout)["dead"] == []


async def test_the_gateways_metrics_count_an_invalid_redis_letter_without_failing(redis_url: str) -> None:
    put_letter(redis_url, "tickets")
    queues: dict[Topic, WorkQueue] = {t: RedisQueue(redis_url, t) for t in ("code-index", "tickets")}
    app = build_app(settings(), queues)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
        answer = await client.get("/metrics")
    assert answer.status_code == 200
    assert 'goresolve_queue_dead_letters{queue="tickets"} 1.0' in answer.text
    assert await queues["tickets"].purge() == 1
    for queue in queues.values():
        await queue.aclose()
