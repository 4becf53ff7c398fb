"""Concurrency caps: at most `total` runs at once, and at most `per_repo` against one repository."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager


class Capacity:
    """A slot is taken only when both caps allow it; waiters are woken whenever a slot frees."""

    def __init__(self, total: int, per_repo: int) -> None:
        if total < 1 or per_repo < 1:
            raise ValueError("caps must be at least 1")
        self.total = total
        self.per_repo = per_repo
        self._running: Counter[str] = Counter()
        self._changed = asyncio.Condition()

    @property
    def running(self) -> int:
        return sum(self._running.values())

    def running_for(self, repo: str) -> int:
        return self._running[repo]

    def _free(self, repo: str) -> bool:
        return self.running < self.total and self._running[repo] < self.per_repo

    async def acquire(self, repo: str) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._free(repo))
            self._running[repo] += 1

    async def release(self, repo: str) -> None:
        async with self._changed:
            self._running[repo] -= 1
            if self._running[repo] <= 0:
                del self._running[repo]
            self._changed.notify_all()

    def adopt(self, repo: str) -> None:
        """Count a run that was already going when the dispatcher started (caps hold across restarts)."""
        self._running[repo] += 1

    @asynccontextmanager
    async def slot(self, repo: str) -> AsyncGenerator[None]:
        await self.acquire(repo)
        try:
            yield
        finally:
            await self.release(repo)
