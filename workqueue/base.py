"""The one small interface both queues implement, and what they share.

    QueueError
     ├── QueueUnavailable   the queue cannot take or give work now (the gateway answers 503)
     │    ├── QueueFull     its store is (nearly) out of memory: new events are refused
     │    └── QueueMisconfigured  its store could lose accepted events (Redis that evicts keys)
     └── UnknownEvent       no dead letter with that id

Semantics (the shared test suite in tests/workqueue holds both implementations to them):
- `enqueue` returns only once the event is durable; False means the dedup key was seen within the
  retention window (nothing enqueued), or the body digest given with it was seen under another key:
  a signed body replayed under a new delivery id is a duplicate too. The same key with the same digest
  (a sender's own redelivery, after a write whose answer was lost) goes on to the key's own check.
- Delivery is at least once, under a lease: a job whose worker dies is delivered again.
- A handler that raises is retried with exponential backoff, at most `max_tries` runs in all; then
  the event goes to the dead-letter list, where it can be shown, replayed or purged.
- A handler that raises `Deferred` cannot take the event now (the dispatcher, when every run slot is
  taken): the event comes back after the delay it gives, and that run counts as no try. The worker
  slot is free meanwhile, and the job timeout of the next run starts afresh.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from workqueue.events import Event

Handler = Callable[[Event], Awaitable[None]]


class QueueError(Exception):
    """Base of the queue's errors; the message never holds a secret (URLs are shown without password)."""


class QueueUnavailable(QueueError):
    """The backend is unreachable or refused the write."""


class QueueFull(QueueUnavailable):
    """The store is at its memory limit: new events are refused (so that workers can still drain it), or a
    worker has found it refusing every write for longer than it waits."""


class QueueMisconfigured(QueueUnavailable):
    """The store is set up so that it could drop events already accepted (a Redis whose maxmemory-policy evicts
    keys): the queue refuses to take or give work on it."""


class UnknownEvent(QueueError):
    """No dead letter with that id."""


class Deferred(Exception):
    """Raised by a handler that cannot take the event now: run it again after `delay_s`, not counted as a try."""

    def __init__(self, delay_s: float, reason: str = "") -> None:
        super().__init__(reason or f"deferred for {delay_s:g} s")
        if not delay_s > 0:
            raise ValueError("a deferral needs a positive delay")
        self.delay_s = delay_s
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries: run at most `max_tries` times; wait backoff_s * 2**(n-1), capped, before run n+1."""

    max_tries: int = 5
    backoff_s: float = 1.0
    backoff_max_s: float = 300.0

    def delay(self, tries: int) -> float:
        return min(self.backoff_s * 2 ** max(tries - 1, 0), self.backoff_max_s)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An event whose handler failed `tries` times; `error` is the last failure's one-line summary.

    `event` is None when the letter holds no event this version can read (a newer gateway's, one written by
    hand, a damaged one): `raw` is then its stored text and `invalid` why, so that it can be shown and purged.
    """

    id: str
    event: Event | None
    error: str
    tries: int
    failed_at: float
    raw: str = ""
    invalid: str = ""


class WorkQueue(Protocol):
    """A named, durable, deduplicating, at-least-once queue of `Event`s."""

    name: str

    async def enqueue(self, event: Event, *, digest: str | None = None) -> bool:
        """Store `event`; False when its id was already seen, or `digest` (the sha256 of the delivery's
        raw body) was seen with another id, within the retention window. Raises QueueUnavailable."""
        ...

    async def ping(self) -> None:
        """Return when the backend answers. Raises QueueUnavailable."""
        ...

    async def depth(self) -> int:
        """Events waiting or running (not dead, not done). Raises QueueUnavailable."""
        ...

    async def dead_letters(self) -> list[DeadLetter]:
        """The dead-letter list, oldest first, unreadable letters included. Raises QueueUnavailable."""
        ...

    async def dead_count(self) -> int:
        """How many dead letters there are (none of them read). Raises QueueUnavailable."""
        ...

    async def replay(self, event_id: str) -> None:
        """Move one dead letter back onto the queue (its tries start again). Raises UnknownEvent."""
        ...

    async def purge(self, event_id: str | None = None) -> int:
        """Drop one dead letter (or all of them); returns how many. Raises UnknownEvent."""
        ...

    async def consume(self, handler: Handler, *, concurrency: int = 4, burst: bool = False) -> None:
        """Run `handler` on events until cancelled (or, with `burst`, until the queue is empty)."""
        ...

    async def aclose(self) -> None: ...


def one_line(exc: BaseException) -> str:
    """A failure as one short line for the dead-letter list (type and first line of the message)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:500] if text else type(exc).__name__
