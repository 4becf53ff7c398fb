"""The eval run: tasks in, one result line per task out (resumable), with bounded parallelism.

prepare   <out>/policy: repos.yaml names every task repository, access.yaml grants them to
          the eval identity (scope tests:run only), protected.yaml is the project's own
per task  <out>/repos/<id>: the module from the proxy + the test patch (workspace.py); then
          --oracle: the gold patch, checked through go-test-runner (oracle.py)
          model:    the agent's `run_ticket`, then its patch checked the same way
results   <out>/results.jsonl, one line per finished task, appended as each finishes; a task
          already in it is not run again, so an interrupted run resumes where it stopped
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
import yaml
from mcp import MCPError

from agent.eval import oracle
from agent.eval.runner_client import RunnerConfig, TestRunner, ToolRefused, start_runner
from agent.eval.tasks import Task, TaskResult
from agent.eval.workspace import WorkspaceError, materialize_module

IDENTITY = "eval"
RESULTS = "results.jsonl"

Solver = Callable[[Task, TestRunner, Path], Awaitable[TaskResult]]


@dataclass(frozen=True)
class EvalOptions:
    out_dir: Path
    protected_policy: Path
    parallel: int = 2
    gocache: Path | None = None
    gomodcache: Path | None = None


def read_results(path: Path) -> dict[str, TaskResult]:
    """Results already recorded (a torn last line from an interrupted run is ignored)."""
    done: dict[str, TaskResult] = {}
    if not path.exists():
        return done
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            result = TaskResult.model_validate_json(line)
        except ValueError:
            continue
        done[result.instance_id] = result
    return done


def write_policy(directory: Path, tasks: list[Task], repos_dir: Path, protected: Path) -> None:
    """A policy directory for go-test-runner naming exactly the task repositories."""
    directory.mkdir(parents=True, exist_ok=True)
    names = [t.instance_id for t in tasks]
    files = {
        "repos.yaml": {"repos": {n: {"path": str((repos_dir / n).resolve()), "default_branch": "main"} for n in names}},
        "access.yaml": {"identities": {IDENTITY: {"roles": ["eval"], "repos": names}}},
        "tools.yaml": {"roles": {"eval": {"scopes": ["tests:run"]}}},
    }
    for name, data in files.items():
        (directory / name).write_text(yaml.safe_dump(data, sort_keys=True), encoding="utf-8")
    shutil.copyfile(protected, directory / "protected.yaml")


async def prepare_repo(task: Task, repos_dir: Path) -> Path:
    """The task's repository, built once (a half-built one from an interrupted run is rebuilt).

    Raises:
        WorkspaceError: download or test patch failed.
    """
    repo = repos_dir / task.instance_id
    if (repo / ".git" / "eval-ready").exists():
        return repo
    shutil.rmtree(repo, ignore_errors=True)
    await materialize_module(task.module, task.version, repo, test_patch=task.test_patch)
    (repo / ".git" / "eval-ready").write_text("ok\n", encoding="utf-8")
    return repo


async def oracle_solver(task: Task, runner: TestRunner, repo: Path) -> TaskResult:
    """Apply the gold fix and prove the task valid: tests fail before, pass after, nothing else breaks."""
    started = time.monotonic()

    def result(outcome: str, detail: str, f2p: bool | None = None, p2p: bool | None = None) -> TaskResult:
        return TaskResult.model_validate(
            {"instance_id": task.instance_id, "mode": "oracle", "outcome": outcome, "detail": detail,
             "fail_to_pass_ok": f2p, "pass_to_pass_ok": p2p, "wall_s": round(time.monotonic() - started, 2)}
        )  # fmt: skip

    # The fix first: a refused or useless patch is known after one run.
    try:
        after = await oracle.check_after(runner, task, repo, task.gold_patch)
    except ToolRefused as exc:
        return result("invalid", f"gold patch refused: {exc.text[:300]}")
    if not after.ok:
        return result("invalid", after.detail, f2p=False)
    before = await oracle.check_before(runner, task)
    if not before.ok:
        return result("invalid", before.detail, f2p=False)
    kept = await oracle.check_kept(runner, task, task.gold_patch)
    return result("valid" if kept.ok else "invalid", kept.detail, f2p=True, p2p=kept.ok)


async def evaluate(
    tasks: list[Task],
    options: EvalOptions,
    solver: Solver,
    on_result: Callable[[TaskResult], None] = lambda _: None,
) -> list[TaskResult]:
    """Run `solver` on every task not already in the results file; returns all results, in task order."""
    out = options.out_dir
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / RESULTS
    done = read_results(results_path)
    todo = [t for t in tasks if t.instance_id not in done]
    write_policy(out / "policy", tasks, out / "repos", options.protected_policy)
    config = RunnerConfig(
        policy_dir=out / "policy",
        # A fresh runner state per invocation: results, not the runner's mirrors, carry resumption.
        state_dir=out / "state" / uuid.uuid4().hex[:12],
        identity=IDENTITY,
        max_concurrency=options.parallel,
        gocache=options.gocache,
        gomodcache=options.gomodcache,
    )
    lock = anyio.Lock()
    limiter = anyio.CapacityLimiter(options.parallel)

    async def one(task: Task, runner: TestRunner) -> None:
        async with limiter:
            started = time.monotonic()
            try:
                repo = await prepare_repo(task, out / "repos")
                res = await solver(task, runner, repo)
            except (WorkspaceError, ToolRefused, MCPError) as exc:
                res = TaskResult(
                    instance_id=task.instance_id,
                    mode="oracle" if solver is oracle_solver else "model",
                    outcome="error",
                    detail=str(exc)[:400],
                    wall_s=round(time.monotonic() - started, 2),
                )
        async with lock:
            with results_path.open("a", encoding="utf-8") as fh:
                fh.write(res.model_dump_json() + "\n")
            done[task.instance_id] = res
            on_result(res)

    if todo:
        try:
            async with start_runner(config) as runner, anyio.create_task_group() as tg:
                for task in todo:
                    tg.start_soon(one, task, runner)
        finally:
            shutil.rmtree(config.state_dir, ignore_errors=True)
    return [done[t.instance_id] for t in tasks if t.instance_id in done]
