"""What `submit` demands of the patched run before it opens a pull request. A run that did not pass is let
through only when it reported failing tests and each of them fails at the base too; a census failure (base
tests that did not run as before), a run that returned no result, or a failed run with no failing test to
compare keeps the pull request closed, and the model is told why. On the in-process fake servers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
from mcp.server.mcpserver.exceptions import ToolError

from agent.llm import ScriptedModel
from agent.loop import RunResult, RunSettings, run_ticket
from agent.testing import FakeWorld, _verdict, developer  # pyright: ignore[reportPrivateUsage]

from .faults import fault_policy

FIXED = "+\treturn a + b"


def _failing(test: str, summary: str) -> dict[str, Any]:
    failing = {"name": test, "package": "example.com/calc", "status": "fail", "output": [f"{test} failed"]}
    report = {"ok": False, "summary": summary, "tests": [failing], "build_errors": []}
    return {"ok": False, "summary": summary, "report": report}


def _run(world: FakeWorld, tmp_path: Path) -> tuple[RunResult, ScriptedModel]:
    model = ScriptedModel(developer)
    settings = RunSettings(repo="calc", state_dir=tmp_path)
    return anyio.run(run_ticket, "CALC-3", model, world.servers(), fault_policy(1.0), settings), model


def _told(model: ScriptedModel) -> list[str]:
    """What the model was told about its submits."""
    return sorted({m.content.splitlines()[0] for r in model.requests for m in r.messages if m.role == "tool"
                   and m.content.startswith("not submitted")})  # fmt: skip


Verdict = Callable[[str | None, str | None], dict[str, Any]]


def _answers(
    *, fix: dict[str, Any] | None = None, fix_targeted: dict[str, Any] | None = None, base: dict[str, Any] | None = None
) -> Verdict:
    """run_tests' answers: `fix` for every run of the fixed patch's packages, `fix_targeted` for its run of the
    ticket's tests (`-run`), `base` for the unpatched run; the fake's own verdict for anything not given."""

    def verdict(patch: str | None, run: str | None) -> dict[str, Any]:
        fixed = patch is not None and FIXED in patch
        answer = (fix_targeted if run is not None else fix) if fixed else base if patch is None else None
        return answer if answer is not None else _verdict(patch)

    return verdict


def _assert_not_opened(world: FakeWorld, result: RunResult, model: ScriptedModel, told: str) -> None:
    """The run escalated with at most the hand-off's draft, and the model was told `told` on submitting."""
    assert result.outcome == "escalated", result.reason
    assert all(pr["draft"] for pr in world.pulls.values())
    assert _told(model) == [told]


def test_a_census_failure_keeps_the_pull_request_closed(tmp_path: Path) -> None:
    """The fix passes every test it ran, but a base test no longer ran: the census says so, and no failing
    test is there to explain it away."""

    summary = "Test census failed: TestSub: did not run. 1 package(s): 1 ok; 1 test(s) passed."
    report = {"ok": True, "summary": "1 package(s): 1 ok; 1 test(s) passed.", "tests": [], "build_errors": []}
    hidden = {"ok": False, "summary": summary, "census": ["TestSub: did not run"], "report": report}
    world = FakeWorld(verdict=_answers(fix=hidden))
    result, model = _run(world, tmp_path)
    _assert_not_opened(world, result, model, "not submitted: the test census failed: TestSub: did not run")


def test_a_run_that_returned_no_result_keeps_the_pull_request_closed(tmp_path: Path) -> None:
    """The model's own run of the fix passed; submit's run of it returns an error, not a result."""
    runs: list[str] = []

    def cannot_run_the_fix_again(patch: str | None, run: str | None) -> dict[str, Any]:
        if run is not None:  # the ticket's own test, TestAdd: the fix makes it pass
            return _verdict(patch)
        if patch is not None and FIXED in patch:
            runs.append(patch)
            if len(runs) > 1:
                raise ToolError("runner busy: 4 runs already queued; retry later")
        return _verdict(patch)

    world = FakeWorld(verdict=cannot_run_the_fix_again)
    result, model = _run(world, tmp_path)
    _assert_not_opened(world, result, model, "not submitted: the tests could not run")


