"""The test census on real `go test -json` streams of the victim module and its tampering cases."""

from __future__ import annotations

import pathlib
import shutil
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servers.go_test_runner import census
from tests.patch_policy.tamper_cases import ALLOWED, CASES, VICTIM, Case

pytestmark = pytest.mark.slow

# Every case goes through run_tests with the static guard off in test_tamper_run_tests.py; here one
# per census reason, straight on go test's stream.
_CENSUS_CASES = [c for c in CASES if c.name in ("1-exit-dot-import", "2-testmain-comment", "9-external-test-shadows")]


def _go_test(root: pathlib.Path, *args: str) -> tuple[list[str], int]:
    proc = subprocess.run(["go", "test", *args], cwd=root, capture_output=True, text=True, timeout=180, check=False)
    return proc.stdout.splitlines(), proc.returncode


def _census(tmp_path: pathlib.Path, files: dict[str, str], *flags: str) -> list[census.Problem]:
    root = tmp_path / "victim"
    shutil.copytree(VICTIM, root)
    lines, _ = _go_test(root, *census.list_args(None, ["./..."]))
    base = census.parse_list(lines)
    assert base.tests["example.com/victim"] == ("TestAdd", "TestSub", "TestRender")
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    tracker = census.Tracker()
    lines, code = _go_test(root, "-json", "-count=1", *flags, "./...")
    for line in lines:
        tracker.feed(line)
    return census.check(base, tracker, exit_code=code)


@pytest.mark.parametrize("case", _CENSUS_CASES, ids=[c.name for c in _CENSUS_CASES])
def test_the_census_fails_a_tampered_run_for_its_reason(case: Case, tmp_path: pathlib.Path) -> None:
    problems = _census(tmp_path, case.files)
    assert case.census in {p.reason for p in problems}, problems


def test_a_real_fix_passes_the_census(tmp_path: pathlib.Path) -> None:
    assert _census(tmp_path, ALLOWED["fix-and-new-test"]) == []


def test_a_failing_run_is_left_to_its_failures(tmp_path: pathlib.Path) -> None:
    assert _census(tmp_path, {}) == []  # TestAdd and TestRender fail: the run is not ok anyway


def test_a_run_pattern_lists_only_what_it_runs(tmp_path: pathlib.Path) -> None:
    assert census.list_pattern("TestAdd/case_1") == "TestAdd"
    assert census.list_pattern("Test[A/B]x/y") == "Test[A/B]x"
    assert census.list_pattern(None) == "."


def _event(action: str, test: str | None = None, pkg: str = "p") -> str:
    body = f'"Action":"{action}","Package":"{pkg}"' + (f',"Test":"{test}"' if test else "")
    return "{" + body + "}"


def test_stream_without_final_event_and_exit_mismatch() -> None:
    base = census.BaseTests({"p": ("TestA",)})
    t = census.Tracker()
    for line in (_event("start"), _event("run", "TestA"), _event("pass", "TestA")):
        t.feed(line)
    assert [p.reason for p in census.check(base, t, exit_code=0)] == ["no_final_event"]
    t.feed(_event("pass"))
    assert census.check(base, t, exit_code=0) == []
    assert [p.reason for p in census.check(base, t, exit_code=1)] == ["exit_mismatch"]


def test_newly_skipped_needs_an_unpatched_run() -> None:
    base = census.BaseTests({"p": ("TestA", "TestB")})
    t = census.Tracker()
    for line in (_event("run", "TestA"), _event("skip", "TestA"), _event("run", "TestB"), _event("pass", "TestB")):
        t.feed(line)
    t.feed(_event("pass"))
    assert census.check(base, t, exit_code=0) == []
    problems = census.check(base, t, exit_code=0, ran_unskipped={("p", "TestA"), ("p", "TestB")})
    assert [(p.reason, p.test) for p in problems] == [("newly_skipped", "TestA")]


def test_count_and_failfast() -> None:
    base = census.BaseTests({"p": ("TestA",)})
    t = census.Tracker()
    for line in (_event("run", "TestA"), _event("pass", "TestA")) * 2:
        t.feed(line)
    t.feed(_event("pass"))
    assert [p.reason for p in census.check(base, t, exit_code=0)] == ["duplicate_test"]
    assert census.check(base, t, exit_code=0, count=2) == []
    empty = census.Tracker()
    for line in (_event("run", "TestB", "q"), _event("fail", "TestB", "q")):
        empty.feed(line)
    assert census.check(base, empty, exit_code=1, failfast=True) == []


@given(st.lists(st.text(max_size=80), max_size=20))
def test_parsers_take_any_line(lines: list[str]) -> None:
    census.parse_list(lines)
    t = census.Tracker()
    for line in lines:
        t.feed(line)
    census.check(census.BaseTests({}), t, exit_code=None)


def test_a_flood_of_forged_tests_is_summarized_not_held() -> None:
    """Test output can forge `=== RUN` markers; past the cap the tracker stops growing and the census fails."""
    base = census.BaseTests({"p": ("TestA",)})
    t = census.Tracker()
    for line in (_event("start"), _event("run", "TestA"), _event("pass", "TestA")):
        t.feed(line)
    for i in range(census.MAX_TRACKED_TESTS + 500):
        t.feed(_event("run", f"TestForged{i}"))
        t.feed(_event("pass", f"TestForged{i}"))
    t.feed(_event("pass"))
    assert len(t.runs) == census.MAX_TRACKED_TESTS
    assert t.tracked_bytes <= census.MAX_TRACKED_BYTES
    assert all(sum(c.values()) == 1 for c in t.outcomes.values())  # counts, not one entry per event
    [problem] = census.check(base, t, exit_code=0)
    assert problem.reason == "census_overflow"
    assert "1002 event(s) not tracked" in problem.detail


def test_long_test_names_count_against_the_byte_cap() -> None:
    t = census.Tracker(max_bytes=10_000)
    name = "Test" + "x" * 996
    for i in range(30):
        t.feed(_event("run", f"{name}{i}"))
    assert len(t.runs) == 9 and t.dropped == 21
    assert t.tracked_bytes <= 10_000
    t.feed(_event("pass", f"{name}0"))  # a known test keeps being counted past the cap
    assert t.outcomes[("p", f"{name}0")]["pass"] == 1


def test_repeats_of_one_test_take_constant_space() -> None:
    t = census.Tracker()
    for _ in range(5000):
        t.feed(_event("run", "TestA"))
        t.feed(_event("pass", "TestA"))
    assert t.runs[("p", "TestA")] == 5000
    assert t.outcomes[("p", "TestA")] == {"pass": 5000}
    assert t.tracked_bytes == len("pTestA")
