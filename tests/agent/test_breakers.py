"""A failing server is not hammered: its circuit breaker opens and the run escalates naming it (in-process
fake servers, because the failure has to be injected into the server)."""

from __future__ import annotations

from pathlib import Path

from agent.llm import ScriptedModel, reply
from agent.loop import RunSettings, run_ticket
from agent.testing import WRONG, FakeWorld

from .faults import fault_policy


async def test_a_server_failing_three_times_in_a_row_opens_its_breaker_and_the_run_escalates(tmp_path: Path) -> None:
    world = FakeWorld(broken=True)
    model = ScriptedModel(
        [reply("", ("edit", WRONG)), *[reply("", ("run_tests", {"run": f"Test{i}"})) for i in range(5)]]
    )
    result = await run_ticket(
        "CALC-1", model, world.servers(), fault_policy(1.0), RunSettings(repo="calc", state_dir=tmp_path)
    )
    assert (result.outcome, result.exit) == ("escalated", "breaker_open"), result.reason
    assert result.extra["server"] == "go-test-runner"
    assert "go-test-runner" in result.reason
    assert world.calls.count("run_tests") == 3  # the fourth call never reached the server
    assert result.handoff is not None and "go-test-runner" in result.handoff
