"""The dynamic tamper guard: a census of the tests, taken at the base and checked after the run.

Before a patch is applied the runner lists the tests of each package at the base, cached per
commit, packages, pattern and the flags that change which tests build (`-race`) or skip
(`-short`): statically when it can (listing.py: `go list` names the test files, their syntax trees
name the tests, nothing is built), with `go test -json -list` otherwise; unless an unpatched run at
that commit already gave the listing from its own complete stream (`listing_of`).
After the patched run, `check` asserts that:

- every base test reported (a pass, fail or skip event); a package that has tests but reported
  none fails with `tests_not_run`, a single missing test with `missing_test`;
- no base test that ran unskipped in an unpatched run of the same commit is skipped now
  (`newly_skipped`; known only once such a run was seen);
- the test binary ran to its end: each package's stream ends with its final event, and a run
  whose every package passed also exited 0 (`no_final_event`, `exit_mismatch`);
- no package passed with a failed test, and go test did not exit 0 after a failure
  (`passed_with_failures`: test output forged test2json's framing and the binary left with status 0);
- tests are counted per (package, name): a name reported more often than the base lists it, times
  `-count`, is a second test shadowing the first in the report (`duplicate_test`; an external
  `package x_test` test named like an internal one).

The tracker's memory is bounded: a few counters per top-level test, for at most `MAX_TRACKED_TESTS`
tests and `MAX_TRACKED_BYTES` of names. Test output can forge test2json's `=== RUN` markers, so a
run past either cap is not accounted for and fails with `census_overflow` instead of being held.

A patch's new test files run in the same test binary as the base's tests, before them when their
names sort first: they can forge go's report framing for every test and leave through `syscall.Exit`,
rewrite a helper's machine code, or set in `init` what the patched code reads. So the base's tests are
also judged without them: when the patch adds `_test.go` files to packages the call tests, the runner
runs those packages once more with the added test files removed from the worktree (the patched code
and the changed existing test files stay), with the call's flags and `-run` pattern, in what is left of
the call's time. Each base test (from the base listing) that passed in the full run must pass there too
(`base_tests_differ`: failed, skipped, not reported, not built, or the second run did not end). The
full run's report is what the call returns, new tests included; the second run adds only its census
problems, and it is never taken for an unpatched run's listing. `passed_base_tests` picks what is
judged (nothing: no second run), `differ` judges it.

Benchmarks are listed by `go test -list` but not run without `-bench`, so they are not counted.
Nothing here starts a go test process: the runner passes the lines of its own sandboxed runs.
`StaticGuard` is the runner's side of the static guard (servers.common.tamper): the base facts
before `git apply`, the shared `check_applied` on git's diff after it.
"""

from __future__ import annotations

import asyncio
import collections
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from servers.common.errors import UpstreamFailure
from servers.common.patch_policy import PatchVerdict, changed_paths
from servers.common.policy import ProtectedPolicy
from servers.common.tamper import tool
from servers.common.tamper.facts import Facts, read_test_sources, text_facts
from servers.common.tamper.guard import check_applied, owning_modules
from servers.go_test_runner.gotest_json import decode

Reason = Literal[
    "tests_not_run",
    "missing_test",
    "newly_skipped",
    "no_final_event",
    "exit_mismatch",
    "duplicate_test",
    "census_overflow",
    "base_tests_differ",
    "passed_with_failures",
]

Key = tuple[str, str, tuple[str, ...], str, tuple[str, ...]]
_KEY_FLAGS = frozenset({"-race", "-short"})
_NAME = re.compile(r"^((?:Test|Fuzz|Example)\w*)\n?$")
_TERMINAL = frozenset({"pass", "fail", "skip"})
MAX_PROBLEMS = 20
MAX_TRACKED_TESTS = 20_000
MAX_TRACKED_BYTES = 4 << 20


@dataclass(frozen=True)
class Problem:
    """One way the patched run does not account for the base's tests."""

    reason: Reason
    package: str
    detail: str
    test: str | None = None

    def render(self) -> str:
        return f"{self.reason}: {self.detail}"


@dataclass(frozen=True)
class BaseTests:
    """The top-level tests (with repeats, as listed) of each package at the base."""

    tests: dict[str, tuple[str, ...]]


def list_pattern(run: str | None) -> str:
    """The `-list` regexp for a `-run` pattern: its top-level part (go splits `-run` on unbracketed `/`)."""
    if not run:
        return "."
    depth, cut = 0, len(run)
    for i, ch in enumerate(run):
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth = max(depth - 1, 0)
        elif ch == "/" and depth == 0:
            cut = i
            break
    return run[:cut] or "."


