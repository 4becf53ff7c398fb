"""`goresolve serve webhooks` as a process: ready on the embedded queue, 202 for a signed push, a clear
exit 2 without any webhook secret."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from servers.webhooks.verify import signature
from tests.webhooks import support as s
from tests.workqueue.support import free_port


def test_serve_webhooks_accepts_a_signed_push(tmp_path: Path) -> None:
    env = s.gateway_env(tmp_path, GORESOLVE_WEBHOOKS_GITHUB_SECRET=s.SECRET.get_secret_value())
    with s.serving_gateway(tmp_path, env) as base:
        raw = json.dumps(s.push()).encode()
        headers = {
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": signature(s.SECRET, raw),
        }
        answer = httpx.post(f"{base}/webhooks/github", content=raw, headers=headers, timeout=30)
        assert answer.status_code == 202 and answer.json()["status"] == "queued"
        assert "goresolve_webhooks_accepted_total" in httpx.get(f"{base}/metrics", timeout=10).text
    assert (tmp_path / "queue" / "data.db").exists()


@pytest.mark.parametrize("empty", [{}, {"GORESOLVE_WEBHOOKS_GITHUB_SECRET": "", "GORESOLVE_WEBHOOKS_JIRA_SECRET": ""}])
def test_serve_webhooks_without_either_secret_exits_2_with_one_line_naming_both(
    tmp_path: Path, empty: dict[str, str]
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "goresolve.cli", "serve", "webhooks", "--port", str(free_port())],
        cwd=tmp_path,
        env=s.gateway_env(tmp_path, COLUMNS="40", **empty),  # a narrow terminal must not wrap the line
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: no webhook secret: set GORESOLVE_WEBHOOKS_GITHUB_SECRET or GORESOLVE_WEBHOOKS_JIRA_SECRET (or both)"
    ]


@pytest.mark.parametrize(
    ("env", "variable", "message"),
    [
        ({"GORESOLVE_QUEUE_BACKEND": "redis", "GORESOLVE_QUEUE_REDIS_URL": "notaurl"}, "REDIS_URL", "not a Redis URL"),
        (
            {"GORESOLVE_QUEUE_BACKEND": "redis", "GORESOLVE_QUEUE_REDIS_URL": "redis://:hunter2@h:port/0"},
            "REDIS_URL",
            "not a Redis URL",
        ),
        ({"GORESOLVE_QUEUE_BACKEND": "kafka"}, "BACKEND", "Input should be 'sqlite' or 'redis'"),
    ],
)
def test_serve_webhooks_with_bad_queue_settings_exits_2_naming_the_variable(
    tmp_path: Path, env: dict[str, str], variable: str, message: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "goresolve.cli", "serve", "webhooks", "--port", str(free_port())],
        cwd=tmp_path,
        env={**s.gateway_env(tmp_path, GORESOLVE_WEBHOOKS_GITHUB_SECRET="x", COLUMNS="200"), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert f"error: setting GORESOLVE_QUEUE_{variable}: {message}" in done.stderr
    assert "Traceback" not in done.stderr and "hunter2" not in done.stderr and "report it" not in done.stderr
