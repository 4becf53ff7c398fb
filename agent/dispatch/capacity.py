"""Concurrency caps: at most `total` runs at once, and at most `per_repo` against one repository.

A run takes its slot when it starts, or not at all: a ticket that finds no slot free does not wait in its
queue handler (the wait would eat into the queue's job timeout for the run, and hold a worker another
repository's ticket could use); the dispatcher hands it back to the queue for later (`Busy`). A dispatch
that follows (or leaves) a run already going takes no slot: that run holds one already.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncGenerator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

Slot = Callable[[], AbstractAsyncContextManager[None]]
"""What a runner enters around a run it starts (the dispatcher's `Capacity.slot` for the ticket's repository)."""


def no_slot() -> AbstractAsyncContextManager[None]:
    """No cap: a runner used on its own (tests, `goresolve dispatch` tools)."""
    return contextlib.nullcontext()


class Busy(Exception):
    """Every slot a run would need is taken now."""


class Capacity:
    """A slot is taken only when both caps allow it."""

    def __init__(self, total: int, per_repo: int) -> None:
        if total < 1 or per_repo < 1:
            raise ValueError("caps must be at least 1")
        self.total = total
        self.per_repo = per_repo
        self._running: Counter[str] = Counter()

    @property
    def running(self) -> int:
        return sum(self._running.values())

    def running_for(self, repo: str) -> int:
        return self._running[repo]

    def _free(self, repo: str) -> bool:
        return self.running < self.total and self._running[repo] < self.per_repo

    def release(self, repo: str) -> None:
        self._running[repo] -= 1
        if self._running[repo] <= 0:
            del self._running[repo]

    def adopt(self, repo: str) -> None:
        """Count a run that was already going when the dispatcher started (caps hold across restarts)."""
        self._running[repo] += 1

    @asynccontextmanager
    async def slot(self, repo: str) -> AsyncGenerator[None]:
        """Hold a slot for `repo` while the block runs. Raises Busy at once when none is free (no waiting)."""
        if not self._free(repo):
            raise Busy(
                f"{self.running} of {self.total} runs are going, {self._running[repo]} of {self.per_repo} "
                f"against {repo}"
            )
        self._running[repo] += 1
        try:
            yield
        finally:
            self.release(repo)
