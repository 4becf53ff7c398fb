"""Test support shared by the queue and webhook tests: a real redis-server, events, worker processes."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Generator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from workqueue import Event, PushData

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], bool], timeout: float, what: str, step: float = 0.02) -> None:
    """Poll `check` until it is true; fail with `what` after `timeout` seconds (never a bare sleep)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


@contextmanager
def redis_server(directory: Path, *extra: str) -> Generator[str]:
    """A real redis-server on a free loopback port, every write fsynced (appendfsync always); `extra`: more of its
    options (`--maxmemory-policy`, `volatile-lru`)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: run scripts/install-system-deps.sh")
    port = free_port()
    directory.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(directory),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def up() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    try:
        wait_for(up, 10, "redis-server to answer")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextmanager
def paused(url: str) -> Generator[None]:
    """The redis-server behind `url` stopped with SIGSTOP (it accepts connections and answers nothing), then
    resumed whatever happens."""
    from redis import Redis

    with Redis.from_url(url) as direct:
        info: dict[str, object] = direct.info("server")  # type: ignore[assignment]
    pid = int(str(info["process_id"]))
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def push_event(n: int | str, repo: str = "acme/svc", *, after: str | None = None) -> Event:
    sha = after or uuid.uuid5(uuid.NAMESPACE_OID, str(n)).hex.ljust(40, "0")
    return Event(
        id=f"github:1:{n}",
        source="github",
        delivery=str(n),
        hook_id="1",
        trace_id=uuid.uuid4().hex,
        received_at=datetime.now(UTC),
        repo=repo,
        data=PushData(ref="refs/heads/main", before="0" * 40, after=sha, commits=1, truncated=False, clone_url="x"),
    )


class WorkerProcess:
    """`python -m tests.workqueue.worker_proc ...` as a real process that tests kill with SIGKILL."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.args, self.log = args, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.workqueue.worker_proc", *self.args],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
