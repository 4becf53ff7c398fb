"""The runner: a validated request in, a structured result out. The tools of server.py call this.

    run_tests:   policy check -> queue slot -> mirror + worktree at ref -> git apply -> go mod download
                 (no test code runs) -> sandboxed `go test -json` parsed while it streams -> the base's
                 tests again without the patch's new test files, when it adds any -> cleanup
    check_build: the same checkout, then sandboxed `go build` and `go vet`

A patch's new `_test.go` files share a test binary with the base's tests, so they can make those
look green (forged report framing, a helper's code rewritten, state set in `init`). When a patch adds
test files to packages the call tests, and some base test of those packages passed, the runner runs
those packages a second time, in the same sandbox and worktree, with the added test files deleted (the
patched code and the changed existing test files stay), the call's flags and `-run` pattern, each
module from its own directory, after every module's full run and within what is left of the call's
timeout. The base listing of the census is reused (nothing more is listed); the second run is never
recorded as an unpatched run. The result is the full run's report (the patch's new tests included);
the second run only adds `base_tests_differ` census problems (census.differ) and its time to
`timings.run_s`. A patch without new test files, or with new test files only in packages not tested or
without base tests, runs once; `runs_without_new_tests` counts the second runs.

Every way a call fails before producing a result is a `ToolFailure` (bad payload, refused patch,
patch that does not apply, unknown repo or ref, runner busy).
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import IO, Any

from servers.common.errors import ConfigError, InvalidInput, UpstreamFailure
from servers.common.gitenv import GitFailed
from servers.common.locks import LockHeld, take_lock
from servers.common.patch_policy import PatchVerdict, changed_paths, check_patch
from servers.common.policy import Policies
from servers.common.tamper.guard import owning_modules
from servers.common.tracing import current_trace_id
from servers.go_test_runner import build_diag, census, dependents, gitops, listing
from servers.go_test_runner.confinement import (
    GoEnv,
    Limits,
    SandboxReport,
    Target,
    check_packages_inside,
    module_path,
    module_targets,
    nested_modules,
)
from servers.go_test_runner.doctor import sandbox_report
from servers.go_test_runner.gotest_json import StreamParser, decode
from servers.go_test_runner.payload import CheckBuildRequest, RunTestsRequest, go_test_args
from servers.go_test_runner.repo_files import check_module_files
from servers.go_test_runner.report import TestReport, merge_reports
from servers.go_test_runner.results import BuildResult, RunResult, Timings
from servers.go_test_runner.sandbox import CacheLimits, Outcome, RunPaths, Sandbox, host_go_env, host_user
from servers.go_test_runner.settings import GoTestRunnerSettings


@dataclass(frozen=True)
class _Checkout:
    path: Path
    commit: str
    env: dict[str, str]
    setup_s: float
    paths: RunPaths
    targets: list[Target]  # the modules the call's packages are in, and how go names them in each
    added_tests: tuple[str, ...] = ()  # the `_test.go` files the applied patch adds (repository-relative)

    def go(self, go: str, target: Target, *, host: bool = False) -> list[str]:
        """`go`, made to run in `target`'s module directory (`-C`), inside the sandbox or on the host."""
        if not target.module:
            return [go]
        inside = f"{self.paths.inside}/{target.module}"
        return [go, "-C", str(self.paths.worktree / target.module) if host else inside]

    @property
    def skipped(self) -> list[str]:
        """The nested modules the call's `...` patterns passed over."""
        return sorted({m for t in self.targets for m in t.skipped})


@dataclass(frozen=True)
class _ModuleRun:
    """One module's `go test -json` in a call: its report, the process's outcome, the census's problems."""

    target: Target
    report: TestReport
    outcome: Outcome
    problems: list[census.Problem]
    tracker: census.Tracker


def _census_key(req: RunTestsRequest, co: _Checkout, target: Target) -> census.Key:
    """The key of a module's base test listing: the run that lists it and the run it judges share it."""
    return census.BaseCache.key(co.commit, req.packages, req.run, req.flags, target.module)


class WorkDirInUse(ConfigError):
    """Another live go-test-runner holds this work directory (its slots' worktrees would collide)."""


def lock_work_dir(work: Path) -> IO[str]:
    """An exclusive lock on `work` for this process's lifetime (released when the returned file closes).

    Two runners on one work directory reset and delete each other's slot worktrees and scratch
    directories, so the second one refuses to start rather than share.

    Raises:
        WorkDirInUse: another process (or another runner in this one) holds the lock.
    """
    try:
        return take_lock(work / "runner.lock")
    except LockHeld as held:
        raise WorkDirInUse(
            f"go-test-runner work_dir {work} is in use by another runner (pid {held.holder}); give each runner its "
            "own GORESOLVE_GO_TEST_RUNNER_WORK_DIR"
        ) from None


