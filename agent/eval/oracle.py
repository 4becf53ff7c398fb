"""Whether a patch resolves a task, decided from go-test-runner's results (never from the patch itself).

    before   the task ref alone: every fail-to-pass test must fail (or its package must not build)
    after    the ref with the patch, only the fail-to-pass tests: all run, none fails or is skipped
    kept     the ref with the patch, the pass-to-pass packages: no pass-to-pass test fails, and the test
             census holds (every base test still ran as before)

Passing tests are counted, not named, in a runner result; that each fail-to-pass test really ran is
shown by its `func` declaration in the task's test files plus a pass count no smaller than theirs.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.eval.runner_client import TestRunner
from agent.eval.tasks import Task, TestRef

_MAX_RUN = 200  # the runner's limit on a -run pattern
_BROKEN = ("build_failed", "timeout", "incomplete")


@dataclass(frozen=True)
class Verdict:
    ok: bool
    detail: str


def import_path(module: str, package: str) -> str:
    return module if package == "." else f"{module}/{package.removeprefix('./')}"


def run_patterns(names: list[str]) -> list[str]:
    """`^(A|B|...)$` patterns, each within the runner's length limit."""
    groups: list[list[str]] = [[]]
    for name in sorted(set(names)):
        if len("^(" + "|".join([*groups[-1], name]) + ")$") > _MAX_RUN and groups[-1]:
            groups.append([])
        groups[-1].append(name)
    return ["^(" + "|".join(g) + ")$" for g in groups if g]


def declared(repo: Path, ref: TestRef) -> bool:
    """True when the package directory's test files declare the test function."""
    pattern = re.compile(rf"(?m)^func {re.escape(ref.test)}\(")
    directory = repo / ref.package
    return any(pattern.search(p.read_text(encoding="utf-8", errors="replace")) for p in directory.glob("*_test.go"))


def _packages(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in result["report"]["packages"]}


def _failed(result: dict[str, Any]) -> set[tuple[str, str]]:
    return {(t["package"], t["name"]) for t in result["report"]["tests"] if t["status"] in ("fail", "timeout")}


async def _runs(runner: TestRunner, task: Task, refs: list[TestRef], patch: str | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    packages = sorted({r.package for r in refs})
    for pkg in packages:
        names = [r.test for r in refs if r.package == pkg]
        for pattern in run_patterns(names):
            out.append(await runner.run_tests(task.instance_id, "main", [pkg], patch=patch, run=pattern))
    return out


async def check_before(runner: TestRunner, task: Task) -> Verdict:
    """Every fail-to-pass test fails at the task ref (the bug is real and the tests see it)."""
    results = await _runs(runner, task, task.fail_to_pass, None)
    failed: set[tuple[str, str]] = set()
    broken: set[str] = set()
    for r in results:
        failed |= _failed(r)
        broken |= {name for name, p in _packages(r).items() if p["status"] in _BROKEN}
    passing = [
        f"{t.package}:{t.test}"
        for t in task.fail_to_pass
        if (import_path(task.module, t.package), t.test) not in failed
        and import_path(task.module, t.package) not in broken
    ]
    if passing:
        return Verdict(False, f"already passing before the fix: {', '.join(passing[:3])}")
    return Verdict(True, "every fail-to-pass test fails before the fix")


async def check_after(runner: TestRunner, task: Task, repo: Path, patch: str) -> Verdict:
    """Every fail-to-pass test runs and passes with `patch` applied."""
    missing = [f"{t.package}:{t.test}" for t in task.fail_to_pass if not declared(repo, t)]
    if missing:
        return Verdict(False, f"not declared in the task's test files: {', '.join(missing[:3])}")
    results = await _runs(runner, task, task.fail_to_pass, patch)
    want = Counter(import_path(task.module, t.package) for t in task.fail_to_pass)
    got: Counter[str] = Counter()
    for r in results:
        if not r["ok"]:
            return Verdict(False, f"fail-to-pass still failing: {r['summary'][:300]}")
        for name, p in _packages(r).items():
            if p["skipped"]:
                return Verdict(False, f"{name}: a fail-to-pass test was skipped")
            got[name] += p["passed"]
    short = [name for name, n in want.items() if got[name] < n]
    if short:
        return Verdict(False, f"fewer tests passed than named in {short[0]}")
    return Verdict(True, "every fail-to-pass test passes")


async def check_kept(runner: TestRunner, task: Task, patch: str) -> Verdict:
    """No pass-to-pass test fails with `patch` applied (whole packages run; only named tests count)."""
    if not task.pass_to_pass:
        return Verdict(True, "no pass-to-pass tests")
    packages = sorted({t.package for t in task.pass_to_pass})
    result = await runner.run_tests(task.instance_id, "main", packages, patch=patch)
    if census := result.get("census"):  # a base test no longer ran as before: it is not "still passing"
        return Verdict(False, f"test census failed: {'; '.join(str(c) for c in census)[:300]}")
    by_name = _packages(result)
    failed = _failed(result)
    for pkg in packages:
        status = by_name.get(import_path(task.module, pkg), {}).get("status")
        if status in _BROKEN or status is None:
            return Verdict(False, f"{pkg}: {status or 'did not run'} with the patch")
    broke = [
        f"{t.package}:{t.test}" for t in task.pass_to_pass if (import_path(task.module, t.package), t.test) in failed
    ]
    if broke:
        return Verdict(False, f"pass-to-pass broken: {', '.join(broke[:3])}")
    return Verdict(True, f"{len(task.pass_to_pass)} pass-to-pass test(s) still pass")
