"""Diagnostics of `go build` and `go vet` output: (file, line, column, message, kind). Pure, never raises.

`kind` is `compile` (the compiler), `vet` (a vet analyzer), `unknown_import` (an import of a
package that does not exist — the classic invented standard-library package, or a module that is
not required), or `setup` (go could not even start: bad pattern, no module, ...).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

from servers.go_test_runner.traces import parse_build_error

Kind = Literal["compile", "vet", "unknown_import", "setup"]
MAX_DIAGNOSTICS = 50

_UNKNOWN_IMPORT = re.compile(
    r"is not in std\b|is not in GOROOT|cannot find module providing package|no required module provides package"
    r"|cannot find package|does not contain package|unrecognized import path|malformed import path"
    r"|use of internal package .* not allowed|could not import \S+ \(.*no (?:such file|metadata)"
)
_SETUP = re.compile(r"^(?:go: |pattern |package |stat |no Go files|can't load package|cannot find main module)")


class Diagnostic(BaseModel):
    """One problem a build or vet found; file is relative to the repository root."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    file: str | None
    line: int | None
    column: int | None
    message: str
    kind: Kind


def parse_diagnostics(
    text: str, *, phase: Literal["build", "vet"], root: str | None = None, module: str = ""
) -> list[Diagnostic]:
    """Diagnostics from the combined output of `go build` or `go vet` (headers and hints skipped); files
    relative to the checkout at `root`, go having run in the module `module` ("" the root's)."""
    out: list[Diagnostic] = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line or line.startswith(("#", "\t", " ")):
            continue
        line = line.removeprefix("vet: ")
        err = parse_build_error(line, "", root, module)
        if err is not None:
            kind: Kind = "unknown_import" if _UNKNOWN_IMPORT.search(err.message) else _phase_kind(phase)
            out.append(Diagnostic(file=err.file, line=err.line, column=err.column, message=err.message, kind=kind))
        elif _SETUP.match(line) or _UNKNOWN_IMPORT.search(line):
            kind = "unknown_import" if _UNKNOWN_IMPORT.search(line) else "setup"
            out.append(Diagnostic(file=None, line=None, column=None, message=line[:500], kind=kind))
    return out


def _phase_kind(phase: str) -> Kind:
    return "vet" if phase == "vet" else "compile"


def merge(build: list[Diagnostic], vet: list[Diagnostic]) -> list[Diagnostic]:
    """Build diagnostics, then vet's that say something new (vet repeats type errors), capped."""
    seen: set[tuple[str | None, int | None, int | None]] = {(d.file, d.line, d.column) for d in build if d.file}
    seen_messages = {d.message for d in build}
    merged = list(build)
    for d in vet:
        key = (d.file, d.line, d.column)
        if (d.file is not None and key in seen) or d.message in seen_messages:
            continue
        seen.add(key)
        seen_messages.add(d.message)
        merged.append(d)
    return merged[:MAX_DIAGNOSTICS]


def summarize(diagnostics: list[Diagnostic]) -> str:
    """One paragraph: counts by kind and the first few diagnostics."""
    if not diagnostics:
        return "go build and go vet found no problems."
    counts: dict[str, int] = {}
    for d in diagnostics:
        counts[d.kind] = counts.get(d.kind, 0) + 1
    head = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in counts.items())
    shown = []
    for d in diagnostics[:3]:
        where = f"{d.file}:{d.line}" + (f":{d.column}" if d.column is not None else "") + ": " if d.file else ""
        shown.append(f"{where}{d.message[:120]}")
    more = f" (+{len(diagnostics) - 3} more)" if len(diagnostics) > 3 else ""
    return f"{len(diagnostics)} problem(s): {head}. " + "; ".join(shown) + more + "."