def list_args(run: str | None, packages: Iterable[str]) -> list[str]:
    """`go test` arguments (after `go test`) that list the tests of `packages` matching `run`."""
    return ["-json", "-list", list_pattern(run), *packages]


def _events(lines: Iterable[str]) -> Iterable[dict[str, Any]]:
    for line in lines:
        event = decode(line)
        if event is not None and isinstance(event.get("Package"), str):
            yield event


def parse_list(lines: Iterable[str]) -> BaseTests:
    """The tests named by a `go test -json -list` stream (benchmarks left out: they do not run)."""
    tests: dict[str, list[str]] = collections.defaultdict(list)
    for event in _events(lines):
        if event.get("Action") != "output":
            continue
        m = _NAME.match(str(event.get("Output", "")))
        if m is not None:
            tests[event["Package"]].append(m.group(1))
    return BaseTests({pkg: tuple(names) for pkg, names in tests.items()})


@dataclass
class Tracker:
    """Fed each line of the patched `go test -json` run; remembers what the census needs, bounded
    (see the module docstring): per test, how often it ran and how often it ended each way."""

    runs: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter[tuple[str, str]])
    outcomes: dict[tuple[str, str], collections.Counter[str]] = field(
        default_factory=dict[tuple[str, str], collections.Counter[str]]
    )
    started: set[str] = field(default_factory=set[str])
    final: dict[str, str] = field(default_factory=dict[str, str])
    max_tests: int = MAX_TRACKED_TESTS
    max_bytes: int = MAX_TRACKED_BYTES
    tracked_bytes: int = 0
    dropped: int = 0  # events about tests (or packages) past the caps: the census cannot vouch for the run

    def _admit(self, name: str, known: bool) -> bool:
        """Whether state for one more key (of `name`) fits; counts the refusals."""
        if known:
            return True
        size = len(name.encode("utf-8", "surrogatepass"))
        if len(self.runs) + len(self.final) >= self.max_tests or self.tracked_bytes + size > self.max_bytes:
            self.dropped += 1
            return False
        self.tracked_bytes += size
        return True

    def feed(self, line: str) -> None:
        self.feed_event(decode(line))

    def feed_event(self, event: dict[str, Any] | None) -> None:
        """One line of the stream, decoded by `gotest_json.decode` (None: not an event)."""
        if event is None:
            return
        action = event.get("Action")
        if action == "output":
            return  # the most common event; the census reads run and outcome events only
        pkg, test = event.get("Package"), event.get("Test")
        if not isinstance(pkg, str) or not isinstance(action, str):
            return
        if test is None:
            if action in ("start", *_TERMINAL) and self._admit(pkg, pkg in self.started or pkg in self.final):
                if action == "start":
                    self.started.add(pkg)
                else:
                    self.final[pkg] = action
            return
        if not isinstance(test, str) or "/" in test:
            return  # subtests are their parent's business
        key = (pkg, test)
        if action not in ("run", *_TERMINAL) or not self._admit(pkg + test, key in self.runs):
            return
        if action == "run":
            self.runs[key] += 1
        else:
            self.runs[key] += 0  # one table of keys: an outcome without a run still counts against the cap
            self.outcomes.setdefault(key, collections.Counter())[action] += 1

    def skipped(self) -> set[tuple[str, str]]:
        """Top-level tests whose every outcome was a skip."""
        return {key for key, acts in self.outcomes.items() if acts and all(a == "skip" for a in acts)}


