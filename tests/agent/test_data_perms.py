"""What goresolve writes in its data directory is the user's alone: the directories it makes are 0700, the files
its run store, ledger and span writer make are 0600 (ticket text, code excerpts and hand-offs are in them).
A directory that already exists keeps its mode: it may be one the user made, and shares, on purpose."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.exits import RunResult
from agent.ledger import Ledger
from agent.runstore import save_run


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The usual 022: without our modes, everything would be 0644 in 0755 directories."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_run_record_and_the_directories_made_for_it_are_private(tmp_path: Path) -> None:
    data = tmp_path / "data"  # a data directory that does not exist yet: the first run makes it
    run_dir = data / "agent" / "runs" / "r1"
    result = RunResult("r1", "t" * 32, "CALC-1", "calc", "escalated", "stuck", "stuck", handoff="# hand-off")
    ledger = Ledger(data / "agent" / "ledger.sqlite")
    save_run(run_dir, result, [{"kind": "assistant", "content": "a ticket's text"}], [{"name": "agent.run"}], ledger)
    ledger.close()
    assert {p.relative_to(tmp_path).as_posix(): oct(mode(p)) for p in (data, *data.rglob("*")) if p.is_dir()} == {
        "data": "0o700",
        "data/agent": "0o700",
        "data/agent/runs": "0o700",
        "data/agent/runs/r1": "0o700",
    }
    files = {p.name: oct(mode(p)) for p in data.rglob("*") if p.is_file()}
    assert files.keys() >= {"run.json", "transcript.jsonl", "spans.jsonl", "handoff.md", "ledger.sqlite"}
    assert set(files.values()) == {"0o600"}, files


def test_the_ledger_and_its_wal_files_are_private(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "state" / "ledger.sqlite")
    ledger.record_call("r1", "gpt-4o-mini", "small", (1, 1, 0), 0.1)  # the WAL and its index exist while open
    made = sorted(p.name for p in (tmp_path / "state").iterdir())
    assert made == ["ledger.sqlite", "ledger.sqlite-shm", "ledger.sqlite-wal"]
    assert {mode(tmp_path / "state" / name) for name in made} == {0o600}
    assert mode(tmp_path / "state") == 0o700
    ledger.close()


def test_a_directory_the_user_made_keeps_its_mode(tmp_path: Path) -> None:
    team_dir = tmp_path / "team_dir"
    team_dir.mkdir(mode=0o750)
    save_run(team_dir / "r1", RunResult("r1", "", "CALC-1", "calc", "error", "error", "x"), [], [], None)
    assert (mode(team_dir), mode(team_dir / "r1"), mode(team_dir / "r1" / "run.json")) == (0o750, 0o700, 0o600)
