"""The webhook gateway: verify first, answer fast, enqueue durably, dedupe by delivery id."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
import structlog

from servers.webhooks.app import build_app
from tests.webhooks import support as s
from tests.webhooks.conftest import settings
from tests.workqueue.support import free_port
from workqueue import Event, Topic, WorkQueue
from workqueue.redis import RedisQueue
from workqueue.sqlite import SQLiteQueue

GUID = "72d3162e-cc78-11e3-81ab-4c9367dc0958"  # the shape of GitHub's X-GitHub-Delivery


async def _drain(queue: WorkQueue) -> list[Event]:
    seen: list[Event] = []

    async def handler(event: Event) -> None:
        seen.append(event)

    await queue.consume(handler, burst=True)
    return seen


async def _post(client: httpx.AsyncClient, kind: str, body: object, delivery: str | None = None) -> httpx.Response:
    raw = s.dumps(body)
    return await client.post("/webhooks/github", content=raw, headers=s.github_headers(kind, raw, delivery))


async def test_a_push_to_the_default_branch_is_queued_with_its_trace_id(
    client: httpx.AsyncClient, queues: dict[Topic, WorkQueue]
) -> None:
    answer = await _post(client, "push", s.push(after="c" * 40), delivery=GUID)
    assert answer.status_code == 202
    body = answer.json()
    assert body["status"] == "queued" and body["id"] == f"github:4242:{GUID}"
    (event,) = await _drain(queues["code-index"])
    assert event.trace_id == body["trace_id"] and len(event.trace_id) == 32
    assert (event.repo, event.data.kind) == ("acme/svc", "push")
    assert event.data.model_dump() == {
        "kind": "push",
        "ref": "refs/heads/main",
        "before": "a" * 40,
        "after": "c" * 40,
        "forced": False,
        "commits": 1,
        "truncated": False,
        "clone_url": "https://github.example/acme/svc.git",
    }


async def test_a_replayed_delivery_is_acknowledged_and_not_enqueued_again(
    client: httpx.AsyncClient, queues: dict[Topic, WorkQueue]
) -> None:
    first = await _post(client, "push", s.push(), delivery=GUID)
    again = await _post(client, "push", s.push(), delivery=GUID)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json() == {"status": "duplicate", "id": f"github:4242:{GUID}"}
    assert await queues["code-index"].depth() == 1
    metrics = (await client.get("/metrics")).text
    assert 'goresolve_webhooks_duplicates_total{source="github"} 1.0' in metrics
    assert 'goresolve_queue_depth{queue="code-index"} 1.0' in metrics


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Hub-Signature-256": "sha256=" + "0" * 64},
        {"X-Hub-Signature-256": ""},
        {"X-Hub-Signature-256": "sha1=abc"},
        {"X-Hub-Signature-256": "sha256=not-hex"},
    ],
)
async def test_a_bad_or_missing_signature_is_401_and_nothing_is_enqueued(
    client: httpx.AsyncClient, queues: dict[Topic, WorkQueue], headers: dict[str, str]
) -> None:
    raw = s.dumps(s.push())
    sent = {**s.github_headers("push", raw), **headers}
    answer = await client.post("/webhooks/github", content=raw, headers=sent)
    assert answer.status_code == 401
    assert answer.json() == {"error": "missing or bad X-Hub-Signature-256"}
    assert await queues["code-index"].depth() == 0
    wrong_key = s.github_headers("push", raw, secret=s.JIRA_SECRET)
    assert (await client.post("/webhooks/github", content=raw, headers=wrong_key)).status_code == 401
    body_changed = await client.post("/webhooks/github", content=raw + b" ", headers=s.github_headers("push", raw))
    assert body_changed.status_code == 401
    assert (
        'goresolve_webhooks_rejected_total{reason="signature",source="github"}' in (await client.get("/metrics")).text
    )


async def test_malformed_json_and_missing_fields_are_400(client: httpx.AsyncClient) -> None:
    for raw in (b"{not json", b"[1, 2]", b"\xff\xfe"):
        answer = await client.post("/webhooks/github", content=raw, headers=s.github_headers("push", raw))
        assert answer.status_code == 400, raw
    body = s.push()
    del body["after"]
    answer = await _post(client, "push", body)
    assert answer.status_code == 400
    assert answer.json() == {"error": "payload field after: Field required"}
    raw = s.dumps(s.push())
    no_delivery = {k: v for k, v in s.github_headers("push", raw).items() if k != "X-GitHub-Delivery"}
    assert (await client.post("/webhooks/github", content=raw, headers=no_delivery)).status_code == 400


async def test_a_body_above_the_limit_is_413_declared_or_streamed(client: httpx.AsyncClient) -> None:
    raw = b'{"pad": "' + b"x" * 70_000 + b'"}'
    answer = await client.post("/webhooks/github", content=raw, headers=s.github_headers("push", raw))
    assert answer.status_code == 413

    async def chunks() -> object:
        for _ in range(20):
            yield b"x" * 4096

    streamed = await client.post("/webhooks/github", content=chunks(), headers=s.github_headers("push", b""))  # type: ignore[arg-type]
    assert streamed.status_code == 413


async def test_503_with_retry_after_when_the_queue_cannot_take_the_event() -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    queues: dict[Topic, WorkQueue] = {t: RedisQueue(dead, t) for t in ("code-index", "tickets")}
    app = build_app(settings(), queues)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
        answer = await _post(client, "push", s.push())
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "30"
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["error"].startswith("queue code-index unreachable: ")
        assert (await client.get("/healthz")).status_code == 200


async def test_tickets_go_to_the_tickets_queue(client: httpx.AsyncClient, queues: dict[Topic, WorkQueue]) -> None:
    for action in ("opened", "labeled", "reopened"):
        assert (await _post(client, "issues", s.issue(action))).status_code == 202
    assert (await _post(client, "issue_comment", s.comment("/goresolve retry please"))).status_code == 202
    raw = s.dumps(s.jira())
    answer = await client.post("/webhooks/jira", content=raw, headers=s.jira_headers(raw))
    assert answer.status_code == 202 and answer.json()["status"] == "queued"
    events = await _drain(queues["tickets"])
    kinds = [(e.source, e.data.kind, getattr(e.data, "action", None)) for e in events]
    assert kinds == [
        ("github", "issue", "opened"),
        ("github", "issue", "labeled"),
        ("github", "issue", "reopened"),
        ("github", "comment", None),
        ("jira", "jira_issue", "created"),
    ]
    assert events[3].data.model_dump()["command"] == "/goresolve retry"
    assert events[4].data.model_dump()["url"] == "https://acme.atlassian.net/browse/SVC-12"
    assert await queues["code-index"].depth() == 0


async def test_everything_else_is_202_ignored_and_counted(
    client: httpx.AsyncClient, queues: dict[Topic, WorkQueue]
) -> None:
    cases = [
        ("star", s.example_star(), "event:star"),
        ("push", s.push(ref="refs/heads/feature/x"), "push:branch"),
        ("push", s.push(ref="refs/tags/v1.0.0"), "push:branch"),
        ("push", s.push(after="0" * 40, deleted=True), "push:deleted"),
        ("issue_comment", s.comment("looks good to me"), "issue_comment:no-command"),
    ]
    for kind, body, reason in cases:
        answer = await _post(client, kind, body)
        assert (answer.status_code, answer.json()) == (202, {"status": "ignored", "reason": reason}), kind
    ping = await _post(client, "ping", s.example_ping())
    assert (ping.status_code, ping.json()) == (200, {"status": "pong"})
    assert (await _post(client, "push", s.push(ref="refs/heads/release"))).json()["status"] == "queued"
    raw = s.dumps(s.jira("jira:issue_deleted"))
    assert (await client.post("/webhooks/jira", content=raw, headers=s.jira_headers(raw))).json()["status"] == "ignored"
    metrics = (await client.get("/metrics")).text
    assert 'goresolve_webhooks_ignored_total{reason="push:branch",source="github"} 2.0' in metrics
    assert await queues["tickets"].depth() == 0 and await queues["code-index"].depth() == 1


async def test_a_capped_push_is_marked_truncated_so_changes_come_from_git(
    client: httpx.AsyncClient, queues: dict[Topic, WorkQueue]
) -> None:
    app = build_app(settings(), queues)  # the default size limit (GitHub's 25 MB)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as big:
        assert (await _post(big, "push", s.push(commits=2048, forced=True))).status_code == 202
    (event,) = await _drain(queues["code-index"])
    assert event.data.model_dump()["truncated"] is True and event.data.model_dump()["forced"] is True


async def test_jira_signature_is_checked(queues: dict[Topic, WorkQueue]) -> None:
    app = build_app(settings(), queues)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
        raw = s.dumps(s.jira())
        bad = {**s.jira_headers(raw), "X-Hub-Signature": "sha256=" + "1" * 64}
        assert (await client.post("/webhooks/jira", content=raw, headers=bad)).status_code == 401
    assert await queues["tickets"].depth() == 0


async def test_refusals_are_logged_with_source_and_delivery_id_but_no_secret_or_body(client: httpx.AsyncClient) -> None:
    raw = s.dumps(s.push())
    delivery = str(uuid.uuid4())
    forged = {**s.github_headers("push", raw, delivery), "X-Hub-Signature-256": "sha256=" + "ab" * 32}
    with structlog.testing.capture_logs() as logs:
        assert (await client.post("/webhooks/github", content=raw, headers=forged)).status_code == 401
        for body, status in ((b"{not json", 400), (b"x" * 70_000, 413)):
            answer = await client.post("/webhooks/github", content=body, headers=s.github_headers("push", body))
            assert answer.status_code == status
    assert [(e["event"], e["log_level"], e["status"], e["reason"], e["source"]) for e in logs] == [
        ("webhook.rejected", "warning", 401, "signature", "github"),
        ("webhook.rejected", "info", 400, "malformed", "github"),
        ("webhook.rejected", "info", 413, "too-large", "github"),
    ]
    assert logs[0]["delivery"] == delivery
    assert "ab" * 32 not in repr(logs) and "not json" not in repr(logs)


@pytest.mark.parametrize(
    ("header", "value", "message"),
    [
        ("X-GitHub-Delivery", "a:b:c", "X-GitHub-Delivery must be a GUID"),
        ("X-GitHub-Delivery", GUID + ":1", "X-GitHub-Delivery must be a GUID"),
        ("X-GitHub-Hook-ID", "1:2", "X-GitHub-Hook-ID must be an integer"),
        ("X-GitHub-Hook-ID", "9" * 101, "X-GitHub-Hook-ID must be an integer"),
        ("X-GitHub-Event", "", "X-GitHub-Event and X-GitHub-Delivery are required"),
    ],
)
async def test_delivery_headers_of_the_wrong_shape_are_400_naming_the_header(
    client: httpx.AsyncClient, queues: dict[Topic, WorkQueue], header: str, value: str, message: str
) -> None:
    raw = s.dumps(s.push())
    headers = {**s.github_headers("push", raw), header: value}
    answer = await client.post("/webhooks/github", content=raw, headers=headers)
    assert (answer.status_code, answer.json()) == (400, {"error": message})
    assert await queues["code-index"].depth() == 0


async def test_a_form_encoded_delivery_is_told_to_use_json(client: httpx.AsyncClient) -> None:
    raw = b"payload=%7B%7D"
    headers = {**s.github_headers("push", raw), "Content-Type": "application/x-www-form-urlencoded"}
    answer = await client.post("/webhooks/github", content=raw, headers=headers)
    assert answer.status_code == 400
    assert answer.json() == {"error": "body is not JSON; set the webhook's content type to application/json"}


async def test_a_deeply_nested_signed_body_is_400_not_a_crash(client: httpx.AsyncClient) -> None:
    raw = b"[" * 30_000 + b"]" * 30_000
    with structlog.testing.capture_logs() as logs:
        answer = await client.post("/webhooks/github", content=raw, headers=s.github_headers("push", raw))
    assert (answer.status_code, answer.json()) == (400, {"error": "body is nested too deeply"})
    assert [e["event"] for e in logs] == ["webhook.rejected"]


async def test_unknown_paths_and_methods_are_json_errors(client: httpx.AsyncClient) -> None:
    missing = await client.get("/nope")
    assert (missing.status_code, missing.json()) == (404, {"error": "Not Found"})
    wrong = await client.get("/webhooks/github")
    assert (wrong.status_code, wrong.json()) == (405, {"error": "Method Not Allowed"})
    assert wrong.headers["Allow"] == "POST"


@pytest.mark.parametrize("full_name", ["../escaped", "acme/..", "acme/.", "acme/svc/x", "-acme/svc", "acme/s vc"])
async def test_a_push_whose_repository_is_not_a_github_owner_name_is_400_and_not_queued(
    client: httpx.AsyncClient, queues: dict[Topic, WorkQueue], full_name: str
) -> None:
    body = s.push()
    body["repository"] = {**body["repository"], "full_name": full_name, "clone_url": "/srv/private/repo"}
    raw = s.dumps(body)
    answer = await client.post("/webhooks/github", content=raw, headers=s.github_headers("push", raw))
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "payload field repository.full_name: not a GitHub owner/name (letters, digits, '-', '_', '.'; "
        "no '.' or '..' part)"
    }
    assert await queues["code-index"].depth() == 0


async def test_a_signed_body_replayed_under_another_delivery_id_or_hook_id_is_a_duplicate(
    client: httpx.AsyncClient, queues: dict[Topic, WorkQueue]
) -> None:
    raw = s.dumps(s.issue())
    first = await client.post("/webhooks/github", content=raw, headers=s.github_headers("issues", raw, GUID))
    assert first.status_code == 202 and first.json()["status"] == "queued"
    for delivery, hook in ((GUID.upper(), "4242"), (str(uuid.uuid4()), "4242"), (str(uuid.uuid4()), "7")):
        headers = {**s.github_headers("issues", raw, delivery), "X-GitHub-Hook-ID": hook}
        again = await client.post("/webhooks/github", content=raw, headers=headers)
        assert (again.status_code, again.json()["status"]) == (202, "duplicate"), (delivery, hook)
    other = s.dumps(s.issue(number=8))  # another delivery: another body
    assert (await client.post("/webhooks/github", content=other, headers=s.github_headers("issues", other))).json()[
        "status"
    ] == "queued"
    (event, _) = await _drain(queues["tickets"])
    assert event.id == f"github:4242:{GUID}" and event.delivery == GUID
    raw = s.dumps(s.jira())
    assert (await client.post("/webhooks/jira", content=raw, headers=s.jira_headers(raw))).json()["status"] == "queued"
    replay = await client.post("/webhooks/jira", content=raw, headers=s.jira_headers(raw))
    assert replay.json()["status"] == "duplicate"


async def test_only_a_command_from_someone_with_write_access_on_an_open_issue_is_queued(
    client: httpx.AsyncClient, queues: dict[Topic, WorkQueue]
) -> None:
    """Before, any GitHub user's `/goresolve retry` restarted the ticket's run (a paid run per comment), a
    command on a pull request became a ticket, and a label on a closed issue started a run."""

    def comment(text: str = "/goresolve retry", role: str = "COLLABORATOR", **issue: object) -> dict[str, object]:
        body = s.comment(text)
        body["comment"]["author_association"] = role  # type: ignore[index]
        body["issue"].update(issue)  # type: ignore[attr-defined]
        return body

    closed = s.issue("labeled")
    closed["issue"]["state"] = "closed"
    cases = [
        (comment(role="NONE"), "issue_comment:not-allowed"),
        (comment(role="CONTRIBUTOR"), "issue_comment:not-allowed"),
        (comment(role="FIRST_TIMER"), "issue_comment:not-allowed"),
        (
            comment(pull_request={"url": "https://github.example/api/repos/acme/svc/pulls/7"}),
            "issue_comment:pull-request",
        ),
        (comment(state="closed"), "issue_comment:closed"),
        (comment("/goresolve retrying"), "issue_comment:no-command"),
    ]
    for body, reason in cases:
        answer = await _post(client, "issue_comment", body)
        assert (answer.status_code, answer.json()) == (202, {"status": "ignored", "reason": reason}), reason
    answer = await _post(client, "issues", closed)
    assert answer.json() == {"status": "ignored", "reason": "issues:closed"}
    assert await queues["tickets"].depth() == 0
    for role in ("OWNER", "MEMBER", "COLLABORATOR"):
        assert (await _post(client, "issue_comment", comment("/goresolve retry\nflaky CI", role))).status_code == 202
    events = await _drain(queues["tickets"])
    assert [e.data.model_dump()["command"] for e in events] == ["/goresolve retry"] * 3


async def test_an_issue_number_must_be_a_json_integer_in_range(client: httpx.AsyncClient) -> None:
    for number in (True, "7", 7.0, 2**31, 2**70):
        body = s.issue()
        body["issue"]["number"] = number
        answer = await _post(client, "issues", body)
        assert answer.status_code == 400 and "issue.number" in answer.json()["error"], number


async def test_an_unsigned_event_name_never_becomes_a_metric_label(client: httpx.AsyncClient) -> None:
    """The X-GitHub-Event header is not signed: a captured delivery replayed with 300 made-up names made
    300 series of the ignored counter."""
    for n in range(5):
        answer = await _post(client, f"evt-{n}-zzz", {"zen": "x"})
        assert answer.json() == {"status": "ignored", "reason": "event:other"}
    metrics = (await client.get("/metrics")).text
    assert 'reason="event:other",source="github"} 5.0' in metrics and "evt-" not in metrics


async def test_a_url_with_a_trailing_slash_is_a_json_404_not_a_redirect(client: httpx.AsyncClient) -> None:
    """A 307 counts as delivered for GitHub and `webhooks redeliver`: a hook set up with the slash lost its events."""
    raw = s.dumps(s.push())
    answer = await client.post("/webhooks/github/", content=raw, headers=s.github_headers("push", raw))
    assert answer.status_code == 404 and "location" not in answer.headers
    assert answer.json()["error"]


async def test_a_done_jira_issue_and_a_key_of_another_project_start_nothing(
    client: httpx.AsyncClient, queues: dict[Topic, WorkQueue]
) -> None:
    done = s.jira("jira:issue_updated")
    done["issue"]["fields"]["status"] = {"name": "Done", "statusCategory": {"key": "done", "name": "Done"}}
    raw = s.dumps(done)
    answer = await client.post("/webhooks/jira", content=raw, headers=s.jira_headers(raw))
    assert answer.json() == {"status": "ignored", "reason": "jira:done"}
    other = s.jira(key="OTHER-1")  # fields.project.key is SVC
    raw = s.dumps(other)
    answer = await client.post("/webhooks/jira", content=raw, headers=s.jira_headers(raw))
    assert answer.status_code == 400 and "project" in answer.json()["error"]
    going = s.jira("jira:issue_updated")
    going["issue"]["fields"]["status"] = {"name": "In Progress", "statusCategory": {"key": "indeterminate"}}
    raw = s.dumps(going)
    assert (await client.post("/webhooks/jira", content=raw, headers=s.jira_headers(raw))).status_code == 202
    assert [e.data.model_dump()["key"] for e in await _drain(queues["tickets"])] == ["SVC-12"]


@pytest.mark.parametrize("where", ["javascript:alert(1)", "//acme.atlassian.net/rest/api/3/issue/1", "file:///etc/x"])
async def test_a_jira_issue_whose_self_is_not_a_web_address_is_refused(
    client: httpx.AsyncClient, queues: dict[Topic, WorkQueue], where: str
) -> None:
    body = s.jira()
    body["issue"]["self"] = where
    raw = s.dumps(body)
    answer = await client.post("/webhooks/jira", content=raw, headers=s.jira_headers(raw))
    assert (answer.status_code, answer.json()) == (400, {"error": "payload field issue.self: not an http(s) URL"})
    assert await queues["tickets"].depth() == 0


async def test_metrics_answer_even_when_one_queue_fails_in_an_unforeseen_way(tmp_path: Path) -> None:
    class Broken(SQLiteQueue):
        async def dead_count(self) -> int:
            raise RuntimeError("a letter this version cannot read")

    queues: dict[Topic, WorkQueue] = {
        "code-index": SQLiteQueue(tmp_path / "q", "code-index"),
        "tickets": Broken(tmp_path / "q", "tickets"),
    }
    app = build_app(settings(), queues)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
        with structlog.testing.capture_logs() as logs:
            answer = await client.get("/metrics")
    assert answer.status_code == 200
    assert 'goresolve_queue_dead_letters{queue="code-index"} 0.0' in answer.text
    assert 'goresolve_queue_dead_letters{queue="tickets"} NaN' in answer.text
    assert [(e["event"], e["queue"]) for e in logs] == [("webhook.metrics_failed", "tickets")]
    for queue in queues.values():
        await queue.aclose()
