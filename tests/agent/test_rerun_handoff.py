"""A ticket run again after its pull request opened: a hand-off never adds its untested attempt to that ready
pull request (before, its commit became the pull request's head and the hand-off its body, still ready to
merge), and an attempt whose tests ran nothing is shown as such, never as a pass."""

from __future__ import annotations

from typing import Any

import pytest

from agent.handoff import NO_TEST_RAN
from agent.llm import reply
from agent.loop import RunSettings
from agent.policy import AgentPolicy

from .workspace import TICKET, Workspace, World, make_workspace, pulls
from .workspace import run_scripted as run

FIX = ("edit", {"path": "calc.go", "search": "return a - b", "replace": "return a + b"})
WRONG = ("edit", {"path": "calc.go", "search": "return a - b", "replace": "return a * b"})


@pytest.fixture(scope="module")
def module_workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return make_workspace(tmp_path_factory.mktemp("rerun-world"), tickets={"CALC-1": TICKET})


def test_a_failed_rerun_leaves_the_tickets_ready_pull_request_as_it_is(
    world: World, policy: AgentPolicy, settings: RunSettings, module_workspace: Workspace
) -> None:
    submit = ("submit", {"title": "Add returns the sum", "summary": "Add now adds b."})
    first, _ = run(world, "CALC-1", [FIX, ("run_tests", {}), submit], policy, settings)
    assert first.outcome == "pr", first.reason
    before = pulls(module_workspace).by_ticket("calc", "CALC-1")
    assert before is not None and not before.draft

    calls: list[Any] = [
        WRONG,
        ("run_tests", {"run": "^TestNope$"}),  # matches no test: "passes"
        ("run_tests", {}),
        ("escalate", {"reason": "cannot make it pass"}),
        reply("The operator is wrong."),
    ]
    second, _ = run(world, "CALC-1", calls, policy, settings)
    assert second.outcome == "escalated" and second.pr is None
    assert "is ready for review; a draft does not add its commit" in second.reason
    after = pulls(module_workspace).by_ticket("calc", "CALC-1")
    assert after is not None
    assert (after.head_sha, after.title, after.body, after.draft) == (
        before.head_sha,
        before.title,
        before.body,
        False,
    )
    assert second.handoff is not None and f"| {NO_TEST_RAN} |" in second.handoff
    assert "| pass |" not in second.handoff
