"""Fault injection for the agent: an OpenAI-compatible endpoint (local HTTP, the real wire format) whose
answers come from the scripted developer, with 5xx, timeouts, malformed JSON bodies, invented tools and
truncated tool calls injected at a given rate. The servers are the in-process fakes of agent.testing
(hundreds of runs on two cores); every outcome test uses the real servers."""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx

from agent.exits import RunResult
from agent.llm import ChatRequest, Message, Retrying
from agent.llm.openai_compat import OpenAICompatModel
from agent.loop import RunSettings, run_ticket
from agent.policy import DEFAULT_POLICY_DIR, AgentPolicy, load_agent_policy
from agent.testing import FakeWorld, developer

from .llm_fake_server import Answer

FAULTS = ("5xx", "timeout", "malformed", "invented", "truncated")
PROVIDER_TIMEOUT_S = 0.25


@dataclass
class FaultyDeveloper:
    rate: float
    seed: int
    counts: Counter[str] = field(default_factory=Counter[str])

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def __call__(self, body: dict[str, Any]) -> Answer:
        messages = tuple(Message(m["role"], m.get("content") or "") for m in body["messages"])
        call = developer(ChatRequest(messages)).tool_calls[0]
        name, arguments, finish = call.name, call.arguments, "tool_calls"
        fault = self.rng.choice(FAULTS) if self.rng.random() < self.rate else "none"
        self.counts[fault] += 1
        if fault == "5xx":
            return Answer(503, {"error": {"message": "overloaded"}})
        if fault == "malformed":
            return Answer(200, raw='{"id": "chatcmpl-1", "choices": [{"message": ')
        if fault == "invented":
            name = "delete_repository"
        if fault == "truncated":
            arguments, finish = arguments[: len(arguments) // 2], "length"
        completion = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {"id": call.id, "type": "function", "function": {"name": name, "arguments": arguments}}
                        ],
                    },
                    "finish_reason": finish,
                }
            ],
            "usage": {"prompt_tokens": len(json.dumps(body)) // 4, "completion_tokens": 20 + len(arguments) // 4},
        }
        return Answer(200, completion, delay_s=PROVIDER_TIMEOUT_S * 2 if fault == "timeout" else 0.0)


def fault_policy(max_cost_usd: float) -> AgentPolicy:
    policy = load_agent_policy(DEFAULT_POLICY_DIR)
    run = policy.budgets.run.model_copy(update={"max_cost_usd": max_cost_usd})
    budgets = policy.budgets.model_copy(update={"run": run})
    scopes = frozenset({"jira:read", "issue:read", "code:read", "tests:run", "pr:read", "pr:write"})
    return policy.model_copy(
        update={"budgets": budgets, "scopes": {"local-dev": scopes}, "repos": {"local-dev": ("calc",)}}
    )


async def fault_runs(
    url: str, n: int, policy: AgentPolicy, state_dir: Path, run_timeout_s: float = 60
) -> list[RunResult | None]:
    """n runs in a row; None marks a run that did not end within run_timeout_s (a hang)."""
    results: list[RunResult | None] = []
    client = httpx.AsyncClient()  # one connection pool for every run, as a worker would keep
    for i in range(n):
        provider = OpenAICompatModel("gpt-4o-mini", url, timeout_s=PROVIDER_TIMEOUT_S, client=client)
        model = Retrying(provider, attempts=3, timeout_s=PROVIDER_TIMEOUT_S)
        settings = RunSettings(repo="calc", state_dir=state_dir, run_id=f"fault-{i:04d}")
        result: RunResult | None = None
        with anyio.move_on_after(run_timeout_s):
            result = await run_ticket(f"CALC-{i + 1}", model, FakeWorld().servers(), policy, settings)
        results.append(result)
    await client.aclose()
    return results
