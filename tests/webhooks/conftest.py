"""The gateway over real SQLite queues, called in process through httpx's ASGI transport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from servers.webhooks.app import build_app
from servers.webhooks.settings import WebhookSettings
from tests.webhooks.support import JIRA_SECRET, SECRET
from workqueue import Topic, WorkQueue
from workqueue.sqlite import SQLiteQueue


def settings(**kw: object) -> WebhookSettings:
    return WebhookSettings(github_secret=SECRET, jira_secret=JIRA_SECRET, branches=("release",), **kw)  # type: ignore[arg-type]


@pytest.fixture
async def queues(tmp_path: Path) -> AsyncIterator[dict[Topic, WorkQueue]]:
    made: dict[Topic, WorkQueue] = {t: SQLiteQueue(tmp_path / "queue", t) for t in ("code-index", "tickets")}
    yield made
    for q in made.values():
        await q.aclose()


@pytest.fixture
async def client(queues: dict[Topic, WorkQueue]) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(settings(max_body_bytes=64 * 1024), queues)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
        yield c
