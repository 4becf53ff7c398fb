"""A run's result comes when its command has exited (the end marker on both pipes), not when the
sandbox's own processes have: the next run on the same scratch directory waits for those first."""

from __future__ import annotations

import asyncio
import os
import pathlib
from typing import Any

import pytest

from servers.go_test_runner.runner import Runner
from servers.go_test_runner.sandbox import RunPaths, Sandbox


def _paths(sandbox: Sandbox, tmp_path: pathlib.Path) -> RunPaths:
    worktree = tmp_path / "wt"
    worktree.mkdir(exist_ok=True)
    return sandbox.paths(worktree, "repo", tmp_path / "scratch")


async def _run(sandbox: Sandbox, paths: RunPaths, command: list[str]) -> tuple[Any, list[str]]:
    lines: list[str] = []
    outcome = await sandbox.run(command, paths, env={"PATH": "/usr/bin:/bin"}, timeout_s=60, on_line=lines.append)
    return outcome, lines


async def test_the_exit_code_output_and_stderr_of_a_sandboxed_command_carry_no_marker(runner: Runner) -> None:
    sandbox = runner.sandbox
    assert sandbox.strong, sandbox.protections.problems
    paths = _paths(sandbox, runner.settings.resolved_work_dir())
    # a line that looks like a marker, but not this run's (a fresh random one per run), is output
    script = "echo one; printf two; echo goresolve-end-00 0; echo oops >&2; exit 3"
    outcome, lines = await _run(sandbox, paths, ["/bin/sh", "-c", script])
    assert outcome.exit_code == 3
    assert not outcome.killed
    assert lines == ["one", "twogoresolve-end-00 0"]
    assert outcome.stderr == "oops\n"
    await sandbox.settle(paths.scratch)


async def test_the_result_comes_before_the_sandbox_exits_and_the_next_run_waits_for_it(
    runner: Runner, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sandbox's exit is held back on a FIFO: the first result arrives while it is held, and the
    second run on the same scratch directory starts only once the first has fully exited."""
    sandbox = runner.sandbox
    assert sandbox.strong, sandbox.protections.problems
    paths = _paths(sandbox, tmp_path)
    gate, log = tmp_path / "gate", tmp_path / "log"
    os.mkfifo(gate)

    def argv(command: list[str], _paths: RunPaths, *, race: bool, end: str | None = None, **_: Any) -> list[str]:
        assert end is not None  # a strong sandbox always marks the end
        # the command, its end marker, then what stands for the sandbox's own exit: blocked on the gate
        tail = f'echo "$1 7"; echo "$1" >&2; cat {gate} >/dev/null; echo first-exited >> {log}'
        return ["/bin/sh", "-c", f"{' '.join(command)}; {tail}", "sh", end]

    monkeypatch.setattr(sandbox, "argv", argv)
    outcome, lines = await _run(sandbox, paths, ["echo", "first"])
    assert (outcome.exit_code, lines) == (7, ["first"])
    assert not log.exists()  # the result came while the sandbox was still running
    second = asyncio.ensure_future(_run(sandbox, paths, ["cat", str(log)]))
    done, _ = await asyncio.wait({second}, timeout=0.5)
    assert not done  # waiting for the first run to exit
    fd = os.open(gate, os.O_WRONLY)  # release the first run
    os.close(fd)
    outcome2, lines2 = await asyncio.wait_for(second, 30)
    assert lines2 == ["first-exited"]  # it started after the first had exited
    assert outcome2.exit_code == 7
    fd = os.open(gate, os.O_WRONLY)  # release the second
    os.close(fd)
    await asyncio.wait_for(sandbox.settle_all(), 30)
    assert log.read_text() == "first-exited\nfirst-exited\n"
