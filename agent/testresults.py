"""Reading go-test-runner's `run_tests` results: pass/fail, the failures with their first line, and a
short text for the model (status lines carry timings, so they are left out: requests stay reproducible)."""

from __future__ import annotations

from typing import Any

from agent.handoff import Failure
from agent.servers import ToolOutcome

_GO_TEST_NOISE = ("=== RUN", "=== PAUSE", "=== CONT", "--- FAIL", "--- PASS", "--- SKIP", "FAIL", "PASS", "ok ")


def report_of(outcome: ToolOutcome) -> dict[str, Any]:
    return (outcome.structured or {}).get("report") or {}


def tests_ok(outcome: ToolOutcome) -> bool:
    """The run's `ok`, and nothing in the result that contradicts it: a census problem, a failed test, a
    package that did not pass (a forged report can leave `ok` true on an older server)."""
    structured = outcome.structured or {}
    report = report_of(outcome)
    if not structured.get("ok") or structured.get("census") or report.get("ok") is False:
        return False
    if any(t.get("status") in ("fail", "timeout", "running") for t in report.get("tests") or []):
        return False
    return all(
        p.get("status", "ok") in ("ok", "no_test_files") and not p.get("failed") for p in report.get("packages") or []
    )


def tests_ran(outcome: ToolOutcome) -> bool:
    """Whether any test passed in the run: go-test-runner counts passing tests per package (it lists only the
    failing ones), and `go test -run` matching nothing passes with a count of 0."""
    return any(p.get("passed") for p in report_of(outcome).get("packages") or [])


def build_failed(outcome: ToolOutcome) -> bool:
    return bool(report_of(outcome).get("build_errors"))


def failures_of(outcome: ToolOutcome) -> list[Failure]:
    report = report_of(outcome)
    out = [
        Failure(str(t.get("name")), str(t.get("package")), first_line(t.get("output") or []))
        for t in report.get("tests") or []
        if t.get("status") in ("fail", "timeout", "running")
    ]
    for b in report.get("build_errors") or []:
        out.append(Failure("(build)", str(b.get("package")), f"{b.get('file')}:{b.get('line')}: {b.get('message')}"))
    return out


def first_line(lines: list[Any]) -> str:
    for line in lines:
        text = str(line).strip()
        if text and not text.startswith(("=== RUN", "--- FAIL", "FAIL", "=== CONT", "=== PAUSE")):
            return text
    return str(lines[0]).strip() if lines else ""


def render_tests(outcome: ToolOutcome) -> str:
    if outcome.structured is None:
        return f"error: {outcome.text}"
    report = report_of(outcome)
    lines = [str(outcome.structured.get("summary") or report.get("summary") or "")]
    for f in failures_of(outcome):
        lines.append(f"FAIL {f.test} ({f.package}): {f.first_line}")
    for t in report.get("tests") or []:
        for line in (t.get("output") or [])[:12]:
            if not str(line).lstrip().startswith(_GO_TEST_NOISE):  # status lines carry timings: not reproducible
                lines.append(f"    {line}")
    for p in report.get("panics") or []:
        lines.append(f"panic in {p.get('test')}: {p.get('message')} at {p.get('frame')}")
    return "\n".join(lines)
