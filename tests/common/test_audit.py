"""The audit log's hash chain detects edits, deletions and reordering, and survives restarts."""

from __future__ import annotations

import json
from pathlib import Path

from servers.common.audit import AuditLog, verify_chain


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
