"""What the model writes is bounded and normalised before it reaches a server or a record: a submit's title, a tool
call's name and id, a schema error's wording, the model's escalate reason; and the agent's edge cases with the
servers (an oversized ticket, path aliases in the overlay). Against the four real servers over stdio."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent.llm import reply
from agent.loop import RunSettings
from agent.policy import AgentPolicy

from .workspace import TICKET, Workspace, World, make_workspace, pulls, transcript
from .workspace import run_scripted as run

FIX = {"path": "calc.go", "search": "return a - b", "replace": "return a + b"}
ESC = "\x1b]0;PWNED\x07\x1b[2J\x1b[31mRED\x1b[0m"


@pytest.fixture(scope="module")
def module_workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    tickets = {f"CALC-{n}": TICKET.replace("CALC-1", f"CALC-{n}") for n in range(1, 19)}
    # past the servers' cap on ticket text (2,000,000 characters)
    tickets["CALC-19"] = TICKET.replace("CALC-1", "CALC-19").replace("Expected: Add returns a + b.", "A" * 2_100_000)
    return make_workspace(tmp_path_factory.mktemp("model-input"), tickets=tickets)


def test_a_title_ending_in_a_newline_is_one_line_and_the_pull_request_opens(
    world: World, module_workspace: Workspace, policy: AgentPolicy, settings: RunSettings
) -> None:
    submit = {"title": "Fix Add\n", "summary": "Add now returns the sum."}
    calls = [("edit", FIX), ("submit", submit), ("escalate", {"reason": "cannot fix it"}), reply("hyp")]
    result, _ = run(world, "CALC-1", calls, policy, settings)
    assert (result.outcome, result.exit) == ("pr", "submitted"), result.reason
    pull = pulls(module_workspace).by_ticket("calc", "CALC-1")
    assert pull is not None and pull.title.startswith("Fix Add")


def test_a_title_with_control_characters_is_answered_to_the_model_not_escalated(
    world: World, module_workspace: Workspace, policy: AgentPolicy, settings: RunSettings
) -> None:
    bad = {"title": f"Fix\tAdd {ESC}", "summary": "Add now returns the sum."}
    good = {"title": "Fix Add", "summary": "Add now returns the sum."}
    calls = [("edit", FIX), ("submit", bad), ("submit", good), reply("hyp")]
    result, model = run(world, "CALC-2", calls, policy, settings)
    assert (result.outcome, result.exit) == ("pr", "submitted"), result.reason
    told = [m.content for m in model.requests[2].messages if m.role == "tool"][-1]
    assert told.startswith("error: submit: title: must be one line of text without control characters")


def test_github_prs_refusal_of_the_summary_goes_back_to_the_model(
    world: World, module_workspace: Workspace, policy: AgentPolicy, settings: RunSettings
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


def test_a_megabyte_tool_name_or_id_is_a_format_error_and_no_later_request_carries_it(
    world: World, policy: AgentPolicy, settings: RunSettings
) -> None:
    from agent.llm.types import Message, ToolCall

    big_id = Message("assistant", "", (ToolCall("i" * 1_000_000, "view", json.dumps({"path": "calc.go"})),))
    calls = [reply("", ("x" * 1_000_000, {})), big_id, reply("", ("escalate", {"reason": "cannot fix it"})), reply("h")]
    result, model = run(world, "CALC-5", calls, policy, settings)
    assert result.exit == "escalated", result.reason  # before: budget_exceeded on the token budget after one call
    assert max(r.size_bytes() for r in model.requests) < 64_000
    errors = [e["message"] for e in transcript(settings, result.run_id) if e["kind"] == "format_error"]
    assert len(errors) == 2 and all("the limit is 262144 bytes" in e for e in errors)
    run_dir = settings.state_dir / "agent" / "runs" / result.run_id
    assert sum(p.stat().st_size for p in run_dir.iterdir()) < 200_000


def test_a_tool_name_outside_the_providers_alphabet_or_a_long_id_is_a_format_error(
    world: World, policy: AgentPolicy, settings: RunSettings
) -> None:
    from agent.llm.types import Message, ToolCall

    long_id = Message("assistant", "", (ToolCall("c" * 300, "view", json.dumps({"path": "calc.go"})),))
    # "run tests" would read as run_tests once its space is replaced: it is not run
    calls = [reply("", ("run tests", {})), long_id, ("escalate", {"reason": "cannot fix it"}), reply("hyp")]
    result, model = run(world, "CALC-6", calls, policy, settings)
    assert result.exit == "escalated", result.reason
    entries = transcript(settings, result.run_id)
    errors = [e["message"] for e in entries if e["kind"] == "format_error"]
    assert errors[0].startswith("a tool name is 1-64 characters of A-Z, a-z, 0-9, _ and - (yours: 9 characters")
    assert errors[1] == "a tool call id is at most 128 characters (yours: 300)"
    assert not [e for e in entries if e["kind"] == "tool"]  # nothing ran
    kept = [c for m in model.requests[-1].messages for c in m.tool_calls]
    assert [c.name for c in kept[:2]] == ["run_tests", "view"] and len(kept[1].id) == 117
    answered = [m.tool_call_id for m in model.requests[-1].messages if m.role == "tool"]
    assert kept[1].id in answered  # the history stays valid: the cut id is the one answered


def test_a_value_too_long_for_its_schema_is_named_so_however_long_it_is(
    world: World, policy: AgentPolicy, settings: RunSettings
) -> None:
    long_edit = {"path": "calc.go", "search": "return a - b", "replace": "y" * 60_000}
    calls = [("edit", long_edit), ("view", {"path": 5}), ("escalate", {"reason": "cannot fix it"}), reply("hyp")]
    result, _ = run(world, "CALC-7", calls, policy, settings)
    assert result.exit == "escalated", result.reason
    errors = [e["message"] for e in transcript(settings, result.run_id) if e["kind"] == "format_error"]
    # before: "edit: replace: 'yyyy…" cut at 200 characters, without what was wrong
    assert errors == ["edit: replace: longer than 50000 characters", 'view: path: not of type "string"']


def test_the_models_escalate_reason_is_saved_without_escape_sequences(
    world: World, policy: AgentPolicy, settings: RunSettings, ledger: Any
) -> None:
    calls = [("escalate", {"reason": f"cannot fix \x1b[2J it {ESC}"}), reply(f"hyp {ESC}")]
    result, _ = run(world, "CALC-8", calls, policy, settings)
    assert result.exit == "escalated"
    assert result.reason == "the model escalated: cannot fix  it RED"  # whole escape sequences go
    record = (settings.state_dir / "agent" / "runs" / result.run_id / "run.json").read_text()
    assert "\\u001b" not in record and "\\u0007" not in record
    row = ledger.run(result.run_id)
    assert row is not None and "\x1b" not in str(row.reason) and "\x07" not in str(row.reason)


def test_a_ticket_too_long_to_show_is_handed_to_a_human(
    world: World, policy: AgentPolicy, settings: RunSettings
) -> None:
    result, model = run(world, "CALC-19", [], policy, settings)
    assert (result.outcome, result.exit) == ("escalated", "escalated"), result.reason  # before: error/refused
    assert result.reason.startswith("ticket CALC-19 is too long for the model: ")
    assert "longer than 2000000 characters" in result.reason
    assert model.requests == [] and result.handoff is not None
    assert result.extra["handoff_notes"][0] == "ticket not read: hand-off saved with the run only"
