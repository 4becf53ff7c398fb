"""Payloads that conform to GitHub's published schemas and Atlassian's documented shapes, signed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import jsonschema
from pydantic import SecretStr

from servers.webhooks.verify import signature
from tests.webhooks.schemas import example
from tests.workqueue.support import REPO_ROOT, free_port, wait_for

SECRET = SecretStr("test-webhook-secret-0123456789")
JIRA_SECRET = SecretStr("test-jira-secret-0123456789")
JIRA_SCHEMA = json.loads(Path(__file__).with_name("jira_issue_event.schema.json").read_text(encoding="utf-8"))
REPO = {
    "full_name": "acme/svc",
    "name": "svc",
    "default_branch": "main",
    "clone_url": "https://github.example/acme/svc.git",
}


def push(after: str = "b" * 40, ref: str = "refs/heads/main", commits: int = 1, **extra: Any) -> dict[str, Any]:
    listed = [{"id": f"{i:040x}", "added": [], "removed": [], "modified": ["mux.go"]} for i in range(commits)]
    values = {"ref": ref, "before": "a" * 40, "after": after, "repository": REPO, "commits": listed, **extra}
    return example("push", values)


def issue(action: str = "opened", number: int = 7, labels: tuple[str, ...] = ("bug",)) -> dict[str, Any]:
    body: dict[str, Any] = {
        "number": number,
        "title": "Router drops trailing slash",
        "html_url": f"https://github.example/acme/svc/issues/{number}",
        "user": {"login": "dev", "id": 1},
        "labels": [
            {
                "id": i,
                "node_id": "L",
                "url": "https://x.invalid/",
                "name": n,
                "color": "ededed",
                "default": False,
                "description": None,
            }
            for i, n in enumerate(labels)
        ],
    }
    values: dict[str, Any] = {"action": action, "issue": body, "repository": REPO}
    if action == "labeled":
        values["label"] = body["labels"][0]
    return example(f"issues-{action}", values)


def comment(text: str, number: int = 7) -> dict[str, Any]:
    return example(
        "issue-comment-created",
        {
            "action": "created",
            "issue": {
                "number": number,
                "html_url": "https://github.example/acme/svc/issues/7",
                "user": {"login": "dev", "id": 1},
            },
            "comment": {
                "body": text,
                "html_url": "https://github.example/acme/svc/issues/7#c1",
                "user": {"login": "dev", "id": 1},
            },
            "repository": REPO,
        },
    )


def jira(event: str = "jira:issue_created", key: str = "SVC-12") -> dict[str, Any]:
    body = {
        "timestamp": 1767225600000,
        "webhookEvent": event,
        "issue_event_type_name": "issue_created" if event.endswith("created") else "issue_updated",
        "user": {"accountId": "5b10ac8d82e05b22cc7d4ef5", "displayName": "Dev"},
        "issue": {
            "id": "10001",
            "self": "https://acme.atlassian.net/rest/api/3/issue/10001",
            "key": key,
            "fields": {"summary": "Router drops trailing slash", "project": {"id": "10000", "key": "SVC", "name": "S"}},
        },
    }
    jsonschema.validate(body, JIRA_SCHEMA)
    return body


def github_headers(kind: str, raw: bytes, delivery: str | None = None, secret: SecretStr = SECRET) -> dict[str, str]:
    return {
        "X-GitHub-Event": kind,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "4242",
        "X-Hub-Signature-256": signature(secret, raw),
        "Content-Type": "application/json",
    }


def jira_headers(raw: bytes, delivery: str | None = None) -> dict[str, str]:
    return {
        "X-Atlassian-Webhook-Identifier": delivery or str(uuid.uuid4()),
        "X-Hub-Signature": signature(JIRA_SECRET, raw),
        "Content-Type": "application/json",
    }


def dumps(body: Any) -> bytes:
    return json.dumps(body).encode()


def example_star() -> dict[str, Any]:
    return example("star-created", {"action": "created", "starred_at": "2026-01-01T00:00:00Z", "repository": REPO})


def example_ping() -> dict[str, Any]:
    return example("ping", {"zen": "Keep it logically awesome.", "hook_id": 4242})


def gateway_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a `goresolve serve webhooks` process: none of this machine's goresolve settings, the
    queue under `tmp_path` unless `extra` says otherwise."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GORESOLVE_")}
    return {**env, "PYTHONPATH": str(REPO_ROOT), "GORESOLVE_QUEUE_SQLITE_DIR": str(tmp_path / "queue"), **extra}


@contextmanager
def serving_gateway(tmp_path: Path, env: dict[str, str]) -> Iterator[str]:
    """`goresolve serve webhooks` as its own process with `env`, its output in `tmp_path/gateway.log`; yields its base
    URL once /readyz answers 200, and stops it afterwards."""
    port = free_port()
    with (tmp_path / "gateway.log").open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "goresolve.cli", "serve", "webhooks", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=sink,
            stderr=sink,
        )
    base = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            try:
                return httpx.get(f"{base}/readyz", timeout=0.5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, 60, "the gateway to be ready")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
