"""What `run_tests` with `dependents` costs: the same package with and without its dependents.

    .venv/bin/python bench/dependents_cost.py --module go.uber.org/zap@v1.27.0 --package ./zapcore --pairs 3

The module comes from the Go module proxy and is committed once into a git repository (the runner's
policy repo), as in go_test_runner_bench.py. Each pair times one `run_tests` call on the in-memory MCP
client without `dependents` and one with, in alternating order (the machine is shared), `-count=1`, on
the same warm runner; the first pair warms the build cache and is dropped. Also timed alone: the
`go list` that finds the dependents (raw, in a clone), the only step `dependents` adds before the tests.
Medians are quoted, and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from go_test_runner_bench import go_env, make_server, prepare, tool_run
from mcp import Client

from servers.go_test_runner import dependents


def go_list_s(raw: Path, package: str) -> float:
    started = time.perf_counter()
    subprocess.run(["go", *dependents.go_list_args([package])], cwd=raw, check=True, capture_output=True)
    return time.perf_counter() - started


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-dependents-") as tmp:
        work = Path(tmp)
        src, raw = prepare(args.module, work)
        server, runner = make_server(src, work, go_env("GOCACHE"))
        times: dict[bool, list[float]] = {False: [], True: []}
        last: dict[str, Any] = {}
        async with Client(server) as client:
            for pair in range(args.pairs + 1):
                for side in (False, True) if pair % 2 else (True, False):
                    elapsed, last_result = await tool_run(client, [args.package], dependents=side, timeout_s=900)
                    if side:
                        last = last_result
                    if pair:
                        times[side].append(elapsed)
        await runner.shutdown()
        listing = [go_list_s(raw, args.package) for _ in range(args.pairs)]
    found = last.get("dependents") or []
    alone, with_deps = statistics.median(times[False]), statistics.median(times[True])
    print(f"module {args.module}, package {args.package}, pairs {args.pairs} (first pair dropped)")
    print(f"dependents tested: {len(found)} (+{last.get('dependents_not_tested', 0)} past max_dependents)")
    print(f"packages in the run with dependents: {len(last.get('report', {}).get('packages', []))}")
    print(f"run_tests without dependents: median {alone:.2f} s  {[round(t, 2) for t in times[False]]}")
    print(f"run_tests with dependents:    median {with_deps:.2f} s  {[round(t, 2) for t in times[True]]}")
    print(f"ratio with/without: {with_deps / alone:.2f}x")
    print(f"go list finding the dependents (raw): median {statistics.median(listing) * 1000:.0f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="run_tests with and without dependents")
    parser.add_argument("--module", default="go.uber.org/zap@v1.27.0")
    parser.add_argument("--package", default="./zapcore")
    parser.add_argument("--pairs", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
