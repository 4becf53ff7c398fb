"""Per-step orchestration overhead of the agent loop, excluding model time and go test time.

Scripted model (agent.testing.developer), in-process fake servers over the MCP in-memory transport.
A step runs from the start of one model call to the start of the next; its overhead is that span
minus the model call itself: budget check, validation against the tool's schema, overlay edit/diff,
the MCP round trip, stuck detection, spans, transcript. Baseline (same run): one bare in-memory MCP
`call_tool` round trip, the floor any tool step pays.

    .venv/bin/python -m bench.agent_overhead [--runs 60]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client

from agent.llm import ScriptedModel
from agent.loop import RunSettings, run_ticket
from agent.testing import FakeWorld, developer
from tests.agent.faults import fault_policy


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


async def bare_calls(n: int) -> list[float]:
    world = FakeWorld()
    server = world.servers().servers[1].server  # code-search fake  # type: ignore[union-attr]
    out: list[float] = []
    async with Client(server) as client:
        for _ in range(n):
            t = time.perf_counter()
            await client.call_tool("list_repos", {})
            out.append(time.perf_counter() - t)
    return out


async def runs(n: int, state: Path) -> tuple[list[float], list[float]]:
    """Overheads of every step, and of the steps that are not the final submit (4 MCP calls: check, 2 test runs, PR)."""
    overheads: list[float] = []
    plain: list[float] = []
    policy = fault_policy(1.0)
    for i in range(n):
        result = await run_ticket(
            f"CALC-{i + 1}",
            ScriptedModel(developer),
            FakeWorld().servers(),
            policy,
            RunSettings(repo="calc", state_dir=state),
        )
        assert result.outcome == "pr", result.reason
        spans = [json.loads(x) for x in (Path(str(result.run_dir)) / "spans.jsonl").read_text().splitlines()]
        chats = sorted((s for s in spans if s["name"].startswith("chat ")), key=lambda s: s["start_ns"])
        run_span = next(s for s in spans if s["name"] == "agent.run")
        for this, nxt in zip(chats, [*chats[1:], None], strict=True):
            end = nxt["start_ns"] if nxt else run_span["end_ns"]
            overhead = (end - this["start_ns"] - (this["end_ns"] - this["start_ns"])) / 1e9
            overheads.append(overhead)
            if nxt is not None:
                plain.append(overhead)
    return overheads, plain


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        steps, plain = anyio.run(runs, args.runs, Path(tmp))
    bare = anyio.run(bare_calls, 500)
    med, tail = statistics.median(steps) * 1000, p95(steps) * 1000
    bmed, btail = statistics.median(bare) * 1000, p95(bare) * 1000
    print(f"steps measured: {len(steps)} over {args.runs} runs (the last step of a run includes opening the PR)")
    print(f"step overhead: median {med:.1f} ms, p95 {tail:.1f} ms")
    print(
        f"steps other than the final submit: median {statistics.median(plain) * 1000:.1f} ms, "
        f"p95 {p95(plain) * 1000:.1f} ms"
    )
    print(
        f"baseline, one bare in-memory MCP call_tool: median {bmed:.2f} ms, p95 {btail:.2f} ms "
        f"(step/baseline medians: {med / bmed:.1f}x)"
    )
    print(f"agent step overhead p95: {tail:.0f} ms")


if __name__ == "__main__":
    main()
