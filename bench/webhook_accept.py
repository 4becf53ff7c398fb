"""Webhook accept latency and throughput on loopback: `goresolve serve webhooks` in a subprocess.

    .venv/bin/python bench/webhook_accept.py [--rate 200] [--seconds 10] [--backend sqlite|redis]

Open loop at --rate signed push deliveries per second (each a new delivery id, so each is durably
enqueued), latency from send to the 202; then a closed loop (16 in flight) for the throughput.
Baseline in the same run: GET /healthz at the same rate (HTTP + server, no verify, no enqueue).
Prints `webhook accept p99: N ms`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import anyio
import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from servers.common.logging import configure_logging  # noqa: E402
from servers.webhooks.verify import signature  # noqa: E402
from tests.webhooks.support import SECRET, push  # noqa: E402
from tests.workqueue.support import free_port, redis_server, wait_for  # noqa: E402


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _open_loop(client: httpx.AsyncClient, rate: float, seconds: float, make: object) -> list[float]:
    """Send at `rate`/s whatever the answers' speed (open loop); a late or failed answer counts as 10 s."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    start = time.perf_counter()
    n = int(rate * seconds)

    async def one() -> None:
        method, url, body, headers = make()  # type: ignore[operator]
        t0 = time.perf_counter()
        try:
            answer = await client.request(method, url, content=body, headers=headers)
            key = str(answer.status_code)
        except httpx.HTTPError as exc:
            key = type(exc).__name__
        latencies.append((time.perf_counter() - t0) * 1000 if key in ("200", "202") else 10_000.0)
        statuses[key] = statuses.get(key, 0) + 1

    async with anyio.create_task_group() as tg:
        for i in range(n):
            await anyio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            tg.start_soon(one)
    sent_for = time.perf_counter() - start
    bad = {k: v for k, v in statuses.items() if k not in ("200", "202")}
    print(f"  sent {n} in {sent_for:.1f}s; answers {statuses}" + (f"  FAILED: {bad}" if bad else ""))
    return latencies


async def _closed_loop(client: httpx.AsyncClient, total: int, make: object) -> float:
    sent = [0]

    async def runner() -> None:
        while sent[0] < total:
            sent[0] += 1
            method, url, body, headers = make()  # type: ignore[operator]
            await client.request(method, url, content=body, headers=headers)

    t0 = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(16):
            tg.start_soon(runner)
    return total / (time.perf_counter() - t0)


async def _in_process(tmp: Path, backend: str, redis_url: str | None, make: object, n: int = 200) -> list[float]:
    """The gateway's own time per delivery: its ASGI app called in this process, one at a time (no HTTP)."""
    from servers.webhooks.app import build_app
    from servers.webhooks.settings import WebhookSettings
    from workqueue import QueueSettings, Topic, WorkQueue, open_queue

    settings = QueueSettings(
        backend="redis" if backend == "redis" else "sqlite",
        sqlite_dir=tmp / "inproc-queue",
        redis_url=redis_url or "redis://127.0.0.1:6379/0",  # type: ignore[arg-type]
    )
    queues: dict[Topic, WorkQueue] = {t: open_queue(settings, t) for t in ("code-index", "tickets")}
    app = build_app(WebhookSettings(github_secret=SECRET), queues)
    latencies: list[float] = []
    # Log lines go to a file, as the served gateway's do (to its stderr, a file here): the same work per
    # delivery, and the bench's own output stays its figures.
    with (tmp / "inproc.log").open("w") as log:
        configure_logging(service="webhooks", stream=log)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
            for _ in range(n):
                method, url, body, headers = make()  # type: ignore[operator]
                t0 = time.perf_counter()
                answer = await client.request(method, url, content=body, headers=headers)
                latencies.append((time.perf_counter() - t0) * 1000)
                assert answer.status_code == 202
        configure_logging(service="bench", level="WARNING")
    for q in queues.values():
        await q.aclose()
    return latencies


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rate", type=float, default=200)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--backend", choices=["sqlite", "redis"], default="sqlite")
    args = p.parse_args()
    body = json.dumps(push()).encode()

    def delivery() -> tuple[str, str, bytes, dict[str, str]]:
        headers = {
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-GitHub-Hook-ID": "1",
            "X-Hub-Signature-256": signature(SECRET, body),
            "Content-Type": "application/json",
        }
        return "POST", "/webhooks/github", body, headers

    def health() -> tuple[str, str, bytes, dict[str, str]]:
        return "GET", "/healthz", b"", {}

    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        port = free_port()
        env = {
            **os.environ,
            "GORESOLVE_WEBHOOKS_GITHUB_SECRET": SECRET.get_secret_value(),
            "GORESOLVE_WEBHOOKS_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(REPO),
            "GORESOLVE_QUEUE_BACKEND": args.backend,
            "GORESOLVE_QUEUE_SQLITE_DIR": str(Path(tmp) / "queue"),
        }
        if args.backend == "redis":
            env["GORESOLVE_QUEUE_REDIS_URL"] = stack.enter_context(redis_server(Path(tmp) / "redis"))
        inproc = anyio.run(_in_process, Path(tmp), args.backend, env.get("GORESOLVE_QUEUE_REDIS_URL"), delivery)
        server = subprocess.Popen(
            [sys.executable, "-m", "goresolve.cli", "serve", "webhooks", "--port", str(port)],
            cwd=tmp,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stack.enter_context((Path(tmp) / "server.log").open("wb")),
        )
        stack.callback(server.terminate)
        stack.callback(lambda: print((Path(tmp) / "server.log").read_text()[-3000:], file=sys.stderr))
        base = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            try:
                return httpx.get(f"{base}/readyz", timeout=0.5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, 30, "the gateway")

        async def run() -> None:
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=2)
            async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10) as client:
                await _open_loop(client, 50, 1, delivery)  # warm-up
                base_lat = await _open_loop(client, args.rate, args.seconds, health)
                lat = await _open_loop(client, args.rate, args.seconds, delivery)
                rps = await _closed_loop(client, int(args.rate * 5), delivery)
            b50, b99 = statistics.median(base_lat), _pct(base_lat, 0.99)
            a50, a99 = statistics.median(lat), _pct(lat, 0.99)
            print(f"backend={args.backend} rate={args.rate:.0f}/s for {args.seconds:.0f}s, {len(lat)} deliveries")
            print(f"baseline GET /healthz: p50 {b50:.2f} ms, p99 {b99:.2f} ms")
            print(f"accept (verify + parse + durable enqueue): p50 {a50:.2f} ms, p99 {a99:.2f} ms")
            print(
                f"gateway alone (ASGI in process, sequential, no HTTP): p50 {statistics.median(inproc):.2f} ms, "
                f"p99 {_pct(inproc, 0.99):.2f} ms"
            )
            print(f"ratio to baseline: p50 x{a50 / b50:.1f}, p99 x{a99 / b99:.1f}")
            print(f"throughput, 16 in flight: {rps:.0f} deliveries/s; load average {os.getloadavg()[0]:.1f}")
            print(f"webhook accept p99: {a99:.1f} ms")

        anyio.run(run)


if __name__ == "__main__":
    main()
