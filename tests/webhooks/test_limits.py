"""Unsigned bodies cannot exhaust the gateway's memory: they share one byte budget until verified."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import httpx

from servers.webhooks.app import UnverifiedBudget, build_app
from tests.webhooks import support as s
from tests.webhooks.conftest import settings
from workqueue import Topic, WorkQueue

KB = 1024


def _client(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")  # type: ignore[arg-type]


async def _slowly(size: int) -> AsyncIterator[bytes]:
    """`size` bytes in 4 KiB chunks, yielding to the other requests between chunks."""
    sent = 0
    while sent < size:
        chunk = b"x" * min(4 * KB, size - sent)
        sent += len(chunk)
        yield chunk
        await anyio.sleep(0)


async def test_concurrent_large_unsigned_bodies_stay_within_the_budget_and_valid_deliveries_pass(
    queues: dict[Topic, WorkQueue],
) -> None:
    app = build_app(settings(max_body_bytes=128 * KB, unverified_budget_bytes=256 * KB), queues)
    budget: UnverifiedBudget = app.state.unverified_budget
    answers: list[httpx.Response] = []
    async with _client(app) as client:

        async def attack() -> None:
            headers = {**s.github_headers("push", b""), "X-Hub-Signature-256": "sha256=" + "0" * 64}
            answers.append(await client.post("/webhooks/github", content=_slowly(100 * KB), headers=headers))

        async with anyio.create_task_group() as tasks:
            for _ in range(16):
                tasks.start_soon(attack)
        statuses = sorted(a.status_code for a in answers)
        assert set(statuses) == {401, 503}, statuses
        busy = next(a for a in answers if a.status_code == 503)
        assert busy.json() == {"error": "too many deliveries in flight; retry later"}
        assert busy.headers["Retry-After"] == "30"
        assert budget.capacity // 2 < budget.peak <= budget.capacity  # they did overlap, and were bounded
        assert budget.in_use == 0  # every request gave its bytes back
        raw = s.dumps(s.push())
        valid = await client.post("/webhooks/github", content=raw, headers=s.github_headers("push", raw))
        assert valid.status_code == 202 and valid.json()["status"] == "queued"
        metrics = (await client.get("/metrics")).text
        assert 'goresolve_webhooks_rejected_total{reason="busy",source="github"}' in metrics


async def test_a_body_alone_above_the_budget_is_413_and_gives_its_bytes_back(queues: dict[Topic, WorkQueue]) -> None:
    app = build_app(settings(max_body_bytes=128 * KB, unverified_budget_bytes=64 * KB), queues)
    async with _client(app) as client:
        answer = await client.post("/webhooks/github", content=_slowly(100 * KB), headers=s.github_headers("push", b""))
        assert answer.status_code == 413 and answer.json() == {"error": f"body larger than {64 * KB} bytes"}
    assert app.state.unverified_budget.in_use == 0


async def _stalled(first: int) -> AsyncIterator[bytes]:
    """`first` bytes, then nothing more: a sender that stops mid-body and keeps the connection open."""
    yield b"x" * first
    await anyio.sleep_forever()


async def test_a_body_that_stalls_is_408_within_the_deadline_and_gives_its_bytes_back(
    queues: dict[Topic, WorkQueue],
) -> None:
    app = build_app(settings(max_body_bytes=128 * KB, body_timeout_s=0.5), queues)
    async with _client(app) as client:
        headers = {**s.github_headers("push", b""), "Content-Length": str(100 * KB)}
        with anyio.fail_after(10):
            answer = await client.post("/webhooks/github", content=_stalled(64 * KB), headers=headers)
        assert answer.status_code == 408 and answer.json() == {"error": "the body did not arrive within 0.5s"}
        assert app.state.unverified_budget.in_use == 0 and app.state.unverified_budget.clients == {}
        metrics = (await client.get("/metrics")).text
        assert 'goresolve_webhooks_rejected_total{reason="body-timeout",source="github"} 1.0' in metrics


async def test_one_address_holds_at_most_its_share_of_unverified_requests(queues: dict[Topic, WorkQueue]) -> None:
    app = build_app(settings(max_body_bytes=128 * KB, body_timeout_s=1, max_unverified_per_client=2), queues)
    answers: list[httpx.Response] = []
    async with _client(app) as client:

        async def stalled() -> None:
            headers = {**s.github_headers("push", b""), "Content-Length": str(100 * KB)}
            answers.append(await client.post("/webhooks/github", content=_stalled(4 * KB), headers=headers))

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tasks:
                for _ in range(3):
                    tasks.start_soon(stalled)
        assert sorted(a.status_code for a in answers) == [408, 408, 429]
        busy = next(a for a in answers if a.status_code == 429)
        assert busy.json() == {"error": "too many deliveries in flight from this address; retry later"}
        assert busy.headers["Retry-After"] == "30"
        assert app.state.unverified_budget.clients == {}
        raw = s.dumps(s.push())
        valid = await client.post("/webhooks/github", content=raw, headers=s.github_headers("push", raw))
        assert valid.status_code == 202
