"""`goresolve queue ls|show|replay|purge` on the embedded queue, through the typer app."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from tests.workqueue.support import push_event
from workqueue import Event, QueueSettings, RetryPolicy
from workqueue.cli import queue_app
from workqueue.redis import RedisQueue
from workqueue.settings import settings_error
from workqueue.sqlite import SQLiteQueue


@pytest.fixture
def dead_queue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    where = tmp_path / "q"

    async def fill() -> None:
        queue = SQLiteQueue(where, "code-index", retry=RetryPolicy(max_tries=1))
        await queue.enqueue(push_event("a"))
        await queue.enqueue(push_event("b"))

        async def broken(event: Event) -> None:
            raise RuntimeError("no mirror for acme/svc")

        await queue.consume(broken, burst=True)
        await queue.aclose()

    anyio.run(fill)
    monkeypatch.setenv("GORESOLVE_QUEUE_SQLITE_DIR", str(where))
    return where


def test_ls_show_replay_purge(dead_queue: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(queue_app, ["ls", "--json"])
    assert listed.exit_code == 0, listed.output
    body = json.loads(listed.stdout)
    assert body["depth"] == 0
    assert [(d["id"], d["tries"], d["error"]) for d in body["dead"]] == [
        ("github:1:a", 1, "RuntimeError: no mirror for acme/svc"),
        ("github:1:b", 1, "RuntimeError: no mirror for acme/svc"),
    ]
    shown = runner.invoke(queue_app, ["show", "github:1:a"])
    assert shown.exit_code == 0 and json.loads(shown.stdout)["event"]["repo"] == "acme/svc"
    assert runner.invoke(queue_app, ["replay", "github:1:a"]).exit_code == 0
    assert json.loads(runner.invoke(queue_app, ["ls", "--json"]).stdout)["depth"] == 1
    missing = runner.invoke(queue_app, ["replay", "github:1:a"])
    assert missing.exit_code == 1 and "no dead letter 'github:1:a'" in missing.output
    assert runner.invoke(queue_app, ["purge"]).exit_code == 2
    purged = runner.invoke(queue_app, ["purge", "--all"])
    assert purged.exit_code == 0 and "purged 1" in purged.output
    assert json.loads(runner.invoke(queue_app, ["ls", "--json"]).stdout)["dead"] == []
    assert runner.invoke(queue_app, ["ls", "--queue", "nope"]).exit_code == 2


def test_a_bad_redis_url_is_a_settings_error_naming_the_variable_and_not_its_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GORESOLVE_QUEUE_BACKEND", "redis")
    monkeypatch.setenv("GORESOLVE_QUEUE_REDIS_URL", "http://:hunter2@redis:6379/0")
    with pytest.raises(ValidationError) as exc:
        QueueSettings()
    assert settings_error(exc.value).startswith("setting GORESOLVE_QUEUE_REDIS_URL: not a Redis URL: use redis://")
    assert "hunter2" not in settings_error(exc.value)
    listed = CliRunner().invoke(queue_app, ["ls"])
    assert listed.exit_code == 2 and "GORESOLVE_QUEUE_REDIS_URL" in listed.output
    monkeypatch.setenv("GORESOLVE_QUEUE_BACKEND", "sqlite")  # the Redis URL is not used, so not checked
    assert QueueSettings().backend == "sqlite"
    with pytest.raises(ValueError, match="not a Redis URL"):
        RedisQueue("notaurl", "x")


def test_show_prints_an_unknown_id_as_text_not_as_markup(dead_queue: Path) -> None:
    shown = CliRunner().invoke(queue_app, ["show", "[/x]"])
    assert shown.exit_code == 1 and "no dead letter '[/x]' in queue 'code-index'" in shown.output
