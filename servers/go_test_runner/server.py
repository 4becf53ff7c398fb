"""go-test-runner: run `go test` on a patch, safely, and say exactly what failed.

Three tools, all scoped `tests:run` and confined to the repositories policy grants the caller:
`run_tests` (a throwaway worktree at a ref, the patch applied, `go test -json`, a structured
report), `check_build` (`go build` + `go vet` diagnostics, invented imports flagged as
`unknown_import`) and `check_patch` (the patch policy's verdict, nothing run). Payloads are
validated strictly before anything runs; every patch is checked against the patch policy on the
diff `git apply` produced; test code runs sandboxed (see sandbox.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from servers.common.app import Platform, current_caller
from servers.common.errors import AccessDenied
from servers.common.logging import get_logger
from servers.common.patch_policy import PatchVerdict
from servers.common.policy import Policies
from servers.common.tools import ToolSpec
from servers.go_test_runner.payload import MAX_TIMEOUT_S, CheckBuildRequest, RunTestsRequest, validate_request
from servers.go_test_runner.results import BuildResult, RunResult
from servers.go_test_runner.runner import Runner
from servers.go_test_runner.settings import GoTestRunnerSettings

log = get_logger(__name__)

INSTRUCTIONS = (
    "Runs go test and go build/vet on a repository at a ref, optionally with a unified diff applied. "
    "Patches that weaken existing tests or touch protected paths are refused. Results start with a "
    "one-paragraph summary; failing tests come with their failure lines, panics and races with locations."
)

RepoName = Annotated[str, Field(min_length=1, max_length=100, description="Repository name from policy.")]
Ref = Annotated[str, Field(min_length=1, max_length=200, description="Branch, tag or commit to test.")]
Packages = Annotated[
    list[str],
    Field(
        min_length=1,
        max_length=50,
        description=(
            "Import paths or patterns inside the repository: ./..., ./internal/auth, example.com/mod/pkg. A module "
            "below the root (its own go.mod) is named by its directory, ./tools/..., and tested in its own directory."
        ),
    ),
]
Patch = Annotated[
    str | None, Field(max_length=10_000_000, description="Unified diff (git diff format) to apply before running.")
]


def _runner_spec(name: str, description: str) -> ToolSpec:
    # Nothing outside a throwaway worktree changes, so the tools count as read-only; they reach only
    # the repositories named in policy, and test code runs without network where the kernel allows.
    return ToolSpec.reader("tests:run", name=name, description=description, open_world=False)


def _check_access(repo: str) -> None:
    caller = current_caller()
    if caller.identity is None or repo not in caller.identity.repos:
        raise AccessDenied(f"repository {repo!r} is not available to this caller")


def build_server(settings: GoTestRunnerSettings, policies: Policies, runner: Runner) -> MCPServer[Any]:
    """Assemble the go-test-runner MCP server around `runner`."""
    platform = Platform.create("go-test-runner", settings, policies, instructions=INSTRUCTIONS)
    sandbox = runner.report(race=False)
    if sandbox.weak:
        log.warning("no bubblewrap sandbox on this host", notes=sandbox.notes, allowed=settings.allow_weak_sandbox)
    log.info("sandbox", weak=sandbox.weak, protections=sandbox.protections)

    @platform.tool(
        _runner_spec(
            "run_tests",
            "Run `go test -json` on packages of a repository at a ref, optionally after applying a patch. "
            "Returns a summary, per-package status, failing tests with their failure lines, panics (first "
            "frame in the repo), data races, build errors (file:line:col) and tests running at a timeout.",
        )
    )
    async def run_tests(
        repo: RepoName,
        ref: Ref,
        packages: Packages,
        patch: Patch = None,
        run: Annotated[str | None, Field(max_length=200, description="Test name pattern (go test -run).")] = None,
        flags: Annotated[
            list[str] | None,
            Field(
                max_length=8,
                description="Allowed: -race, -short, -failfast, -cover, -count=N, -shuffle=on|off|N, -timeout=D.",
            ),
        ] = None,
        timeout_s: Annotated[
            int | None, Field(ge=1, le=MAX_TIMEOUT_S, description="Hard timeout of the call (policy-capped).")
        ] = None,
        dependents: Annotated[
            bool,
            Field(
                description="Also test every package of the module whose code or tests import these, directly or "
                "not (found at the base, before the patch); `dependents` in the result lists them."
            ),
        ] = False,
    ) -> RunResult:
        payload = {"repo": repo, "ref": ref, "patch": patch, "packages": packages, "run": run}
        payload |= {"flags": flags or [], "timeout_s": timeout_s, "dependents": dependents}
        req = validate_request(RunTestsRequest, payload)
        _check_access(req.repo)
        return await runner.run_tests(req)

    @platform.tool(
        _runner_spec(
            "check_build",
            "Run `go build` and `go vet` on packages of a repository at a ref, optionally after applying a patch. "
            "Returns diagnostics (file, line, column, message, kind); an import of a package that does not "
            "exist has kind unknown_import.",
        )
    )
    async def check_build(repo: RepoName, ref: Ref, packages: Packages, patch: Patch = None) -> BuildResult:
        req = validate_request(CheckBuildRequest, {"repo": repo, "ref": ref, "patch": patch, "packages": packages})
        _check_access(req.repo)
        return await runner.check_build(req)

    @platform.tool(
        _runner_spec(
            "check_patch",
            "Check a unified diff against the patch policy at a ref without running anything: protected "
            "paths, edits of existing tests, and tampering that would make failing tests look green (exits "
            "or test-flag changes at package init, a new TestMain, testing.Testing() in code, changed test "
            "helpers or fixtures, tests shadowed by name). Returns allowed and one reason per problem "
            "(rule, path, line, detail); run_tests refuses exactly the patches this refuses.",
        )
    )
    async def check_patch(repo: RepoName, ref: Ref, patch: Annotated[str, Field(min_length=1, max_length=10_000_000,
            description="Unified diff (git diff format) to check.")]) -> PatchVerdict:  # fmt: skip
        req = validate_request(CheckBuildRequest, {"repo": repo, "ref": ref, "patch": None, "packages": ["./..."]})
        _check_access(req.repo)
        return await runner.check_patch(req, patch)

    return platform.finish()
