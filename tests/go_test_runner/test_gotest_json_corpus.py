"""The parser on real `go test -json` streams recorded from the fixture modules (see gotest_streams/record.py)."""

from __future__ import annotations

import json
import pathlib

import pytest

from servers.go_test_runner.gotest_json import parse_stream
from servers.go_test_runner.report import TestReport

STREAMS = pathlib.Path(__file__).resolve().parents[1] / "testdata" / "gotest_streams"


def load(name: str) -> TestReport:
    meta = json.loads((STREAMS / f"{name}.meta.json").read_text())
    return parse_stream((STREAMS / f"{name}.jsonl").read_text().splitlines(), root=meta["root"])


def statuses(report: TestReport) -> dict[str, str]:
    return {p.name: p.status for p in report.packages}


def failing(report: TestReport) -> dict[str, str]:
    return {t.name: t.status for t in report.tests}


def test_every_recorded_stream_parses_and_agrees_with_the_exit_code() -> None:
    names = sorted(p.stem for p in STREAMS.glob("*.jsonl"))
    assert len(names) >= 10
    for name in names:
        meta = json.loads((STREAMS / f"{name}.meta.json").read_text())
        report = load(name)
        assert report.ok == (meta["exit_code"] == 0), name
        assert report.summary


def test_passing_module_reports_ok_and_no_test_files() -> None:
    report = load("pass")
    assert statuses(report) == {"example.com/pass/notests": "no_test_files", "example.com/pass/util": "ok"}
    util = report.packages[1]
    assert (util.passed, util.failed, util.skipped) == (5, 0, 1)
    assert report.tests == []
    assert report.summary == "2 package(s): 1 had no test files, 1 ok; 5 test(s) passed."


def test_cached_and_covered_runs_are_understood() -> None:
    assert load("pass_cached").ok
    cover = load("shuffle_cover")
    assert cover.packages[1].output == ["coverage: 100.0% of statements"]


def test_failing_subtests_carry_their_failure_lines() -> None:
    report = load("fail")
    assert failing(report) == {
        "TestSub": "fail",
        "TestSub/5-3": "fail",
        "TestSub/3-3": "fail",
        "TestNoisyFailure": "fail",
    }
    by_name = {t.name: t for t in report.tests}
    assert by_name["TestSub/5-3"].output == [
        "    calc_test.go:18: checking 5 3",
        "    calc_test.go:20: Sub(5, 3) = 8, want 2",
    ]
    # 50 lines of progress noise are not "the output that matters"; the t.Error line is.
    assert by_name["TestNoisyFailure"].output == ["    calc_test.go:30: expected failure after noise"]
    assert "TestSub/5-3 (calc_test.go:20: Sub(5, 3) = 8, want 2)" in report.summary
    assert "TestSub (" not in report.summary  # the parent only failed because its subtests did


def test_a_run_pattern_selecting_one_subtest() -> None:
    report = load("fail_run_subtest")
    assert failing(report) == {"TestSub": "fail", "TestSub/5-3": "fail"}


def test_panic_points_at_the_first_frame_inside_the_repo() -> None:
    report = load("panic")
    assert [(p.test, p.message) for p in report.panics] == [("TestInc", "assignment to entry in nil map")]
    frame = report.panics[0].frame
    assert frame is not None
    assert (frame.file, frame.line, frame.function) == ("store/store.go", 8, "example.com/panic/store.(*Store).Inc")
    assert "TestInc panicked: assignment to entry in nil map at store/store.go:8." in report.summary


def test_data_race_reports_both_accesses() -> None:
    report = load("race")
    assert len(report.races) == 1
    race = report.races[0]
    assert race.test == "TestCount"
    assert race.current.access.startswith(("Read at", "Write at"))
    assert race.previous.access.startswith("Previous write at")
    assert [(f.file, f.line) for f in race.current.frames] == [("counter/counter.go", 14)]
    assert [(f.file, f.line) for f in race.previous.frames] == [("counter/counter.go", 14)]
    assert "Data race in TestCount:" in report.summary


def test_build_failures_are_file_line_column() -> None:
    report = load("buildfail")
    assert statuses(report) == {
        "example.com/buildfail/broken": "build_failed",
        "example.com/buildfail/ok": "ok",
        "example.com/buildfail/vetbad": "build_failed",
    }
    assert [(e.package, e.file, e.line, e.column) for e in report.build_errors] == [
        ("example.com/buildfail/broken", "broken/broken.go", 6, 13),
        ("example.com/buildfail/broken", "broken/broken.go", 10, 26),
        ("example.com/buildfail/vetbad", "vetbad/vetbad.go", 7, 51),
    ]
    assert report.build_errors[0].message == "undefined: two"


def test_unknown_imports_are_build_errors() -> None:
    report = load("unknownimport")
    assert set(statuses(report).values()) == {"build_failed"}
    messages = [e.message for e in report.build_errors]
    assert any("crypto/sha3x is not in std" in m for m in messages)
    assert any("github.com/nonexistent/zzz" in m for m in messages)


def test_go_test_timeout_is_mapped_to_the_running_tests() -> None:
    report = load("hang")
    assert report.timed_out
    assert report.running_at_timeout == ["TestHangs", "TestHangs/inner"]
    assert failing(report) == {"TestHangs": "timeout", "TestHangs/inner": "timeout"}
    inner = next(t for t in report.tests if t.name == "TestHangs/inner")
    assert inner.output[0] == "panic: test timed out after 2s"
    assert "stuck at wait/wait_test.go:13 (example.com/hang/wait.TestHangs.func1.1)" in inner.output
    assert report.summary.endswith("Timed out while running TestHangs, TestHangs/inner.")


@pytest.mark.parametrize("name", ["fail", "panic", "race", "hang", "buildfail"])
def test_a_stream_cut_short_by_a_kill_is_not_ok_and_names_what_was_running(name: str) -> None:
    meta = json.loads((STREAMS / f"{name}.meta.json").read_text())
    lines = (STREAMS / f"{name}.jsonl").read_text().splitlines()
    report = parse_stream(lines[: len(lines) // 2], root=meta["root"], killed=True)
    assert not report.ok
    assert report.timed_out
    running = {t.name for t in report.tests if t.status in ("running", "timeout")}
    assert running <= set(report.running_at_timeout) | running
