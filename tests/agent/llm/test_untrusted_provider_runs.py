"""Whole runs against a provider that misbehaves: each still ends in a recorded hand-off, with a reason that says
what the provider did, and spends what the requests could have cost. Real servers over stdio, held open for the
module; the model is the fake OpenAI-compatible server behind the gateway the agent builds."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from agent.exits import RunResult
from agent.ledger import Ledger
from agent.llm import ModelConfig, build_model
from agent.loop import RunSettings
from agent.policy import AgentPolicy

from ..llm_fake_server import Answer, FakeLLM, openai_completion
from ..workspace import World, run_model


def _run(world: World, llm: FakeLLM, policy: AgentPolicy, settings: RunSettings, *, waits: bool = False) -> RunResult:
    """CALC-1 with the gateway as the agent builds it; `waits`: stamina's real waits, not the tests' zero ones."""
    model = build_model(ModelConfig(provider="openai", model="gpt-4o-mini", base_url=llm.url, api_key=SecretStr("k")))
    return run_model(world, "CALC-1", model, policy, settings, waits=waits)


def _respond(llm: FakeLLM, *answers: Answer) -> None:
    """Answer in order, then the last answer for every later request (the loop's steps, the hand-off's question)."""
    remaining = list(answers)

    def answer(_: dict[str, Any]) -> Answer:
        return remaining.pop(0) if len(remaining) > 1 else remaining[0]

    llm.responder.append(answer)


def _handed_off(result: RunResult, ledger: Ledger | None) -> Ledger:
    assert (result.outcome, result.exit_code) == ("escalated", 3), result.reason
    assert result.handoff is not None
    assert ledger is not None
    row = ledger.run(result.run_id)
    assert row is not None and row.outcome == "escalated"
    return ledger


def test_a_provider_body_too_deep_to_decode_ends_in_a_recorded_hand_off(
    world: World, policy: AgentPolicy, settings: RunSettings, llm: FakeLLM
) -> None:
    raw = json.dumps(openai_completion("ok"))[:-1] + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    _respond(llm, Answer(200, raw=raw))
    result = _run(world, llm, policy, settings)
    _handed_off(result, settings.ledger)
    assert result.reason == "model unavailable: gpt-4o-mini: response nested deeper than 64 levels"
    assert result.run_dir is not None and (Path(result.run_dir) / "run.json").is_file()


def _usage(prompt: Any, completion: Any) -> Answer:
    body = openai_completion(calls=[("view", {"path": "calc.go"})])
    body["usage"] = {"prompt_tokens": prompt, "completion_tokens": completion}
    return Answer(body=body)


def _chat_spans(result: RunResult) -> list[dict[str, Any]]:
    assert result.run_dir is not None
    lines = (Path(result.run_dir) / "spans.jsonl").read_text(encoding="utf-8").splitlines()
    return [s for s in map(json.loads, lines) if s["name"].startswith("chat ")]


@pytest.mark.parametrize(
    ("usage", "why"),
    [
        (_usage(-2_000_000, -10), "negative (-2000000)"),
        (_usage(10**13, 0), "10000000000000 > "),
        (_usage(None, None), "missing"),
    ],
    ids=["negative", "absurd", "missing"],
)
def test_usage_a_provider_gets_wrong_is_charged_what_the_requests_could_cost_and_shows_in_the_trace(
    world: World,
    policy: AgentPolicy,
    settings: RunSettings,
    llm: FakeLLM,
    usage: Answer,
    why: str,
) -> None:
    _respond(llm, usage, Answer(body=openai_completion(calls=[("escalate", {"reason": "stop"})])))
    result = _run(world, llm, policy, settings)
    ledger = _handed_off(result, settings.ledger)
    # two well-behaved calls of this size cost well under a cent; a wrong usage could credit or block the day
    assert 0 < result.cost_usd < 0.01 and 0 < ledger.day_spend() < 0.01
    assert result.input_tokens > 0 and result.output_tokens > 0
    corrected = [s for s in _chat_spans(result) if s["attributes"].get("goresolve.usage.corrected")]
    assert len(corrected) == 1
    notes = corrected[0]["attributes"]["goresolve.usage.corrections"]
    assert any(note.startswith("input_tokens ") and why in note for note in notes), notes


@pytest.mark.parametrize("answered", [True, False], ids=["after-an-answer", "before-any-answer"])
def test_a_retry_after_of_an_hour_ends_the_run_at_once_as_rate_limited_not_as_a_set_up_error(
    world: World, policy: AgentPolicy, settings: RunSettings, llm: FakeLLM, answered: bool
) -> None:
    first = [Answer(body=openai_completion(calls=[("view", {"path": "calc.go"})]))] if answered else []
    _respond(llm, *first, Answer(429, {"error": {"message": "slow down"}}, headers={"retry-after": "3600"}))
    start = time.monotonic()
    result = _run(world, llm, policy, settings, waits=True)
    took = time.monotonic() - start
    _handed_off(result, settings.ledger)
    assert result.reason == "model unavailable: gpt-4o-mini: rate-limited by the provider (429): Retry-After 3600 s"
    assert "check" not in result.extra  # a rate limit is the moment's, not the set-up's: a hand-off, not an error
    assert took < 30  # a whole run with real servers; the hour (or even one 20 s backoff) is never waited
    # each refused request asked once, none retried: after an answer, the step and the hand-off's question
    assert len(llm.requests) == (3 if answered else 1)
