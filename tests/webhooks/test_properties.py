"""Random bodies and headers: the gateway never answers 5xx to bad input and never enqueues unsigned input."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from servers.webhooks.app import build_app
from servers.webhooks.verify import signature
from tests.webhooks import support as s
from tests.webhooks.conftest import settings as gateway_settings
from workqueue import DeadLetter, Event, Handler


class RecordingQueue:
    """A WorkQueue that keeps what it is given (the property is about the gateway, not the queue)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.events: list[Event] = []

    async def enqueue(self, event: Event, *, digest: str | None = None) -> bool:
        if any(e.id == event.id for e in self.events):
            return False
        self.events.append(event)
        return True

    async def ping(self) -> None:
        return None

    async def depth(self) -> int:
        return len(self.events)

    async def dead_letters(self) -> list[DeadLetter]:
        return []

    async def dead_count(self) -> int:
        return 0

    async def replay(self, event_id: str) -> None:
        return None

    async def purge(self, event_id: str | None = None) -> int:
        return 0

    async def consume(self, handler: Handler, *, concurrency: int = 4, burst: bool = False) -> None:
        return None

    async def aclose(self) -> None:
        return None


QUEUES = {"code-index": RecordingQueue("code-index"), "tickets": RecordingQueue("tickets")}
CLIENT = TestClient(build_app(gateway_settings(max_body_bytes=16 * 1024), QUEUES))  # type: ignore[arg-type]
VALID = [s.push(), s.issue(), s.comment("/goresolve retry"), s.example_star()]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


def _mutate(body: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    out = dict(body)
    for _ in range(data.draw(st.integers(0, 3))):
        key = data.draw(st.sampled_from([*out.keys(), "after", "ref", "repository", "issue", "action"]))
        out[key] = data.draw(json_values)
    return out


header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_input_is_never_5xx_and_never_enqueued_without_a_valid_signature(data: st.DataObject) -> None:
    choice = data.draw(st.sampled_from(["bytes", "json", "mutated"]))
    if choice == "bytes":
        raw = data.draw(st.binary(max_size=300))
    elif choice == "json":
        raw = json.dumps(data.draw(json_values)).encode()
    else:
        raw = json.dumps(_mutate(data.draw(st.sampled_from(VALID)), data)).encode()
    signed = data.draw(st.sampled_from(["valid", "absent", "random", "other-key"]))
    headers = {
        "X-GitHub-Event": data.draw(st.sampled_from(["push", "issues", "issue_comment", "ping", "star"]) | header_text),
        "X-GitHub-Delivery": data.draw(header_text),
        "X-GitHub-Hook-ID": data.draw(header_text),
    }
    if signed == "valid":
        headers["X-Hub-Signature-256"] = signature(s.SECRET, raw)
    elif signed == "random":
        headers["X-Hub-Signature-256"] = data.draw(header_text)
    elif signed == "other-key":
        headers["X-Hub-Signature-256"] = signature(s.JIRA_SECRET, raw)
    before = sum(len(q.events) for q in QUEUES.values())
    answer = CLIENT.post("/webhooks/github", content=raw, headers=headers)
    after = sum(len(q.events) for q in QUEUES.values())
    assert answer.status_code < 500, answer.text
    if signed != "valid":
        assert answer.status_code == 401
        assert after == before
    if after > before:
        assert answer.status_code == 202 and answer.json()["status"] == "queued"
