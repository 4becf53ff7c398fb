"""`goresolve queue ls|show|replay|purge`: the dead-letter list of a queue.

    goresolve queue ls [--queue code-index|tickets] [--json]     depth and dead letters
    goresolve queue show EVENT_ID [--queue ...]                  one dead letter, as JSON (one that is
                                                                 no event: its stored text and why)
    goresolve queue replay EVENT_ID [--queue ...]                back onto the queue, tries reset
    goresolve queue purge [EVENT_ID | --all] [--queue ...]       drop one dead letter, or all

The backend comes from GORESOLVE_QUEUE_* (SQLite under .goresolve/queue by default).
Exit codes: 0 ok, 1 no such dead letter or the queue is unreachable, 2 bad usage.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import anyio
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from workqueue.base import DeadLetter, QueueError, WorkQueue
from workqueue.events import Topic
from workqueue.settings import QueueSettings, open_queue, settings_error

queue_app = typer.Typer(no_args_is_help=True, help="The event queue's dead letters: ls, show, replay, purge.")
err = Console(stderr=True, soft_wrap=True)  # an error is one line, however long: never wrapped
T = TypeVar("T")
QueueOpt = Annotated[str, typer.Option("--queue", help="code-index or tickets.")]


def _run(topic: str, action: Callable[[WorkQueue], Awaitable[T]]) -> T:
    if topic not in ("code-index", "tickets"):
        err.print("[red]error:[/red] --queue must be code-index or tickets")
        raise typer.Exit(2)
    try:
        settings = QueueSettings()
    except ValidationError as exc:
        err.print(f"[red]error:[/red] {escape(settings_error(exc))}", highlight=False)
        raise typer.Exit(2) from None
    name: Topic = "code-index" if topic == "code-index" else "tickets"

    async def go() -> T:
        queue = open_queue(settings, name)
        try:
            return await action(queue)
        finally:
            await queue.aclose()

    try:
        return anyio.run(go)
    except QueueError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None


def _letter(d: DeadLetter) -> dict[str, Any]:
    letter: dict[str, Any] = {
        "id": d.id,
        "tries": d.tries,
        "error": d.error,
        "failed_at": datetime.fromtimestamp(d.failed_at, UTC).isoformat(),
        "event": None if d.event is None else d.event.model_dump(mode="json"),
    }
    if d.event is None:  # not an event this version reads: as stored, to be looked at and purged
        letter |= {"invalid": d.invalid, "raw": d.raw}
    return letter


@queue_app.command("ls")
def ls(
    queue: QueueOpt = "code-index",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The queue's depth and its dead letters."""

    async def go(q: WorkQueue) -> tuple[int, list[DeadLetter]]:
        return await q.depth(), await q.dead_letters()

    depth, dead = _run(queue, go)
    if as_json:
        print(json.dumps({"queue": queue, "depth": depth, "dead": [_letter(d) for d in dead]}))
        return
    table = Table("id", "kind", "repo", "tries", "failed at", "error", title=f"{queue}: {depth} waiting or running")
    for d in dead:
        row = _letter(d)
        kind, repo = (d.event.data.kind, d.event.repo or "") if d.event is not None else ("(invalid)", "")
        error = d.error if d.event is not None else " ".join(filter(None, (d.error, f"[{d.invalid}]")))
        table.add_row(escape(d.id), kind, escape(repo), str(d.tries), row["failed_at"], escape(error))
    Console().print(table)


@queue_app.command("show")
def show(event_id: str, queue: QueueOpt = "code-index") -> None:
    """One dead letter, with its event, as JSON."""

    async def go(q: WorkQueue) -> DeadLetter | None:
        return next((d for d in await q.dead_letters() if d.id == event_id), None)

    found = _run(queue, go)
    if found is None:
        err.print(f"[red]error:[/red] no dead letter {escape(repr(event_id))} in queue {queue!r}", highlight=False)
        raise typer.Exit(1)
    print(json.dumps(_letter(found), indent=2))


@queue_app.command("replay")
def replay(event_id: str, queue: QueueOpt = "code-index") -> None:
    """Put a dead letter back on the queue; its tries start again."""

    async def go(q: WorkQueue) -> None:
        await q.replay(event_id)

    _run(queue, go)
    err.print(f"replayed {event_id}")


@queue_app.command("purge")
def purge(
    event_id: Annotated[str | None, typer.Argument(help="The dead letter to drop.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Drop every dead letter.")] = False,
    queue: QueueOpt = "code-index",
) -> None:
    """Drop one dead letter, or all of them with --all."""
    if (event_id is None) == (not all_):
        err.print("[red]error:[/red] give an EVENT_ID or --all (not both)")
        raise typer.Exit(2)

    async def go(q: WorkQueue) -> int:
        return await q.purge(event_id)

    err.print(f"purged {_run(queue, go)} dead letter(s)")
