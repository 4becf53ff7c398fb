"""The load check shared by tests/workqueue/test_load.py (small) and bench/webhook_load.py (2,000).

Signed push deliveries go through the real gateway (in process) into a real queue; worker processes
(tests/workqueue/worker_proc.py) apply an idempotent effect per (repo, commit) while a killer thread
SIGKILLs a random worker at random moments and starts a new one. Duplicates are of two kinds: the
same delivery GUID sent again (the gateway's dedup), and the same commit under a new GUID (the
handler's idempotency). Result: lost = accepted commits with no effect; duplicated = effects applied
more than once (from the workers' append-only log of applications).
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx

from servers.webhooks.app import build_app
from servers.webhooks.settings import WebhookSettings
from servers.webhooks.verify import signature
from tests.webhooks.support import REPO, SECRET, push
from tests.workqueue.support import WorkerProcess, wait_for
from workqueue import QueueSettings, Topic, WorkQueue, open_queue


@dataclass
class LoadResult:
    deliveries: int
    accepted: int
    duplicates_answered: int
    commits: int
    lost: int
    duplicated: int
    runs: int
    kills: int
    seconds: float

    def line(self) -> str:
        return f"webhook load: {self.lost} lost, {self.duplicated} duplicated of {self.deliveries}"


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    if not db.exists():
        return []
    with sqlite3.connect(db, timeout=30) as conn:
        try:
            return conn.execute(sql).fetchall()
        except sqlite3.OperationalError:
            return []


def run_load(
    backend: str,
    where: str,
    tmp: Path,
    *,
    deliveries: int,
    duplicate_share: float = 0.10,
    workers: int = 2,
    kill_every_s: tuple[float, float] = (0.5, 1.5),
    timeout_s: float = 300.0,
    seed: int = 16,
    work_ms: int = 5,
) -> LoadResult:
    rng = random.Random(seed)
    effects = tmp / "effects.db"
    settings = QueueSettings(
        backend="redis" if backend == "redis" else "sqlite",
        sqlite_dir=Path(where),
        redis_url=where if backend == "redis" else "redis://127.0.0.1:6379/0",  # type: ignore[arg-type]
    )
    queues: dict[Topic, WorkQueue] = {t: open_queue(settings, t) for t in ("code-index", "tickets")}
    gateway = build_app(WebhookSettings(github_secret=SECRET), queues)

    # the deliveries: unique ones, then 10% duplicates, half same GUID, half same commit new GUID
    unique = deliveries - int(deliveries * duplicate_share)
    sent: list[tuple[str, str]] = [(str(uuid.uuid4()), f"{n + 1:040x}") for n in range(unique)]
    for i in range(deliveries - unique):
        guid, sha = rng.choice(sent[:unique])
        sent.append((guid, sha) if i % 2 == 0 else (str(uuid.uuid4()), sha))
    rng.shuffle(sent)

    args = ["--backend", backend, "--where", where, "--effects", str(effects), "--job-timeout", "2"]
    args += ["--work-ms", str(work_ms)]
    # the embedded queue has one consumer process at a time (its lease is that process's lock)
    count = 1 if backend == "sqlite" else workers
    pool = [WorkerProcess(args, tmp / f"worker{i}.log").start() for i in range(count)]
    stop = threading.Event()
    kills = [0]

    def runs() -> int:
        found = _rows(effects, "SELECT COUNT(*) FROM runs")
        return int(found[0][0]) if found else 0  # type: ignore[call-overload]

    def killer() -> None:
        # Kill at a random moment after the workers have started jobs again since the last kill
        # (a new process needs a moment to start; killing it before that would test nothing).
        while not stop.is_set():
            seen = runs()
            while runs() == seen and not stop.wait(0.05):
                pass
            if stop.wait(rng.uniform(*kill_every_s)):
                return
            victim = rng.randrange(len(pool))
            pool[victim].kill()
            kills[0] += 1
            pool[victim] = WorkerProcess(args, tmp / f"worker{victim}.log").start()

    thread = threading.Thread(target=killer, daemon=True)
    began = time.perf_counter()
    thread.start()
    accepted: set[str] = set()
    answered = {"queued": 0, "duplicate": 0}

    async def send_all() -> None:
        limiter = anyio.Semaphore(16)
        transport = httpx.ASGITransport(app=gateway)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw", timeout=60) as client:

            async def one(guid: str, sha: str) -> None:
                async with limiter:
                    # Two deliveries never carry the same bytes (GitHub's differ at least in their timestamps):
                    # a body follows its GUID, or the gateway would take the second for a replay of the first.
                    raw = json.dumps(push(after=sha, before=uuid.UUID(guid).hex + "0" * 8)).encode()
                    headers = {
                        "X-GitHub-Event": "push",
                        "X-GitHub-Delivery": guid,
                        "X-GitHub-Hook-ID": "1",
                        "X-Hub-Signature-256": signature(SECRET, raw),
                    }
                    answer = await client.post("/webhooks/github", content=raw, headers=headers)
                    assert answer.status_code == 202, answer.text
                    answered[answer.json()["status"]] += 1
                    if answer.json()["status"] == "queued":
                        accepted.add(f"{REPO['full_name']}@{sha}")

            async with anyio.create_task_group() as tg:
                for guid, sha in sent:
                    tg.start_soon(one, guid, sha)
        for q in queues.values():
            await q.aclose()

    try:
        anyio.run(send_all)

        def done() -> bool:
            return len(_rows(effects, "SELECT key FROM effects")) >= len(accepted)

        wait_for(done, timeout_s, "every accepted commit to take effect", step=0.2)
        stop.set()
        thread.join(timeout=30)
    finally:
        stop.set()
        for worker in pool:
            worker.kill()
    applied = [str(r[0]) for r in _rows(effects, "SELECT key FROM applied")]
    return LoadResult(
        deliveries=deliveries,
        accepted=answered["queued"],
        duplicates_answered=answered["duplicate"],
        commits=len(accepted),
        lost=len(accepted - set(applied)),
        duplicated=len(applied) - len(set(applied)),
        runs=runs(),
        kills=kills[0],
        seconds=time.perf_counter() - began,
    )
