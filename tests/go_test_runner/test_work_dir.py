"""One runner per work directory: a restart finds its predecessor's worktrees gone and unregistered,
and a second live runner on the same directory refuses to start instead of deleting the first's."""

from __future__ import annotations

import os
import pathlib
import subprocess

import pytest

from servers.go_test_runner.payload import RunTestsRequest
from servers.go_test_runner.runner import WorkDirInUse

from .conftest import make_runner_for


def _registered(mirror: pathlib.Path) -> list[str]:
    out = subprocess.run(
        ["git", "--git-dir", str(mirror), "worktree", "list", "--porcelain"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    return [line.removeprefix("worktree ") for line in out.splitlines() if line.startswith("worktree ")]


async def test_a_restarted_runner_prunes_the_worktrees_its_predecessor_left(
    repos: dict[str, pathlib.Path], tmp_path: pathlib.Path
) -> None:
    request = RunTestsRequest(repo="pass", ref="main", packages=["./util"])
    first = make_runner_for(repos, tmp_path)
    assert (await first.run_tests(request)).ok
    await first.drain()
    first.close()  # as if the process died: its slots' worktrees stay registered in the mirror
    mirror = tmp_path / "work" / "mirrors" / "pass.git"
    left = sorted(p for p in _registered(mirror) if "worktrees" in p)
    assert len(left) == first.settings.max_concurrency  # the call's slot, and the idle one it warmed
    second = make_runner_for(repos, tmp_path)
    assert not any(pathlib.Path(p).exists() for p in left)  # deleted at start
    result = await second.run_tests(request)
    assert result.ok, result.summary
    await second.drain()
    assert sorted(p for p in _registered(mirror) if "worktrees" in p) == left  # re-made at the slots' paths, once


async def test_a_second_runner_on_a_work_dir_in_use_refuses_to_start(
    repos: dict[str, pathlib.Path], tmp_path: pathlib.Path
) -> None:
    first = make_runner_for(repos, tmp_path)
    with pytest.raises(WorkDirInUse) as refused:
        make_runner_for(repos, tmp_path)
    assert refused.value.message.startswith(f"go-test-runner work_dir {tmp_path / 'work'} is in use by another runner")
    assert f"(pid {os.getpid()})" in refused.value.message
    assert "GORESOLVE_GO_TEST_RUNNER_WORK_DIR" in refused.value.message
    first.close()
    assert make_runner_for(repos, tmp_path) is not None  # free again once the holder is gone


async def test_a_runner_in_another_process_holds_the_work_dir_too(
    repos: dict[str, pathlib.Path], tmp_path: pathlib.Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    code = (
        "import fcntl, sys; f = open(sys.argv[1], 'a+'); fcntl.flock(f, fcntl.LOCK_EX); f.write('4242\\n'); "
        "f.flush(); print('held', flush=True); sys.stdin.read()"
    )
    holder = subprocess.Popen(
        ["python3", "-c", code, str(work / "runner.lock")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(WorkDirInUse, match=r"\(pid 4242\)"):
            make_runner_for(repos, tmp_path)
    finally:
        holder.communicate(timeout=10)
    assert make_runner_for(repos, tmp_path) is not None