class Runner:
    """Bounded-concurrency runs of go test / go build on policy-named repositories."""

    def __init__(
        self, settings: GoTestRunnerSettings, policies: Policies, sandbox: Sandbox, go: str, goenv: GoEnv
    ) -> None:
        self.settings = settings
        self.sandbox = sandbox
        self._policy = policies.protected
        self._go = go
        work = settings.resolved_work_dir()
        self._work = work
        self._mirrors = gitops.Mirrors(work, policies.repos, settings.policy_dir.resolve(), settings.fetch_interval_s)
        self._goenv = goenv
        # Slot k always checks out at the same path (worktrees/<repo>/<k>), and in the bubblewrap
        # sandbox every slot sees its worktree at /src/<repo>: go's build cache keys compiled packages
        # on their directory, so all slots share what any of them built.
        # First in, first out: every idle slot is warmed at the last commit (`_warm_idle_slots`), so a
        # caller gets the slot idle longest, whose next sandboxes have had the most time to start; a
        # call right after another does not land on the slot still starting them.
        self._slots: asyncio.Queue[int] = asyncio.Queue()
        for k in range(settings.max_concurrency):
            self._slots.put_nowait(k)
        self._ready: dict[Path, str] = {}  # worktree -> the commit it was reset to after its last run
        self._nested: dict[str, dict[str, str | None]] = {}  # commit -> its nested modules (_nested_modules)
        self._waiting = 0
        self._cleanups: set[asyncio.Task[None]] = set()
        self._downloaded: set[str] = set()
        gocache = (settings.gocache or work / "gocache").resolve()
        self._static = census.StaticGuard(policies.protected, go, work / "bin", gocache, goenv.gomodcache)
        self._census = census.BaseCache()
        self.runs_without_new_tests = 0  # second `go test` runs of the base's tests (_without_new_tests)
        self._lock: IO[str] | None = None

    @classmethod
    def create(cls, settings: GoTestRunnerSettings, policies: Policies) -> Runner:
        """Find go and its caches, set up the sandbox (probing the host once), and build the runner.

        Raises:
            ConfigError: no go binary, or `sandbox_user` names no user.
            WorkDirInUse: another runner holds the work directory.
        """
        lock = lock_work_dir(settings.resolved_work_dir())
        try:
            sandbox, go, goenv = sandbox_for(settings)
            runner = cls(settings, policies, sandbox, go, goenv)
            runner._lock = lock
            runner.remove_leftovers()
        except BaseException:
            lock.close()
            raise
        return runner

    async def quiesce(self) -> None:
        """Wait for every background step, then let the sandboxes started ahead go and wait for their exit:
        nothing of this runner is left running (before its event loop ends)."""
        await self.drain()  # its slot resets may start sandboxes ahead
        self.sandbox.let_go_ahead()
        await self.sandbox.settle_all()

    async def shutdown(self) -> None:
        """`quiesce`, then release the work directory."""
        await self.quiesce()
        self.close()

    def close(self) -> None:
        """Release the work directory (a later runner may take it); the process exiting does the same.
        Sandboxes started ahead are killed."""
        self.sandbox.kill_ahead()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def remove_leftovers(self) -> None:
        """Delete worktrees and scratch directories a previous process left behind (the work directory is
        this runner's: see `lock_work_dir`). Their registrations in the mirrors are pruned on each
        mirror's first use (`gitops.Mirrors.resolve`)."""
        for leftover in ("worktrees", "scratch"):
            shutil.rmtree(self._work / leftover, ignore_errors=True)

    # --- the two operations -------------------------------------------------------------------------

    async def run_tests(self, req: RunTestsRequest) -> RunResult:
        """Run `go test -json` on `req.packages` at `req.ref` with `req.patch` applied: once per module the
        packages are in (a nested module from its own directory), in turn, within the call's timeout.

        Raises:
            InvalidInput: timeout over the policy ceiling, or the patch is refused by policy.
            NotFound: unknown repository or ref.
            Conflict: the patch does not apply (the message names the failing hunk).
            UpstreamFailure: the runner is busy, or git/go could not be started.
        """
        timeout = req.timeout_s or self.settings.default_timeout_s
        go_timeout = req.go_test_timeout_s()
        ceiling = self.settings.max_timeout_s
        if timeout > ceiling or (go_timeout is not None and go_timeout > ceiling):
            raise InvalidInput(f"timeout over the policy ceiling of {ceiling}s")
        self._check_policy(req.patch)
        self._require_sandbox()
        race = "-race" in req.flags
        started = time.monotonic()
        async with self._session(req) as (waited, co):
            deadline = time.monotonic() + timeout
            runs = [await self._test_module(req, co, target, deadline) for target in co.targets]
            differ, bare_s = await self._without_new_tests(req, co, runs, deadline)
        report = merge_reports([r.report for r in runs])
        problems = [p for r in runs for p in r.problems] + differ
        outcomes = [r.outcome for r in runs]
        killed = any(o.killed for o in outcomes)
        exit_code = None if killed else next((o.exit_code for o in outcomes if o.exit_code != 0), 0)
        sandbox = self.report(race=race)
        if any(o.truncated for o in outcomes):
            report = report.model_copy(update={"output_truncated": True})
        go_errors = _go_errors("\n".join(o.stderr for o in outcomes))
        summary = report.summary
        if not report.packages and go_errors:
            summary = f"go test did not run: {go_errors[0]}"
        if limit := next((o.limit for o in outcomes if o.limit), None):
            summary += f" Killed by the sandbox's watchdog: {limit}."
        elif killed:
            summary += f" Hard timeout after {timeout}s: every process of the run was killed."
        if skipped := co.skipped:
            more = len(skipped) - 5
            shown = ", ".join(skipped[:5]) + (f" and {more} more" if more > 0 else "")
            summary += (
                f" Not tested: the nested modules {shown} (each has its own go.mod; name one to test it, "
                f"e.g. ./{skipped[0]}/...)."
            )
        if found := sum(len(t.dependents) for t in co.targets):
            summary += (
                " 1 package was tested because its tests depend on the named ones."
                if found == 1
                else f" {found} packages were tested because their tests depend on the named ones."
            )
        if left := sum(t.dependents_left for t in co.targets):
            summary += (
                " 1 more package depends on them and was not tested (max_dependents)."
                if left == 1
                else f" {left} more packages depend on them and were not tested (max_dependents)."
            )
        if sandbox.weak:
            summary += " WEAK SANDBOX: test code was not confined by bubblewrap for this run."
        if problems:
            summary = f"{census.summary(problems)} {summary}"
        return RunResult(
            repo=req.repo,
            ref=req.ref,
            commit=co.commit,
            ok=report.ok and exit_code == 0 and not problems,
            summary=summary,
            report=report,
            go_errors=go_errors,
            exit_code=exit_code,
            killed=killed,
            census=[p.render() for p in problems],
            dependents=[d for t in co.targets for d in t.dependents],
            dependents_not_tested=sum(t.dependents_left for t in co.targets),
            output_bytes=sum(o.output_bytes for o in outcomes),
            sandbox=sandbox,
            timings=Timings.of(
                waited, co.setup_s, sum(o.elapsed_s for o in outcomes) + bare_s, time.monotonic() - started
            ),
        )

    async def _go_test(
        self, req: RunTestsRequest, co: _Checkout, target: Target, packages: list[str], deadline: float
    ) -> tuple[TestReport, census.Tracker, Outcome]:
        """`go test -json` of `packages` in one module of the call, within what is left of the call's time."""
        timeout = max(1.0, deadline - time.monotonic())
        alarm = int(timeout - min(self.settings.kill_grace_s, timeout / 4))
        wrapper = self.sandbox.test_exec(co.paths)
        argv = [*co.go(self._go, target), "test", "-json", *([f"-exec={wrapper}"] if wrapper else [])]
        argv += go_test_args(req, alarm, packages)
        parser, tracker, feed = stream_readers(co.paths.inside, target.module)
        outcome = await self.sandbox.run(
            argv,
            co.paths,
            env=co.env,
            timeout_s=timeout,
            on_line=feed,
            race="-race" in req.flags,
            tests=wrapper is not None,
        )
        return parser.finish(killed=outcome.killed), tracker, outcome

    async def _test_module(self, req: RunTestsRequest, co: _Checkout, target: Target, deadline: float) -> _ModuleRun:
        """`go test -json` in one module of the call, within what is left of the call's time."""
        report, tracker, outcome = await self._go_test(req, co, target, target.packages, deadline)
        key = _census_key(req, co, target)
        problems = self._census_problems(req, key, tracker, outcome.exit_code, outcome.killed)
        return _ModuleRun(target, report, outcome, problems, tracker)

    async def _without_new_tests(
        self, req: RunTestsRequest, co: _Checkout, runs: list[_ModuleRun], deadline: float
    ) -> tuple[list[census.Problem], float]:
        """The base's tests judged without the patch's new test files (module docstring): the packages the
        patch adds `_test.go` files to, run again with those files deleted, in each module whose full run
        passed some of their base tests; every such test must pass again (census.differ). Returns the
        problems and the seconds the second runs took; runs nothing when there is nothing to judge."""
        if not co.added_tests or not self._policy.test_census:
            return [], 0.0
        gained = packages_of(co.path, co.added_tests)
        todo: list[tuple[Target, census.BaseTests]] = []
        for run in runs:
            base = self._census.get(_census_key(req, co, run.target))
            if base is None or run.outcome.killed:
                continue  # no census for this module, or its run failed already
            judged = census.passed_base_tests(base, run.tracker, gained)
            if judged.tests:
                todo.append((run.target, judged))
        if not todo:
            return [], 0.0
        for rel in co.added_tests:
            (co.path / rel).unlink(missing_ok=True)
        problems: list[census.Problem] = []
        elapsed = 0.0
        for target, judged in todo:
            self.runs_without_new_tests += 1
            report, tracker, outcome = await self._go_test(req, co, target, sorted(judged.tests), deadline)
            unbuilt = {p.name for p in report.packages if p.status == "build_failed"}
            problems += census.differ(judged, tracker, killed=outcome.killed, unbuilt=unbuilt)
            elapsed += outcome.elapsed_s
        return problems, elapsed

    async def check_patch(self, req: CheckBuildRequest, patch: str) -> PatchVerdict:
        """The patch policy's verdict on `patch` at `req.ref`, with nothing run: the line rules on the
        text, then `git apply` in a worktree and the static guard on git's diff (as run_tests does).

        Raises:
            NotFound: unknown repository or ref.
            Conflict: the patch does not apply.
            UpstreamFailure: the runner is busy, or git/go could not be started.
        """
        verdict = check_patch(patch, self._policy)
        if not verdict.allowed:
            return verdict
        async with self._session(req) as (_, co):
            verdict = check_patch(patch, self._policy, repo_root=co.path)
            if not verdict.allowed:
                return verdict
            _, verdict = await self._apply_guarded(co, patch)
            return verdict

    async def _apply_guarded(self, co: _Checkout, patch: str) -> tuple[str, PatchVerdict]:
        """Apply `patch` to the checkout under the static guard; returns git's diff and the verdict on it. The
        analyzer reads every module the patch changes and the one whose tests run, before and after."""
        nested = await self._nested_modules(co.path, co.commit)
        modules = owning_modules(changed_paths(patch), nested) | {t.module for t in co.targets}
        before = await self._static.before_apply(co.path, co.commit, patch, modules)
        applied = await gitops.apply_patch(co.path, patch)
        return applied, await self._static.after_apply(co.path, applied, before, nested)

    def _census_problems(
        self, req: RunTestsRequest, key: census.Key, tracker: census.Tracker, exit_code: int | None, killed: bool
    ) -> list[census.Problem]:
        """The census of a finished run in one module: every base test reported (a killed run is failed
        already); `key` the module's base listing (census.BaseCache.key)."""
        base = self._census.get(key)
        if killed or not self._policy.test_census:
            return []
        if not req.patch:
            if base is None:
                # No listing yet at this commit: an unpatched run has nothing to guard against, and its
                # own stream, when complete, is the listing (no `go test -list` build for this call).
                listing = census.listing_of(tracker, exit_code=exit_code, flags=req.flags)
                if listing is not None:
                    self._census.put(key, listing)
                    self._census.record_unpatched(key, tracker)
                return []
            self._census.record_unpatched(key, tracker)
        elif base is None:
            return census.passed_with_failures(tracker, exit_code=exit_code)
        return census.check(
            base,
            tracker,
            exit_code=exit_code,
            count=census.count_of(req.flags),
            failfast="-failfast" in req.flags,
            ran_unskipped=self._census.ran_unskipped(key),
        )

    async def check_build(self, req: CheckBuildRequest) -> BuildResult:
        """`go build` then `go vet` on `req.packages` (in each module they are in); diagnostics with kinds
        (unknown_import, ...).

        Raises:
            InvalidInput: the patch is refused by policy.
            NotFound: unknown repository or ref.
            Conflict: the patch does not apply.
            UpstreamFailure: the runner is busy, or git/go could not be started.
        """
        self._check_policy(req.patch)
        self._require_sandbox()
        started = time.monotonic()
        timeout = self.settings.default_timeout_s
        async with self._session(req) as (waited, co):
            run_started = time.monotonic()
            found: dict[str, list[build_diag.Diagnostic]] = {"build": [], "vet": []}
            for target in co.targets:
                for phase in ("build", "vet"):
                    lines: list[str] = []
                    outcome = await self.sandbox.run(
                        [*co.go(self._go, target), phase, *target.packages],
                        co.paths,
                        env=co.env,
                        timeout_s=timeout,
                        on_line=lines.append,
                    )
                    if outcome.killed:
                        raise UpstreamFailure(f"go {phase} did not finish within {timeout}s")
                    text = "\n".join(lines) + "\n" + outcome.stderr
                    found[phase] += build_diag.parse_diagnostics(
                        text, phase=phase, root=co.paths.inside, module=target.module
                    )
            run_s = time.monotonic() - run_started
        diagnostics = build_diag.merge(found["build"], found["vet"])
        sandbox = self.report(race=False)
        summary = build_diag.summarize(diagnostics)
        if sandbox.weak:
            summary += " WEAK SANDBOX: the build was not confined by bubblewrap for this run."
        return BuildResult(
            repo=req.repo,
            ref=req.ref,
            commit=co.commit,
            ok=not diagnostics,
            summary=summary,
            diagnostics=diagnostics,
            sandbox=sandbox,
            timings=Timings.of(waited, co.setup_s, run_s, time.monotonic() - started),
        )

    # --- pieces -------------------------------------------------------------------------------------

    def _require_sandbox(self) -> None:
        """Fail closed: no bubblewrap sandbox, no run, unless the weak one is explicitly allowed.

        Raises:
            UpstreamFailure: the host cannot build the sandbox and `allow_weak_sandbox` is off.
        """
        if self.sandbox.strong or self.settings.allow_weak_sandbox:
            return
        why = "; ".join(self.sandbox.protections.problems) or "the sandbox is unavailable"
        raise UpstreamFailure(
            f"refusing to run: {why}. Fix the host (go-test-runner-mcp --check) or set "
            "GORESOLVE_GO_TEST_RUNNER_ALLOW_WEAK_SANDBOX=true to run without it."
        )

    def report(self, *, race: bool) -> SandboxReport:
        """How runs are confined on this host (part of every result)."""
        return sandbox_report(self.sandbox, race=race)

    async def _with_dependents(self, co: _Checkout, target: Target) -> Target:
        """`target` with the packages of its module whose tests depend on its packages (dependents.py), listed
        by `go list` in the sandbox at the base.

        Raises:
            UpstreamFailure: go could not list the module's packages.
        """
        lines: list[str] = []
        argv = [*co.go(self._go, target), *dependents.go_list_args(target.packages)]
        outcome = await self.sandbox.run(
            argv, co.paths, env=co.env, timeout_s=self.settings.default_timeout_s, on_line=lines.append
        )
        if outcome.exit_code != 0:
            why = "; ".join(_go_errors(outcome.stderr)[:2]) or "no output"
            raise UpstreamFailure(f"cannot list the packages that depend on these ({target.name}): {why}"[:400])
        found, left = dependents.dependents("\n".join(lines), target.packages, self.settings.max_dependents)
        return replace(target, packages=[*target.packages, *found], dependents=tuple(found), dependents_left=left)

    async def _list_base_tests(self, req: RunTestsRequest, co: _Checkout) -> None:
        for target in co.targets:
            await self._list_module_tests(req, co, target)

    async def _list_module_tests(self, req: RunTestsRequest, co: _Checkout, target: Target) -> None:
        """The census's base listing, once per commit, packages, pattern and flags (census.BaseCache.key):
        statically (`go list` in the sandbox, then the test files' syntax trees; listing.py), or with
        `go test -list` (sandboxed) for a pattern Python cannot read as go does, or too much source."""
        key = _census_key(req, co, target)
        paths, env, packages = co.paths, co.env, target.packages
        if not self._policy.test_census or self._census.get(key) is not None:
            return
        race = "-race" in req.flags
        timeout = self.settings.default_timeout_s
        lines: list[str] = []
        pattern = listing.name_filter(census.list_pattern(req.run))
        if pattern is not None:
            argv = [*co.go(self._go, target), *listing.go_list_args(packages, race=race)]
            outcome = await self.sandbox.run(argv, paths, env=env, timeout_s=timeout, on_line=lines.append)
            if outcome.exit_code != 0:
                return  # go cannot load the packages: no listing, as when `go test -list` fails
            try:
                text = "\n".join(lines)
                base = await asyncio.to_thread(listing.read_listing, text, paths.worktree, paths.inside, pattern)
            except listing.CannotList:
                pass
            else:
                self._census.put(key, base)
                return
        wrapper = self.sandbox.test_exec(paths)
        argv = [*co.go(self._go, target), "test", *([f"-exec={wrapper}"] if wrapper else [])]
        argv += ["-race"] if race else []
        argv += census.list_args(req.run, packages)
        lines.clear()
        outcome = await self.sandbox.run(
            argv, paths, env=env, timeout_s=timeout, on_line=lines.append, race=race, tests=wrapper is not None
        )
        if outcome.exit_code == 0:
            self._census.put(key, census.parse_list(lines))

    def _check_policy(self, patch: str | None, *, repo_root: Path | None = None) -> None:
        if not patch:
            return
        self._raise_if_refused(check_patch(patch, self._policy, repo_root=repo_root))

    def _raise_if_refused(self, verdict: PatchVerdict) -> None:
        if not verdict.allowed:
            shown = [
                f"{r.path}{f':{r.line}' if r.line is not None else ''}: {r.rule}: {r.detail}" for r in verdict.reasons
            ]
            more = f" (+{len(shown) - 5} more)" if len(shown) > 5 else ""
            raise InvalidInput("patch refused by policy: " + "; ".join(shown[:5]) + more)

    @asynccontextmanager
    async def _session(self, req: RunTestsRequest | CheckBuildRequest) -> AsyncGenerator[tuple[float, _Checkout]]:
        """A concurrency slot and a checkout in it; yields (seconds spent queued, checkout).

        On exit the worktree is removed in the background and only then is the slot released, so the
        caller gets its result without waiting for the cleanup and no run ever shares a path.

        Raises:
            UpstreamFailure: the queue is full.
        """
        if self._slots.empty() and self._waiting >= self.settings.max_queue:
            raise UpstreamFailure(f"runner busy: {self._waiting} runs already queued; retry later")
        self._waiting += 1
        queued = time.monotonic()
        try:
            slot = await self._slots.get()
        finally:
            self._waiting -= 1
        waited = time.monotonic() - queued
        started = time.monotonic()
        scratch = self._work / "scratch" / uuid.uuid4().hex
        made: dict[str, Path] = {}
        try:
            mirror, commit = await self._mirrors.resolve(req.repo, req.ref)
            made["mirror"], made[commit] = mirror, mirror
            worktree = await self._checkout(mirror, commit, self._slot_path(req.repo, slot))
            made["worktree"] = worktree
            nested = await self._nested_modules(worktree, commit)
            targets = module_targets(req.packages, module_path(worktree), nested)
            for target in targets:
                check_packages_inside(worktree, target.module, target.packages)
            paths = self.sandbox.paths(worktree, req.repo, scratch)
            env = self.sandbox.env(self._goenv.build(offline=True), paths)
            co = _Checkout(worktree, commit, env, 0.0, paths, targets)
            await self._download_modules(co)
            if isinstance(req, RunTestsRequest) and req.dependents:
                co = replace(co, targets=[await self._with_dependents(co, t) for t in co.targets])
            if isinstance(req, RunTestsRequest) and req.patch:
                await self._list_base_tests(req, co)
            if req.patch:
                self._check_policy(req.patch, repo_root=worktree)
                applied, verdict = await self._apply_guarded(co, req.patch)
                if not changed_paths(applied) <= changed_paths(req.patch):
                    raise InvalidInput("patch refused by policy: git applied changes to paths the patch did not name")
                self._raise_if_refused(verdict)
                await self._download_modules(co)
                if isinstance(req, RunTestsRequest):
                    co = replace(co, added_tests=await added_test_files(worktree, applied))
            yield waited, replace(co, setup_s=time.monotonic() - started)
        finally:
            self._background(self._release(slot, made, scratch, req.repo))

    async def _nested_modules(self, worktree: Path, commit: str) -> dict[str, str | None]:
        """`confinement.nested_modules` of the checkout, cached per commit (a go.mod that a patch adds, where
        policy lets module files change, is found in the patch: `owning_modules`)."""
        if commit not in self._nested:
            _, out = await gitops.git("ls-files", "-z", "--", ":(glob)**/go.mod", cwd=worktree)
            if len(self._nested) >= 64:
                self._nested.pop(next(iter(self._nested)))
            self._nested[commit] = nested_modules(worktree, [n for n in out.split("\0") if n])
        return self._nested[commit]

    async def _checkout(self, mirror: Path, commit: str, path: Path) -> Path:
        """The slot's worktree at `commit`: reused when test code could not write it, else made afresh."""
        if not self.sandbox.strong:
            return await self._mirrors.add_worktree(mirror, commit, path)
        if self._ready.pop(path, None) == commit:
            return path.resolve()
        return await self._mirrors.reuse_worktree(mirror, commit, path)

    async def _release(self, slot: int, made: dict[str, Path], scratch: Path, repo: str) -> None:
        """After a run: the worktree reset for the next one (or removed), scratch deleted, slot freed;
        then the idle slots warmed at the same commit (`_warm_idle_slots`)."""
        warm: tuple[Path, str] | None = None
        try:
            await self.sandbox.settle(scratch)
            if "worktree" in made:
                mirror, path = made["mirror"], made["worktree"]
                commit = next(k for k in made if k not in ("mirror", "worktree"))
                if self.sandbox.strong:
                    await self._mirrors.reuse_worktree(mirror, commit, path)
                    self._ready[path] = commit
                    warm = mirror, commit
                    await self._start_ahead(repo, path)
                else:
                    await self._mirrors.remove_worktree(mirror, path)
            shutil.rmtree(scratch, ignore_errors=True)
        except GitFailed:  # the next run makes a new worktree
            self._ready.pop(made.get("worktree", scratch), None)
        finally:
            self._slots.put_nowait(slot)
        if warm is not None:
            await self._warm_idle_slots(repo, *warm)

    async def _start_ahead(self, repo: str, worktree: Path) -> None:
        """Start the BUILD sandbox of the slot's next run now, while it is idle (`Sandbox.start_ahead`);
        best effort: without it, the next run starts its own."""
        try:
            paths = self.sandbox.paths(worktree, repo, self._work / "scratch" / uuid.uuid4().hex)
        except OSError:
            return
        await self.sandbox.start_ahead(paths, self.sandbox.env(self._goenv.build(offline=True), paths))

    def _slot_path(self, repo: str, slot: int) -> Path:
        return self._work / "worktrees" / repo / str(slot)

    async def _warm_idle_slots(self, repo: str, mirror: Path, commit: str) -> None:
        """Give every idle slot a worktree of `repo` reset to `commit`, so that no call pays the checkout
        its slot lacks: the first call on a second slot (a concurrent caller) finds it as ready as the
        first. The build cache needs no warming: every slot sees its worktree at the same path in the
        sandbox, so they share every package any of them compiled. A slot is out of the queue while it
        is warmed, so no run uses its path meanwhile; none is taken while a call waits for one."""
        if self._waiting:
            return
        idle: list[int] = []
        while not self._slots.empty():
            idle.append(self._slots.get_nowait())
        cold = [k for k in idle if self._ready.get(self._slot_path(repo, k)) != commit]
        for k in idle:
            if k not in cold:
                self._slots.put_nowait(k)
        for k in cold:
            path = self._slot_path(repo, k)
            try:
                self._ready.pop(path, None)
                ready = await self._mirrors.reuse_worktree(mirror, commit, path)
                self._ready[ready] = commit
                await self._start_ahead(repo, ready)
            except GitFailed:
                self._ready.pop(path, None)
            finally:
                self._slots.put_nowait(k)

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    async def drain(self) -> None:
        """Wait until every background worktree reset, removal and slot warming has finished (tests, shutdown)."""
        while self._cleanups:
            await asyncio.gather(*list(self._cleanups), return_exceptions=True)
        await self.sandbox.settle_all()

    async def _download_modules(self, co: _Checkout) -> None:
        """`go mod download` of each target module, with network, outside the sandbox; it runs no code from
        the repository. The module's files must be regular files of the checkout (repo_files: go follows a
        symlinked go.mod to any host file and prints its lines in its errors; a go.work is checked the same
        way and obeyed, since the tests then build in workspace mode and need its modules' requirements), and
        go's output goes to the error's `detail` (logged, redacted, by the tool layer), never to the caller (it
        may quote what go read).

        Raises:
            RepoFileRefused: a module file, or a directory on its path, is a symlink, not a regular file, or too large.
            UpstreamFailure: go failed or timed out (the message names the trace, not go's output).
        """
        for target in co.targets:
            go_mod, go_sum = await asyncio.to_thread(check_module_files, co.paths.worktree, target.module)
            if go_sum is None:
                continue
            key = hashlib.sha256(go_sum + (go_mod or b"")).hexdigest()
            if key in self._downloaded:
                continue
            lines: list[str] = []
            env = self.sandbox.host_env(self._goenv.build(offline=False), co.paths)
            outcome = await self.sandbox.run(
                [*co.go(self._go, target, host=True), "mod", "download"],
                co.paths,
                env=env,
                timeout_s=self.settings.default_timeout_s,
                on_line=lines.append,
                confined=False,
            )
            if outcome.exit_code != 0:
                how = "timed out" if outcome.killed or outcome.exit_code is None else f"exit {outcome.exit_code}"
                trace = current_trace_id()
                where = f"see the server log, trace {trace}" if trace else "see the server log"
                detail = "; ".join(_go_errors(outcome.stderr))[:2000]
                raise UpstreamFailure(f"go mod download failed ({how}) in {target.name}; {where}", detail=detail)
            self._downloaded.add(key)


