"""The Markdown a developer reads in ten seconds when a run hands over: no raw JSON, one table.

Sections: why it stopped (with owner, trace id, run id, cost), attempted fixes (attempt, functions
touched, tests run, result), the tests that still fail with their first failure line, and the
hypothesized root cause (from a final model step, or `deterministic_hypothesis` from the run log).
Every list is cut to its first few entries with "+N more", and the whole to MAX_HANDOFF_BYTES. It is published
(a draft pull request's body, an issue comment), so every credential in it is removed first, as the model's gateway
removes them (`credentials.redact_credentials`): test output and the model's words can hold one; and so is every
control character (`without_controls`, which `goresolve resolve`'s lines also use): an escape sequence in the model's
words would act on the terminal of whoever reads the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.llm.errors import without_controls as without_controls
from credentials import redact_credentials


@dataclass
class Failure:
    test: str
    package: str
    first_line: str


NO_TEST_RAN = "no test ran"
"""An attempt whose test run passed without running a test (a -run pattern that matched none)."""
NOT_TESTED = "not tested"
"""An attempt whose test run never reached go test (its patch did not apply, a package was refused): the patch is
unchecked by the test runner's policy too."""


@dataclass
class Attempt:
    number: int
    functions: list[str]
    tests: str
    result: str  # "pass", "2 failing", "build failed", "refused by policy", NO_TEST_RAN, NOT_TESTED
    failures: list[Failure] = field(default_factory=list[Failure])
    patch: str = ""
    refused: bool = False

    @property
    def passed(self) -> bool:
        return self.result == "pass"


def one_line(text: str, limit: int) -> str:
    """One line without credentials or control characters, at most `limit` characters."""
    text = " ".join(redact_credentials(without_controls(text)).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cell(text: str, limit: int = 120) -> str:
    """One table cell: no credential, no pipes, no newlines, no raw JSON braces at the edges."""
    return one_line(text.replace("|", "\\|"), limit)


def _code(text: str) -> str:
    return "`" + text.replace("`", "'") + "`" if text else "-"


def as_code(text: str, limit: int) -> str:
    """Text someone else wrote (a ticket's title, the model's words) as one code span: no mention, link, image,
    HTML or comment in it acts where it is published, and it still reads as written (one line, no credential,
    at most `limit` characters; a backtick, which could end the span, becomes a quote)."""
    return _code(one_line(text, limit))


def _listed(names: list[str], shown: int = 5) -> list[str]:
    return _more([_code(_cell(n, 60)) for n in names[:shown]], len(names))


def deterministic_hypothesis(attempts: list[Attempt], reason: str) -> str:
    """A root-cause guess built only from the run log (used when the model is unavailable or out of budget)."""
    if not attempts:
        return (
            f"No test-driven attempt was made before the run stopped ({reason}). Start from the ticket's failing tests."
        )
    last = attempts[-1]
    tests = sorted({f.test for a in attempts for f in a.failures})
    touched = sorted({fn for a in attempts for fn in a.functions})
    parts = [f"{len(attempts)} attempt(s) changed {', '.join(_listed(touched)) or 'nothing'}."]
    if last.refused:
        parts.append(
            "The last patch was refused by the patch policy: the fix must not change tests or protected paths."
        )
    if tests:
        same = all({f.test for f in a.failures} == {f.test for f in attempts[0].failures} for a in attempts)
        parts.append(
            f"{', '.join(_listed(tests))} kept failing"
            + (
                " the same way after every attempt, so the cause is probably outside the functions touched."
                if same
                else "."
            )
        )
        if last.failures:
            parts.append(f"Last failure: {_code(_cell(last.failures[0].first_line, 160))}.")
    return " ".join(parts)


MAX_HANDOFF_BYTES = 8192  # a ten-second read, and far below what github-pr takes as a pull request's body
FUNCTIONS_SHOWN = 3  # per attempt
ATTEMPTS_SHOWN = 5  # the latest
FAILURES_SHOWN = 10


def _more(shown: list[str], total: int) -> list[str]:
    return [*shown, f"+{total - len(shown)} more"] if total > len(shown) else shown


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
    model_hypothesis: bool = True,
) -> str:
    """The hand-off, at most MAX_HANDOFF_BYTES of UTF-8: a few functions per attempt, the latest attempts, ten failing
    tests, each with "+N more"; past the cap, lines of the middle sections give way first, then the end.

    The title, the reason and a `model_hypothesis` (the model's words, not `deterministic_hypothesis`'s) are shown
    as code spans (`as_code`): what a ticket's author or the model wrote there cannot mention, link or embed."""
    still = attempts[-1].failures if attempts else []
    head = [
        f"## goresolve hand-off: {ticket} — {as_code(title, 100)}",
        "",
        f"**Why it stopped:** {as_code(reason, 300)}  ",
        f"**Owner:** @{owner} · **Trace:** `{trace_id}` · **Run:** `{run_id}` · **Cost:** ${cost_usd:.4f}",
        "",
    ]
    middle = ["### Attempted fixes", "", "| # | Functions touched | Tests run | Result |", "|---|---|---|---|"]
    if len(attempts) > ATTEMPTS_SHOWN:
        middle.append(f"| … | {len(attempts) - ATTEMPTS_SHOWN} earlier attempt(s) not shown | | |")
    for a in attempts[-ATTEMPTS_SHOWN:]:
        shown = [_code(_cell(f, 60)) for f in a.functions[:FUNCTIONS_SHOWN]]
        touched = ", ".join(_more(shown, len(a.functions))) or "-"
        middle.append(f"| {a.number} | {touched} | {_code(_cell(a.tests, 80))} | {_cell(a.result, 80)} |")
    if not attempts:
        middle.append("| - | - | - | no attempt was tested |")
    middle += ["", "### Still failing", ""]
    if still:
        middle += [
            f"- {_code(_cell(f.test, 80))} ({_code(_cell(f.package, 80))}): {_code(_cell(f.first_line, 160))}"
            for f in still[:FAILURES_SHOWN]
        ]
        if len(still) > FAILURES_SHOWN:
            middle.append(f"- +{len(still) - FAILURES_SHOWN} more")
    elif not attempts:
        middle.append("- unknown: no patch was tested (the ticket's own failing tests, if it names any, still fail)")
    else:
        middle.append(
            "- nothing recorded as failing"
            + (" (the last patch was refused before tests ran)" if attempts[-1].refused else "")
        )
    tail = [
        "",
        "### Hypothesized root cause",
        "",
        *(["The model's own words, not checked by a test run:", ""] if model_hypothesis else []),
        as_code(hypothesis, 1200) if model_hypothesis else one_line(hypothesis, 1200),
        "",
    ]
    return _within(head, middle, tail, MAX_HANDOFF_BYTES)


