"""Queue settings (env prefix GORESOLVE_QUEUE_), and the table that picks an implementation."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from workqueue.base import RetryPolicy, WorkQueue
from workqueue.events import Topic


def _data_dir() -> Path:
    """The per-user data directory every goresolve command keeps its state in: `$GORESOLVE_DATA_DIR`, else the
    platform's (as servers.common.settings.default_data_dir, which this package may not import)."""
    override = os.environ.get("GORESOLVE_DATA_DIR")
    if override:
        return Path(override).expanduser().resolve()
    return platformdirs.user_data_path("goresolve", appauthor=False)


class QueueSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GORESOLVE_QUEUE_", extra="forbid", frozen=True)

    backend: Literal["sqlite", "redis"] = Field(default="sqlite", description="sqlite: one machine; redis: many.")
    sqlite_dir: Path = Field(
        default_factory=lambda: _data_dir() / "queue",
        description="Directory of the embedded queue (default: queue/ in the data directory, GORESOLVE_DATA_DIR, "
        "whatever the current directory: the gateway, the dispatcher and the workers must share it).",
    )
    redis_url: SecretStr = Field(
        default=SecretStr("redis://127.0.0.1:6379/0"), description="May hold a password: treated as a secret."
    )
    retention_s: float = Field(default=3 * 86400, ge=60, description="How long a delivery id is remembered.")
    max_tries: int = Field(default=5, ge=1, le=100)
    backoff_s: float = Field(default=1.0, ge=0, le=3600)
    backoff_max_s: float = Field(default=300.0, ge=0, le=86400)
    job_timeout_s: float = Field(default=600.0, gt=0, le=86400)
    lease_grace_s: float = Field(default=10.0, ge=0, le=3600, description="Redis: lease = job timeout + this.")
    redis_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="Redis: deadline of one queue call (enqueue, ls, replay, a worker's checks); a Redis that does "
        "not answer within it (stalled, not only down) is an unavailable queue instead of a wait without end.",
    )

    redis_outage_s: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="Redis: how long a worker whose connection was lost (Redis restarted, a fail-over) waits for "
        "Redis to come back, its running jobs going on, before it stops.",
    )
    redis_memory_limit: float = Field(
        default=0.9,
        gt=0,
        le=1,
        description="Redis: the share of its maxmemory above which new events are refused (the gateway answers "
        "503), leaving the rest to the workers, which need a little memory to start each job and so drain it.",
    )
    sqlite_busy_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="SQLite: how long one queue call waits for the file's write lock (held by another process) "
        "before the queue is unavailable; a caller with its own deadline (the gateway) waits less.",
    )

    @field_validator("sqlite_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        # relative to the current directory, a gateway and a dispatcher started in two places used two queues
        return value.expanduser().resolve()

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        # Checked here, by the parser the queue uses, so that a bad URL is a settings error at start-up.
        if info.data.get("backend") == "redis":
            from arq.connections import RedisSettings

            try:
                RedisSettings.from_dsn(value.get_secret_value())
            except (RuntimeError, ValueError):
                raise ValueError(REDIS_URL_SHAPE) from None  # the URL may hold a password: not echoed
        return value


REDIS_TIMEOUT_SETTING = "GORESOLVE_QUEUE_REDIS_TIMEOUT_S"
REDIS_OUTAGE_SETTING = "GORESOLVE_QUEUE_REDIS_OUTAGE_S"
REDIS_MEMORY_SETTING = "GORESOLVE_QUEUE_REDIS_MEMORY_LIMIT"
REDIS_URL_SHAPE = "not a Redis URL: use redis://[:password@]host[:port][/db], rediss://... or unix:///path"


def settings_error(exc: ValidationError) -> str:
    """A QueueSettings error as one line naming the variable (never its value)."""
    first = exc.errors()[0]
    field = str(first["loc"][0]).upper() if first["loc"] else "*"
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"setting GORESOLVE_QUEUE_{field}: {message}"


def open_queue(settings: QueueSettings, topic: Topic, *, deadline_s: float | None = None) -> WorkQueue:
    """The queue for `topic` on the configured backend (its library is imported only here).

    `deadline_s`: the caller's own deadline per call (the gateway's); the SQLite queue then waits for a
    lock at most 80% of it, so that a locked file is an answer (QueueUnavailable) within the deadline.
    """
    retry = RetryPolicy(settings.max_tries, settings.backoff_s, settings.backoff_max_s)
    if settings.backend == "redis":
        from workqueue.redis import RedisQueue

        return RedisQueue(
            settings.redis_url.get_secret_value(),
            topic,
            retry=retry,
            retention_s=settings.retention_s,
            job_timeout_s=settings.job_timeout_s,
            lease_grace_s=settings.lease_grace_s,
            timeout_s=settings.redis_timeout_s,
            outage_s=settings.redis_outage_s,
            memory_limit=settings.redis_memory_limit,
        )
    from workqueue.sqlite import SQLiteQueue

    return SQLiteQueue(
        settings.sqlite_dir,
        topic,
        retry=retry,
        retention_s=settings.retention_s,
        job_timeout_s=settings.job_timeout_s,
        busy_timeout_s=settings.sqlite_busy_timeout_s
        if deadline_s is None
        else min(settings.sqlite_busy_timeout_s, deadline_s * 0.8),
    )