def test_a_failed_run_with_no_failing_test_keeps_the_pull_request_closed(tmp_path: Path) -> None:
    summary = "go test did not run: go: updates to go.mod needed"
    report = {"ok": False, "summary": summary, "tests": [], "build_errors": []}
    world = FakeWorld(verdict=_answers(fix={"ok": False, "summary": summary, "report": report}))
    result, model = _run(world, tmp_path)
    told = "not submitted: the tests did not pass, and no failing test names what to compare with the base"
    _assert_not_opened(world, result, model, told)


def test_a_failure_the_base_has_too_does_not_block_the_fix_and_the_pull_request_says_so(tmp_path: Path) -> None:
    old = _failing("TestOld", "1 package(s): 1 failed; 1 test(s) passed. 1 test(s) failed: TestOld.")
    world = FakeWorld(verdict=_answers(fix=old, base=old))
    result, _ = _run(world, tmp_path)
    assert (result.outcome, result.exit) == ("pr", "submitted"), result.reason
    body = world.pulls["CALC-3"]["body"]
    assert not world.pulls["CALC-3"]["draft"]
    assert "none newly broken; `TestOld` fail at the base too, and still fail." in body


_NAMED_RAN_NONE = {
    "ok": True,
    "summary": "1 package(s): 1 ok; 0 test(s) passed.",
    "report": {"ok": True, "summary": "1 package(s): 1 ok; 0 test(s) passed.", "tests": [], "build_errors": [],
               "packages": [{"name": "example.com/calc", "status": "ok", "passed": 0, "failed": 0}]},
}  # fmt: skip


def test_a_patch_no_test_shows_to_fix_anything_keeps_the_pull_request_closed(tmp_path: Path) -> None:
    """Before, a patch whose named test ran nothing, with the same tests failing at the base and with it, opened a
    ready pull request that "resolves" the ticket: nothing showed it fixed anything."""
    old = _failing("TestOld", "1 package(s): 1 failed. 1 test(s) failed: TestOld.")
    world = FakeWorld(verdict=_answers(fix=old, fix_targeted=_NAMED_RAN_NONE, base=old))
    result, model = _run(world, tmp_path)
    _assert_not_opened(world, result, model, "not submitted: no test shows the patch fixes anything: the same tests "
                       "fail at the base and with it; name the test for the ticket's bug, or add one that fails at "
                       "the base and passes with the patch")  # fmt: skip


def test_a_patch_that_fixes_a_test_failing_at_the_base_opens_the_pull_request(tmp_path: Path) -> None:
    """With no named test run, a test that fails at the base and passes with the patch is what shows it works."""
    old = _failing("TestOld", "1 package(s): 1 failed. 1 test(s) failed: TestOld.")
    both = _failing("TestOld", "1 package(s): 1 failed. 2 test(s) failed: TestOld, TestBug.")
    both["report"]["tests"].append({**both["report"]["tests"][0], "name": "TestBug"})
    world = FakeWorld(verdict=_answers(fix=old, fix_targeted=_NAMED_RAN_NONE, base=both))
    result, _ = _run(world, tmp_path)
    assert (result.outcome, result.exit) == ("pr", "submitted"), result.reason
    assert not world.pulls["CALC-3"]["draft"]


def test_a_test_the_patch_breaks_keeps_the_pull_request_closed(tmp_path: Path) -> None:
    broken = _failing("TestMul", "1 package(s): 1 failed; 1 test(s) passed. 1 test(s) failed: TestMul.")
    old = _failing("TestOld", "1 package(s): 1 failed. 1 test(s) failed: TestOld.")
    world = FakeWorld(verdict=_answers(fix=broken, base=old))
    result, model = _run(world, tmp_path)
    _assert_not_opened(world, result, model, "not submitted: tests newly broken by the patch: TestMul")


