"""What a run leaves beside it: run.json (the result), transcript.jsonl (messages and tool calls),
spans.jsonl (its trace), handoff.md when it escalated, and a row in the ledger."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from agent.exits import RunResult
from agent.ledger import Ledger, RunRow
from agent.telemetry import write_spans


def save_run(
    run_dir: Path,
    result: RunResult,
    transcript: list[dict[str, Any]],
    spans: list[dict[str, Any]],
    ledger: Ledger | None,
) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "run.json").write_text(json.dumps(result.__dict__, indent=2, default=str), encoding="utf-8")
    with (run_dir / "transcript.jsonl").open("w", encoding="utf-8") as fh:
        for entry in transcript:
            fh.write(json.dumps(entry, default=str) + "\n")
    write_spans(run_dir / "spans.jsonl", spans)
    if result.handoff:
        (run_dir / "handoff.md").write_text(result.handoff, encoding="utf-8")
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
