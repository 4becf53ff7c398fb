"""Every concurrency slot is warm: after a call, the idle slots hold a worktree at its commit, and
all slots share the build cache, so a second, concurrent caller's first call neither checks out
nor builds anything."""

from __future__ import annotations

import asyncio
import pathlib
from typing import Any

import pytest

from servers.go_test_runner.payload import RunTestsRequest
from servers.go_test_runner.results import RunResult
from servers.go_test_runner.runner import Runner
from servers.go_test_runner.sandbox import Outcome

from .conftest import MakeRunner

pytestmark = pytest.mark.slow


async def _go_test(runner: Runner) -> RunResult:
    request = {"repo": "pass", "ref": "main", "packages": ["./util"], "flags": ["-count=1"]}
    return await runner.run_tests(RunTestsRequest.model_validate(request))


def _record(runner: Runner, monkeypatch: pytest.MonkeyPatch) -> tuple[list[Outcome], list[bool]]:
    """The outcomes of the runner's sandboxed commands, and for each call's checkout whether its slot's
    worktree was ready at the commit (no git needed)."""
    outcomes: list[Outcome] = []
    ready: list[bool] = []
    run, checkout = runner.sandbox.run, runner._checkout  # pyright: ignore[reportPrivateUsage]

    async def recording_run(*args: Any, **kw: Any) -> Outcome:
        outcome = await run(*args, **kw)
        outcomes.append(outcome)
        return outcome

    async def recording_checkout(mirror: pathlib.Path, commit: str, path: pathlib.Path) -> pathlib.Path:
        ready.append(runner._ready.get(path) == commit)  # pyright: ignore[reportPrivateUsage]
        return await checkout(mirror, commit, path)

    monkeypatch.setattr(runner.sandbox, "run", recording_run)
    monkeypatch.setattr(runner, "_checkout", recording_checkout)
    return outcomes, ready


async def test_a_second_concurrent_slots_first_call_neither_checks_out_nor_builds(
    make_runner: MakeRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = make_runner(max_concurrency=2)
    outcomes, ready = _record(runner, monkeypatch)
    first = await _go_test(runner)  # one slot: a checkout, maybe a build
    assert first.ok, first.summary
    assert ready == [False]
    await runner.drain()  # its slot reset, and the idle slot warmed at the same commit
    worktrees = sorted(p.name for p in (runner.settings.resolved_work_dir() / "worktrees" / "pass").iterdir())
    assert worktrees == ["0", "1"]
    outcomes.clear()
    ready.clear()
    both = await asyncio.gather(_go_test(runner), _go_test(runner))  # one on each slot, at once
    assert [r.ok for r in both] == [True, True]
    assert ready == [True, True]  # both worktrees were ready
    assert [o.built for o in outcomes] == [0, 0]  # nothing compiled: the slots share the cache
    assert outcomes[0].exit_code == outcomes[1].exit_code == 0


async def test_a_slot_that_cannot_be_warmed_is_checked_out_by_its_first_call(
    make_runner: MakeRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Warming is best effort: when git fails for an idle slot, its next call makes the worktree."""
    runner = make_runner(max_concurrency=2)
    assert (await _go_test(runner)).ok
    await runner.drain()
    other = runner.settings.resolved_work_dir() / "worktrees" / "pass" / "0"
    assert other.is_dir()
    _, ready = _record(runner, monkeypatch)
    runner._ready.pop(other)  # pyright: ignore[reportPrivateUsage]  # as if warming it had failed
    both = await asyncio.gather(_go_test(runner), _go_test(runner))
    assert [r.ok for r in both] == [True, True]
    assert sorted(ready) == [False, True]  # the cold slot's call reset its worktree itself
