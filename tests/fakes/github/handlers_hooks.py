"""The GitHub fake's webhook deliveries: list a hook's deliveries, redeliver one (see handlers.py).

    GET  /repos/{owner}/{repo}/hooks/{hook_id}/deliveries                          repos/list-webhook-deliveries
    POST /repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}/attempts   repos/redeliver-webhook-delivery

Tests set a hook up with `add_hook(fake, "acme/svc", url, secret)` and make GitHub deliver with
`deliver(fake, "acme/svc", hook_id, "push", payload)`: the fake POSTs the signed payload to the hook's
URL, as GitHub does, and records the attempt (status code, GUID, time). A redelivery re-sends the
stored payload with the same GUID, in the background (the API answers 202 first, as GitHub does).
Responses follow the published description: newest first, `status=success|failure` by the 200-399 /
400-599 split of `status_code`, at most `per_page` (30 by default, 100 at most). The fake's handler
signature has no response headers, so there is no `Link` header: one page holds everything.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import uuid
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from .contract import contract
from .handlers import _err, op
from .spec import OPERATIONS, cache_dir

if TYPE_CHECKING:
    from tests.fakes.github_fake import FakeGitHub, Repo

HOOK_OPERATIONS = {
    "repos/list-webhook-deliveries": ("get", "/repos/{owner}/{repo}/hooks/{hook_id}/deliveries"),
    "repos/redeliver-webhook-delivery": (
        "post",
        "/repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}/attempts",
    ),
}
OPERATIONS.update(HOOK_OPERATIONS)


def _drop_stale_reduction() -> None:
    # The reduced description is rebuilt from OPERATIONS when missing; one made before these
    # operations were registered lacks their paths, so it is dropped here, before first use.
    reduced = cache_dir() / "reduced.json"
    if reduced.exists():
        paths = json.loads(reduced.read_text(encoding="utf-8")).get("paths", {})
        if any(template not in paths for _, template in HOOK_OPERATIONS.values()):
            reduced.unlink()


_drop_stale_reduction()


@dataclass
class Hook:
    url: str
    secret: str
    deliveries: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    payloads: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # guid -> (event, body)


_HOOKS: weakref.WeakKeyDictionary[FakeGitHub, dict[tuple[str, int], Hook]] = weakref.WeakKeyDictionary()


def add_hook(fake: FakeGitHub, full_name: str, url: str, secret: str) -> int:
    """Register a repository webhook that POSTs to `url`; returns its id."""
    hook_id = fake.next_id()
    _HOOKS.setdefault(fake, {})[(full_name, hook_id)] = Hook(url, secret)
    return hook_id


def _send(fake: FakeGitHub, full_name: str, hook_id: int, guid: str, redelivery: bool) -> dict[str, Any]:
    hook = _HOOKS[fake][(full_name, hook_id)]
    event, body = hook.payloads[guid]
    signature = "sha256=" + hmac.new(hook.secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "User-Agent": "GitHub-Hookshot/fake",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": guid,
        "X-GitHub-Hook-ID": str(hook_id),
        "X-Hub-Signature-256": signature,
        "Content-Type": "application/json",
    }
    began = datetime.now(UTC)
    try:
        answer = httpx.post(hook.url, content=body, headers=headers, timeout=10)
        status_code, status = (
            answer.status_code,
            "OK" if answer.is_success else f"Invalid HTTP Response: {answer.status_code}",
        )
    except httpx.HTTPError:
        status_code, status = 0, "failed to connect to host"
    payload = json.loads(body)
    delivery = {
        "id": fake.next_id(),
        "guid": guid,
        "delivered_at": began.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "redelivery": redelivery,
        "duration": (datetime.now(UTC) - began).total_seconds(),
        "status": status,
        "status_code": status_code,
        "event": event,
        "action": payload.get("action") if isinstance(payload, dict) else None,
        "installation_id": None,
        "repository_id": 1,
    }
    with fake.lock:
        hook.deliveries.append(delivery)
    return delivery


def deliver(fake: FakeGitHub, full_name: str, hook_id: int, event: str, payload: Any) -> dict[str, Any]:
    """GitHub delivers `payload` as `event` (a new GUID) to the hook; returns the recorded attempt."""
    guid = str(uuid.uuid4())
    _HOOKS[fake][(full_name, hook_id)].payloads[guid] = (event, json.dumps(payload).encode())
    return _send(fake, full_name, hook_id, guid, redelivery=False)


def deliveries(fake: FakeGitHub, full_name: str, hook_id: int) -> list[dict[str, Any]]:
    return list(_HOOKS[fake][(full_name, hook_id)].deliveries)


def _hook(fake: FakeGitHub, repo: Repo, params: dict[str, str]) -> tuple[int, Hook]:
    hook_id = int(params["hook_id"]) if params["hook_id"].isdigit() else -1
    hook = _HOOKS.get(fake, {}).get((repo.full_name, hook_id))
    if hook is None:
        raise _err(404, "Not Found")
    return hook_id, hook


@op("repos/list-webhook-deliveries")
def list_deliveries(fake, repo, params, query, body):  # type: ignore[no-untyped-def]
    _, hook = _hook(fake, repo, params)
    per_page = min(int(query.get("per_page", "30")), 100)
    wanted = query.get("status")
    found = [
        d
        for d in reversed(hook.deliveries)
        if wanted is None or (wanted == "success") == (200 <= d["status_code"] < 400)
    ]
    return 200, [contract().shape("hook-delivery-item", dict(d)) for d in found[:per_page]]


@op("repos/redeliver-webhook-delivery")
def redeliver(fake, repo, params, query, body):  # type: ignore[no-untyped-def]
    hook_id, hook = _hook(fake, repo, params)
    found = next((d for d in hook.deliveries if str(d["id"]) == params["delivery_id"]), None)
    if found is None:
        raise _err(404, "Not Found")
    threading.Thread(target=_send, args=(fake, repo.full_name, hook_id, found["guid"], True), daemon=True).start()
    return 202, {}