def stream_readers(root: str, module: str = "") -> tuple[StreamParser, census.Tracker, Callable[[str], None]]:
    """The two readers of a run's `go test -json` stream, the report's parser and the census's tracker,
    and the `on_line` that feeds each line to both (decoded once); `module`: the directory go ran in."""
    parser, tracker = StreamParser(root, module), census.Tracker()

    def feed(line: str) -> None:
        event = decode(line)
        parser.feed_event(line, event)
        tracker.feed_event(event)

    return parser, tracker, feed


async def added_test_files(worktree: Path, applied: str) -> tuple[str, ...]:
    """The `_test.go` files git's applied diff adds (in the index of `worktree`); a renamed or copied file
    counts as added.

    Raises:
        GitFailed: git could not list the index's changes.
    """
    if not any(path.endswith("_test.go") for path in changed_paths(applied)):
        return ()
    _, out = await gitops.git(
        "diff", "--cached", "--name-only", "--no-renames", "--diff-filter=A", "-z", "--no-ext-diff", cwd=worktree
    )
    return tuple(sorted(name for name in out.split("\0") if name.endswith("_test.go")))


def packages_of(worktree: Path, files: Iterable[str]) -> set[str]:
    """The import paths of the directories holding `files` (repository-relative), each named from the
    nearest go.mod above it: a module path plus the directory below the module's root."""
    found: set[str] = set()
    for rel in files:
        directory = PurePosixPath(rel).parent
        for root in (directory, *directory.parents):
            module = module_path(worktree, root.as_posix())
            if module is not None:
                below = directory.relative_to(root).as_posix()
                found.add(module if below == "." else f"{module}/{below}")
                break
    return found


