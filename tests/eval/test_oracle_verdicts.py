"""The oracle's `kept` verdict on go-test-runner results: a pass-to-pass test that fails, a package that
did not build, or a census failure (a base test that no longer ran as before) is not "still passing"."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from agent.eval import oracle
from agent.eval.runner_client import TestRunner
from agent.eval.tasks import Task, TestRef

MODULE = "example.com/calc"


class StubRunner(TestRunner):
    """Answers every run_tests call with one result, as the server's structured RunResult."""

    def __init__(self, result: dict[str, Any]) -> None:
        self.result = result

    async def run_tests(
        self, repo: str, ref: str, packages: list[str], *, patch: str | None = None, run: str | None = None
    ) -> dict[str, Any]:
        return self.result


def _task() -> Task:
    return Task(
        instance_id="calc-1",
        module=MODULE,
        version="v1.0.0",
        base_commit="0" * 40,
        fix_commit="1" * 40,
        problem_statement="Add is wrong",
        test_patch="x",
        gold_patch="x",
        fail_to_pass=[TestRef(package=".", test="TestAdd")],
        pass_to_pass=[TestRef(package=".", test="TestSub")],
    )


def _result(*, status: str = "ok", failed: tuple[str, ...] = (), census: tuple[str, ...] = ()) -> dict[str, Any]:
    tests = [{"package": MODULE, "name": n, "status": "fail"} for n in failed]
    packages = [{"name": MODULE, "status": status, "passed": 1, "skipped": 0}]
    ok = status == "ok" and not failed and not census
    return {"ok": ok, "summary": "", "census": list(census), "report": {"packages": packages, "tests": tests}}


@pytest.mark.parametrize(
    ("result", "ok", "detail"),
    [
        (_result(), True, "1 pass-to-pass test(s) still pass"),
        (_result(failed=("TestSub",)), False, "pass-to-pass broken: .:TestSub"),
        (_result(status="build_failed"), False, ".: build_failed with the patch"),
        (_result(census=("TestSub: did not run",)), False, "test census failed: TestSub: did not run"),
    ],
)
def test_kept_needs_every_pass_to_pass_test_to_run_and_pass(result: dict[str, Any], ok: bool, detail: str) -> None:
    verdict = anyio.run(oracle.check_kept, StubRunner(result), _task(), "patch")
    assert (verdict.ok, verdict.detail) == (ok, detail)
