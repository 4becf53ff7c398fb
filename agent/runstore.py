"""What a run leaves beside it: run.json (the result), transcript.jsonl (messages and tool calls),
spans.jsonl (its trace), handoff.md when it escalated, and a row in the ledger; and how `goresolve runs`
and `goresolve trace` find and list them (`find_run_dir`, `runs_table`)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from agent.exits import RunResult
from agent.ledger import Ledger, RunRow, open_private, private_dir
from agent.telemetry import write_spans


def save_run(
    run_dir: Path,
    result: RunResult,
    transcript: list[dict[str, Any]],
    spans: list[dict[str, Any]],
    ledger: Ledger | None,
) -> None:
    private_dir(run_dir)  # it and the directories made for it are 0700, its files 0600: the user's alone
    with open_private(run_dir / "run.json") as fh:
        fh.write(json.dumps(result.__dict__, indent=2, default=str))
    with open_private(run_dir / "transcript.jsonl") as fh:
        for entry in transcript:
            fh.write(json.dumps(entry, default=str) + "\n")
    write_spans(run_dir / "spans.jsonl", spans)
    if result.handoff:
        with open_private(run_dir / "handoff.md") as fh:
            fh.write(result.handoff)
    if ledger is not None:
        started = time.time() - result.duration_s
        ledger.record_run(
            RunRow(
                result.run_id,
                result.ticket,
                result.repo,
                result.tier or "-",
                result.model,
                result.outcome,
                result.exit,
                result.reason,
                result.cost_usd,
                result.tokens,
                result.duration_s,
                started,
                result.trace_id,
                str(run_dir),
            )
        )


class RunLookupError(Exception):
    """No run, or more than one, answers to an id; `message` says which and what to type instead."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


SHOWN_MATCHES = 10


def find_run_dir(runs_dir: Path, run_id: str) -> Path:
    """The directory of the one run whose id is `run_id` or starts with it.

    Raises:
        RunLookupError: the id is empty, names no run, or is a prefix of several (their ids are listed).
    """
    wanted = run_id.strip()
    if not wanted:
        raise RunLookupError("give a run id (or a unique prefix of one), as `goresolve runs` lists them")
    if "/" in wanted or "\\" in wanted or wanted.startswith("."):
        raise RunLookupError(f"no run {run_id!r}: a run id is a name like 20260101-120000-abc123, not a path")
    runs = sorted(p for p in runs_dir.glob("*") if p.is_dir()) if runs_dir.is_dir() else []
    exact = [p for p in runs if p.name == wanted]
    matches = exact or [p for p in runs if p.name.startswith(wanted)]
    if not matches:
        raise RunLookupError(f"no run {run_id!r} (`goresolve runs` lists the recent ones)")
    if len(matches) > 1:
        shown = ", ".join(p.name for p in matches[:SHOWN_MATCHES])
        more = f" and {len(matches) - SHOWN_MATCHES} more" if len(matches) > SHOWN_MATCHES else ""
        raise RunLookupError(f"{run_id!r} matches {len(matches)} runs: {shown}{more}; give more of the id")
    return matches[0]


def runs_table(rows: list[RunRow]) -> Table:
    """`goresolve runs` as a table, one line a run, for a terminal wide enough to hold it (`runs_view`)."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for name in ("run", "ticket", "outcome", "exit", "tier", "cost", "tokens", "duration"):
        numeric = name in ("cost", "tokens", "duration")
        table.add_column(name, no_wrap=True, justify="right" if numeric else "left")
    for r in rows:
        cells = _cells(r)
        table.add_row(cells[0], cells[1], _coloured(r), *cells[3:])
    return table


def runs_view(rows: list[RunRow], width: int) -> RenderableType:
    """`goresolve runs` for a terminal `width` columns wide: the table when a run fits on one line, else two
    lines a run (id, ticket, outcome; then the rest). The run id is what `goresolve trace` takes: it is never
    cut or folded, and no word is broken across lines."""
    table = runs_table(rows)
    if Console(width=10_000).measure(table).maximum <= width:
        return table
    lines: list[Text] = []
    for r in rows:
        run_id, ticket, _, exit_kind, tier, cost, tokens, duration = _cells(r)
        first = Text.assemble(run_id, "  ", ticket, "  ", Text.from_markup(_coloured(r)), f" ({exit_kind})")
        lines += [first, Text(f"    {tier} · {cost} · {tokens} tokens · {duration}", style="dim")]
    return Group(*lines)


def _cells(r: RunRow) -> tuple[str, ...]:
    return (r.run_id, r.ticket, r.outcome, r.exit, r.tier, f"${r.cost_usd:.4f}", str(r.tokens), f"{r.duration_s:.1f}s")


def _coloured(r: RunRow) -> str:
    colour = {"pr": "green", "escalated": "yellow"}.get(r.outcome, "red")
    return f"[{colour}]{r.outcome}[/{colour}]"
