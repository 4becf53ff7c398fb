"""The worker side's Prometheus metrics (the gateway has its own; both use the default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

JOB_SECONDS = Histogram(
    "goresolve_queue_job_seconds",
    "Handler run time per event, by queue and outcome (done, retry, dead, deferred).",
    ["queue", "outcome"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
JOB_LAG_SECONDS = Histogram(
    "goresolve_queue_lag_seconds",
    "From the gateway's receipt of an event to the start of its first handler run.",
    ["queue"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
DEAD_LETTERS = Counter("goresolve_queue_dead_letters_total", "Events moved to the dead-letter list.", ["queue"])
REDIS_FULL = Gauge(
    "goresolve_queue_redis_full",
    "1 while this worker finds Redis refusing writes for want of memory (maxmemory reached), else 0.",
    ["queue"],
)
