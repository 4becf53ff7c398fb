"""What the two tools return: a result with a summary first, then the structured detail."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from servers.go_test_runner.build_diag import Diagnostic
from servers.go_test_runner.confinement import SandboxReport
from servers.go_test_runner.report import TestReport


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Timings(_Model):
    queue_wait_s: float = Field(description="Time spent waiting for a free slot (bounded concurrency).")
    setup_s: float = Field(description="Mirror fetch, worktree, patch, module download.")
    run_s: float = Field(description="go test / go build + vet.")
    total_s: float

    @classmethod
    def of(cls, queue_wait_s: float, setup_s: float, run_s: float, total_s: float) -> Timings:
        return cls(
            queue_wait_s=round(queue_wait_s, 3),
            setup_s=round(setup_s, 3),
            run_s=round(run_s, 3),
            total_s=round(total_s, 3),
        )


class RunResult(_Model):
    """Result of `run_tests`."""

    repo: str
    ref: str
    commit: str
    ok: bool = Field(description="Every selected package passed (or had no test files).")
    summary: str
    report: TestReport
    go_errors: list[str] = Field(description="What the go command itself printed on stderr (last lines).")
    exit_code: int | None = Field(description="go test's exit code; None when killed.")
    killed: bool = Field(description="The hard timeout fired and the process group was killed.")
    census: list[str] = Field(
        default_factory=list[str],
        description=(
            "Problems of the test census: base tests a patched run did not report as they ran before, or that pass "
            "only with the patch's new test files; empty: none."
        ),
    )
    dependents: list[str] = Field(
        default_factory=list[str],
        description="Packages tested because their tests depend on the named ones (with `dependents`), nearest first.",
    )
    dependents_not_tested: int = Field(
        default=0, description="More packages whose tests depend on the named ones, past the runner's limit."
    )
    output_bytes: int
    sandbox: SandboxReport
    timings: Timings


class BuildResult(_Model):
    """Result of `check_build`."""

    repo: str
    ref: str
    commit: str
    ok: bool
    summary: str
    diagnostics: list[Diagnostic]
    sandbox: SandboxReport
    timings: Timings
