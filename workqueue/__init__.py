"""goresolve's durable event queue: one small interface (`WorkQueue`), two implementations.

    from workqueue import Event, QueueSettings, open_queue
    queue = open_queue(QueueSettings(), "code-index")     # SQLite by default, Redis (arq) in production
    await queue.enqueue(event)                            # False: a duplicate delivery
    await queue.consume(handler, concurrency=4)           # at least once, leased, retried, dead-lettered

The webhook gateway produces; the code-search re-index worker and the agent's dispatcher consume.
This package imports no server and no agent code, so both sides can depend on it.
"""

from workqueue.base import (
    DeadLetter,
    Deferred,
    Handler,
    QueueError,
    QueueFull,
    QueueMisconfigured,
    QueueUnavailable,
    RetryPolicy,
    UnknownEvent,
    WorkQueue,
)
from workqueue.events import TOPICS, CommentData, Event, IssueData, JiraIssueData, PushData, Topic
from workqueue.settings import QueueSettings, open_queue

__all__ = [
    "TOPICS",
    "CommentData",
    "DeadLetter",
    "Deferred",
    "Event",
    "Handler",
    "IssueData",
    "JiraIssueData",
    "PushData",
    "QueueError",
    "QueueFull",
    "QueueMisconfigured",
    "QueueSettings",
    "QueueUnavailable",
    "RetryPolicy",
    "Topic",
    "UnknownEvent",
    "WorkQueue",
    "open_queue",
]
