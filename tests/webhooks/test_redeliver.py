"""`goresolve webhooks redeliver`: failed deliveries are replayed through GitHub's hook deliveries API.

The GitHub fake delivers to a real gateway over HTTP. While the queue is down the gateway answers 503
and GitHub records failed deliveries (it never retries by itself); once the queue is back,
`redeliver_failed` asks for each failed GUID again, the gateway enqueues them, and a second run finds
nothing left to do.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from typer.testing import CliRunner

from servers.common.errors import InvalidInput, UpstreamFailure
from servers.webhooks.app import build_app
from servers.webhooks.cli import webhooks_app
from servers.webhooks.redeliver import MAX_PAGES, parse_since, redeliver_failed
from tests.fakes.github import handlers_hooks as hooks
from tests.fakes.github_fake import FakeGitHub
from tests.webhooks import support as s
from tests.webhooks.conftest import settings
from tests.workqueue.support import free_port, wait_for
from workqueue import DeadLetter, Event, Handler, QueueUnavailable, Topic, WorkQueue
from workqueue.sqlite import SQLiteQueue

TOKEN = SecretStr("ghp_fake_token_for_tests")


class Switchable:
    """A queue that can be taken down: enqueue raises QueueUnavailable while `down` is set."""

    def __init__(self, inner: WorkQueue) -> None:
        self.inner, self.name, self.down = inner, inner.name, True

    async def enqueue(self, event: Event, *, digest: str | None = None) -> bool:
        if self.down:
            raise QueueUnavailable("queue is down")
        return await self.inner.enqueue(event, digest=digest)

    async def ping(self) -> None:
        await self.inner.ping()

    async def depth(self) -> int:
        return await self.inner.depth()

    async def dead_letters(self) -> list[DeadLetter]:
        return await self.inner.dead_letters()

    async def dead_count(self) -> int:
        return await self.inner.dead_count()

    async def replay(self, event_id: str) -> None:
        await self.inner.replay(event_id)

    async def purge(self, event_id: str | None = None) -> int:
        return await self.inner.purge(event_id)

    async def consume(self, handler: Handler, *, concurrency: int = 4, burst: bool = False) -> None:
        await self.inner.consume(handler, concurrency=concurrency, burst=burst)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[str, dict[Topic, Switchable]]]:
    topics: tuple[Topic, ...] = ("code-index", "tickets")
    queues: dict[Topic, Switchable] = {t: Switchable(SQLiteQueue(tmp_path / "queue", t)) for t in topics}
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(build_app(settings(), queues), host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 10, "the gateway to start")
    yield f"http://127.0.0.1:{port}/webhooks/github", queues
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub().serve()
    fake.add_repo("acme/svc", {"README.md": "svc\n"})
    yield fake
    fake.close()
    assert fake.violations == []


def test_failed_deliveries_are_redelivered_once_and_enqueued(
    gateway: tuple[str, dict[Topic, Switchable]], github: FakeGitHub
) -> None:
    url, queues = gateway
    hook_id = hooks.add_hook(github, "acme/svc", url, s.SECRET.get_secret_value())
    failed = [hooks.deliver(github, "acme/svc", hook_id, "push", s.push(after=f"{n:040x}")) for n in (1, 2)]
    assert [d["status_code"] for d in failed] == [503, 503]
    for q in queues.values():
        q.down = False
    ok = hooks.deliver(github, "acme/svc", hook_id, "issues", s.issue())
    assert ok["status_code"] == 202

    report = redeliver_failed(github.base_url, TOKEN, "acme/svc", hook_id, timedelta(days=3))
    assert sorted(report.redelivered) == sorted(d["guid"] for d in failed)
    assert report.failed == [] and report.skipped == []
    wait_for(lambda: anyio.run(queues["code-index"].depth) == 2, 10, "the redeliveries to be enqueued")
    wait_for(lambda: len(hooks.deliveries(github, "acme/svc", hook_id)) == 5, 10, "the redeliveries to be recorded")

    again = redeliver_failed(github.base_url, TOKEN, "acme/svc", hook_id, timedelta(days=3))
    assert again.redelivered == [] and sorted(again.skipped) == sorted(d["guid"] for d in failed)
    assert anyio.run(queues["code-index"].depth) == 2 and anyio.run(queues["tickets"].depth) == 1
    assert {"repos/list-webhook-deliveries", "repos/redeliver-webhook-delivery"} <= set(github.calls)


def test_redeliver_errors_are_clear(github: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UpstreamFailure, match="answered 404"):
        redeliver_failed(github.base_url, TOKEN, "acme/svc", 999, timedelta(days=1))
    for bad in ("3", "3w", "-1d", "31d"):
        with pytest.raises(InvalidInput):
            parse_since(bad)
    assert parse_since("12h") == timedelta(hours=12)
    runner = CliRunner()
    monkeypatch.delenv("GORESOLVE_WEBHOOKS_GITHUB_TOKEN", raising=False)
    no_token = runner.invoke(webhooks_app, ["redeliver", "--repo", "acme/svc", "--hook-id", "1"])
    assert no_token.exit_code == 2 and "GORESOLVE_WEBHOOKS_GITHUB_TOKEN" in no_token.output
    monkeypatch.setenv("GORESOLVE_WEBHOOKS_GITHUB_TOKEN", TOKEN.get_secret_value())
    monkeypatch.setenv("GORESOLVE_WEBHOOKS_GITHUB_API_URL", github.base_url)
    missing = runner.invoke(webhooks_app, ["redeliver", "--repo", "acme/svc", "--hook-id", "999", "--since", "1d"])
    assert missing.exit_code == 1 and "answered 404" in missing.output
    assert TOKEN.get_secret_value() not in missing.output


def _misbehaving(body: Callable[[int], bytes], cursor: Callable[[int], str]) -> tuple[httpx.Client, list[int]]:
    """A deliveries API answering page n with `body(n)` and a next link to `cursor(n)`; the pages it served."""
    served: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        n = len(served)
        served.append(n)
        link = f'<{request.url.copy_with(params={"cursor": cursor(n)})}>; rel="next"'
        return httpx.Response(200, content=body(n), headers={"Link": link, "Content-Type": "application/json"})

    return httpx.Client(transport=httpx.MockTransport(answer)), served


def _recent_failure(n: int) -> bytes:
    now = datetime.now(UTC).isoformat()
    return json.dumps([{"id": n, "guid": f"g{n}", "delivered_at": now, "status_code": 500}]).encode()


def test_a_listing_that_pages_for_ever_is_refused_not_followed() -> None:
    endless, served = _misbehaving(_recent_failure, lambda n: f"c{n}")
    with pytest.raises(UpstreamFailure, match=f"past {MAX_PAGES} pages"):
        redeliver_failed("https://api.example", TOKEN, "acme/svc", 1, timedelta(days=1), client=endless)
    assert len(served) == MAX_PAGES
    looping, served = _misbehaving(_recent_failure, lambda n: "same")
    with pytest.raises(UpstreamFailure, match="pointed back to a page"):
        redeliver_failed("https://api.example", TOKEN, "acme/svc", 1, timedelta(days=1), client=looping)
    assert len(served) == 2


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"<html><body>Login required</body></html>", "body: Invalid JSON"),
        (b'[{"delivered_at": 5, "guid": "g", "id": "x"}]', "0.id:"),
        (b'{"message": "moved"}', "body:"),
    ],
)
def test_a_listing_that_is_not_deliveries_is_a_clear_failure(body: bytes, why: str) -> None:
    client, _ = _misbehaving(lambda n: body, lambda n: "c")
    with pytest.raises(UpstreamFailure, match="not a list of deliveries") as refused:
        redeliver_failed("https://api.example", TOKEN, "acme/svc", 1, timedelta(days=1), client=client)
    assert why in refused.value.message
