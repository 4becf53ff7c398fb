"""Cold start to the first `tools/list` answer, for each of the four servers, over stdio.

    .venv/bin/python bench/cold_start.py --rounds 5

Each sample is a new process (`python -m servers.<name>`) with default settings and a fresh,
empty data directory (no audit log, no traces, no index, no work dirs): the clock starts before
the spawn and stops when the answer to `tools/list` (sent right after `initialize`) is read from
stdout. The embedding model, which code-search loads in the background, is the installed one.

Besides wall time, the server's own CPU time (user + system, from /proc) up to that answer is
recorded: on a shared, saturated machine wall time mostly measures the queue for a core, while CPU
time is close to what the start costs on an idle one.

Baseline, measured in the same run: the SDK's floor, a bare `MCPServer` with one tool over stdio
in the same interpreter. Each round runs the five in a rotated order (the machine is shared, so
load drift spreads over all of them); medians and their ratio to the baseline are quoted, and the
figures are printed in the form docs/benchmarks.md records:
`cold start to tools/list, <server>: N s`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVERS = {
    "jira-read": ["-m", "servers.jira_read"],
    "code-search": ["-m", "servers.code_search"],
    "go-test-runner": ["-m", "servers.go_test_runner"],
    "github-pr": ["-m", "servers.github_pr"],
}
BASELINE = "baseline (bare MCPServer)"
_BARE = (
    "from mcp.server.mcpserver import MCPServer\n"
    "server = MCPServer('bare')\n"
    "@server.tool()\n"
    "def ping() -> str:\n"
    "    return 'pong'\n"
    "server.run()\n"
)
HANDSHAKE = [
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "bench", "version": "0"},
        },
    },
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sample(args: list[str], env: dict[str, str], timeout: float) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the server) from spawn to the `tools/list` answer on stdout."""
    with tempfile.TemporaryFile("w+") as errlog:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errlog,
            env=env,
            text=True,
            cwd=ROOT,
        )
        assert proc.stdin is not None
        assert proc.stdout is not None
        try:
            proc.stdin.write("".join(json.dumps(m) + "\n" for m in HANDSHAKE))
            proc.stdin.flush()
            deadline = started + timeout
            while time.perf_counter() < deadline:
                line = proc.stdout.readline()
                if not line:
                    break
                if json.loads(line).get("id") == 2:
                    return time.perf_counter() - started, cpu_seconds(proc.pid)
            errlog.seek(0)
            raise RuntimeError(f"{args}: no tools/list answer: {errlog.read()[-2000:]}")
        finally:
            proc.stdin.close()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            proc.stdout.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=180.0, help="Give up on one start after this many seconds.")
    opts = parser.parse_args()

    from servers.code_search.minilm import default_cache_dir

    base_env = {k: v for k, v in os.environ.items() if not k.startswith("GORESOLVE_")}
    base_env["GORESOLVE_CODE_SEARCH_MODEL_CACHE_DIR"] = str(default_cache_dir())
    runs: dict[str, list[str]] = {**SERVERS, BASELINE: ["-c", _BARE]}
    names = list(runs)
    times: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="goresolve-cold-") as tmp:
        for round_no in range(opts.rounds):
            order = names[round_no % len(names) :] + names[: round_no % len(names)]
            for name in order:
                env = {**base_env, "GORESOLVE_DATA_DIR": str(Path(tmp) / f"{round_no}-{name.split()[0]}")}
                wall, used = sample(runs[name], env, opts.timeout)
                times[name].append(wall)
                cpu[name].append(used)
            print(f"round {round_no + 1}: " + ", ".join(f"{n.split()[0]} {times[n][-1]:.2f}s" for n in names))

    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    floor = statistics.median(times[BASELINE])
    cpu_floor = statistics.median(cpu[BASELINE])
    print(f"\n{BASELINE}: median {floor:.2f} s wall, {cpu_floor:.2f} s CPU over {opts.rounds} starts")
    for name in SERVERS:
        median = statistics.median(times[name])
        used = statistics.median(cpu[name])
        print(
            f"{name}: median {median:.2f} s wall (min {min(times[name]):.2f}, max {max(times[name]):.2f}), "
            f"{median / floor:.2f}x the bare SDK server; CPU {used:.2f} s, {used / cpu_floor:.2f}x its CPU"
        )
    print()
    for name in SERVERS:
        print(f"cold start to tools/list, {name}: {statistics.median(times[name]):.1f} s")
    print("\n(CPU seconds to tools/list: what a start costs on an idle core)")
    for name in SERVERS:
        print(f"cpu to tools/list, {name}: {statistics.median(cpu[name]):.1f} s")


if __name__ == "__main__":
    main()
