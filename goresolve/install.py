"""`goresolve model install`: what the first run would otherwise fetch or build, done at install time.

1. the default embedding model (code-search's `model install`: all-MiniLM-L6-v2, pinned by version
   and SHA-256, built into an int8 ONNX model under `<data dir>/models`);
2. the tamper analyzer, the Go program of the patch policy's static guard, compiled once per go
   binary into `<data dir>/tools` (servers/common/tamper/tool.py), where go-test-runner and
   `goresolve check-patch` take it from instead of building it on their first patch.

Both steps are idempotent: a second run checks and says "ready".
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from servers.code_search.cli import Installable
from servers.code_search.cli import model_install as install_embedding_model
from servers.common.errors import GoresolveError
from servers.common.tamper import tool

err = Console(stderr=True, soft_wrap=True)
model_app = typer.Typer(
    no_args_is_help=True,
    help="What goresolve needs offline: the embedding model (all-MiniLM-L6-v2, or bge-small-en-v1.5 with --embedder) "
    "and the tamper analyzer (Go).",
)


def install_tamper_analyzer(console: Console) -> Path:
    """Build the tamper analyzer for the `go` on PATH into `<data dir>/tools`, with a progress bar.

    Raises:
        typer.Exit: no go toolchain, or the build failed (the message says why).
    """
    go = shutil.which("go")
    if go is None:
        console.print(
            "[red]error:[/red] no `go` on PATH: install Go 1.22 or newer (https://go.dev/dl/), then run again"
        )
        raise typer.Exit(1)
    go = str(Path(go).resolve())
    if (binary := tool.installed_analyzer(go)).is_file():
        console.print(f"[green]ready:[/green] tamper analyzer {binary} (already built)")
        return binary
    console.print(f"tamper analyzer: compiling servers/common/tamper/analyzer with {go} (once)")
    columns = [
        TextColumn("[bold]compiling"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("packages"),
        TimeElapsedColumn(),
        TextColumn("[dim]{task.fields[package]}"),
    ]
    try:
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task("analyzer", total=None, package="listing its packages (fetching modules)")

            def step(done: int, total: int, package: str) -> None:
                progress.update(task, completed=done, total=total, package=package)

            binary = tool.install_analyzer(go, on_progress=step)
    except GoresolveError as exc:
        said = escape(exc.message)
        console.print(f"[red]error:[/red] {said}; check that `go build` works here (GOPROXY, disk space)")
        raise typer.Exit(1) from None
    except OSError as exc:
        console.print(f"[red]error:[/red] {escape(f'cannot write to {tool.installed_dir()}: {exc.strerror or exc}')}")
        raise typer.Exit(1) from None
    console.print(f"[green]ready:[/green] tamper analyzer {binary}")
    return binary


@model_app.command("install")
def model_install(
    cache_dir: Annotated[
        Path | None, typer.Option("--dir", help="Embedding model directory (default <data dir>/models).")
    ] = None,
    embedder: Annotated[
        Installable, typer.Option("--embedder", help="minilm (default) or bge-small (the measured alternative).")
    ] = Installable.MINILM,
) -> None:
    """Install the embedding model (pinned, SHA-256 checked) and compile the tamper analyzer (Go); idempotent.

    The model goes to <data dir>/models, the analyzer to <data dir>/tools (not built at first use then).
    """
    install_embedding_model(cache_dir, embedder)
    install_tamper_analyzer(err)
