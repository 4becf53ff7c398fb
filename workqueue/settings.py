"""Queue settings (env prefix GORESOLVE_QUEUE_), and the table that picks an implementation."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from workqueue.base import RetryPolicy, WorkQueue
from workqueue.events import Topic


class QueueSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GORESOLVE_QUEUE_", extra="forbid", frozen=True)

    backend: Literal["sqlite", "redis"] = Field(default="sqlite", description="sqlite: one machine; redis: many.")
    sqlite_dir: Path = Field(default=Path(".goresolve/queue"), description="Directory of the embedded queue.")
    redis_url: SecretStr = Field(
        default=SecretStr("redis://127.0.0.1:6379/0"), description="May hold a password: treated as a secret."
    )
    retention_s: float = Field(default=3 * 86400, ge=60, description="How long a delivery id is remembered.")
    max_tries: int = Field(default=5, ge=1, le=100)
    backoff_s: float = Field(default=1.0, ge=0, le=3600)
    backoff_max_s: float = Field(default=300.0, ge=0, le=86400)
    job_timeout_s: float = Field(default=600.0, gt=0, le=86400)
    lease_grace_s: float = Field(default=10.0, ge=0, le=3600, description="Redis: lease = job timeout + this.")


def open_queue(settings: QueueSettings, topic: Topic) -> WorkQueue:
    """The queue for `topic` on the configured backend (its library is imported only here)."""
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
        )
    from workqueue.sqlite import SQLiteQueue

    return SQLiteQueue(
        settings.sqlite_dir,
        topic,
        retry=retry,
        retention_s=settings.retention_s,
        job_timeout_s=settings.job_timeout_s,
    )
