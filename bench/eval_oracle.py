"""Slow benchmark: every shipped eval task through `goresolve eval --oracle` (real go-test-runner over MCP).

    python bench/eval_oracle.py [--tasks bench/data/eval/tasks.jsonl] [--parallel 2] [--out DIR]

Prints `eval oracle: N valid / M tasks`, the wall time, the median time per task, and the baseline
measured in the same run: with no patch, how many tasks already pass their fail-to-pass tests
(a valid task set has 0; the no-patch run happens for every task whose fix passes its tests).
Results: DIR/results.jsonl and DIR/results.md.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import anyio

from agent.eval.harness import EvalOptions, evaluate, oracle_solver
from agent.eval.report import markdown, summarize
from agent.eval.tasks import load_tasks
from agent.eval.workspace import go_env

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--tasks", type=Path, default=ROOT / "bench" / "data" / "eval" / "tasks.jsonl")
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None, help="results directory (default: a fresh temporary one)")
    args = ap.parse_args()
    tasks = load_tasks(args.tasks)
    out = args.out or Path(tempfile.mkdtemp(prefix="eval-oracle-"))
    options = EvalOptions(
        out_dir=out,
        protected_policy=ROOT / "policies" / "protected.yaml",
        parallel=args.parallel,
        gocache=anyio.run(go_env, "GOCACHE"),
        gomodcache=anyio.run(go_env, "GOMODCACHE"),
    )
    started = time.monotonic()
    results = anyio.run(evaluate, tasks, options, oracle_solver, lambda r: print(f"  {r.outcome:>8} {r.instance_id}"))
    wall = time.monotonic() - started
    (out / "results.md").write_text(markdown(results, "oracle"), encoding="utf-8")
    summary = summarize(results)
    already = sum(1 for r in results if r.outcome == "invalid" and r.detail.startswith("already passing"))
    modules = sorted({t.module for t in tasks})
    print(f"tasks: {len(tasks)} from {len(modules)} modules ({', '.join(modules)})")
    print(f"eval oracle: {summary.valid} valid / {len(tasks)} tasks")
    print(f"baseline (no patch): {already} / {len(tasks)} tasks pass their fail-to-pass tests")
    per_task = median(r.wall_s for r in results)
    print(f"wall time: {wall:.0f} s with --parallel {args.parallel}; median per task: {per_task:.1f} s")
    for r in results:
        if r.outcome != "valid":
            print(f"  not valid: {r.instance_id}: {r.detail}")
    print(f"results: {out}/results.jsonl, {out}/results.md")
    if args.out is None:
        shutil.rmtree(out / "repos", ignore_errors=True)
    return 0 if summary.valid == len(tasks) else 1


if __name__ == "__main__":
    sys.exit(main())
