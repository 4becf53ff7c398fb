"""What a run ends with, and the ledger that remembers it.

The agent command reports its result as the JSON object that ends its output (`goresolve resolve
--json`): at least `outcome` (e.g. "pr", "escalated") and, when known, `cost_usd` and the pull
request (`pr_url`, or `pr.url`). In a Job that
line is written to the container's termination message, which the API server keeps in the Pod's
status, so the dispatcher needs no log access to read it. A run with no such line has no outcome:
it is escalated, never retried.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

# How a run that produced no result line is recorded (and escalated).
NO_OUTCOME = "no-outcome"
# What a dispatch returns when another request's dispatch runs the ticket now: that one follows the run,
# records it and escalates it; this one ends at once (it is never recorded).
GOING = "going"
_MAX_RESULT_BYTES = 4096  # the kubelet keeps at most 4 KiB of a termination message


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One finished dispatch: `outcome` from the agent, or NO_OUTCOME with `reason` when it gave none."""

    ticket: str
    repo: str
    trace_id: str
    run: str
    mode: str
    outcome: str
    duration_s: float
    cost_usd: float | None = None
    pr_url: str | None = None
    reason: str | None = None
    escalated: bool = False
    adopted: bool = False  # another dispatch of the ticket runs or ran it (and records it), not this one
    finished_at: float = field(default_factory=time.time)

    @property
    def has_outcome(self) -> bool:
        return self.outcome != NO_OUTCOME

    @property
    def needs_a_person(self) -> bool:
        """No outcome, or the agent's own `error` (a model or setting it could not use, a ticket it may not
        read): nobody else was told, so the dispatcher escalates. A pull request or the agent's own hand-off
        needs nothing more."""
        return self.outcome in (NO_OUTCOME, "error")


def going(ticket_id: str, repo: str, trace_id: str, run: str, mode: str) -> RunRecord:
    """The record of a dispatch that leaves the ticket's going run to the dispatch of the request that started it."""
    return RunRecord(
        ticket=ticket_id,
        repo=repo,
        trace_id=trace_id,
        run=run,
        mode=mode,
        outcome=GOING,
        duration_s=0.0,
        reason="another request's dispatch runs the ticket now; it records and escalates the run",
        adopted=True,
    )


def parse_result(text: str | None) -> dict[str, Any] | None:
    """The agent's result: the last JSON object in `text` with a non-empty string `outcome`.

    The object is either the last line (compact) or starts on a line of its own at column 0 and runs
    to the end of the text (`goresolve resolve --json` prints it indented). None when there is none.
    """
    if not text:
        return None
    lines = text.rstrip().splitlines()
    for start in range(len(lines) - 1, -1, -1):
        line = lines[start]
        if not line.startswith("{") and not line.strip().startswith("{"):
            continue
        candidates = [line.strip()]
        if line.startswith("{"):
            candidates.append("\n".join(lines[start:]))
        for candidate in candidates:
            try:
                value = json.loads(candidate)
            except ValueError:
                continue
            if isinstance(value, dict) and isinstance(value.get("outcome"), str) and value["outcome"]:
                return cast(dict[str, Any], value)
    return None


def pr_url_of(result: dict[str, Any]) -> str | None:
    """`pr_url`, or the `url` of a `pr` object (what `goresolve resolve --json` prints)."""
    url = result.get("pr_url")
    if url is None and isinstance(result.get("pr"), dict):
        url = result["pr"].get("url")
    return url if isinstance(url, str) and url else None


def compact_result(result: dict[str, Any]) -> str:
    """The result line, cut to what a termination message can hold (outcome, cost, PR, reason)."""
    keep = {k: result[k] for k in ("outcome", "cost_usd", "reason") if k in result}
    if (url := pr_url_of(result)) is not None:
        keep["pr_url"] = url
    line = json.dumps(keep, separators=(",", ":"), ensure_ascii=False)
    return line if len(line.encode()) <= _MAX_RESULT_BYTES else json.dumps({"outcome": str(result["outcome"])[:200]})


def reason_of(result: dict[str, Any] | None) -> str | None:
    """The agent's own reason (why it handed off or failed), cut to a ledger line; None without one."""
    value = result.get("reason") if result else None
    return value[:500] if isinstance(value, str) and value else None


def cost_of(result: dict[str, Any]) -> float | None:
    value = result.get("cost_usd")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class Ledger:
    """Append-only JSON lines of finished runs, each line written and fsynced in one call."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def record(self, run: RunRecord) -> None:
        """Append `run`. Raises OSError when the file cannot be written."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(asdict(run), ensure_ascii=False, sort_keys=True) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def runs(self) -> list[RunRecord]:
        """Every recorded run, oldest first (a torn last line from a crash is skipped)."""
        if not self.path.exists():
            return []
        out: list[RunRecord] = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(RunRecord(**json.loads(line)))
            except (ValueError, TypeError):
                continue
        return out
