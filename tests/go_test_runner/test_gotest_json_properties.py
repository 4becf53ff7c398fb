"""Property tests: the parser never raises, respects its caps, and does not depend on interleaving."""

from __future__ import annotations

import json
import pathlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from servers.go_test_runner import gotest_json
from servers.go_test_runner.gotest_json import StreamParser, parse_stream

STREAMS = pathlib.Path(__file__).resolve().parents[1] / "testdata" / "gotest_streams"
FAST = settings(max_examples=200, deadline=None)

actions = st.sampled_from(["start", "run", "pause", "cont", "pass", "fail", "skip", "output", "bench", "build-output"])
values = st.one_of(st.none(), st.integers(), st.floats(allow_nan=True), st.text(max_size=40), st.booleans())
outputs = st.one_of(
    st.text(max_size=200),
    st.sampled_from(
        [
            "panic: boom\n",
            "WARNING: DATA RACE\n",
            "==================\n",
            "panic: test timed out after 1s\n",
            "\trunning tests:\n",
            "\t\tTestX (1s)\n",
            "    x_test.go:3: bad\n",
            "\t/repo/x.go:3 +0x1\n",
            "example.com/m.F()\n",
            "# example.com/m\n",
            "x.go:1:2: undefined: y\n",
        ]
    ),
)
events = st.fixed_dictionaries(
    {"Action": actions},
    optional={
        "Package": st.sampled_from(["example.com/a", "example.com/b", ""]) | values,
        "Test": st.sampled_from(["TestA", "TestA/sub", "TestB"]) | values,
        "Output": outputs | values,
        "Elapsed": values,
        "FailedBuild": values,
        "ImportPath": values,
    },
)
lines = st.one_of(events.map(json.dumps), st.text(max_size=100), st.just("{not json"))


@FAST
@given(st.lists(lines, max_size=80), st.booleans())
def test_any_stream_parses_and_the_report_is_consistent(stream: list[str], killed: bool) -> None:
    report = parse_stream(stream, root="/repo", killed=killed)
    if report.ok:
        assert (
            not killed and not report.build_errors and all(p.status in ("ok", "no_test_files") for p in report.packages)
        )
    assert all(t.status in ("fail", "timeout", "running") for t in report.tests)
    assert len(report.panics) <= gotest_json.MAX_ITEMS and len(report.build_errors) <= gotest_json.MAX_ITEMS
    assert report.summary


@FAST
@given(st.lists(st.text(max_size=2000), max_size=300))
def test_output_of_one_test_is_capped(noise: list[str]) -> None:
    parser = StreamParser("/repo")
    parser.feed(json.dumps({"Action": "run", "Package": "p", "Test": "TestA"}))
    for text in noise:
        parser.feed(json.dumps({"Action": "output", "Package": "p", "Test": "TestA", "Output": text + "\n"}))
    parser.feed(json.dumps({"Action": "fail", "Package": "p", "Test": "TestA", "Elapsed": 0.1}))
    parser.feed(json.dumps({"Action": "fail", "Package": "p", "Elapsed": 0.2}))
    report = parser.finish()
    (test,) = report.tests
    assert len(test.output) <= gotest_json.MAX_RELEVANT + gotest_json.MAX_TAIL + 1
    assert all(len(line) <= gotest_json.MAX_LINE_CHARS + 40 for line in test.output)


def _interleave(a: list[str], b: list[str], rng: random.Random) -> list[str]:
    out, i, j = [], 0, 0
    while i < len(a) or j < len(b):
        if j >= len(b) or (i < len(a) and rng.random() < 0.5):
            out.append(a[i])
            i += 1
        else:
            out.append(b[j])
            j += 1
    return out


@settings(max_examples=30, deadline=None)
@given(st.randoms(use_true_random=False))
def test_interleaving_two_packages_does_not_change_the_report(rng: random.Random) -> None:
    root_fail = json.loads((STREAMS / "fail.meta.json").read_text())["root"]
    fail = (STREAMS / "fail.jsonl").read_text().splitlines()
    passing = (STREAMS / "pass.jsonl").read_text().splitlines()
    mixed = parse_stream(_interleave(fail, passing, rng), root=root_fail)
    alone = parse_stream(fail + passing, root=root_fail)
    assert mixed.packages == alone.packages
    assert sorted(mixed.tests, key=lambda t: t.name) == sorted(alone.tests, key=lambda t: t.name)
    assert mixed.summary == alone.summary


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_every_prefix_of_a_real_stream_parses(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(p.stem for p in STREAMS.glob("*.jsonl"))))
    stream = (STREAMS / f"{name}.jsonl").read_text().splitlines()
    cut = data.draw(st.integers(0, len(stream)))
    report = parse_stream(stream[:cut], killed=True)
    assert not report.ok


