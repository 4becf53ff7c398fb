"""What the sandbox is made of, decided before anything runs: environment, limits, paths.

Pure data and decisions, no processes: the allow-listed environment (`GoEnv`), the rlimits
(`Limits`), which directories are hidden from test code or made read-only (`hideable`,
`readonly_system`), the check that packages stay inside the repository's module, and the
`SandboxReport` every result carries.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from servers.common.errors import InvalidInput
from servers.go_test_runner.settings import GoTestRunnerSettings


class SandboxReport(BaseModel):
    """How a run was confined; part of every result."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    network_isolated: bool
    pid_namespace: bool
    rlimits: dict[str, int]
    hidden_paths: list[str]
    readonly_paths: list[str]
    readonly_for_tests: list[str]
    test_cache_mode: Literal["overlay", "read-only", "shared"]
    notes: list[str]


@dataclass(frozen=True)
class Limits:
    address_space_mb: int
    nproc: int
    fsize_mb: int
    nofile: int

    def rlimits(self, *, race: bool) -> dict[str, int]:
        out = {"RLIMIT_CORE": 0}
        if self.address_space_mb and not race:
            out["RLIMIT_AS"] = self.address_space_mb << 20
        if self.nproc:
            out["RLIMIT_NPROC"] = self.nproc
        if self.fsize_mb:
            out["RLIMIT_FSIZE"] = self.fsize_mb << 20
        if self.nofile:
            out["RLIMIT_NOFILE"] = self.nofile
        return out


@dataclass(frozen=True)
class GoEnv:
    """The only environment test code sees: an allow-list, rebuilt for every run."""

    go_bin_dir: str
    gopath: Path
    gocache: Path
    gomodcache: Path
    goproxy: str

    def build(self, home: Path, tmp: Path, *, offline: bool) -> dict[str, str]:
        """Variables for one run; `offline` sets GOPROXY=off (test code runs with no network anyway)."""
        return {
            "PATH": f"{self.go_bin_dir}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(home),
            "TMPDIR": str(tmp),
            "GOPATH": str(self.gopath),
            "GOCACHE": str(self.gocache),
            "GOMODCACHE": str(self.gomodcache),
            "GOFLAGS": "-mod=readonly -buildvcs=false",
            "GOTOOLCHAIN": "local",
            "GOPROXY": "off" if offline else self.goproxy,
            "GOENV": "off",
            "GOTELEMETRY": "off",
            "CGO_ENABLED": "1",
            "LANG": "C.UTF-8",
        }


def check_packages_inside(worktree: Path, packages: list[str]) -> None:
    """Import paths must name packages of the repository's own module (not std, not a dependency).

    Raises:
        InvalidInput: a package outside the module.
    """
    try:
        go_mod = (worktree / "go.mod").read_text(encoding="utf-8", errors="replace")
    except OSError:
        go_mod = ""
    m = re.search(r"^module\s+\"?([^\s\"]+)", go_mod, re.MULTILINE)
    module = m.group(1) if m else None
    for pkg in packages:
        if pkg.startswith(".") or (module is not None and (pkg == module or pkg.startswith(f"{module}/"))):
            continue
        where = f"module {module}" if module else "the repository (it has no go.mod module line)"
        raise InvalidInput(f"package {pkg!r} is outside {where}; use ./... or an import path under it")


def readonly_system(go: Path, writable: list[Path]) -> tuple[Path, ...]:
    """Directories made read-only in the sandbox: toolchain, interpreter, this package, system dirs.

    A directory that holds something the run must write (work dir, caches) is left out.
    """
    here = Path(__file__).resolve().parent
    candidates = [go.parent.parent, Path(sys.prefix), Path(sys.base_prefix), here.parent, here.parent.parent / ".venv"]
    candidates += [Path(p) for p in ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/opt")]
    out: list[Path] = []
    for path in candidates:
        if not path.is_dir() or path.is_symlink():
            continue
        real = path.resolve()
        if real not in out and not any(w == real or w.is_relative_to(real) for w in writable):
            out.append(real)
    return tuple(out)


def hideable(settings: GoTestRunnerSettings, go: Path) -> tuple[tuple[Path, ...], tuple[str, ...]]:
    """The configured credential directories that can be hidden without hiding what a run needs."""
    work = settings.resolved_work_dir()
    needed = [work, go.parent.parent, Path(sys.executable).resolve().parent, Path(__file__).resolve().parent]
    needed += [p.resolve() for p in (settings.gocache, settings.gomodcache) if p is not None]
    hide: list[Path] = []
    notes: list[str] = []
    for path in settings.hide_paths:
        if not path.is_dir():
            continue
        real = path.resolve()
        if any(n == real or n.is_relative_to(real) for n in needed):
            notes.append(f"not hidden from test code, it holds the work dir, a cache or the toolchain: {path}")
        else:
            hide.append(real)
    return tuple(hide), tuple(notes)
