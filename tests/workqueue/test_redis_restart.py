"""Redis restarted (same port, its append-only file kept) while a worker runs a job: the worker waits for it and
goes on, the job finishing once; Redis gone for longer than GORESOLVE_QUEUE_REDIS_OUTAGE_S stops the worker with
the queue's one line, the password masked. Before, a 1 s restart ended the worker with redis-py's ConnectionError
(the CLI's "unexpected ... report it"), cancelled the running job, and left its lease for job timeout + grace."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path

import anyio
import anyio.to_thread
import pytest
from redis import Redis as SyncRedis
from redis.exceptions import RedisError

from tests.workqueue.support import free_port, push_event, wait_for
from workqueue import Event, QueueUnavailable
from workqueue.redis import RedisQueue


class Redis:
    """A real redis-server on one port and directory that can be stopped and started again."""

    def __init__(self, directory: Path, password: str | None = None) -> None:
        self.port = free_port()
        self.password = password
        self.directory = directory
        self.proc: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run scripts/install-system-deps.sh")
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory), "--save", ""]
        args += ["--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no", "--loglevel", "warning"]
        args += ["--requirepass", self.password] if self.password else []
        self.proc = subprocess.Popen([binary, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = SyncRedis.from_url(self.url, socket_timeout=0.5)

        def up() -> bool:
            try:
                return bool(client.ping())
            except (RedisError, OSError):
                return False

        try:
            wait_for(up, 30, "redis-server to answer")
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None


@contextmanager
def restartable_redis(directory: Path, password: str | None = None) -> Generator[Redis]:
    server = Redis(directory, password)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_a_worker_outlives_a_redis_restart_and_its_job_finishes_once(tmp_path: Path) -> None:
    with restartable_redis(tmp_path / "redis") as server:
        queue = RedisQueue(server.url, "tickets", poll_s=0.01, timeout_s=2, outage_s=60)
        started, release = anyio.Event(), anyio.Event()
        runs: list[str] = []

        async def handler(event: Event) -> None:
            runs.append(event.id)
            started.set()
            await release.wait()

        event = push_event("restart")
        assert await queue.enqueue(event)
        outcome: list[BaseException] = []

        async def consume() -> None:
            try:
                await queue.consume(handler, concurrency=2, burst=True)
            except Exception as exc:
                outcome.append(exc)

        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                tg.start_soon(consume)
                await started.wait()
                await anyio.to_thread.run_sync(server.stop)
                await anyio.sleep(1)  # the outage: Redis is down this long (not an assertion)
                await anyio.to_thread.run_sync(server.start)
                release.set()
        assert outcome == [] and runs == [event.id]  # before: ConnectionError, the job cancelled
        assert await queue.depth() == 0 and await queue.dead_letters() == []
        await queue.aclose()


async def test_redis_away_past_the_outage_setting_stops_the_worker_with_one_line(tmp_path: Path) -> None:
    with restartable_redis(tmp_path / "redis", password="hunter2") as server:
        queue = RedisQueue(server.url, "tickets", poll_s=0.01, timeout_s=2, outage_s=1)
        started = anyio.Event()

        async def handler(event: Event) -> None:
            started.set()
            await anyio.sleep_forever()

        async def stop_redis() -> None:
            await started.wait()
            await anyio.to_thread.run_sync(server.stop)

        assert await queue.enqueue(push_event("gone"))
        caught: pytest.ExceptionInfo[QueueUnavailable] | None = None
        try:
            with anyio.fail_after(120):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(stop_redis)
                    with pytest.raises(QueueUnavailable) as caught:
                        await queue.consume(handler, concurrency=1)
        finally:
            await queue.aclose()
        assert caught is not None
        message = str(caught.value)
        assert "\n" not in message and "hunter2" not in message
        assert "has been unreachable for 1s (GORESOLVE_QUEUE_REDIS_OUTAGE_S)" in message
        assert "redis://:***@127.0.0.1" in message
