"""servers.common.locks: one process at a time on a directory, the holder named by its pid."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from servers.common.locks import LockHeld, take_lock


def test_a_second_taker_is_refused_with_the_holders_pid_until_the_first_lets_go(tmp_path: Path) -> None:
    path = tmp_path / "made" / "here.lock"
    first = take_lock(path)
    assert path.read_text() == f"{os.getpid()}\n"
    with pytest.raises(LockHeld) as refused:
        take_lock(path)
    assert refused.value.holder == str(os.getpid()) and refused.value.path == path
    assert path.read_text() == f"{os.getpid()}\n"  # the refused taker did not overwrite the stamp
    first.close()
    take_lock(path).close()


def test_a_lock_held_by_another_process_is_refused_and_freed_when_it_dies(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from servers.common.locks import take_lock; "
            "h = take_lock(Path(sys.argv[1])); print('held', flush=True); time.sleep(60)",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LockHeld) as refused:
            take_lock(path)
        assert refused.value.holder == str(holder.pid)
    finally:
        holder.kill()
        holder.wait(timeout=30)
    take_lock(path).close()  # a killed holder leaves no stale lock
