"""Every string jira-read returns is cleaned of credentials, not only the text fields; and the conversion of one
ticket runs off the event loop, so a ticket slow to convert does not hold up another caller's call."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import anyio
import pytest

from servers.common.policy import Policies
from servers.common.untrusted import UntrustedText
from servers.jira_read import server as server_module
from servers.jira_read.local import LocalJiraBackend
from servers.jira_read.server import build_server
from servers.jira_read.settings import JiraReadSettings
from tests.support import call

GHP = "ghp_" + "a1B2c3D4e5F6g7H8i9J0" + "k1L2m3N4o5P6Q7r8"
AKIA = "AKIA" + "ABCDEFGHIJKLMNOP"


def _ticket(key: str, summary: str, *, people: str = "Dana Ops", label: str = "backend") -> dict[str, Any]:
    return {
        "key": key,
        "fields": {
            "summary": summary,
            "issuetype": {"name": "Bug"},
            "status": {"name": "Open"},
            "priority": {"name": "High"},
            "labels": [label, "auth"],
            "components": [{"name": label}],
            "assignee": {"displayName": people},
            "reporter": {"displayName": people},
            "created": "2026-01-10T09:00:00.000+0000",
            "updated": "2026-01-10T09:00:00.000+0000",
            "description": "text",
            "issuelinks": [
                {
                    "type": {"name": "Blocks", "inward": "is blocked by", "outward": f"blocks {label}"},
                    "outwardIssue": {"key": "SVC-1", "fields": {"summary": "other", "status": {"name": label}}},
                }
            ],
            "comment": {
                "comments": [
                    {"id": "1", "author": {"displayName": AKIA}, "created": "2026-01-10", "body": "on it"},
                ]
            },
        },
    }


@pytest.fixture
def tickets(tmp_path: Path) -> Path:
    folder = tmp_path / "tickets"
    folder.mkdir()
    for data in (
        _ticket("SVC-1", "plain"),
        _ticket("SVC-901", "hostile", people=GHP, label=GHP),
        _ticket("SVC-902", "slow to convert"),
    ):
        (folder / f"{data['key']}.json").write_text(json.dumps(data), encoding="utf-8")
    return folder


def _server(tmp_path: Path, policies: Policies, tickets: Path) -> Any:
    settings = JiraReadSettings(state_dir=tmp_path / "state", stdio_identity="local-dev")
    return build_server(settings, policies, LocalJiraBackend(tickets))


async def test_no_field_of_an_issue_or_its_comments_carries_a_credential(
    tmp_path: Path, policies: Policies, tickets: Path
) -> None:
    server = _server(tmp_path, policies, tickets)
    issue = (await call(server, "get_issue", {"key": "SVC-901"})).structured_content
    comments = (await call(server, "get_comments", {"key": "SVC-901"})).structured_content
    everything = json.dumps([issue, comments])
    assert GHP not in everything and AKIA not in everything
    assert issue["labels"] == ["[credential removed: github_token]", "auth"]
    assert issue["components"] == ["[credential removed: github_token]"]
    assert issue["assignee"] == issue["reporter"] == "[credential removed: github_token]"
    assert issue["links"][0]["type"] == "blocks [credential removed: github_token]"
    assert issue["links"][0]["status"] == "[credential removed: github_token]"
    assert comments["comments"][0]["author"] == "[credential removed: aws_access_key]"


async def test_ordinary_fields_come_back_as_written(tmp_path: Path, policies: Policies, tickets: Path) -> None:
    issue = (await call(_server(tmp_path, policies, tickets), "get_issue", {"key": "SVC-1"})).structured_content
    assert (issue["labels"], issue["components"], issue["assignee"], issue["priority"]) == (
        ["backend", "auth"],
        ["backend"],
        "Dana Ops",
        "High",
    )
    assert issue["links"][0]["type"] == "blocks backend" and issue["created"] == "2026-01-10T09:00:00.000+0000"


async def test_a_ticket_slow_to_convert_does_not_hold_up_another_call(
    tmp_path: Path, policies: Policies, tickets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The slow conversion waits for the other call to finish: on the event loop, it never could."""
    other_done = threading.Event()
    waited: list[bool] = []
    convert = server_module.untrusted

    def slow(raw: Any, limit: int) -> UntrustedText:
        if raw == "slow to convert":
            waited.append(other_done.wait(timeout=10))
        return convert(raw, limit)

    monkeypatch.setattr(server_module, "untrusted", slow)
    server = _server(tmp_path, policies, tickets)
    results: dict[str, Any] = {}

    async def fetch(key: str) -> None:
        results[key] = await call(server, "get_issue", {"key": key})
        if key == "SVC-1":
            other_done.set()

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(fetch, "SVC-902")
            await anyio.sleep(0.05)
            tg.start_soon(fetch, "SVC-1")
    assert waited == [True]
    assert not results["SVC-902"].is_error and not results["SVC-1"].is_error