def _event(action: str, test: str, output: str | None = None) -> str:
    event = {"Action": action, "Package": "example.com/flood", "Test": test}
    if output is not None:
        event["Output"] = output
    return json.dumps(event)


@pytest.mark.slow
def test_a_flood_of_passing_subtests_keeps_no_state_per_test() -> None:
    """300k passing subtests (the reproduction took the server from 84 MB to 691 MB): counted, not held."""
    parser = StreamParser()
    parser.feed(_event("run", "TestFlood"))
    head = '{"Action":"%s","Package":"example.com/flood","Test":"TestFlood/case_%d"'
    for i in range(300_000):
        parser.feed(head % ("run", i) + "}")
        parser.feed(head % ("output", i) + ',"Output":"    flood_test.go:9: some log line\\n"}')
        parser.feed(head % ("pass", i) + "}")
        assert len(parser._tests) <= 2
    parser.feed(_event("pass", "TestFlood"))
    parser.feed(json.dumps({"Action": "pass", "Package": "example.com/flood"}))
    report = parser.finish()
    assert report.ok and report.packages[0].passed == 300_001 and report.tests == []


def test_failures_past_the_cap_are_counted_and_marked_not_listed() -> None:
    parser = StreamParser()
    n = gotest_json.MAX_TRACKED + 500
    for i in range(n):
        name = f"TestMany/case_{i}"
        parser.feed(_event("output", name, f"    many_test.go:9: {'x' * 400} {i}\n"))
        parser.feed(_event("fail", name))
    parser.feed(json.dumps({"Action": "fail", "Package": "example.com/flood"}))
    report = parser.finish()
    assert len(report.tests) == gotest_json.MAX_TRACKED
    assert report.packages[0].failed == n
    assert report.tests_omitted == 500 and report.output_truncated
    assert "500 more failed test(s) not listed (result size cap)." in report.summary
    kept = sum(len(line) for t in report.tests for line in t.output)
    assert kept <= gotest_json.MAX_KEPT_CHARS


@FAST
@given(
    st.lists(st.tuples(st.sampled_from(["run", "output", "pass", "fail", "skip"]), st.integers(0, 40)), max_size=300)
)
def test_tracked_tests_and_kept_text_never_exceed_the_caps(steps: list[tuple[str, int]]) -> None:
    saved = gotest_json.MAX_TRACKED, gotest_json.MAX_KEPT_CHARS
    gotest_json.MAX_TRACKED, gotest_json.MAX_KEPT_CHARS = 5, 300
    try:
        parser = StreamParser()
        for action, n in steps:
            parser.feed(_event(action, f"T{n}", "    a_test.go:1: " + "y" * 30 + "\n" if action == "output" else None))
            assert len(parser._tests) <= 5
        report = parser.finish()
        assert sum(len(line) for t in report.tests for line in t.output) <= 300 + 200  # + markers added at finish
    finally:
        gotest_json.MAX_TRACKED, gotest_json.MAX_KEPT_CHARS = saved


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=10,
)
raw_lines = st.one_of(
    st.text(max_size=80),
    json_values.map(json.dumps),
    st.sampled_from(['{"a": NaN}', '{"n": 123456789012345678901234567890}', '{"s": "\\ud800"}', '{"a":1,"a":2}', "{"]),
)


def _int(text: str) -> int | float:
    value = int(text)
    return value if -(2**63) <= value < 2**64 else float(value)  # orjson reads wider integers as floats


@FAST
@given(raw_lines)
def test_decode_reads_every_line_as_the_standard_library_does(line: str) -> None:
    """The stream is decoded once per line by orjson, with json as the fallback: the same objects
    (integers wider than 64 bits, which no test2json field holds, come back as floats)."""
    try:
        expected = json.loads(line, parse_int=_int) if line.startswith("{") else None
    except ValueError:
        expected = None
    assert gotest_json.decode(line) == (expected if isinstance(expected, dict) else None)
