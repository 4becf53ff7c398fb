"""What the model writes is bounded and normalised before it reaches a server or a record: a submit's title, a tool
call's name and id, a schema error's wording, the model's escalate reason; and the agent's edge cases with the
servers (an oversized ticket, path aliases in the overlay). Against the four real servers over stdio."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from agent.llm import reply
from agent.loop import RunSettings
from agent.policy import AgentPolicy, load_agent_policy
from servers.github_pr.store import PullStore

from .workspace import TICKET, Workspace, World, make_workspace, served
from .workspace import run_scripted as run

FIX = {"path": "calc.go", "search": "return a - b", "replace": "return a + b"}
ESC = "\x1b]0;PWNED\x07\x1b[2J\x1b[31mRED\x1b[0m"


@pytest.fixture(scope="module")
def own_workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    tickets = {f"CALC-{n}": TICKET.replace("CALC-1", f"CALC-{n}") for n in range(1, 20)}
    return make_workspace(tmp_path_factory.mktemp("model-input"), tickets=tickets)


@pytest.fixture(scope="module")
def world(own_workspace: Workspace) -> Iterator[World]:
    with served(own_workspace) as w:
        yield w


@pytest.fixture
def policy(own_workspace: Workspace) -> AgentPolicy:
    return load_agent_policy(own_workspace.policy_dir)


def pulls(ws: Workspace) -> PullStore:
    return PullStore(ws.state_dir / "servers" / "github-pr" / "prs.sqlite")


def transcript(settings: RunSettings, run_id: str) -> list[dict[str, Any]]:
    path = settings.state_dir / "agent" / "runs" / run_id / "transcript.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_title_ending_in_a_newline_is_one_line_and_the_pull_request_opens(
    world: World, own_workspace: Workspace, policy: AgentPolicy, settings: RunSettings
) -> None:
    submit = {"title": "Fix Add\n", "summary": "Add now returns the sum."}
    calls = [("edit", FIX), ("submit", submit), ("escalate", {"reason": "cannot fix it"}), reply("hyp")]
    result, _ = run(world, "CALC-1", calls, policy, settings)
    assert (result.outcome, result.exit) == ("pr", "submitted"), result.reason
    pull = pulls(own_workspace).by_ticket("calc", "CALC-1")
    assert pull is not None and pull.title.startswith("Fix Add")


def test_a_title_with_control_characters_is_answered_to_the_model_not_escalated(
    world: World, own_workspace: Workspace, policy: AgentPolicy, settings: RunSettings
) -> None:
    bad = {"title": f"Fix\tAdd {ESC}", "summary": "Add now returns the sum."}
    good = {"title": "Fix Add", "summary": "Add now returns the sum."}
    calls = [("edit", FIX), ("submit", bad), ("submit", good), reply("hyp")]
    result, model = run(world, "CALC-2", calls, policy, settings)
    assert (result.outcome, result.exit) == ("pr", "submitted"), result.reason
    told = [m.content for m in model.requests[2].messages if m.role == "tool"][-1]
    assert told.startswith("error: submit: title: must be one line of text without control characters")


def test_github_prs_refusal_of_the_summary_goes_back_to_the_model(
    world: World, own_workspace: Workspace, policy: AgentPolicy, settings: RunSettings
) -> None:
    # a token spelled with an HTML entity: github-pr reads it as GitHub renders it and refuses the body
    leaky = {"title": "Fix Add", "summary": "Fixed; token g&#104;p_abcdefghijklmnopqrstuvwxyz0123456789AB"}
    clean = {"title": "Fix Add", "summary": "Add now returns the sum."}
    calls = [("edit", FIX), ("submit", leaky), ("submit", clean), reply("hyp")]
    result, model = run(world, "CALC-3", calls, policy, settings)
    assert (result.outcome, result.exit) == ("pr", "submitted"), result.reason
    told = [m.content for m in model.requests[2].messages if m.role == "tool"][-1]
    assert told.startswith("error: not submitted: github-pr refused your title or summary: refused: text looks like")
    assert "in body line" in told


def test_github_prs_refusals_of_the_summary_are_bounded_like_format_errors(
    world: World, policy: AgentPolicy, settings: RunSettings
) -> None:
    leaky = {"title": "Fix Add", "summary": "Fixed; token g&#104;p_abcdefghijklmnopqrstuvwxyz0123456789AB"}
    calls = [("edit", FIX), *[("submit", leaky)] * 3, reply("hyp")]
    result, _ = run(world, "CALC-4", calls, policy, settings)
    assert result.exit == "escalated" and result.reason.startswith("github-pr refused the pull request"), result.reason
