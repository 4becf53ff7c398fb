"""One queue fixture over both implementations: every test in test_queue.py runs on SQLite and on Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.workqueue.support import redis_server
from workqueue import RetryPolicy, WorkQueue
from workqueue.redis import RedisQueue
from workqueue.sqlite import SQLiteQueue

FAST = RetryPolicy(max_tries=3, backoff_s=0.01, backoff_max_s=0.05)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


def make_queue(backend: str, where: str, name: str, **kw: object) -> WorkQueue:
    if backend == "redis":
        return RedisQueue(where, name, poll_s=0.01, lease_grace_s=0.5, **kw)  # type: ignore[arg-type]
    return SQLiteQueue(Path(where), name, **kw)  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    if request.param == "redis":
        return "redis", request.getfixturevalue("redis_url")
    return "sqlite", str(tmp_path / "queue")


@pytest.fixture
async def queue(backend: tuple[str, str]) -> AsyncIterator[WorkQueue]:
    kind, where = backend
    q = make_queue(kind, where, f"t{uuid.uuid4().hex[:8]}", retry=FAST, job_timeout_s=5.0)
    yield q
    await q.aclose()
