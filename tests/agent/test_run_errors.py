"""How a run ends when the model as set up cannot answer (an error, exit 1) or fails after answering (a hand-off,
exit 3), and when a server refuses the ticket by policy (an error in one line, not an exception group). Real
servers over stdio, held open for the module; the model is the fake OpenAI-compatible server or a cassette."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from agent.exits import replay_broke
from agent.ledger import Ledger
from agent.llm import ChatModel, ModelConfig, build_model
from agent.llm.fake import ReplayModel
from agent.loop import RunSettings
from agent.policy import AgentPolicy

from .llm_fake_server import Answer, FakeLLM, openai_completion
from .workspace import World, run_model


def _openai(url: str) -> ChatModel:
    return build_model(ModelConfig(provider="openai", model="gpt-4o-mini", base_url=url, api_key=SecretStr("sk-x")))


def _recorded_outcome(ledger: Ledger | None, run_id: str) -> str | None:
    assert ledger is not None
    row = ledger.run(run_id)
    return None if row is None else row.outcome


@pytest.mark.parametrize(
    ("status", "check"),
    [(401, "GORESOLVE_AGENT_API_KEY"), (403, "GORESOLVE_AGENT_API_KEY"), (404, "GORESOLVE_AGENT_MODEL")],
)
def test_a_refused_key_or_an_unknown_model_before_any_answer_is_an_error_naming_what_to_check(
    world: World, policy: AgentPolicy, settings: RunSettings, llm: FakeLLM, status: int, check: str
) -> None:
    llm.queue(Answer(status, {"error": {"message": "no"}}))
    result = run_model(world, "CALC-1", _openai(llm.url), policy, settings)
    assert (result.outcome, result.exit, result.exit_code) == ("error", "model_error", 1), result.reason
    assert f"HTTP {status}" in result.reason
    assert check in result.extra["check"]
    assert result.handoff is None and result.pr is None
    assert _recorded_outcome(settings.ledger, result.run_id) == "error"


def test_an_unreachable_endpoint_is_an_error_naming_the_endpoint(
    world: World, policy: AgentPolicy, settings: RunSettings, llm: FakeLLM
) -> None:
    result = run_model(world, "CALC-1", _openai("http://127.0.0.1:9/v1"), policy, settings)
    assert (result.outcome, result.exit_code) == ("error", 1), result.reason
    assert "connection failed" in result.reason
    assert "GORESOLVE_AGENT_BASE_URL" in result.extra["check"]


def test_a_model_that_answered_then_failed_is_still_handed_to_a_human(
    world: World, policy: AgentPolicy, settings: RunSettings, llm: FakeLLM
) -> None:
    llm.queue(Answer(200, openai_completion(calls=[("view", {"path": "calc.go"})])))
    # every later request (the next step, the hand-off's hypothesis) gets a 500 once the queue is empty
    result = run_model(world, "CALC-1", _openai(llm.url), policy, settings)
    assert (result.outcome, result.exit_code) == ("escalated", 3), result.reason
    assert result.reason.startswith("model unavailable:") and "server error 500" in result.reason
    assert result.handoff is not None and "check" not in result.extra
    assert _recorded_outcome(settings.ledger, result.run_id) == "escalated"


def test_a_4xx_after_the_model_answered_is_still_a_hand_off(
    world: World, policy: AgentPolicy, settings: RunSettings, llm: FakeLLM
) -> None:
    llm.queue(Answer(200, openai_completion(calls=[("view", {"path": "calc.go"})])), Answer(401, {"error": {}}))
    result = run_model(world, "CALC-1", _openai(llm.url), policy, settings)
    assert (result.outcome, result.exit_code) == ("escalated", 3), result.reason


@pytest.mark.parametrize("recording", ["", "mismatch"])
def test_an_empty_or_mismatched_cassette_is_an_error_the_demo_also_calls_a_broken_replay(
    world: World, policy: AgentPolicy, settings: RunSettings, tmp_path: Path, recording: str
) -> None:
    cassette = tmp_path / "session.jsonl"
    if recording:  # a session recorded for another request: the first request differs from it
        entry = {"model": "scripted", "key": "0" * 64, "request": {"messages": []}, "response": {}}
        cassette.write_text(json.dumps(entry) + "\n")
    else:
        cassette.write_text("")
    result = run_model(world, "CALC-1", ReplayModel(cassette, "scripted"), policy, settings)
    assert (result.outcome, result.exit, result.exit_code) == ("error", "model_error", 1), result.reason
    assert replay_broke(result)
    assert "cassette" in result.extra["check"]
    assert _recorded_outcome(settings.ledger, result.run_id) == "error"


def test_a_ticket_of_a_project_the_identity_may_not_read_is_refused_in_one_reason(
    world: World, policy: AgentPolicy, settings: RunSettings, llm: FakeLLM
) -> None:
    result = run_model(world, "NOPE-999", _openai(llm.url), policy, settings)
    assert (result.outcome, result.exit, result.exit_code) == ("error", "refused", 1), result.reason
    assert result.reason.startswith("ticket NOPE-999: ")
    assert "access.yaml" in result.reason
    assert llm.requests == []  # refused before the model was asked anything
