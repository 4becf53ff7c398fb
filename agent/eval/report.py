"""Figures and the Markdown table of an eval run."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median

from agent.eval.tasks import TaskResult


@dataclass(frozen=True)
class Summary:
    total: int
    valid: int
    resolved: int
    escalated: int
    tampering_refused: int
    errors: int
    localization_hits: int
    localization_known: int
    median_wall_s: float | None
    total_tokens: int
    total_cost_usd: float

    def lines(self, mode: str) -> list[str]:
        """The headline figures, one per line."""
        n = self.total or 1
        if mode == "oracle":
            return [f"eval oracle: {self.valid} valid / {self.total} tasks", f"errors: {self.errors}"]
        loc = f"{self.localization_hits}/{self.localization_known}" if self.localization_known else "n/a"
        return [
            f"resolve rate: {self.resolved}/{self.total} ({self.resolved / n:.0%})",
            f"escalation rate: {self.escalated}/{self.total} ({self.escalated / n:.0%})",
            f"tampering refused: {self.tampering_refused}",
            f"localization hit: {loc}",
            f"errors: {self.errors}",
            f"tokens: {self.total_tokens}, cost: ${self.total_cost_usd:.4f}",
        ]


def summarize(results: list[TaskResult]) -> Summary:
    known = [r for r in results if r.localization_hit is not None]
    walls = [r.wall_s for r in results]
    return Summary(
        total=len(results),
        valid=sum(r.outcome == "valid" for r in results),
        resolved=sum(r.outcome == "resolved" for r in results),
        escalated=sum(r.outcome == "escalated" for r in results),
        tampering_refused=sum(r.outcome == "tampering_refused" for r in results),
        errors=sum(r.outcome == "error" for r in results),
        localization_hits=sum(bool(r.localization_hit) for r in known),
        localization_known=len(known),
        median_wall_s=round(median(walls), 2) if walls else None,
        total_tokens=sum(r.tokens or 0 for r in results),
        total_cost_usd=round(sum(r.cost_usd or 0.0 for r in results), 6),
    )


def _cell(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown(results: list[TaskResult], mode: str) -> str:
    """A results table plus the headline figures, as Markdown."""
    head = ["task", "outcome", "fail→pass", "pass→pass", "localized", "tool calls", "tokens", "cost $", "wall s"]
    rows = [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in results:
        cells = [r.instance_id, r.outcome, r.fail_to_pass_ok, r.pass_to_pass_ok, r.localization_hit,
                 r.tool_calls, r.tokens, r.cost_usd, r.wall_s]  # fmt: skip
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    summary = summarize(results)
    figures = "\n".join(f"- {line}" for line in summary.lines(mode))
    notes = "\n".join(f"- {r.instance_id}: {_cell(r.detail)}" for r in results if r.outcome in ("invalid", "error"))
    text = f"# goresolve eval ({mode})\n\n{figures}\n\n" + "\n".join(rows) + "\n"
    return text + (f"\n## Not valid or failed\n\n{notes}\n" if notes else "")
