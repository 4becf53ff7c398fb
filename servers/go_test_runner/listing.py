"""The census's base listing without a build: `go list` names the test files, testfuncs reads them.

`go test -list` builds and links every test binary only to print the names of its functions, which
made a patched first run at a commit cost half a run more on zap. The names are a property of the
source: `go list -find` (run by the runner in the sandbox, as it runs go, with the run's build
tags) gives each package's `TestGoFiles` and `XTestGoFiles` after build constraints, and
testfuncs.py applies go's own rules to their syntax trees. The base commit is the unpatched
checkout, read before the patch is applied, so reading it statically is sound. The static guard is
not involved: the two guards stay independent.

`read_listing` returns what `census.parse_list` reads from `go test -json -list`: per package
(internal and external tests together, as one test binary reports them), its tests, then fuzz
targets, then examples with an output comment, matching the `-list` pattern; packages go's test
loader would refuse (a test with the wrong signature, two `TestMain`s, a file that does not parse)
and packages `go list` reports an error for are left out, as `go test -list` lists nothing for them.

The pattern is applied here only when Python's `re` reads it as Go's RE2 does (`name_filter`: names,
anchors, classes, alternation and the common escapes); for any other pattern, and past
`MAX_SOURCE_BYTES` of test files, the runner falls back to `go test -list`.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from servers.go_test_runner import testfuncs
from servers.go_test_runner.census import BaseTests

FIELDS = "ImportPath,Dir,TestGoFiles,XTestGoFiles,Error"
MAX_SOURCE_BYTES = 64 << 20
_ESCAPES = frozenset(".^$*+?()[]{}|\\/-dwsbDWSBA")
_QUANTIFIERS = frozenset("*+?")


class CannotList(Exception):
    """The listing cannot be made statically (too much source); the runner uses `go test -list`."""


@dataclass(frozen=True)
class Package:
    """One package as `go list -json` describes it."""

    import_path: str
    dir: str
    test_files: tuple[str, ...]
    xtest_files: tuple[str, ...]
    error: bool


def go_list_args(packages: Iterable[str], *, race: bool) -> list[str]:
    """`go` arguments naming the test files of `packages` (no dependency is resolved, nothing is built)."""
    return ["list", "-e", "-find", f"-json={FIELDS}", *(["-race"] if race else []), *packages]


def json_objects(text: str) -> Iterator[dict[str, object]]:
    """The JSON objects of `go list -json` output (a stream of them); reading stops at malformed text."""
    decoder = json.JSONDecoder()
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos] in " \t\r\n":
            pos += 1
        if pos >= end:
            return
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except ValueError:
            return
        if isinstance(obj, dict):
            yield obj


def parse_go_list(text: str) -> list[Package]:
    """The packages of `go list -json` output (a stream of JSON objects); malformed entries are skipped."""
    out: list[Package] = []
    for entry in json_objects(text):
        path, where = entry.get("ImportPath"), entry.get("Dir")
        if not isinstance(path, str) or not isinstance(where, str):
            continue
        tests, xtests = _names(entry.get("TestGoFiles")), _names(entry.get("XTestGoFiles"))
        out.append(Package(path, where, tests, xtests, error=entry.get("Error") is not None))
    return out


def _names(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    items: list[object] = value
    return tuple(v for v in items if isinstance(v, str) and v.endswith("_test.go") and "/" not in v)


def name_filter(pattern: str) -> re.Pattern[str] | None:
    """`pattern` (a `-list` regexp) compiled by Python when its reading there is RE2's; else None.

    Accepted: literal names, `. ^ $ | ( )`, `* + ?` and their lazy forms, bracket classes without
    nested `[`, and backslash before punctuation or `d w s b D W S B A`. Refused (go decides): `(?`
    flags and groups, `{}` counts, POSIX classes, escapes inside classes, possessive quantifiers.
    """
    i, n, in_class, run = 0, len(pattern), False, 0
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            if in_class or i + 1 >= n or pattern[i + 1] not in _ESCAPES:
                return None
            i, run = i + 2, 0
            continue
        if in_class:
            if ch == "[":
                return None
            if ch == "]":
                in_class = False
            i += 1
            continue
        if ch in "{}" or pattern.startswith("(?", i):
            return None
        if ch in _QUANTIFIERS:
            run += 1
            if run > 2 or (run == 2 and ch != "?"):
                return None
        else:
            run = 0
        if ch == "[":
            in_class = True
            i += 1
            if pattern.startswith("^", i):
                i += 1
            if pattern.startswith("]", i):
                i += 1  # a `]` first in a class is a literal in both
            continue
        i += 1
    if in_class:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return re.compile(pattern, re.ASCII)
    except (re.error, FutureWarning, DeprecationWarning):
        return None


def read_listing(go_list_output: str, worktree: Path, inside: str, pattern: re.Pattern[str]) -> BaseTests:
    """The base tests of the packages `go list` named, read from their files under `worktree`.

    `inside` is the worktree's path where go ran (its `Dir`s start with it).

    Raises:
        CannotList: the packages' test files hold more than `MAX_SOURCE_BYTES`.
    """
    root = worktree.resolve()
    budget = MAX_SOURCE_BYTES
    tests: dict[str, tuple[str, ...]] = {}
    for pkg in parse_go_list(go_list_output):
        if pkg.error:
            continue
        rel = _relative(pkg.dir, inside, root)
        if rel is None:
            continue  # not in the repository (go only lists the module's own packages here)
        files: list[testfuncs.FileTests] = []
        try:
            for name in (*pkg.test_files, *pkg.xtest_files):
                path = (root / rel / name).resolve()
                if not path.is_relative_to(root) or not path.is_file():
                    raise testfuncs.NotListable(f"{name} is not a file of the repository")
                budget -= path.stat().st_size
                if budget < 0:
                    raise CannotList(f"more than {MAX_SOURCE_BYTES} bytes of test files")
                files.append(testfuncs.read_file(path.read_bytes()))
        except (testfuncs.NotListable, OSError):
            continue  # go test would not build this package's tests either
        if sum(f.mains for f in files) > 1:
            continue  # "multiple definitions of TestMain"
        names = [n for f in files for n in f.tests]
        names += [n for f in files for n in f.fuzz]
        names += [n for f in files for n in f.examples]
        names = [n for n in names if pattern.search(n)]
        if names:
            tests[pkg.import_path] = tuple(names)
    return BaseTests(tests)


def _relative(where: str, *bases: str | Path) -> PurePosixPath | None:
    """`where` relative to the first base it is under (the path inside the sandbox, or the host path
    when go ran unconfined); None when it is under none."""
    for base in bases:
        try:
            return PurePosixPath(where).relative_to(PurePosixPath(base))
        except ValueError:
            continue
    return None
