"""The BUILD sandbox of a slot's next run is started while the slot is idle, and handed the command
when the run comes: the run skips the sandbox's start. It is used only for the worktree directory
it binds, never for a replaced one."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from servers.go_test_runner import sandbox as sandbox_module
from servers.go_test_runner.payload import RunTestsRequest
from servers.go_test_runner.runner import Runner
from servers.go_test_runner.sandbox import Sandbox

pytestmark = pytest.mark.slow


def _count_spawns(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    spawned: list[list[str]] = []
    spawn = sandbox_module._spawn  # pyright: ignore[reportPrivateUsage]

    async def counting(argv: list[str], *args: Any, **kw: Any) -> Any:
        spawned.append(argv)
        return await spawn(argv, *args, **kw)

    monkeypatch.setattr(sandbox_module, "_spawn", counting)
    return spawned


async def test_the_next_run_on_a_slot_uses_the_sandbox_started_ahead(
    runner: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert runner.sandbox.strong, runner.sandbox.protections.problems
    spawned = _count_spawns(monkeypatch)
    request = RunTestsRequest.model_validate(
        {"repo": "pass", "ref": "main", "packages": ["./util"], "flags": ["-count=1"]}
    )
    first = await runner.run_tests(request)
    assert first.ok, first.summary
    await runner.drain()  # the slot reset and the idle one warmed: each has its next sandbox started
    ahead = runner.sandbox._ahead  # pyright: ignore[reportPrivateUsage]
    assert len(ahead) == runner.settings.max_concurrency == 2
    started = len(spawned)
    second = await runner.run_tests(request)
    assert second.ok, second.summary
    assert second.report.summary == first.report.summary
    assert len(spawned) == started  # nothing was started for the run itself
    await runner.shutdown()
    assert not ahead
    scratch = runner.settings.resolved_work_dir() / "scratch"
    assert not list(scratch.iterdir())  # every sandbox's own scratch directory is gone


async def test_a_replaced_worktree_directory_is_never_seen_through_a_sandbox_started_ahead(
    runner: Runner, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox: Sandbox = runner.sandbox
    assert sandbox.strong, sandbox.protections.problems
    spawned = _count_spawns(monkeypatch)
    worktree = tmp_path / "wt"
    worktree.mkdir()
    (worktree / "which").write_text("old\n")
    env = {"PATH": "/usr/bin:/bin"}
    await sandbox.start_ahead(sandbox.paths(worktree, "repo", tmp_path / "ahead"), env)
    assert len(spawned) == 1
    worktree.rename(tmp_path / "gone")  # as when a reset fails and the worktree is made afresh
    worktree.mkdir()
    (worktree / "which").write_text("new\n")
    lines: list[str] = []
    paths = sandbox.paths(worktree, "repo", tmp_path / "run")
    outcome = await sandbox.run(["/bin/cat", "which"], paths, env=env, timeout_s=60, on_line=lines.append)
    assert (outcome.exit_code, lines) == (0, ["new"])
    assert len(spawned) == 2  # the run started a sandbox of its own
    await sandbox.settle_all()
    assert not (tmp_path / "ahead").exists()  # the unused one exited and its scratch was removed