def check(
    base: BaseTests,
    tracker: Tracker,
    *,
    exit_code: int | None,
    count: int = 1,
    failfast: bool = False,
    ran_unskipped: set[tuple[str, str]] | None = None,
) -> list[Problem]:
    """What the patched run failed to account for; empty when every base test ran and reported.

    Packages whose run already failed are left out (the run is not ok anyway), and so is a
    `-failfast` run after its first failure; a test reported more often than listed is flagged always,
    since it makes the report itself misleading. `ran_unskipped` are the tests that passed or failed in
    an unpatched run of the same commit, when one was seen.
    """
    if tracker.dropped:
        detail = (
            f"the run reported more than {tracker.max_tests} tests or {tracker.max_bytes} bytes of test names "
            f"({tracker.dropped} event(s) not tracked); its tests cannot be accounted for"
        )
        return [Problem("census_overflow", "", detail)]
    out: list[Problem] = []
    failed = {pkg for pkg, action in tracker.final.items() if action == "fail"}
    skipped = tracker.skipped() if ran_unskipped is not None else set[tuple[str, str]]()
    stopped = failfast and (failed or any("fail" in acts for acts in tracker.outcomes.values()))
    for pkg, names in sorted(base.tests.items()):
        listed = collections.Counter(names)
        for name, n in listed.items():
            if tracker.runs[(pkg, name)] > n * count:
                detail = f"{pkg}.{name} ran {tracker.runs[(pkg, name)]} times: another test has its name"
                out.append(Problem("duplicate_test", pkg, detail, name))
        if pkg in failed or stopped or not names:
            continue
        if pkg not in tracker.final:
            where = "started but its stream" if pkg in tracker.started else "its stream"
            detail = f"{pkg}: {where} has no final event (the test binary did not run to its end)"
            out.append(Problem("no_final_event", pkg, detail))
            continue
        reported = [n for n in dict.fromkeys(names) if tracker.outcomes.get((pkg, n))]
        if not reported:
            detail = f"{pkg} has {len(set(names))} test(s) at the base but ran none of them"
            out.append(Problem("tests_not_run", pkg, detail))
            continue
        for name in listed:
            key = (pkg, name)
            if not tracker.outcomes.get(key):
                out.append(Problem("missing_test", pkg, f"{pkg}.{name} did not report", name))
            elif ran_unskipped is not None and key in ran_unskipped and key in skipped:
                out.append(Problem("newly_skipped", pkg, f"{pkg}.{name} ran at the base and is skipped now", name))
    for (pkg, name), runs in sorted(tracker.runs.items()):
        if pkg not in base.tests and runs > count and pkg not in failed:
            detail = f"{pkg}.{name} ran {runs} times: another test has its name"
            out.append(Problem("duplicate_test", pkg, detail, name))
    if exit_code not in (0, None) and tracker.final and not failed and not out:
        detail = f"every package reported success but go test exited with status {exit_code}"
        out.append(Problem("exit_mismatch", "", detail))
    out += passed_with_failures(tracker, exit_code=exit_code)
    return out[:MAX_PROBLEMS]


def passed_with_failures(tracker: Tracker, *, exit_code: int | None) -> list[Problem]:
    """A package whose final event is a pass although one of its tests failed, and a go test that exited 0
    although a test or package failed: go itself never reports either, test output that forges
    test2json's framing and leaves with status 0 does (`passed_with_failures`)."""
    out: list[Problem] = []
    failing: dict[str, list[str]] = {}
    for (pkg, name), acts in sorted(tracker.outcomes.items()):
        if acts["fail"]:
            failing.setdefault(pkg, []).append(name)
    for pkg, names in failing.items():
        if tracker.final.get(pkg) == "pass":
            detail = f"{pkg} reported a pass although {_names(names)} failed (its report was forged)"
            out.append(Problem("passed_with_failures", pkg, detail))
    failed = [pkg for pkg, action in tracker.final.items() if action == "fail"]
    if exit_code == 0 and (failing or failed) and not out:
        what = f"test(s) {_names([n for names in failing.values() for n in names])}" if failing else "a package"
        detail = f"go test exited with status 0 although {what} failed (the test binary's exit was forged)"
        out.append(Problem("passed_with_failures", "", detail))
    return out


def _passed(tracker: Tracker, key: tuple[str, str]) -> bool:
    acts = tracker.outcomes.get(key)
    return bool(acts) and all(a == "pass" for a in acts)


def passed_base_tests(base: BaseTests, tracker: Tracker, packages: Iterable[str]) -> BaseTests:
    """The base tests of `packages` (import paths) that passed in `tracker`'s run, every time they ran:
    what the run without the patch's new test files must pass again (empty: nothing to judge)."""
    wanted = set(packages)
    judged: dict[str, tuple[str, ...]] = {}
    for pkg, names in sorted(base.tests.items()):
        passed = tuple(n for n in dict.fromkeys(names) if pkg in wanted and _passed(tracker, (pkg, n)))
        if passed:
            judged[pkg] = passed
    return BaseTests(judged)


def _names(names: list[str]) -> str:
    more = f" and {len(names) - 3} more" if len(names) > 3 else ""
    return ", ".join(names[:3]) + more


