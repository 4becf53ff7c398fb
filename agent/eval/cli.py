"""`goresolve eval [TASKS.jsonl]`: measure the agent (or, with --oracle, the tasks themselves).

Without TASKS, the tasks shipped in bench/data/eval/tasks.jsonl (real upstream bug fixes).

Exit status: 0 when every task ran (with --oracle: and every task is valid), 1 otherwise,
2 for a bad task file or a mode this installation cannot run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import anyio
import platformdirs
import typer
from rich.console import Console
from rich.markup import escape

from agent.eval.tasks import Task, TaskFileError, TaskResult, load_tasks
from agent.eval.workspace import WorkspaceError, go_env

if TYPE_CHECKING:
    from agent.eval.harness import EvalOptions, Solver
    from agent.llm import ChatModel

console = Console(stderr=True, soft_wrap=True)
_DEFAULT_POLICY = Path(__file__).resolve().parents[2] / "policies" / "protected.yaml"
SHIPPED_TASKS = Path(__file__).resolve().parents[2] / "bench" / "data" / "eval" / "tasks.jsonl"


def _data_dir() -> Path:
    # The same per-user directory the servers use for their state.
    override = os.environ.get("GORESOLVE_DATA_DIR")
    return Path(override).expanduser() if override else platformdirs.user_data_path("goresolve", appauthor=False)


def _select(tasks: list[Task], only: str | None, limit: int | None) -> list[Task]:
    if only is not None:
        wanted = {s.strip() for s in only.split(",") if s.strip()}
        if not wanted:
            raise TaskFileError("--only names no task: give task ids separated by commas")
        unknown = wanted - {t.instance_id for t in tasks}
        if unknown:
            raise TaskFileError(f"no such task: {', '.join(sorted(unknown))}")
        tasks = [t for t in tasks if t.instance_id in wanted]
    return tasks[:limit] if limit else tasks


def eval_command(
    tasks_file: Annotated[
        Path,
        typer.Argument(
            help="JSONL of tasks (see agent/eval/tasks.py); default: the shipped ones, bench/data/eval/tasks.jsonl.",
            metavar="TASKS",
            show_default=False,
        ),
    ] = SHIPPED_TASKS,
    out: Annotated[
        Path | None, typer.Option(help="Results directory (default <data dir>/eval); an existing one is resumed.")
    ] = None,
    oracle: Annotated[bool, typer.Option("--oracle", help="Apply each task's gold fix instead of a model.")] = False,
    parallel: Annotated[int, typer.Option(min=1, max=16, help="Tasks run at once.")] = 2,
    only: Annotated[str | None, typer.Option(help="Comma-separated instance ids.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N tasks.")] = None,
    protected: Annotated[Path, typer.Option(help="protected.yaml applied to every patch.")] = _DEFAULT_POLICY,
    recordings: Annotated[
        Path | None,
        typer.Option(help="Replay <DIR>/<instance_id>.jsonl per task instead of a live model (indexed as recorded)."),
    ] = None,
) -> None:
    """Run tasks in isolated worktrees through go-test-runner; results as JSONL plus a Markdown table.

    Without --oracle each task goes through the agent (`run_ticket` over the four stdio servers) with the
    model of GORESOLVE_AGENT_PROVIDER / GORESOLVE_AGENT_MODEL (or --recordings), and the harness judges its patch.
    """
    from agent.eval.harness import EvalOptions, evaluate, oracle_solver
    from agent.eval.report import markdown, summarize

    try:
        tasks = _select(load_tasks(tasks_file), only, limit)
    except TaskFileError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    except UnicodeDecodeError as exc:  # a binary file: one line naming it, as any other bad task file
        console.print(f"[red]error:[/red] {escape(str(tasks_file))}: not UTF-8 text (byte {exc.start})")
        raise typer.Exit(2) from None
    except RecursionError:
        console.print(f"[red]error:[/red] {escape(str(tasks_file))}: a line is nested too deeply to read")
        raise typer.Exit(2) from None
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

    mode = "oracle" if oracle else "model"
    solver = oracle_solver if oracle else _agent_solver(options, recordings)
    results = anyio.run(evaluate, tasks, options, solver, show)
    table = markdown(results, mode)
    (out / "results.md").write_text(table, encoding="utf-8")
    for line in summarize(results).lines(mode):
        print(line)
    console.print(f"results: {out / 'results.jsonl'}, table: {out / 'results.md'}")
    if len(results) < len(tasks) or any(r.outcome in ("invalid", "error") for r in results):
        raise typer.Exit(1)


def _agent_solver(options: EvalOptions, recordings: Path | None) -> Solver:
    """The agent on each task, with the configured live model or a recording per task."""
    from agent.cli import load_agent_settings
    from agent.eval.agent_solver import REPLAY_EMBEDDER, AgentOptions, agent_solver
    from agent.llm import LLMError, ModelConfig, build_model

    settings = load_agent_settings()
    if recordings is not None:
        if not recordings.is_dir():
            console.print(f"[red]error:[/red] {recordings}: no such directory of recordings")
            raise typer.Exit(2)

        def replay(task: Task) -> ChatModel:
            cassette = recordings / f"{task.instance_id}.jsonl"
            if not cassette.is_file():
                raise WorkspaceError(f"no recording {cassette}")
            return build_model(ModelConfig(provider="replay", model="scripted", cassette=cassette))

        model_for = replay
    else:
        try:
            config = settings.required_live_model("pass --recordings, or run --oracle")
        except ValueError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        try:
            build_model(config)
        except (ValueError, LLMError) as exc:
            console.print(f"[red]error:[/red] model: {exc}")
            raise typer.Exit(2) from None

        def live(task: Task) -> ChatModel:
            return build_model(config)

        model_for = live
    agent_options = AgentOptions(
        model_for=model_for,
        gocache=options.gocache,
        gomodcache=options.gomodcache,
        embedder=REPLAY_EMBEDDER if recordings is not None else None,  # as the recordings were made
    )
    return agent_solver(agent_options, options.out_dir)
