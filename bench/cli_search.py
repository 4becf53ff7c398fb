"""`goresolve search` from the command line: one query per process, cold and with the warm process up.

    .venv/bin/python bench/cli_search.py [--runs 9] [--embedder minilm|static]

Indexes github.com/gorilla/mux@v1.8.1 (pinned, from the Go module proxy) into a fresh index, then
times whole `goresolve search QUERY --repo mux --json` processes (wall, and CPU = user + system of
the child): cold (no warm process: the process loads the model and opens LanceDB itself) and warm
(a warm process, `servers.code_search.warm`, already holds the model and index; the command only
asks it over its socket). Baselines in the same run: the bare interpreter (`python -c pass`) and
`grep -rl` over the checkout for the query's words, the floor of any command-line search. Medians
of `--runs` runs each; the load average is printed next to them, since the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time

from code_search_common import SMALL, WORK, checkout, save

from servers.code_search.settings import CodeSearchSettings
from servers.code_search.warm import ask, socket_path
from servers.common.settings import load_settings

QUERY = "route matching with host variables"
GORESOLVE = [sys.executable, "-m", "goresolve.cli"]
TIMEOUT_S = 600


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    cpu0, wall0 = _child_cpu(), time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=TIMEOUT_S, check=False)
    wall, cpu = time.perf_counter() - wall0, _child_cpu() - cpu0
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} ... exited {out.returncode}: {out.stderr[-800:]}")
    return wall, cpu, out.stdout


def _series(name: str, command: list[str], env: dict[str, str], runs: int) -> dict[str, float]:
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu, _out = _timed(command, env)
        walls.append(wall)
        cpus.append(cpu)
    row = {"wall_median_s": statistics.median(walls), "cpu_median_s": statistics.median(cpus)}
    row |= {"wall_min_s": min(walls), "wall_max_s": max(walls)}
    print(
        f"{name:<44} wall median {row['wall_median_s']:.2f} s (min {row['wall_min_s']:.2f}, max "
        f"{row['wall_max_s']:.2f})  CPU median {row['cpu_median_s']:.2f} s",
        flush=True,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--embedder", default="minilm", choices=["minilm", "static"])
    args = parser.parse_args()

    repo = checkout(SMALL)
    db = WORK / f"cli-search-{args.embedder}"
    shutil.rmtree(db, ignore_errors=True)
    env = {**os.environ, "GORESOLVE_CODE_SEARCH_DB_DIR": str(db), "GORESOLVE_CODE_SEARCH_EMBEDDER": args.embedder}
    print(f"indexing {SMALL} into a fresh index ({args.embedder})", flush=True)
    _timed([*GORESOLVE, "index", str(repo), "--repo", "mux"], env)
    search = [*GORESOLVE, "search", QUERY, "--repo", "mux", "--json"]
    rows: dict[str, dict[str, float]] = {}
    floor = "interpreter floor (python -c pass)"
    rows[floor] = _series(floor, [sys.executable, "-c", "pass"], env, args.runs)
    rows["grep -rl over the checkout"] = _series(
        "grep -rl over the checkout", ["grep", "-rlE", "host|variable|match", str(repo)], env, args.runs
    )
    rows["cold: no warm process"] = _series("cold: no warm process", search, env, max(3, args.runs // 3))
    warm = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "servers.code_search.warm",
            "--db",
            str(db),
            "--embedder",
            args.embedder,
            "--idle",
            "300",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        path = socket_path(load_settings(CodeSearchSettings, db_dir=db, embedder=args.embedder))
        deadline = time.monotonic() + 300
        while ask(path, {"query": QUERY, "repos": ["mux"], "k": 1}) is None:  # up when it answers
            if warm.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the warm process did not come up within 300 s")
            time.sleep(0.5)
        rows["warm process up"] = _series("warm process up", search, env, args.runs)
    finally:
        warm.terminate()
        warm.wait(timeout=30)
    load = [round(x, 2) for x in os.getloadavg()]
    print(f"load average (1, 5, 15 min): {load}")
    warm_row = rows["warm process up"]
    print(
        f"cli search single query: {warm_row['cpu_median_s']:.1f} s "
        f"(CPU seconds, median; wall {warm_row['wall_median_s']:.1f} s)"
    )
    print(f"ratio to the interpreter floor (CPU): {warm_row['cpu_median_s'] / rows[floor]['cpu_median_s']:.1f}")
    save(f"cli_search_{args.embedder}", {"query": QUERY, "runs": args.runs, "rows": rows})


if __name__ == "__main__":
    main()