def sandbox_for(settings: GoTestRunnerSettings) -> tuple[Sandbox, str, GoEnv]:
    """Find go and its caches and set up the sandbox (probing the host once): (sandbox, go, environment).

    Raises:
        ConfigError: no go binary, or `sandbox_user` names no user.
    """
    go = shutil.which(settings.go_binary)
    if go is None:
        raise ConfigError(f"setting GORESOLVE_GO_TEST_RUNNER_GO_BINARY: {settings.go_binary!r} not found")
    go = str(Path(go).resolve())
    user_env = host_go_env(go)
    work = settings.resolved_work_dir()
    gocache = (settings.gocache or work / "gocache").resolve()
    gomodcache = (settings.gomodcache or Path(user_env.get("GOMODCACHE") or work / "gomodcache")).resolve()
    for d in (work / "mirrors", gocache, gomodcache):
        d.mkdir(parents=True, exist_ok=True)
    seed = settings.seed_cache or (Path(user_env["GOCACHE"]) if user_env.get("GOCACHE") else None)
    seed = seed if settings.seed_from_user_cache else None
    run_as = None
    if settings.sandbox_user:
        try:
            run_as = host_user(settings.sandbox_user)
        except KeyError:
            raise ConfigError(
                f"setting GORESOLVE_GO_TEST_RUNNER_SANDBOX_USER: no user {settings.sandbox_user!r}"
            ) from None
    limits = Limits(
        address_space_mb=settings.rlimit_as_mb,
        address_space_race_mb=settings.rlimit_as_race_mb,
        nproc=settings.rlimit_nproc,
        fsize_mb=settings.rlimit_fsize_mb,
        nofile=settings.rlimit_nofile,
        max_tasks=settings.max_tasks,
        memory_mb=settings.memory_limit_mb,
    )
    sandbox = Sandbox.create(
        work=work,
        goroot=Path(user_env.get("GOROOT") or Path(go).parent.parent).resolve(),
        project=Path(__file__).resolve().parents[2],
        gocache=gocache,
        seed=(seed,) if seed is not None and seed.is_dir() else (),
        gomodcache=gomodcache,
        limits=limits,
        weak_allowed=settings.allow_weak_sandbox,
        scratch_mb=settings.scratch_mb,
        max_output_bytes=settings.max_output_bytes,
        max_line=settings.max_line_bytes,
        run_as=run_as,
        bwrap_binary=settings.bwrap_binary,
        cache_limits=CacheLimits(
            max_file=settings.cache_max_file_mb << 20,
            max_merge=settings.cache_max_merge_mb << 20,
            max_total=settings.cache_max_mb << 20,
        ),
    )
    goenv = GoEnv(go_bin_dir=str(Path(go).parent), gomodcache=gomodcache, goproxy=settings.goproxy)
    return sandbox, go, goenv


def _go_errors(stderr: str) -> list[str]:
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("go: downloading")]
    return [line[:300] for line in lines[-20:]]
