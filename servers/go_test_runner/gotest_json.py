"""Parse a `go test -json` stream into a `TestReport`. Pure: lines in, report out, never raises.

`StreamParser` is fed one line at a time (so the runner can parse while the process runs and keep
memory bounded by the caps below); `parse_stream` is the one-shot form. Lines that are not JSON
events (stderr of an old toolchain, `go:` errors) are still read for build errors.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from servers.go_test_runner import traces
from servers.go_test_runner.report import (
    BuildError,
    DataRace,
    PackageResult,
    PackageStatus,
    Panic,
    TestReport,
    TestResult,
    TestStatus,
    summarize,
)

MAX_LINE_CHARS = 500
MAX_RELEVANT = 20
MAX_TAIL = 10
MAX_TRACE_LINES = 200
MAX_ITEMS = 20  # panics, races, build errors each
# The per-test state is bounded: passing and skipped tests are only counted; at most MAX_TRACKED tests
# are followed at once (running, or failed and kept), and their kept lines total at most MAX_KEPT_CHARS.
# Past the caps tests are counted by status and `tests_omitted` says how many went unlisted.
MAX_TRACKED = 2000
MAX_KEPT_CHARS = 2 << 20
_MARKER = re.compile(r"^(?:=== (?:RUN|PAUSE|CONT|NAME)|--- (?:PASS|FAIL|SKIP):|PASS$|FAIL$|ok  \t|FAIL\t|\?   \t)")
# Marker lines `_output` skips whatever they hold when no block is open (checked first, for speed).
_PLAIN_MARKERS = ("=== RUN", "=== PAUSE", "=== CONT", "=== NAME", "--- PASS:", "--- SKIP:", "--- FAIL:")
_TEST_LINE = re.compile(r"^\s+\S+\.go:\d+: ")
_RUNNING = re.compile(r"^\t\t(\S.*?) \([\d.]+\w*\)$")
_PKG_KEEP = re.compile(r"^(?:coverage: |panic: |fatal error: |exit status |.*\[(?:setup|build) failed\])")


def decode(line: str) -> dict[str, Any] | None:
    """One line of the stream as a JSON object, or None when it is not one (a `go:` error, stderr).

    Decoded once per line for every reader of the stream (`StreamParser.feed_event`, the census's
    tracker): orjson first, the standard library for what orjson refuses (NaN, escaped lone surrogates),
    so both read what `json.loads` reads, except integers wider than 64 bits (no test2json field holds
    one), which orjson reads as floats.
    """
    if not line.startswith("{"):
        return None
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        try:
            event = json.loads(line)
        except ValueError:
            return None
    return event if isinstance(event, dict) else None  # pyright: ignore[reportUnknownVariableType]


@dataclass
class _Capture:
    """Output of one test (or of a package outside any test), kept within the caps."""

    relevant: deque[str] = field(default_factory=lambda: deque[str](maxlen=MAX_RELEVANT))
    tail: deque[str] = field(default_factory=lambda: deque[str](maxlen=MAX_TAIL))
    dropped: bool = False
    mode: str = ""  # "", "panic", "race", "timeout", "dump"
    block: list[str] = field(default_factory=list[str])
    status: str = "running"
    elapsed: float | None = None


@dataclass
class _Package:
    status: str | None = None
    elapsed: float | None = None
    failed_build: bool = False
    timed_out: bool = False
    out: _Capture = field(default_factory=_Capture)


class StreamParser:
    """Incremental `go test -json` parser; `root` is the checkout path, used to place stack frames, and
    `module` the directory of the module go ran in ("" the root's), to place build errors."""

    def __init__(self, root: str | None = None, module: str = "") -> None:
        self._root = root
        self._module = module
        self._packages: dict[str, _Package] = {}
        self._tests: dict[tuple[str, str], _Capture] = {}
        self._panics: list[Panic] = []
        self._races: list[DataRace] = []
        self._race_keys: set[tuple[str, ...]] = set()
        self._build_errors: list[BuildError] = []
        self._build_pkg = ""
        self._build_notes: dict[str, list[str]] = {}
        self._running_at_timeout: list[str] = []
        self._truncated = False
        self._counts: dict[str, dict[str, int]] = {}  # package -> pass/fail/skip -> tests
        self._omitted = 0  # failed or unfinished tests not listed (past MAX_TRACKED)
        self._kept_chars = 0

    def feed(self, raw: str) -> None:
        """Consume one line of the stream (with or without its newline)."""
        raw = raw.rstrip("\n")
        self.feed_event(raw, decode(raw))

    def feed_event(self, raw: str, event: dict[str, Any] | None) -> None:
        """Consume one line already decoded by `decode` (`raw` is read when `event` is None)."""
        if event is None:
            self._build_line(raw.rstrip("\n"))
            return
        action, pkg, test = event.get("Action"), event.get("Package"), event.get("Test")
        output = event.get("Output")
        if action == "build-output":
            self._build_line(output if isinstance(output, str) else "")
            return
        if not isinstance(pkg, str) or not isinstance(action, str):
            return
        package = self._packages.get(pkg) or self._packages.setdefault(pkg, _Package())
        elapsed = event.get("Elapsed")
        elapsed = float(elapsed) if isinstance(elapsed, int | float) else None
        if isinstance(test, str) and test:
            self._test_event(pkg, test, action, output, elapsed, package)
            return
        if action == "output" and isinstance(output, str):
            self._output(pkg, None, package.out, package, output)
        elif action in ("pass", "fail", "skip"):
            self._close_block(pkg, None, package.out)
            package.status, package.elapsed = action, elapsed
            package.failed_build = bool(event.get("FailedBuild"))

    def _test_event(
        self, pkg: str, test: str, action: str, output: object, elapsed: float | None, package: _Package
    ) -> None:
        key = (pkg, test)
        capture = self._tests.get(key)
        if (
            action == "output"
            and capture is not None
            and not capture.mode
            and isinstance(output, str)
            and output.startswith(_PLAIN_MARKERS)
            and len(output) <= MAX_LINE_CHARS
        ):
            return  # the most common line by far (=== RUN, --- PASS: ...): `_output` would skip it too
        if capture is None and action not in ("pass", "skip") and len(self._tests) < MAX_TRACKED:
            capture = self._tests[key] = _Capture()
        if action in ("pass", "fail", "skip"):
            counts = self._counts.setdefault(pkg, {"pass": 0, "fail": 0, "skip": 0})
            counts[action] += 1
            if capture is None:
                self._omitted += action == "fail"
                return
            self._close_block(pkg, test, capture)
            if action == "fail":
                capture.status, capture.elapsed = action, elapsed
            else:  # passing tests are counted, not listed: their state goes
                del self._tests[key]
        elif capture is not None and action == "output" and isinstance(output, str):
            self._output(pkg, test, capture, package, output)

    def _build_line(self, line: str) -> None:
        line = line.rstrip("\n")
        if line.startswith("# "):
            self._build_pkg = line[2:].split(" [")[0].strip()
            return
        err = traces.parse_build_error(line, self._build_pkg, self._root, self._module)
        if err is not None:
            if len(self._build_errors) < MAX_ITEMS:
                self._build_errors.append(err)
            else:
                self._truncated = True
        elif line.strip() and self._build_pkg:
            # "stat …: directory not found", "no Go files in …": setup failures without a position
            notes = self._build_notes.setdefault(self._build_pkg, [])
            if len(notes) < 5:
                notes.append(line.replace(f"{self._root}/", "") if self._root else line)

    def _output(self, pkg: str, test: str | None, cap: _Capture, package: _Package, text: str) -> None:
        line = text.rstrip("\n")
        if len(line) > MAX_LINE_CHARS:
            line, cap.dropped = line[:MAX_LINE_CHARS] + " …[line truncated]", True
        if cap.mode == "timeout":
            m = _RUNNING.match(line)
            if m:
                self._running_at_timeout.append(m.group(1))
                return
            if line.strip() in ("", "running tests:"):
                return
            cap.mode = "dump"  # the goroutine dump that follows: kept only to find where tests were stuck
        if cap.mode in ("panic", "race", "dump"):
            if cap.mode == "race" and line.startswith("=================="):
                self._close_block(pkg, test, cap)
            elif len(cap.block) < MAX_TRACE_LINES and self._kept_chars + len(line) <= MAX_KEPT_CHARS:
                self._kept_chars += len(line)
                cap.block.append(line)
            else:
                self._truncated = True
            return
        if line.startswith("panic: test timed out after"):
            package.timed_out, cap.mode = True, "timeout"
            cap.relevant.append(line)
        elif line.startswith(("panic: ", "fatal error: ")):
            cap.mode, cap.block = "panic", [line]
            cap.relevant.append(line)
        elif line == "WARNING: DATA RACE":
            cap.mode, cap.block = "race", []
        elif _MARKER.match(line) or line == "==================":
            return
        elif _TEST_LINE.match(line) or (test is None and _PKG_KEEP.match(line)):
            self._keep(cap.relevant, cap, line)
        else:
            self._keep(cap.tail, cap, line)

    def _keep(self, into: deque[str], cap: _Capture, line: str) -> None:
        if self._kept_chars + len(line) > MAX_KEPT_CHARS:
            cap.dropped = self._truncated = True
            return
        if into.maxlen is not None and len(into) == into.maxlen:
            cap.dropped = True
            self._truncated = True
        self._kept_chars += len(line)
        into.append(line)

    def _close_block(self, pkg: str, test: str | None, cap: _Capture) -> None:
        mode, block = cap.mode, cap.block
        cap.mode, cap.block = "", []
        if mode == "panic" and block:
            frame = traces.first_in_repo(traces.parse_frames(block, self._root))
            message = re.sub(r" \[recovered(?:, repanicked)?\]$", "", block[0].split(": ", 1)[-1])
            if frame is not None:
                cap.relevant.append(f"panic location: {frame.file}:{frame.line} ({frame.function})")
            if len(self._panics) < MAX_ITEMS:
                self._panics.append(Panic(package=pkg, test=test, message=message[:300], frame=frame))
        elif mode == "dump":
            seen: set[str] = set()
            for frame in traces.parse_frames(block, self._root):
                where = f"{frame.file}:{frame.line}"
                if frame.in_repo and where not in seen and len(seen) < 3:
                    seen.add(where)
                    cap.relevant.append(f"stuck at {where} ({frame.function})")
        elif mode == "race":
            pair = traces.parse_race(block, self._root)
            if pair is None:
                return
            key = tuple(f"{f.file}:{f.line}" for access in pair for f in access.frames[:1])
            if key not in self._race_keys and len(self._races) < MAX_ITEMS:
                self._race_keys.add(key)
                self._races.append(DataRace(package=pkg, test=test, current=pair[0], previous=pair[1]))
                cap.relevant.append(f"data race: {pair[0].access} / {pair[1].access}")

    def finish(self, *, killed: bool = False) -> TestReport:
        """The report for everything fed so far; `killed` means the run was stopped by the hard timeout."""
        for (pkg, test), cap in self._tests.items():
            self._close_block(pkg, test, cap)
        for pkg, package in self._packages.items():
            self._close_block(pkg, None, package.out)
        packages = [self._package_result(name, p, killed) for name, p in sorted(self._packages.items())]
        by_name = {p.name: p for p in packages}
        tests: list[TestResult] = []
        for (pkg, name), cap in self._tests.items():
            status = self._test_status(cap.status, by_name[pkg].status, name)
            if status in ("fail", "timeout", "running"):
                output = [*cap.relevant, *([] if cap.relevant and status == "fail" else cap.tail)]
                tests.append(
                    TestResult(
                        package=pkg,
                        name=name,
                        status=status,
                        elapsed_s=cap.elapsed,
                        output=output,
                        output_truncated=cap.dropped,
                    )
                )
        running = list(dict.fromkeys(self._running_at_timeout))
        if killed:
            running += [t.name for t in tests if t.status in ("running", "timeout") and t.name not in running]
        failed = sum(c["fail"] for c in self._counts.values())
        report = TestReport(
            ok=bool(packages)
            and all(p.status in ("ok", "no_test_files") for p in packages)
            and not (killed or self._build_errors or failed),
            summary="",
            packages=packages,
            tests=tests,
            panics=self._panics,
            races=self._races,
            build_errors=self._build_errors,
            timed_out=killed or any(p.timed_out for p in self._packages.values()),
            running_at_timeout=running,
            output_truncated=self._truncated or self._omitted > 0,
            tests_omitted=self._omitted,
        )
        return report.model_copy(update={"summary": summarize(report)})

    def _test_status(self, raw: str, package_status: PackageStatus, name: str) -> TestStatus:
        if raw in ("pass", "fail", "skip"):
            return raw  # type: ignore[return-value]
        if package_status == "timeout" or name in self._running_at_timeout:
            return "timeout"
        return "running"

    def _package_result(self, name: str, p: _Package, killed: bool) -> PackageResult:
        counts = self._counts.get(name, {"pass": 0, "fail": 0, "skip": 0})
        status: PackageStatus
        if p.timed_out:
            status = "timeout"
        elif p.status == "pass":
            # A test that failed fails its package whatever the package's final event says: a test can
            # forge test2json's framing ("--- PASS", "PASS") and leave with status 0.
            status = "fail" if counts["fail"] else "ok"
        elif p.status == "skip":
            status = "no_test_files"
        elif p.status == "fail":
            status = "build_failed" if p.failed_build else "fail"
        else:
            status = "timeout" if killed else "incomplete"
        return PackageResult(
            name=name,
            status=status,
            elapsed_s=p.elapsed,
            passed=counts["pass"],
            failed=counts["fail"],
            skipped=counts["skip"],
            output=[*self._build_notes.get(name, []), *p.out.relevant],
        )


def parse_stream(lines: Iterable[str], *, root: str | None = None, killed: bool = False) -> TestReport:
    """Parse a whole `go test -json` stream (see `StreamParser`); never raises on any input."""
    parser = StreamParser(root)
    for line in lines:
        parser.feed(line)
    return parser.finish(killed=killed)
