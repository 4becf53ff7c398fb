"""A stalled Redis (SIGSTOP: connections accepted, nothing answered) costs a caller at most the queue's deadline,
GORESOLVE_QUEUE_REDIS_TIMEOUT_S: `goresolve queue ls` ends in one line naming Redis and the setting, and a worker
stops with QueueUnavailable instead of waiting without end. Once Redis resumes, the same queue answers again."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from pydantic import SecretStr

from tests.workqueue.support import REPO_ROOT, paused, push_event, redis_server
from workqueue import Event, QueueSettings, QueueUnavailable, open_queue
from workqueue.redis import RedisQueue


def _goresolve(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`goresolve ARGS` in its own process, bounded at 60 s (the deadlines under test are 1 s)."""
    return subprocess.run(
        [sys.executable, "-m", "goresolve.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        env=env,
        check=False,
    )


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    """A redis-server of this test's own: pausing it stalls no other test."""
    with redis_server(tmp_path / "redis") as found:
        yield found


def test_queue_ls_on_a_stalled_redis_is_one_line_within_the_deadline_without_the_password(url: str) -> None:
    with_password = url.replace("redis://", "redis://:hunter2@")
    env = {
        **os.environ,
        "GORESOLVE_QUEUE_BACKEND": "redis",
        "GORESOLVE_QUEUE_REDIS_URL": with_password,
        "GORESOLVE_QUEUE_REDIS_TIMEOUT_S": "1",
    }
    with paused(url):
        began = time.monotonic()
        done = _goresolve(["queue", "ls"], env)
        took = time.monotonic() - began
    assert done.returncode == 1 and done.stdout == "", done.stderr
    assert done.stderr.splitlines() == [
        f"error: queue 'code-index': Redis at {url.replace('redis://', 'redis://:***@')} did not answer within 1s (it "
        "is stalled or overloaded; the deadline is GORESOLVE_QUEUE_REDIS_TIMEOUT_S)"
    ]
    assert "hunter2" not in done.stderr
    assert took < 20  # the interpreter's start-up and imports, plus the 1 s deadline


async def test_every_call_of_a_queue_is_bounded_and_the_queue_answers_again_once_redis_resumes(url: str) -> None:
    queue = open_queue(QueueSettings(backend="redis", redis_url=SecretStr(url), redis_timeout_s=0.5), "tickets")
    assert isinstance(queue, RedisQueue) and queue.timeout_s == 0.5
    await queue.ping()  # connected before the stall
    calls = {
        "enqueue": lambda: queue.enqueue(push_event("stalled")),
        "ping": queue.ping,
        "depth": queue.depth,
        "dead_letters": queue.dead_letters,
        "replay": lambda: queue.replay("github:1:none"),
        "purge": queue.purge,
        "sweep_expired": queue.sweep_expired,
    }
    with paused(url):
        for name, call in calls.items():
            began = time.monotonic()
            with anyio.fail_after(10), pytest.raises(QueueUnavailable, match=r"did not answer within 0\.5s"):
                await call()
            assert time.monotonic() - began < 5, name
    with anyio.fail_after(10):
        await queue.ping()
        assert await queue.depth() in (0, 1)  # the enqueue cut off by the deadline may have landed
        await queue.aclose()


async def test_a_worker_stops_with_queue_unavailable_when_redis_stalls_under_it(url: str) -> None:
    queue = RedisQueue(url, "code-index", poll_s=0.01, timeout_s=0.5)
    seen = anyio.Event()

    async def handler(event: Event) -> None:
        seen.set()

    await queue.enqueue(push_event("before"))
    failure: list[BaseException] = []
    took = float("inf")

    async def consume() -> None:
        try:
            await queue.consume(handler)
        except QueueUnavailable as exc:
            failure.append(exc)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(consume)
            await seen.wait()  # the worker is running
            with paused(url):
                began = time.monotonic()
                while not failure:
                    await anyio.sleep(0.02)
                took = time.monotonic() - began
    assert "did not answer within 0.5s" in str(failure[0])
    assert took < 5  # a ping every 0.5 s, each with 0.5 s to answer, and the worker's close bounded as well
    await queue.aclose()


async def test_a_worker_started_on_a_stalled_redis_stops_within_the_deadline(url: str) -> None:
    queue = RedisQueue(url, "code-index", timeout_s=0.5)

    async def handler(event: Event) -> None:
        raise AssertionError(f"no event can be read from a stalled Redis: {event.id}")

    with paused(url):
        began = time.monotonic()
        with anyio.fail_after(10), pytest.raises(QueueUnavailable, match=r"did not answer within 0\.5s"):
            await queue.consume(handler)
        assert time.monotonic() - began < 5
    await queue.aclose()


def test_dispatch_on_a_stalled_redis_stops_in_one_line(url: str, tmp_path: Path) -> None:
    """The dispatcher consumes `tickets` through the same queue: a stalled Redis ends it with the queue's own line
    and exit 1, not the CLI's catch-all for an unexpected error."""
    env = {
        **os.environ,
        "GORESOLVE_DATA_DIR": str(tmp_path / "data"),
        "GORESOLVE_QUEUE_BACKEND": "redis",
        "GORESOLVE_QUEUE_REDIS_URL": url.replace("redis://", "redis://:hunter2@"),
        "GORESOLVE_QUEUE_REDIS_TIMEOUT_S": "1",
    }
    with paused(url):
        done = _goresolve(["dispatch", "--burst"], env)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("error: queue 'tickets': Redis at "), done.stderr
    assert "GORESOLVE_QUEUE_REDIS_TIMEOUT_S" in lines[-1] and "Traceback" not in done.stderr
    assert "hunter2" not in done.stderr
