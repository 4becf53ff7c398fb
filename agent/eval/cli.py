"""`goresolve eval TASKS.jsonl`: measure the agent (or, with --oracle, the tasks themselves).

Exit status: 0 when every task ran (with --oracle: and every task is valid), 1 otherwise,
2 for a bad task file or a mode this installation cannot run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import anyio
import platformdirs
import typer
from rich.console import Console

from agent.eval.tasks import Task, TaskFileError, TaskResult, load_tasks
from agent.eval.workspace import go_env

console = Console(stderr=True, soft_wrap=True)
_DEFAULT_POLICY = Path(__file__).resolve().parents[2] / "policies" / "protected.yaml"
# The model-driven mode runs the agent's `run_ticket` against per-task servers: a jira-read ticket
# made from the problem statement, a code-search index of the task repository and a github-pr
# remote. Until that wiring exists here, the mode refuses instead of pretending.
MODEL_MODE_MISSING = (
    "model-driven eval is not available in this version: it needs per-task jira-read tickets, a "
    "code-search index and a github-pr remote wired to the agent's run_ticket (agent.loop); "
    "run with --oracle to validate the tasks through go-test-runner"
)


def _data_dir() -> Path:
    # The same per-user directory the servers use for their state.
    override = os.environ.get("GORESOLVE_DATA_DIR")
    return Path(override).expanduser() if override else platformdirs.user_data_path("goresolve", appauthor=False)


def _select(tasks: list[Task], only: str | None, limit: int | None) -> list[Task]:
    if only:
        wanted = {s.strip() for s in only.split(",") if s.strip()}
        unknown = wanted - {t.instance_id for t in tasks}
        if unknown:
            raise TaskFileError(f"no such task: {', '.join(sorted(unknown))}")
        tasks = [t for t in tasks if t.instance_id in wanted]
    return tasks[:limit] if limit else tasks


def eval_command(
    tasks_file: Annotated[Path, typer.Argument(help="JSONL of tasks (see agent/eval/tasks.py).", metavar="TASKS")],
    out: Annotated[Path, typer.Option(help="Results directory; an existing one is resumed.")] = Path(".goresolve/eval"),
    oracle: Annotated[bool, typer.Option("--oracle", help="Apply each task's gold fix instead of a model.")] = False,
    parallel: Annotated[int, typer.Option(min=1, max=16, help="Tasks run at once.")] = 2,
    only: Annotated[str | None, typer.Option(help="Comma-separated instance ids.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N tasks.")] = None,
    protected: Annotated[Path, typer.Option(help="protected.yaml applied to every patch.")] = _DEFAULT_POLICY,
) -> None:
    """Run tasks in isolated worktrees through go-test-runner; results as JSONL plus a Markdown table."""
    from agent.eval.harness import EvalOptions, evaluate, oracle_solver
    from agent.eval.report import markdown, summarize

    try:
        tasks = _select(load_tasks(tasks_file), only, limit)
    except TaskFileError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if not oracle:
        console.print(f"[red]error:[/red] {MODEL_MODE_MISSING}")
        raise typer.Exit(2)
    out = out or _data_dir() / "eval"
    if not protected.is_file():
        console.print(f"[red]error:[/red] {protected}: no such policy file")
        raise typer.Exit(2)
    options = EvalOptions(
        out_dir=out,
        protected_policy=protected,
        parallel=parallel,
        gocache=anyio.run(go_env, "GOCACHE"),
        gomodcache=anyio.run(go_env, "GOMODCACHE"),
    )

    def show(r: TaskResult) -> None:
        colour = "green" if r.outcome in ("valid", "resolved") else "red"
        console.print(f"[{colour}]{r.outcome:>10}[/{colour}] {r.instance_id} ({r.wall_s:.1f}s) {r.detail[:100]}")

    results = anyio.run(evaluate, tasks, options, oracle_solver, show)
    table = markdown(results, "oracle")
    (out / "results.md").write_text(table, encoding="utf-8")
    for line in summarize(results).lines("oracle"):
        print(line)
    console.print(f"results: {out / 'results.jsonl'}, table: {out / 'results.md'}")
    if len(results) < len(tasks) or any(r.outcome != "valid" for r in results):
        raise typer.Exit(1)