def differ(judged: BaseTests, bare: Tracker, *, killed: bool, unbuilt: Iterable[str] = ()) -> list[Problem]:
    """`base_tests_differ`, per package: base tests that passed in the full run (`judged`) and did not pass
    in `bare`, the run without the patch's new test files (failed, skipped or not reported). That run must
    end (not `killed`, each package's final event, nothing past the tracker's caps) to vouch for any of
    them; a package in `unbuilt` did not build without the new files."""
    out: list[Problem] = []
    unbuilt = set(unbuilt)
    leave = "when the patch's new test files are left out"
    for pkg, names in sorted(judged.tests.items()):
        shown = _names(list(names))
        if killed or bare.dropped:
            why = "was killed (the call's timeout or the sandbox's limits)" if killed else "could not be accounted for"
            detail = f"{pkg}: the run of the base's tests {leave} {why} ({shown} passed with them)"
        elif pkg in unbuilt:
            detail = f"{pkg}: the base's tests do not build against the patched code {leave} ({shown} passed with them)"
        elif pkg not in bare.final:
            detail = f"{pkg}: the base's tests did not run to their end against the patched code {leave}"
        else:
            failing = [n for n in names if not _passed(bare, (pkg, n))]
            if not failing:
                continue
            verb, pronoun = ("fails", "it passes") if len(failing) == 1 else ("fail", "they pass")
            shown = _names(failing)
            detail = f"{pkg}: the base's {shown} {verb} against the patched code {leave} ({pronoun} with them)"
        out.append(Problem("base_tests_differ", pkg, detail))
    return out[:MAX_PROBLEMS]


def listing_of(tracker: Tracker, *, exit_code: int | None, flags: Iterable[str]) -> BaseTests | None:
    """The base listing read from an unpatched run's own stream, when that stream is complete: every
    package that started ended with its final event, the tracker kept everything, and no flag made go
    stop early, leave tests out or repeat them (`-failfast`, `-skip`, `-list`, `-bench`, `-count` other
    than 1). None otherwise (the runner then lists with `go test -list` before the first patched run)."""
    flags = list(flags)
    names = {flag.partition("=")[0] for flag in flags}
    if names & {"-failfast", "-skip", "-list", "-bench"} or count_of(flags) != 1:
        return None
    if tracker.dropped or exit_code is None:
        return None
    if not tracker.final or any(pkg not in tracker.final for pkg in tracker.started):
        return None
    tests: dict[str, list[str]] = collections.defaultdict(list)
    for (pkg, name), runs in tracker.runs.items():
        if _NAME.match(name) and tracker.outcomes.get((pkg, name)):
            tests[pkg].extend([name] * max(runs, 1))
    return BaseTests({pkg: tuple(names) for pkg, names in tests.items()})


def summary(problems: list[Problem]) -> str:
    """One sentence for the run's summary."""
    shown = "; ".join(p.render() for p in problems[:3])
    more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
    return f"Test census failed: {shown}{more}."


class BaseCache:
    """Base listings per (commit, packages, pattern), and the unskipped tests of unpatched runs per commit."""

    def __init__(self, limit: int = 256) -> None:
        self._lists: dict[Key, BaseTests] = {}
        self._ran: dict[Key, set[tuple[str, str]]] = {}
        self._limit = limit

    @staticmethod
    def key(commit: str, packages: Iterable[str], run: str | None, flags: Iterable[str] = (), module: str = "") -> Key:
        """Per commit, packages and `-list` pattern, and the flags that change which tests build or skip
        (`-race` is a build tag, `-short` skips); `module`: which module of the call (its directory)."""
        return (
            commit,
            module,
            tuple(packages),
            list_pattern(run),
            tuple(sorted(f for f in flags if f in _KEY_FLAGS)),
        )

    def get(self, key: Key) -> BaseTests | None:
        return self._lists.get(key)

    def put(self, key: Key, tests: BaseTests) -> None:
        if len(self._lists) >= self._limit:
            self._lists.pop(next(iter(self._lists)))
        self._lists[key] = tests

    def ran_unskipped(self, key: Key) -> set[tuple[str, str]] | None:
        return self._ran.get(key)

    def record_unpatched(self, key: Key, tracker: Tracker) -> None:
        """After a run without a patch: which tests ran unskipped at this commit."""
        ran = {k for k, acts in tracker.outcomes.items() if any(a != "skip" for a in acts)}
        if len(self._ran) >= self._limit:
            self._ran.pop(next(iter(self._ran)))
        self._ran[key] = ran


