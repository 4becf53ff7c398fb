"""The gateway serves the sources it has a secret for: Jira only, GitHub only or both. A delivery to a
source without a secret is refused with a JSON answer that names the source and the missing setting
(403, not the 404 of a wrong URL), its body unread and nothing enqueued; readiness and metrics are
unaffected, and the start-up log says which sources are served."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import structlog

from servers.webhooks.app import build_app
from servers.webhooks.settings import WebhookSettings
from servers.webhooks.verify import signature
from tests.webhooks import support as s
from tests.workqueue.support import redis_server
from workqueue import Topic, WorkQueue
from workqueue.redis import RedisQueue

GITHUB_REFUSED = {
    "error": "github webhooks are not configured on this gateway (it serves jira only): it has no "
    "GORESOLVE_WEBHOOKS_GITHUB_SECRET"
}
JIRA_REFUSED = {
    "error": "jira webhooks are not configured on this gateway (it serves github only): it has no "
    "GORESOLVE_WEBHOOKS_JIRA_SECRET"
}


@pytest.fixture
async def jira_only(queues: dict[Topic, WorkQueue]) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(WebhookSettings(jira_secret=s.JIRA_SECRET), queues)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
        yield client


async def test_a_jira_only_gateway_queues_jira_tickets(
    jira_only: httpx.AsyncClient, queues: dict[Topic, WorkQueue]
) -> None:
    raw = s.dumps(s.jira())
    answer = await jira_only.post("/webhooks/jira", content=raw, headers=s.jira_headers(raw))
    assert (answer.status_code, answer.json()["status"]) == (202, "queued")
    assert await queues["tickets"].depth() == 1


@pytest.mark.parametrize(
    ("kind", "body"), [("push", s.push()), ("issues", s.issue()), ("ping", s.example_ping())], ids=str
)
async def test_github_deliveries_to_a_jira_only_gateway_are_refused_naming_the_source_and_never_queued(
    jira_only: httpx.AsyncClient, queues: dict[Topic, WorkQueue], kind: str, body: object
) -> None:
    raw = s.dumps(body)
    delivery = str(uuid.uuid4())
    with structlog.testing.capture_logs() as logs:
        answer = await jira_only.post("/webhooks/github", content=raw, headers=s.github_headers(kind, raw, delivery))
    assert (answer.status_code, answer.json()) == (403, GITHUB_REFUSED)
    assert answer.headers["content-type"] == "application/json"
    assert [(e["event"], e["log_level"], e["reason"], e["delivery"]) for e in logs] == [
        ("webhook.rejected", "warning", "not-configured", delivery)
    ]
    assert await queues["code-index"].depth() == 0 and await queues["tickets"].depth() == 0
    metrics = (await jira_only.get("/metrics")).text
    assert 'goresolve_webhooks_rejected_total{reason="not-configured",source="github"} 1.0' in metrics


async def test_an_unsigned_or_huge_github_delivery_gets_the_same_refusal_without_its_body_being_read(
    jira_only: httpx.AsyncClient, queues: dict[Topic, WorkQueue]
) -> None:
    unsigned = await jira_only.post("/webhooks/github", content=b"{not json")
    assert (unsigned.status_code, unsigned.json()) == (403, GITHUB_REFUSED)
    huge = await jira_only.post("/webhooks/github", content=b"x" * (30 * 1024 * 1024))  # above any size limit
    assert (huge.status_code, huge.json()) == (403, GITHUB_REFUSED)
    assert await queues["code-index"].depth() == 0


async def test_a_jira_only_gateway_is_ready_and_serves_metrics(jira_only: httpx.AsyncClient) -> None:
    assert (await jira_only.get("/healthz")).text == "ok"
    ready = await jira_only.get("/readyz")
    assert (ready.status_code, ready.text) == (200, "ready")
    metrics = await jira_only.get("/metrics")
    assert metrics.status_code == 200 and 'goresolve_queue_depth{queue="tickets"} 0.0' in metrics.text
    # Paths and methods keep the framework's answers: a wrong URL is still told apart from a disabled source.
    assert (await jira_only.get("/webhooks/github")).status_code == 405
    assert (await jira_only.post("/webhooks/gitlab")).status_code == 404


async def test_a_github_only_gateway_refuses_jira_deliveries_the_same_way(queues: dict[Topic, WorkQueue]) -> None:
    app = build_app(WebhookSettings(github_secret=s.SECRET), queues)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
        raw = s.dumps(s.jira())
        answer = await client.post("/webhooks/jira", content=raw, headers=s.jira_headers(raw))
        assert (answer.status_code, answer.json()) == (403, JIRA_REFUSED)
        raw = s.dumps(s.push())
        assert (await client.post("/webhooks/github", content=raw, headers=s.github_headers("push", raw))).json()[
            "status"
        ] == "queued"
    assert await queues["tickets"].depth() == 0 and await queues["code-index"].depth() == 1


@pytest.mark.parametrize(
    ("given", "enabled", "disabled"),
    [
        ({"github_secret": s.SECRET}, ["github"], ["jira"]),
        ({"jira_secret": s.JIRA_SECRET}, ["jira"], ["github"]),
        ({"github_secret": s.SECRET, "jira_secret": s.JIRA_SECRET}, ["github", "jira"], []),
        ({"github_secret": "", "jira_secret": s.JIRA_SECRET}, ["jira"], ["github"]),  # an empty secret file
    ],
)
def test_the_gateway_logs_which_sources_it_serves(
    queues: dict[Topic, WorkQueue], given: dict[str, object], enabled: list[str], disabled: list[str]
) -> None:
    with structlog.testing.capture_logs() as logs:
        build_app(WebhookSettings(**given), queues)  # type: ignore[arg-type]
    assert [(e["event"], e["enabled"], e["disabled"]) for e in logs] == [("webhook.sources", enabled, disabled)]


@pytest.mark.parametrize("given", [{}, {"github_secret": "", "jira_secret": ""}])
def test_without_either_secret_the_gateway_refuses_to_build_naming_both_settings(
    queues: dict[Topic, WorkQueue], given: dict[str, str]
) -> None:
    with pytest.raises(ValueError) as refused:
        build_app(WebhookSettings(**given), queues)  # type: ignore[arg-type]
    assert str(refused.value) == (
        "no webhook secret: set GORESOLVE_WEBHOOKS_GITHUB_SECRET or GORESOLVE_WEBHOOKS_JIRA_SECRET (or both)"
    )


async def test_serve_webhooks_with_the_jira_secret_file_only_over_http_and_redis(tmp_path: Path) -> None:
    """The process as the chart starts it for a Jira-only install: the secret from GORESOLVE_SECRETS_DIR,
    the queue on a real Redis."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "GORESOLVE_WEBHOOKS_JIRA_SECRET").write_text(s.JIRA_SECRET.get_secret_value() + "\n")
    with redis_server(tmp_path / "redis") as url:
        env = s.gateway_env(
            tmp_path,
            GORESOLVE_SECRETS_DIR=str(secrets),
            GORESOLVE_QUEUE_BACKEND="redis",
            GORESOLVE_QUEUE_REDIS_URL=url,
        )
        with s.serving_gateway(tmp_path, env) as base:
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                raw = json.dumps(s.push()).encode()
                push = {"X-GitHub-Event": "push", "X-GitHub-Delivery": str(uuid.uuid4())}
                push["X-Hub-Signature-256"] = signature(s.SECRET, raw)
                refused = await client.post("/webhooks/github", content=raw, headers=push)
                assert (refused.status_code, refused.json()) == (403, GITHUB_REFUSED)
                raw = s.dumps(s.jira())
                queued = await client.post("/webhooks/jira", content=raw, headers=s.jira_headers(raw))
                assert (queued.status_code, queued.json()["status"]) == (202, "queued")
                metrics = (await client.get("/metrics")).text
            assert 'goresolve_webhooks_rejected_total{reason="not-configured",source="github"} 1.0' in metrics
            assert 'goresolve_webhooks_accepted_total{kind="jira_issue",source="jira"} 1.0' in metrics
        queues = {t: RedisQueue(url, t) for t in ("code-index", "tickets")}
        try:
            assert (await queues["code-index"].depth(), await queues["tickets"].depth()) == (0, 1)
        finally:
            for queue in queues.values():
                await queue.aclose()
    log = tmp_path / "gateway.log"
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    [started] = [line for line in lines if line["event"] == "webhook.sources"]
    assert (started["enabled"], started["disabled"]) == (["jira"], ["github"])
    assert s.JIRA_SECRET.get_secret_value() not in log.read_text()
