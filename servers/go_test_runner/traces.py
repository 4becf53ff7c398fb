"""Pure parsers for the text inside `go test` output: stack traces, race reports, build errors.

All functions take plain lines and never raise; unrecognised text is simply not matched.
"""

from __future__ import annotations

import itertools
import posixpath
import re
from collections.abc import Sequence

from servers.go_test_runner.report import BuildError, Frame, RaceAccess

_FILE_LINE = re.compile(r"^\s+(?P<file>\S.*?\.(?:go|s|c)):(?P<line>\d+)(?:\s+\+0x[0-9a-fA-F]+)?\s*$")
_BUILD_ERROR = re.compile(r"^(?:vet: )?(?P<file>[^\s:#][^:\n]*?\.go):(?P<line>\d+)(?::(?P<col>\d+))?: (?P<msg>.+)$")
_RACE_SECTION = re.compile(
    r"^(?:Previous )?(?:[Rr]ead|[Ww]rite|[Aa]tomic \w+|\w+) at .* by (?:goroutine \d+|main goroutine)"
)


def _strip_args(function: str) -> str:
    text = function.strip()
    if text.startswith("created by "):
        text = text[len("created by ") :]
    text = re.sub(r" in goroutine \d+$", "", text)
    if text.endswith(")"):
        depth = 0
        for i in range(len(text) - 1, -1, -1):
            depth += {")": 1, "(": -1}.get(text[i], 0)
            if depth == 0:
                return text[:i] or text
    return text


def _locate(path: str, root: str | None) -> tuple[str, bool]:
    """(display path, inside the repository?) for a file named in a trace."""
    if root:
        prefix = root.rstrip("/") + "/"
        if path.startswith(prefix):
            return path[len(prefix) :], "/pkg/mod/" not in path[len(prefix) :]
        return path, False
    outside = "/pkg/mod/" in path or "/go/src/" in path or "/goroot/" in path or path.endswith("_testmain.go")
    return path, not outside and path.startswith("/")


def _looks_std(function: str) -> bool:
    """testing.tRunner, net/http.Get, panic: the first path element of a module path has a dot."""
    return "/" not in function or "." not in function.split("/")[0]


def parse_frames(lines: Sequence[str], root: str | None) -> list[Frame]:
    """Frames of a goroutine trace or race stack: a function line followed by an indented file:line."""
    frames: list[Frame] = []
    for prev, line in itertools.pairwise(lines):
        m = _FILE_LINE.match(line)
        if m is None or not prev.strip() or _FILE_LINE.match(prev):
            continue
        function = _strip_args(prev)
        file, in_repo = _locate(m.group("file"), root)
        if root is None and _looks_std(function):
            in_repo = False
        frames.append(Frame(function=function[:200], file=file[:300], line=int(m.group("line")), in_repo=in_repo))
    return frames


def first_in_repo(frames: Sequence[Frame]) -> Frame | None:
    """The innermost frame inside the repository: where a person should start reading."""
    return next((f for f in frames if f.in_repo), None)


def parse_race(lines: Sequence[str], root: str | None) -> tuple[RaceAccess, RaceAccess] | None:
    """The two conflicting accesses of one `WARNING: DATA RACE` block (the lines inside it)."""
    sections: list[tuple[str, list[str]]] = []
    for line in lines:
        if _RACE_SECTION.match(line):
            sections.append((line.rstrip(":").strip(), []))
        elif line and not line[0].isspace():
            sections.append(("", []))  # "Goroutine N created at:" and other headers end a section
        elif sections:
            sections[-1][1].append(line)
    accesses = [(head, body) for head, body in sections if head]
    if len(accesses) < 2:
        return None

    def access(head: str, body: list[str]) -> RaceAccess:
        frames = parse_frames(body, root)
        chosen = [f for f in frames if f.in_repo][:3] or frames[:3]
        return RaceAccess(access=head[:200], frames=chosen)

    return access(*accesses[0]), access(*accesses[1])


def parse_build_error(line: str, package: str, root: str | None, module: str = "") -> BuildError | None:
    """A compiler or vet diagnostic (`file.go:12:5: message`), or None for any other line. Its file is made
    relative to the checkout at `root`; go names it relative to the directory it ran in, the module `module`
    (a nested module's directory, "" the root)."""
    m = _BUILD_ERROR.match(line.strip())
    if m is None:
        return None
    file = m.group("file")
    if root and file.startswith(root.rstrip("/") + "/"):
        file = file[len(root.rstrip("/")) + 1 :]
    elif module and not file.startswith("/"):
        file = posixpath.normpath(f"{module}/{file}")
    file = file.removeprefix("./")
    col = m.group("col")
    return BuildError(
        package=package,
        file=file[:300],
        line=int(m.group("line")),
        column=int(col) if col is not None else None,
        message=m.group("msg")[:500],
    )