def test_the_last_run_before_the_pull_request_tests_the_dependents_too(tmp_path: Path) -> None:
    def with_a_dependent(patch: str | None, run: str | None) -> dict[str, Any]:
        return _verdict(patch) | {"dependents": ["example.com/calc/api"], "dependents_not_tested": 7}

    world = FakeWorld(verdict=with_a_dependent)
    result, _ = _run(world, tmp_path)
    assert (result.outcome, result.exit) == ("pr", "submitted"), result.reason
    model_runs, (targeted, full) = world.test_runs[:-2], world.test_runs[-2:]
    assert not any(r["dependents"] for r in model_runs)  # the model's own runs test what it names
    assert (targeted["run"], targeted["dependents"]) == ("^(TestAdd)$", True)
    assert (full["run"], full["dependents"], full["patched"]) == (None, True, True)
    body = world.pulls["CALC-3"]["body"]
    tested = "every test in `.` and in the 1 package(s) whose tests depend on them (the nearest; 7 more were not run)"
    assert f"{tested} on this patch: all pass" in body


def test_the_pull_request_claims_only_named_tests_that_ran(tmp_path: Path) -> None:
    """The ticket names TestAdd; here no test of that name exists, so `-run` matches nothing and passes."""

    def no_such_test(patch: str | None, run: str | None) -> dict[str, Any]:
        verdict = _verdict(patch)
        if run is not None and patch is not None and FIXED in patch:
            verdict["report"]["packages"][0]["passed"] = 0
        return verdict

    world = FakeWorld(verdict=no_such_test)
    result, _ = _run(world, tmp_path)
    assert (result.outcome, result.exit) == ("pr", "submitted"), result.reason
    body = world.pulls["CALC-3"]["body"]
    assert "Ran the packages' tests and every test in `.`" in body and "Ran `TestAdd`" not in body
    assert "The ticket names `TestAdd`; no test of that name ran here." in body
    world = FakeWorld()  # TestAdd exists and passes: it is named
    assert _run(world, tmp_path / "ran")[0].outcome == "pr"
    assert "Ran `TestAdd` and every test in `.` on this patch: all pass" in world.pulls["CALC-3"]["body"]


def _killed(dependents: list[str]) -> dict[str, Any]:
    summary = "Hard timeout after 240s: every process of the run was killed."
    running = {"name": "TestSlow", "package": "example.com/calc/api", "status": "timeout", "output": []}
    report = {"ok": False, "summary": summary, "tests": [running], "build_errors": [], "timed_out": True}
    return {"ok": False, "summary": summary, "killed": True, "dependents": dependents, "report": report}


def test_when_the_dependents_do_not_finish_in_time_the_changed_packages_must_still_pass(tmp_path: Path) -> None:
    world = FakeWorld()

    def slow_importers(patch: str | None, run: str | None) -> dict[str, Any]:
        if run is None and patch is not None and FIXED in patch and world.test_runs[-1]["dependents"]:
            return _killed(["example.com/calc/api"])
        return _verdict(patch)

    world.verdict = slow_importers
    result, _ = _run(world, tmp_path)
    assert (result.outcome, result.exit) == ("pr", "submitted"), result.reason
    assert [r["dependents"] for r in world.test_runs[-2:]] == [True, False]  # the same run again, without them
    body = world.pulls["CALC-3"]["body"]
    assert "Ran `TestAdd` and every test in `.` on this patch: all pass, none newly broken." in body
    assert "The packages whose tests depend on these were not tested: that run did not finish within 240 s." in body


def test_a_run_that_did_not_finish_keeps_the_pull_request_closed(tmp_path: Path) -> None:
    world = FakeWorld(verdict=_answers(fix=_killed([])))
    result, model = _run(world, tmp_path)
    _assert_not_opened(world, result, model, "not submitted: the tests did not finish within 240 s")


def test_the_tickets_tests_that_do_not_finish_are_named_so(tmp_path: Path) -> None:
    world = FakeWorld(verdict=_answers(fix_targeted=_killed([])))
    result, model = _run(world, tmp_path)
    _assert_not_opened(world, result, model, "not submitted: the ticket's tests did not finish within 240 s")
