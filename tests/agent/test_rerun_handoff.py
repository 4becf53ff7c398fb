"""A ticket run again after its pull request opened: a hand-off never adds its untested attempt to that ready
pull request (before, its commit became the pull request's head and the hand-off its body, still ready to
merge), and an attempt whose tests ran nothing is shown as such, never as a pass."""

from __future__ import annotations

from typing import Any

import pytest

from agent.handoff import NO_TEST_RAN, NOT_TESTED
from agent.llm import reply
from agent.loop import RunSettings
from agent.policy import AgentPolicy

from .workspace import FILES, TICKET, Workspace, World, make_workspace, pulls, pushed
from .workspace import run_scripted as run

FIX = ("edit", {"path": "calc.go", "search": "return a - b", "replace": "return a + b"})
WRONG = ("edit", {"path": "calc.go", "search": "return a - b", "replace": "return a * b"})


@pytest.fixture(scope="module")
def module_workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    tickets = {key: TICKET.replace("CALC-1", key) for key in ("CALC-1", "CALC-3", "CALC-4")}
    files = {**FILES, "Makefile": "test:\n\tgo test ./...\n"}  # a file code-search does not index
    return make_workspace(tmp_path_factory.mktemp("rerun-world"), files, tickets=tickets)


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


def test_an_attempt_whose_tests_pass_reads_pass_and_is_the_one_drafted(
    world: World, policy: AgentPolicy, settings: RunSettings, module_workspace: Workspace
) -> None:
    """Before, every passing attempt read "no test ran" (go-test-runner lists the failing tests and counts the
    passing ones), so the hand-off ranked a later attempt with a failing test first and drafted its patch."""
    calls: list[Any] = [
        FIX,
        ("run_tests", {}),  # attempt 1: passes
        ("edit", {"path": "calc.go", "search": "return a + b", "replace": "return a * b"}),
        ("run_tests", {}),  # attempt 2: TestAdd fails
        ("escalate", {"reason": "not sure the fix is complete"}),
        reply("The operator is wrong."),
    ]
    result, _ = run(world, "CALC-3", calls, policy, settings)
    assert result.outcome == "escalated" and result.handoff is not None
    assert "| 1 |" in result.handoff and "| pass |" in result.handoff and NO_TEST_RAN not in result.handoff
    draft = pulls(module_workspace).by_ticket("calc", "CALC-3")
    assert draft is not None and draft.draft
    assert "return a + b" in pushed(module_workspace, draft.head_sha, "calc.go")


def test_an_attempt_that_never_reached_go_test_is_drafted_last(
    world: World, policy: AgentPolicy, settings: RunSettings, module_workspace: Workspace
) -> None:
    """Before, an attempt whose run never reached go test (its patch did not apply: an edit of a file code-search
    does not index reads as a new file) was "failed" with no failure, ranked first, and github-pr refused its
    draft twice: no draft, nobody assigned, though a tested attempt existed."""
    calls: list[Any] = [
        WRONG,
        ("run_tests", {}),  # attempt 1: TestAdd fails
        ("edit", {"path": "Makefile", "search": "", "replace": "test:\n\tgo test -race ./...\n"}),
        ("run_tests", {}),  # attempt 2: the patch does not apply
        ("escalate", {"reason": "cannot make it pass"}),
        reply("The operator is wrong."),
    ]
    result, _ = run(world, "CALC-4", calls, policy, settings)
    assert result.outcome == "escalated" and result.handoff is not None, result.reason
    assert f"| {NOT_TESTED} |" in result.handoff and "| 1 failing |" in result.handoff
    draft = pulls(module_workspace).by_ticket("calc", "CALC-4")
    assert draft is not None and draft.draft, result.reason
    assert "return a * b" in pushed(module_workspace, draft.head_sha, "calc.go")
