"""What removing credentials costs each model request (`agent.llm.gateway.redacted`).

    .venv/bin/python bench/redaction_cost.py [--steps 30] [--rounds 5]

A run is replayed as the gateway sees it: every request sends the whole history again. The history is
real text: a system prompt, a ticket body from the ticket-localization set, then `--steps` turns, each
a tool call and its result, a view of a real Go file of go.uber.org/zap v1.27.0 (pinned, from the module
proxy) cut at 8 KB like the agent's views. Request k holds the first k turns. Per request, CPU time:

- shipped: `redacted` with its per-message cache kept across the run (each message is scanned once);
- uncached: the same with the cache cleared before every request (every message scanned every time);
- baseline: `ChatRequest.size_bytes()`, the serialisation the loop already does for every request's
  budget check, measured in the same run.

Prints medians and p95 over requests (each the median of `--rounds`), and the whole run's total.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.llm import ChatRequest, Message, reply
from agent.llm.gateway import _redact, redacted  # pyright: ignore[reportPrivateUsage]
from bench.code_search_common import module_dir, percentile

TICKETS = Path(__file__).resolve().parent / "data" / "ticket_loc" / "tickets.jsonl"
MODULE = "go.uber.org/zap@v1.27.0"
VIEW_CHARS = 8000


def history(steps: int) -> list[tuple[Message, ...]]:
    """The messages of each request of one run: request k ends with turn k."""
    ticket = json.loads(TICKETS.read_text(encoding="utf-8").splitlines()[0])["query_raw"]
    files = sorted(p for p in module_dir(MODULE).rglob("*.go") if p.stat().st_size > 2000)
    messages: list[Message] = [Message("system", "You fix Go bugs. " * 120), Message("user", ticket)]
    requests: list[tuple[Message, ...]] = [tuple(messages)]
    for k in range(steps):
        path = files[(k * 7) % len(files)]
        lines = path.read_text(encoding="utf-8").splitlines()
        view = "\n".join(f"{n:>5}  {line}" for n, line in enumerate(lines, start=1))[:VIEW_CHARS]
        messages.append(reply("", ("view", {"path": path.name})))
        messages.append(Message("tool", view, tool_call_id=f"call_{k}"))
        requests.append(tuple(messages))
    return requests


def per_request_ms(requests: list[ChatRequest], work: Callable[[ChatRequest], object], rounds: int) -> list[float]:
    """CPU milliseconds of `work` on each request of the run in order, the median of `rounds` replays."""
    runs: list[list[float]] = []
    for _ in range(rounds):
        _redact.cache_clear()
        times: list[float] = []
        for request in requests:
            start = time.process_time()
            work(request)
            times.append((time.process_time() - start) * 1000)
        runs.append(times)
    return [statistics.median(column) for column in zip(*runs, strict=True)]


def uncached(request: ChatRequest) -> object:
    _redact.cache_clear()
    return redacted(request)


def main() -> None:
    parser = argparse.ArgumentParser(description="CPU time of credential redaction per model request")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    requests = [ChatRequest(messages) for messages in history(args.steps)]
    last_kb = requests[-1].size_bytes() / 1024
    print(f"{len(requests)} requests, the last {last_kb:.0f} KB ({MODULE} views of {VIEW_CHARS} chars)")
    rows = {
        "shipped (cached per message)": per_request_ms(requests, redacted, args.rounds),
        "uncached": per_request_ms(requests, uncached, args.rounds),
        "baseline: size_bytes()": per_request_ms(requests, ChatRequest.size_bytes, args.rounds),
    }
    print(f"{'':30} {'median':>9} {'p95':>9} {'run total':>10}")
    for name, times in rows.items():
        median, p95 = statistics.median(times), percentile(times, 95)
        print(f"{name:30} {median:7.2f}ms {p95:7.2f}ms {sum(times):8.1f}ms")
    shipped, base = rows["shipped (cached per message)"], rows["baseline: size_bytes()"]
    print(f"redaction per model request: {statistics.median(shipped):.2f} ms median")
    print(f"shipped / baseline, run total: {sum(shipped) / sum(base):.2f}x")


if __name__ == "__main__":
    main()
