"""The Markdown a developer reads in ten seconds when a run hands over: no raw JSON, one table.

Sections: why it stopped (with owner, trace id, run id, cost), attempted fixes (attempt, functions
touched, tests run, result), the tests that still fail with their first failure line, and the
hypothesized root cause (from a final model step, or `deterministic_hypothesis` from the run log).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass
class Failure:
    test: str
    package: str
    first_line: str


@dataclass
class Attempt:
    number: int
    functions: list[str]
    tests: str
    result: str  # "pass", "2 failing", "build failed", "refused by policy"
    failures: list[Failure] = field(default_factory=list[Failure])
    patch: str = ""
    refused: bool = False

    @property
    def passed(self) -> bool:
        return self.result == "pass"


def _cell(text: str, limit: int = 120) -> str:
    """One table cell: no pipes, no newlines, no raw JSON braces at the edges."""
    text = re.sub(r"\s+", " ", text).replace("|", "\\|").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _code(text: str) -> str:
    return "`" + text.replace("`", "'") + "`" if text else "-"


def deterministic_hypothesis(attempts: list[Attempt], reason: str) -> str:
    """A root-cause guess built only from the run log (used when the model is unavailable or out of budget)."""
    if not attempts:
        return (
            f"No test-driven attempt was made before the run stopped ({reason}). Start from the ticket's failing tests."
        )
    last = attempts[-1]
    tests = sorted({f.test for a in attempts for f in a.failures})
    touched = sorted({fn for a in attempts for fn in a.functions})
    parts = [f"{len(attempts)} attempt(s) changed {', '.join(_code(t) for t in touched) or 'nothing'}."]
    if last.refused:
        parts.append(
            "The last patch was refused by the patch policy: the fix must not change tests or protected paths."
        )
    if tests:
        same = all({f.test for f in a.failures} == {f.test for f in attempts[0].failures} for a in attempts)
        parts.append(
            f"{', '.join(_code(t) for t in tests)} kept failing"
            + (
                " the same way after every attempt, so the cause is probably outside the functions touched."
                if same
                else "."
            )
        )
        if last.failures:
            parts.append(f"Last failure: {_code(_cell(last.failures[0].first_line, 160))}.")
    return " ".join(parts)


def render_handoff(
    *,
    ticket: str,
    title: str,
    reason: str,
    attempts: list[Attempt],
    hypothesis: str,
    owner: str,
    trace_id: str,
    run_id: str,
    cost_usd: float,
) -> str:
    still = attempts[-1].failures if attempts else []
    lines = [
        f"## goresolve hand-off: {ticket} — {' '.join(title.split())[:100]}",
        "",
        f"**Why it stopped:** {_cell(reason, 300)}  ",
        f"**Owner:** @{owner} · **Trace:** `{trace_id}` · **Run:** `{run_id}` · **Cost:** ${cost_usd:.4f}",
        "",
        "### Attempted fixes",
        "",
        "| # | Functions touched | Tests run | Result |",
        "|---|---|---|---|",
    ]
    if attempts:
        for a in attempts:
            touched = ", ".join(_code(_cell(f, 60)) for f in a.functions) or "-"
            lines.append(f"| {a.number} | {touched} | {_code(_cell(a.tests, 80))} | {_cell(a.result, 80)} |")
    else:
        lines.append("| - | - | - | no attempt was tested |")
    lines += ["", "### Still failing", ""]
    if still:
        lines += [f"- {_code(f.test)} ({_cell(f.package, 80)}): {_code(_cell(f.first_line, 200))}" for f in still]
    else:
        lines.append(
            "- nothing recorded as failing"
            + (" (the last patch was refused before tests ran)" if attempts and attempts[-1].refused else "")
        )
    lines += ["", "### Hypothesized root cause", "", _cell(hypothesis, 1200), ""]
    return "\n".join(lines)
