"""A run cancelled mid tool call (Ctrl-C cancels the event loop's task; a caller may cancel its scope) is recorded
as interrupted, and the cancelled call is no failure: no breaker counts it, no hand-off is made of it."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import anyio

from agent.llm import ScriptedModel, reply
from agent.loop import Run, RunSettings
from agent.testing import WRONG, FakeWorld, _verdict  # pyright: ignore[reportPrivateUsage] - the fake's own verdict

from .faults import fault_policy


async def test_a_run_cancelled_during_a_tool_call_is_interrupted_and_trips_no_breaker(tmp_path: Path) -> None:
    started, release = threading.Event(), threading.Event()

    def slow_verdict(patch: str | None, run: str | None = None) -> dict[str, Any]:
        started.set()  # go-test-runner is running the tests: the call is in flight
        release.wait(30)
        return _verdict(patch, run)

    world = FakeWorld(verdict=slow_verdict)
    model = ScriptedModel([reply("", ("edit", WRONG)), reply("", ("run_tests", {})), reply("", ("run_tests", {}))])
    run = Run("CALC-1", model, world.servers(), fault_policy(1.0), RunSettings(repo="calc", state_dir=tmp_path))
    ended: list[BaseException] = []

    async def go() -> None:
        try:
            await run.run()
        except BaseException as exc:
            ended.append(exc)
            raise

    try:
        with anyio.fail_after(60):
            async with anyio.create_task_group() as group:
                group.start_soon(go)
                await anyio.to_thread.run_sync(started.wait, 30)
                group.cancel_scope.cancel()  # what Ctrl-C does to the run's task
                release.set()  # the server answers after all; the run, being cancelled, takes no answer
    finally:
        release.set()
    assert len(ended) == 1 and isinstance(ended[0], anyio.get_cancelled_exc_class())
    assert run.box is not None
    assert {name: (b.state, b.failures) for name, b in run.box.breakers.items()} == dict.fromkeys(
        run.box.breakers, ("closed", 0)
    )
    assert len(model.requests) == 2  # the model was not asked again after the cancelled call
    assert world.calls.count("run_tests") == 1 and "open_pull_request" not in world.calls  # no draft hand-off
    record = json.loads((tmp_path / "agent" / "runs" / run.run_id / "run.json").read_text())
    assert (record["outcome"], record["exit"]) == ("error", "interrupted")
    assert record["reason"].startswith("interrupted: the run was cancelled")
    kinds = [json.loads(line)["kind"] for line in (Path(record["run_dir"]) / "transcript.jsonl").open()]
    assert kinds[-1] == "interrupted" and "attempt" not in kinds  # the cut-off test run is no attempt
    spans = [json.loads(line) for line in (Path(record["run_dir"]) / "spans.jsonl").open()]
    (root,) = [s for s in spans if s["name"] == "agent.run"]
    assert root["attributes"]["goresolve.exit"] == "interrupted"