def _size(lines: list[str]) -> int:
    return len(redact_credentials("\n".join(lines)).encode())


def _within(head: list[str], middle: list[str], tail: list[str], limit: int) -> str:
    """`head + middle + tail` joined, within `limit` bytes: the middle's last lines give way to one line saying how
    many were cut; if head and tail alone are too long, the text is cut at a character boundary."""
    cut = 0
    while middle and _size([*head, *middle, *tail]) > limit:
        middle.pop()
        cut += 1
    if cut:
        middle.append(f"- … {cut} more line(s) cut to keep the hand-off short; the run record has them")
    text = redact_credentials("\n".join([*head, *middle, *tail]))  # a shape no single cell showed whole
    data = text.encode()
    if len(data) <= limit:
        return text
    note = "\n… (cut to keep the hand-off short)\n"
    return data[: limit - len(note.encode())].decode(errors="ignore") + note


def render_minimal_handoff(*, ticket: str, title: str, reason: str, owner: str, trace_id: str, run_id: str) -> str:
    """The hand-off's first lines only, for a draft whose full hand-off github-pr refused: where to find the rest."""
    return "\n".join(
        [
            f"## goresolve hand-off: {ticket} — {as_code(title, 100)}",
            "",
            f"**Why it stopped:** {as_code(reason, 300)}  ",
            f"**Owner:** @{owner} · **Trace:** `{trace_id}` · **Run:** `{run_id}`",
            "",
            f"The full hand-off (attempts, failing tests, root cause) is saved as handoff.md in the record of run "
            f"`{run_id}`; `goresolve trace {run_id}` shows the run.",
            "",
        ]
    )
