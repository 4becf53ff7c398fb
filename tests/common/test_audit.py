"""The audit log's hash chain detects edits, deletions and reordering, and survives restarts."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from servers.common.app import Platform
from servers.common.audit import AuditLog, verify_chain
from servers.common.policy import Policies
from servers.common.settings import ServerSettings
from servers.common.tools import ToolSpec


def fill(path: Path, n: int) -> None:
    log = AuditLog(path)
    for i in range(n):
        log.append(caller="agent", tool="get_issue", arguments={"key": f"SVC-{i}"}, outcome="ok", trace_id=None)


def test_intact_chain_verifies_and_continues_after_restart(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    fill(path, 3)
    fill(path, 2)  # a new process continues the same chain
    assert verify_chain(path) == (True, None)
    assert len(path.read_text().splitlines()) == 5


def test_edited_line_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    fill(path, 4)
    lines = path.read_text().splitlines()
    entry = json.loads(lines[1])
    entry["outcome"] = "denied"
    lines[1] = json.dumps(entry, sort_keys=True)
    path.write_text("\n".join(lines) + "\n")
    assert verify_chain(path) == (False, 2)


@pytest.mark.parametrize("line", ["[1, 2]", '"a string"', "42", "null", '{"prev": "x"}'])
def test_a_line_that_is_no_entry_breaks_the_chain(tmp_path: Path, line: str) -> None:
    """Before, a JSON array on a line raised TypeError out of verify_chain (`goresolve audit verify`: an
    unexpected error instead of "broken at line N")."""
    path = tmp_path / "audit.jsonl"
    fill(path, 2)
    lines = path.read_text().splitlines()
    lines.insert(1, line)
    path.write_text("\n".join(lines) + "\n")
    assert verify_chain(path) == (False, 2)


def test_removed_line_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    fill(path, 4)
    lines = path.read_text().splitlines()
    del lines[2]
    path.write_text("\n".join(lines) + "\n")
    assert verify_chain(path) == (False, 3)


def test_swapped_lines_are_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    fill(path, 3)
    lines = path.read_text().splitlines()
    lines[0], lines[1] = lines[1], lines[0]
    path.write_text("\n".join(lines) + "\n")
    assert verify_chain(path) == (False, 1)


def test_arguments_are_stored_as_a_digest_only(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    AuditLog(path).append(caller="a", tool="t", arguments={"patch": "secret diff"}, outcome="ok", trace_id="t1")
    assert "secret diff" not in path.read_text()


async def test_a_call_the_client_cancels_is_audited_as_cancelled(tmp_path: Path, policies: Policies) -> None:
    settings = ServerSettings(state_dir=tmp_path)
    platform = Platform.create("audit-test", settings, policies, instructions="test")
    started = anyio.Event()

    @platform.tool(ToolSpec.reader("jira:read", name="slow", description="Takes a minute."))
    async def slow() -> dict[str, Any]:
        started.set()
        await anyio.sleep(60)
        return {}

    async with Client(platform.finish()) as client, anyio.create_task_group() as tg:

        async def call() -> None:
            with anyio.move_on_after(30):
                await client.call_tool("slow", {})

        tg.start_soon(call)
        await started.wait()
        tg.cancel_scope.cancel()
    log = tmp_path / "audit" / "audit-test.jsonl"
    with anyio.fail_after(10):
        while not log.exists() or not log.read_text():
            await anyio.sleep(0.05)
    assert [json.loads(line)["outcome"] for line in log.read_text().splitlines()] == ["cancelled"]


async def test_a_tool_name_the_server_lacks_is_recorded_by_its_digest_only(tmp_path: Path, policies: Policies) -> None:
    """The name is the caller's text: as given, 2 MB made a 2 MB audit line, and a token in it stayed on disk."""
    settings = ServerSettings(state_dir=tmp_path)
    platform = Platform.create("audit-test", settings, policies, instructions="test")

    @platform.tool(ToolSpec.reader("jira:read", name="known", description="Answers."))
    async def known() -> dict[str, Any]:
        return {}

    token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0" + "k1L2m3N4o5P6Q7r8"
    async with Client(platform.finish()) as client:
        await client.call_tool("known", {})
        for name in (f"read_{token}", "x" * 2_000_000):
            result = await client.call_tool(name, {})
            assert result.is_error
    text = (tmp_path / "audit" / "audit-test.jsonl").read_text()
    tools = [json.loads(line)["tool"] for line in text.splitlines()]
    assert tools[0] == "known" and len(tools) == 3
    assert all(t.startswith("<unknown ") and len(t) < 40 for t in tools[1:]) and tools[1] != tools[2]
    assert token not in text and len(text) < 4000


def test_a_new_log_and_the_directories_made_for_it_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask: without our modes the log would be 0644 in 0755 directories
    try:
        fill(tmp_path / "state" / "audit" / "jira-read.jsonl", 1)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "state" / "audit").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "state" / "audit" / "jira-read.jsonl").stat().st_mode) == 0o600