def count_of(flags: Iterable[str]) -> int:
    """The `-count=N` of a run's flags (1 when absent)."""
    for flag in flags:
        name, _, value = flag.partition("=")
        if name == "-count" and value.isdigit():
            return max(int(value), 1)
    return 1


@dataclass(frozen=True)
class Before:
    """What the static guard read from the worktree before the patch was applied."""

    files: dict[str, str | None]
    facts: Facts | None
    modules: tuple[str, ...]  # the modules analyzed (directories, "" the root module)


class StaticGuard:
    """The runner's side of the static guard: base facts cached per commit, then `check_applied`.

    The analyzer is built on first use into `bin_dir` (once per source and go version). It runs
    outside the test sandbox, like `go mod download`: it loads and type-checks the packages (cgo
    off) and runs no code of the repository. When it cannot run, `check_applied` refuses the patch
    with `analysis_failed`: the guard fails closed.
    """

    def __init__(self, policy: ProtectedPolicy, go: str, bin_dir: Path, gocache: Path, gomodcache: Path) -> None:
        self._policy = policy
        self._go = go
        self._bin_dir = bin_dir
        self._gocache = gocache
        self._gomodcache = gomodcache
        self._analyzer: Path | None = None
        self._facts: dict[tuple[str, str], Facts] = {}  # (commit, module) -> facts

    def _run(self, root: Path, module: str) -> Facts:
        if self._analyzer is None:
            self._analyzer = tool.build_analyzer(self._go, self._bin_dir, gocache=self._gocache)
        return tool.analyze(
            self._analyzer,
            self._go,
            root,
            self._policy,
            gocache=self._gocache,
            gomodcache=self._gomodcache,
            module=module,
        )

    async def _analyze(self, root: Path, modules: Iterable[str], commit: str | None = None) -> Facts | None:
        """The facts of `modules` (directories, "" the root module) as one tree's; None when any analysis
        failed. With `commit`, each module's facts are cached for that commit."""
        parts: list[Facts] = []
        for module in sorted(modules):
            facts = self._facts.get((commit, module)) if commit is not None else None
            if facts is None:
                try:
                    facts = await asyncio.to_thread(self._run, root, module)
                except UpstreamFailure:
                    return None
                if commit is not None:
                    if len(self._facts) >= 64:
                        self._facts.pop(next(iter(self._facts)))
                    self._facts[(commit, module)] = facts
            parts.append(facts)
        return Facts.merged(parts)

    async def before_apply(self, worktree: Path, commit: str, patch: str, modules: Iterable[str]) -> Before:
        """Pre-images of the files the patch names, and the base facts of `modules` (cached per commit):
        every module the patch changes and the one whose tests run."""
        files: dict[str, str | None] = {}
        root = worktree.resolve()
        for rel in changed_paths(patch):
            candidate = (root / rel).resolve()
            inside = candidate.is_relative_to(root) and candidate.is_file()
            files[rel] = candidate.read_text(encoding="utf-8", errors="replace") if inside else None
        if self._policy.static_analysis:
            facts = await self._analyze(worktree, modules, commit)
        else:  # which files tests read, from the text of the checkout's _test.go files (test_fixture)
            facts = await self._text_facts(worktree, commit)
        return Before(files, facts, tuple(sorted(modules)))

    async def _text_facts(self, worktree: Path, commit: str) -> Facts:
        """Without the analyzer: the string literals of the checkout's `_test.go` files, cached per commit
        (the same rule as `goresolve check-patch` without it)."""
        key = (commit, "\0text")
        facts = self._facts.get(key)
        if facts is None:
            facts = await asyncio.to_thread(lambda: text_facts(read_test_sources(worktree)))
            if len(self._facts) >= 64:
                self._facts.pop(next(iter(self._facts)))
            self._facts[key] = facts
        return facts

    async def after_apply(self, worktree: Path, applied: str, before: Before, nested: Iterable[str]) -> PatchVerdict:
        """The verdict on git's diff of the applied patch (the shared `check_applied`), with the patched facts
        of the modules analyzed before and of any other module the applied diff changes (`nested`: the
        directories of the modules below the root)."""
        base, patched = before.facts, None
        if self._policy.static_analysis:
            if not owning_modules(changed_paths(applied), nested) <= set(before.modules):
                base = None  # git changed a module the patch's text did not name: no base facts, refused
            patched = await self._analyze(worktree, before.modules)
        return check_applied(applied, self._policy, base_files=before.files, base=base, patched=patched)
