"""Agent under provider faults: 200 runs, 30% of provider answers broken (5xx, timeouts, malformed JSON,
invented tools, truncated tool calls), over the OpenAI wire format to a local endpoint; in-process fake
servers (agent.testing) so 200 runs fit on two cores.

Prints: runs ended / started, budget overshoot (runs whose spend passed the cap, and by how much),
trace completeness (model calls, tool calls and the servers' spans of every MCP request that carry the
run's trace id), outcomes, and a
fault-free baseline of the same runs for the duration ratio.

    .venv/bin/python -m bench.agent_faults [--runs 200] [--rate 0.3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import anyio
import stamina

from agent.exits import RunResult
from agent.llm import enable_live_requests
from tests.agent.faults import FaultyDeveloper, fault_policy, fault_runs
from tests.agent.llm_fake_server import fake_llm_server

CAP_USD = 0.004


def completeness(results: list[RunResult]) -> tuple[int, int]:
    """(calls carrying the run's trace id, calls made): every model call and tool call the run counted, and
    every MCP request the agent sent, which must arrive as a server span in the same trace."""
    covered = expected = 0
    for r in results:
        spans = [json.loads(x) for x in (Path(str(r.run_dir)) / "spans.jsonl").read_text().splitlines()]
        mine = [s for s in spans if s["trace_id"] == r.trace_id]
        chats = [s for s in mine if s["name"].startswith("chat ") and s["status"] != "ERROR"]
        tools = [s for s in mine if s["name"].startswith("execute_tool ")]
        sent = [s for s in spans if s["name"].startswith("mcp ")]
        arrived = [s for s in mine if s["name"].startswith("tools/call ")]
        expected += r.model_calls + r.tool_calls + len(sent)
        covered += len(chats) + len(tools) + len(arrived)
    return covered, expected


def batch(runs: int, rate: float, seed: int) -> tuple[list[RunResult | None], Counter[str], float]:
    with tempfile.TemporaryDirectory() as tmp, fake_llm_server() as llm:
        brain = FaultyDeveloper(rate=rate, seed=seed)
        llm.responder.append(brain)
        started = time.perf_counter()
        results = anyio.run(fault_runs, llm.url, runs, fault_policy(CAP_USD), Path(tmp))
        elapsed = time.perf_counter() - started
        ok = [r for r in results if r is not None]
        covered, expected = completeness(ok)
        brain.counts["_covered"], brain.counts["_expected"] = covered, expected
    return results, brain.counts, elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rate", type=float, default=0.3)
    args = parser.parse_args()
    enable_live_requests(True)  # the provider code is the real one; its endpoint is local
    stamina.set_testing(True, attempts=3)  # retries without sleeping: the figures are about outcomes
    base, _, base_s = batch(max(20, args.runs // 10), 0.0, 1)
    results, counts, faulty_s = batch(args.runs, args.rate, 13)
    ended = [r for r in results if r is not None]
    over = [r.cost_usd - CAP_USD for r in ended if r.cost_usd > CAP_USD]
    outcomes = Counter(f"{r.outcome}/{r.exit}" for r in ended)
    injected = {k: v for k, v in counts.items() if not k.startswith("_")}
    print(f"provider answers: {sum(injected.values())}, injected faults: {dict(sorted(injected.items()))}")
    print(f"outcomes: {dict(outcomes.most_common())}")
    print(f"stuck alarms on the legitimate edit-test-edit cycle: {outcomes.get('escalated/stuck', 0)}")
    per_run = statistics.median(r.duration_s for r in ended) if ended else 0
    base_ok = [r for r in base if r is not None]
    base_med = statistics.median(r.duration_s for r in base_ok)
    print(
        f"median run: {per_run * 1000:.0f} ms with faults vs {base_med * 1000:.0f} ms fault-free "
        f"({per_run / base_med:.2f}x); "
        f"batches {faulty_s:.0f} s / {base_s:.0f} s"
    )
    print(f"max spend {max(r.cost_usd for r in ended):.5f} USD against a cap of {CAP_USD} USD")
    print(f"agent fault-injection runs: {len(ended)} ended / {len(results)} started")
    print(f"agent budget overshoot: {len(over)}" + (f" (max {max(over):.5f} USD)" if over else ""))
    pct = 100.0 * counts["_covered"] / max(1, counts["_expected"])
    covered, expected = counts["_covered"], counts["_expected"]
    print(f"agent trace completeness: {pct:.0f}%  ({covered} of {expected} model, tool and server calls)")


if __name__ == "__main__":
    main()
