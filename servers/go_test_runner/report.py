"""The structured result of a `go test -json` run, as returned to the model.

Only what a reader acts on is kept: failing tests with their failure lines (not the whole log),
panics with the first stack frame inside the repository, data races with both accesses, build
errors as file:line:col, the tests that were running when time ran out, and a one-paragraph
`summary`. Passing tests are counted, not listed.
"""

from __future__ import annotations

import bisect
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

PackageStatus = Literal["ok", "fail", "build_failed", "no_test_files", "timeout", "incomplete"]
TestStatus = Literal["pass", "fail", "skip", "timeout", "running"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Frame(_Model):
    """One stack frame; `file` is relative to the repository when the frame is inside it."""

    function: str
    file: str
    line: int
    in_repo: bool


class Panic(_Model):
    package: str
    test: str | None = Field(description="The test that panicked, or None for a panic outside any test.")
    message: str
    frame: Frame | None = Field(description="First stack frame inside the repository (where to look).")


class RaceAccess(_Model):
    access: str = Field(description='E.g. "Read at 0x00c000018258 by goroutine 8".')
    frames: list[Frame] = Field(description="Innermost frames first; in-repository frames preferred, at most 3.")


class DataRace(_Model):
    package: str
    test: str | None
    current: RaceAccess
    previous: RaceAccess


class BuildError(_Model):
    package: str
    file: str
    line: int
    column: int | None
    message: str


class TestResult(_Model):
    __test__: ClassVar[bool] = False  # not a pytest class, despite the name
    package: str
    name: str = Field(description="Full test name; subtests as Parent/sub.")
    status: TestStatus
    elapsed_s: float | None = None
    output: list[str] = Field(default_factory=list[str], description="The lines that matter, not the whole log.")
    output_truncated: bool = False


class PackageResult(_Model):
    name: str
    status: PackageStatus
    elapsed_s: float | None = None
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    output: list[str] = Field(default_factory=list[str], description="Package-level lines that matter.")


class TestReport(_Model):
    """Everything one `go test -json` run said, reduced to what a reader acts on."""

    __test__: ClassVar[bool] = False

    ok: bool = Field(description="True when every package passed or had no test files, and no test failed.")
    summary: str = Field(description="One paragraph a person can read in ten seconds.")
    packages: list[PackageResult]
    tests: list[TestResult] = Field(description="Failed, timed-out and still-running tests (passing ones are counted).")
    panics: list[Panic] = Field(default_factory=list[Panic])
    races: list[DataRace] = Field(default_factory=list[DataRace])
    build_errors: list[BuildError] = Field(default_factory=list[BuildError])
    timed_out: bool = Field(default=False, description="go test's own -timeout fired, or the run was killed.")
    running_at_timeout: list[str] = Field(default_factory=list[str])
    output_truncated: bool = Field(default=False, description="Some output was dropped by the caps.")
    tests_omitted: int = Field(
        default=0, description="Failed tests past the parser's cap: counted in the packages, not listed."
    )


def _where(frame: Frame | None) -> str:
    return f" at {frame.file}:{frame.line}" if frame is not None else ""


def _leaf_failures(tests: list[TestResult]) -> list[TestResult]:
    failed = [t for t in tests if t.status == "fail"]
    names = sorted(t.name for t in failed)

    def has_subtest(name: str) -> bool:  # the first name after `name/` in sorted order starts with it
        i = bisect.bisect_left(names, name + "/")
        return i < len(names) and names[i].startswith(name + "/")

    return [t for t in failed if not has_subtest(t.name)]


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def merge_reports(reports: list[TestReport]) -> TestReport:
    """The reports of one call's runs (one per module) as one report, summarized again."""
    if len(reports) == 1:
        return reports[0]
    merged = TestReport(
        ok=all(r.ok for r in reports),
        summary="",
        packages=[p for r in reports for p in r.packages],
        tests=[t for r in reports for t in r.tests],
        panics=[p for r in reports for p in r.panics],
        races=[x for r in reports for x in r.races],
        build_errors=[b for r in reports for b in r.build_errors],
        timed_out=any(r.timed_out for r in reports),
        running_at_timeout=[t for r in reports for t in r.running_at_timeout],
        output_truncated=any(r.output_truncated for r in reports),
        tests_omitted=sum(r.tests_omitted for r in reports),
    )
    return merged.model_copy(update={"summary": summarize(merged)})


def summarize(report: TestReport) -> str:
    """The one-paragraph summary of a report (its `summary` field is filled from this)."""
    by_status: dict[str, int] = {}
    for p in report.packages:
        by_status[p.status] = by_status.get(p.status, 0) + 1
    words = {
        "ok": "ok",
        "fail": "failed",
        "build_failed": "did not build",
        "no_test_files": "had no test files",
        "timeout": "timed out",
        "incomplete": "did not finish",
    }
    counts = ", ".join(f"{n} {words[s]}" for s, n in by_status.items())
    passed = sum(p.passed for p in report.packages)
    parts = [f"{len(report.packages)} package(s): {counts or 'none'}; {passed} test(s) passed."]
    leaves = _leaf_failures(report.tests)
    if leaves:
        shown = []
        for t in leaves[:3]:
            lines = [line for line in t.output if line.strip()]
            key = next((line for line in lines if line.startswith("panic: ")), lines[-1] if lines else "")
            shown.append(f"{t.name} ({_clip(key, 90)})" if key else t.name)
        more = f" and {len(leaves) - 3} more" if len(leaves) > 3 else ""
        parts.append(f"{len(leaves)} test(s) failed: {'; '.join(shown)}{more}.")
    for panic in report.panics[:2]:
        who = panic.test or panic.package
        parts.append(f"{who} panicked: {_clip(panic.message, 80)}{_where(panic.frame)}.")
    for race in report.races[:2]:
        sides = []
        for access in (race.current, race.previous):
            kind = access.access.split(" at ")[0].lower()
            frame = access.frames[0] if access.frames else None
            sides.append(f"{kind} at {frame.file}:{frame.line}" if frame else kind)
        parts.append(f"Data race in {race.test or race.package}: {' vs. '.join(sides)}.")
    setup = [p for p in report.packages if p.status == "build_failed" and p.output]
    if setup and not report.build_errors:
        parts.append(f"Setup failed for {setup[0].name}: {_clip(setup[0].output[0], 120)}.")
    if report.build_errors:
        first = report.build_errors[0]
        more = f" (+{len(report.build_errors) - 1} more)" if len(report.build_errors) > 1 else ""
        col = f":{first.column}" if first.column is not None else ""
        parts.append(f"Build error: {first.file}:{first.line}{col}: {_clip(first.message, 100)}{more}.")
    if report.timed_out:
        running = ", ".join(report.running_at_timeout[:5]) or "no test in particular"
        parts.append(f"Timed out while running {running}.")
    if report.tests_omitted:
        parts.append(f"{report.tests_omitted} more failed test(s) not listed (result size cap).")
    if report.output_truncated:
        parts.append("Some output was truncated.")
    return " ".join(parts)
