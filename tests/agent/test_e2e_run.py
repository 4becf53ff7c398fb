"""Run-level guarantees on the real servers: the wall clock cancels in-flight work with no orphan
process, and a server whose tool surface changed is refused."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from anyio.from_thread import start_blocking_portal

from agent.llm import ScriptedModel, reply
from agent.loop import RunSettings, run_ticket
from agent.policy import AgentPolicy, load_agent_policy
from agent.servers import open_servers

from .procs import matching
from .workspace import FILES, Workspace, make_workspace

SLOW_TEST = (
    'package slow\n\nimport (\n\t"testing"\n\t"time"\n)\n\n'
    "func TestSlow(t *testing.T) {\n\ttime.Sleep(10 * time.Minute)\n}\n"
)


def wait_until(check: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return check()


@pytest.mark.slow
def test_the_wall_clock_cancels_in_flight_tests_and_leaves_no_orphan_process(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "w", {**FILES, "slow/slow_test.go": SLOW_TEST, "slow/doc.go": "package slow\n"})
    policy = load_agent_policy(ws.policy_dir)
    budgets = policy.budgets.model_copy(update={"run": policy.budgets.run.model_copy(update={"wall_clock_s": 12})})
    policy = policy.model_copy(update={"budgets": budgets})
    model = ScriptedModel([reply("", ("run_tests", {"packages": ["./slow"]})), reply("never reached")])
    settings = RunSettings(repo="calc", state_dir=tmp_path / "agent", test_timeout_s=600, escalation_grace_s=10)
    with start_blocking_portal() as portal:
        with portal.wrap_async_context_manager(open_servers(ws.servers())) as box:
            portal.call(box.call, "list_repos", {})  # warm the index, so the clock measures the run
            future = portal.start_task_soon(run_ticket, "CALC-1", model, box, policy, settings)
            assert wait_until(lambda: bool(matching("slow.test")), 60), "the slow test never started"
            result = future.result(timeout=120)
            assert (result.outcome, result.exit) == ("escalated", "wall_clock"), result.reason
            assert len(model.requests) == 1
            assert wait_until(lambda: not matching("slow.test"), 15), f"orphans: {matching('slow.test')}"
        assert wait_until(lambda: not matching(str(ws.root), environ=True), 15), "a server outlived the run"


async def test_a_server_whose_surface_changed_is_refused(
    workspace: Workspace, policy: AgentPolicy, settings: RunSettings
) -> None:
    pins = {"code-search": "sha256:" + "0" * 64}
    result = await run_ticket("CALC-1", ScriptedModel([]), workspace.servers(pins), policy, settings)
    assert (result.outcome, result.exit) == ("error", "refused")
    assert result.extra == {"server": "code-search"}
    assert "differs from the pinned" in result.reason and result.model_calls == 0
