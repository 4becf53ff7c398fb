"""What the sandbox is made of, decided before anything runs: environment, limits, the report.

Pure data and decisions, no processes: the allow-listed environment (`GoEnv`), the limits
(`Limits`: rlimits through prlimit, and the watchdog's task and memory ceilings), the modules a
call's packages are in (`module_targets`: the root's, or nested ones with their own go.mod) and the
check that packages stay inside them, and the `SandboxReport` every result carries.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from servers.common.errors import InvalidInput
from servers.common.tamper.guard import nested_owner
from servers.go_test_runner.repo_files import module_file, read_repo_file, read_repo_text


class SandboxReport(BaseModel):
    """How a run was confined; part of every result."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    weak: bool = Field(description="True when the run had no bubblewrap sandbox (allow_weak_sandbox).")
    network_isolated: bool
    pid_namespace: bool
    protections: list[str] = Field(description="The protections that were active for this run.")
    rlimits: dict[str, int]
    test_cache_mode: str = Field(description="How test code saw the shared caches.")
    notes: list[str]


@dataclass(frozen=True)
class Limits:
    """rlimits (per process, any uid) and the watchdog's ceilings (per run, any uid)."""

    address_space_mb: int
    address_space_race_mb: int
    nproc: int
    fsize_mb: int
    nofile: int
    max_tasks: int = 0
    memory_mb: int = 0

    def rlimits(self, *, race: bool) -> dict[str, int]:
        out = {"RLIMIT_CORE": 0}
        address_space = self.address_space_race_mb if race else self.address_space_mb
        if address_space:
            out["RLIMIT_AS"] = address_space << 20
        if self.nproc:
            out["RLIMIT_NPROC"] = self.nproc
        if self.fsize_mb:
            out["RLIMIT_FSIZE"] = self.fsize_mb << 20
        if self.nofile:
            out["RLIMIT_NOFILE"] = self.nofile
        return out

    def prlimit(self, *, race: bool) -> dict[str, int]:
        """The same limits as `prlimit` option names."""
        return {name.removeprefix("RLIMIT_").lower(): value for name, value in self.rlimits(race=race).items()}


@dataclass(frozen=True)
class GoEnv:
    """The only environment test code sees: an allow-list, rebuilt for every run.

    HOME, TMPDIR and GOCACHE are set by the sandbox (their paths inside the view).
    """

    go_bin_dir: str
    gomodcache: Path
    goproxy: str

    def build(self, *, offline: bool) -> dict[str, str]:
        """Variables for one run; `offline` sets GOPROXY=off (test code runs with no network anyway)."""
        return {
            "PATH": f"{self.go_bin_dir}:/usr/bin:/bin",
            "GOPATH": "/nonexistent/gopath",
            "GOMODCACHE": str(self.gomodcache),
            "GOFLAGS": "-mod=readonly -buildvcs=false",
            "GOTOOLCHAIN": "local",
            "GOPROXY": "off" if offline else self.goproxy,
            "GOENV": "off",
            "GOTELEMETRY": "off",
            "CGO_ENABLED": "1",
            "LANG": "C.UTF-8",
        }


def module_path(worktree: Path, directory: str = "") -> str | None:
    """The module path the go.mod in the checkout's `directory` ("" the root) declares; None when it is
    absent, unreadable or has no module line.

    Raises:
        RepoFileRefused: the go.mod is a symlink, not a regular file, or too large (repo_files).
    """
    try:
        text = read_repo_text(worktree, module_file(directory, "go.mod"))
    except OSError:
        return None
    if text is None:
        return None
    m = re.search(r"^module\s+\"?([^\s\"]+)", text, re.MULTILINE)
    return m.group(1) if m else None


def _not_built(directory: str) -> bool:
    """A directory go does not build packages in: testdata, vendor, and names starting with `.` or `_`."""
    return directory in ("testdata", "vendor") or directory.startswith((".", "_"))


def nested_modules(worktree: Path, tracked: list[str]) -> dict[str, str | None]:
    """The modules below the root, `{directory: module path}`, from the repository's `tracked` file names: every
    go.mod outside the root in a directory go would build (none under testdata, vendor, or a `.` or `_`
    directory). Empty when the root has a go.work: go itself then decides which modules a pattern reaches.

    Raises:
        RepoFileRefused: the go.work or one of the go.mod files is not a safe regular file (repo_files).
    """
    if read_repo_file(worktree, "go.work") is not None:
        return {}
    found: dict[str, str | None] = {}
    for name in tracked:
        parts = name.split("/")
        if len(parts) < 2 or parts[-1] != "go.mod":
            continue
        if any(_not_built(p) for p in parts[:-1]):
            continue
        directory = "/".join(parts[:-1])
        found[directory] = module_path(worktree, directory)
    return found


def _pattern_dir(pkg: str, root_module: str | None, nested: dict[str, str | None]) -> tuple[str | None, bool]:
    """The directory a package pattern names, relative to the root ("" the root; None when it cannot be told),
    and whether it reaches below it (`...`)."""
    wide = pkg.endswith("...")
    base = pkg.removesuffix("...").removesuffix("/")
    if pkg.startswith("."):
        parts = [p for p in base.split("/") if p not in ("", ".")]
        return "/".join(parts), wide
    # an import path: the longest module path it falls under names the module's directory
    owners = [(d, m) for d, m in nested.items() if m is not None] + [("", root_module or "")]
    for directory, module in sorted(owners, key=lambda o: -len(o[1])):
        if module and (base == module or base.startswith(f"{module}/")):
            rest = base[len(module) :].strip("/")
            return "/".join(p for p in (directory, rest) if p), wide
    return None, wide


def go_mod_files(root: Path) -> list[str]:
    """Every go.mod under `root` (relative, `/`-separated), by walking the tree: for a checkout that is
    not read through git. Directories go would not build are not entered."""
    found: list[str] = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs if not _not_built(d)]
        if "go.mod" in files:
            found.append((Path(directory) / "go.mod").relative_to(root).as_posix())
    return found


@dataclass(frozen=True)
class Target:
    """One module of a call's packages, and those packages as go names them from its directory."""

    module: str  # the module's directory relative to the root; "" the root module
    packages: list[str]
    skipped: list[str]  # nested modules a `...` pattern passes over (go skips them)
    dependents: tuple[str, ...] = ()  # import paths of the module's packages whose tests depend on `packages`
    dependents_left: int = 0  # more such packages, past the runner's max_dependents

    @property
    def name(self) -> str:
        return f"the nested module {self.module} ({self.module}/go.mod)" if self.module else "the root module"


def module_targets(packages: list[str], root_module: str | None, nested: dict[str, str | None]) -> list[Target]:
    """A call's packages by module, in the order first named: go runs in one module at a time, from its
    directory (`./tools/fmtx` is `./fmtx` in the module `tools`; import paths stay). Each target also names
    the nested modules its `...` patterns pass over that no other target covers, for the result to say so."""
    by_module: dict[str, list[str]] = {}
    passed_over: dict[str, set[str]] = {}
    for pkg in packages:
        directory, wide = _pattern_dir(pkg, root_module, nested)
        owner = (nested_owner(directory, nested) or "") if directory is not None else ""
        if owner and directory is not None and pkg.startswith("."):
            rest = directory[len(owner) :].strip("/")
            pkg = "./" + "/".join(p for p in (rest, "..." if wide else "") if p) if rest or wide else "."
        by_module.setdefault(owner, []).append(pkg)
        if wide and directory is not None:
            below = {d for d in nested if d != owner and (not directory or d.startswith(f"{directory}/"))}
            passed_over.setdefault(owner, set()).update(below)
    return [
        Target(module, pkgs, sorted(passed_over.get(module, set()) - set(by_module)))
        for module, pkgs in by_module.items()
    ]


def check_packages_inside(worktree: Path, directory: str, packages: list[str]) -> None:
    """Import paths must name packages of the module in the checkout's `directory` ("" the root; not std,
    not a dependency).

    Raises:
        InvalidInput: a package outside the module, or its go.mod refused (repo_files.RepoFileRefused).
    """
    module = module_path(worktree, directory)
    for pkg in packages:
        if pkg.startswith(".") or (module is not None and (pkg == module or pkg.startswith(f"{module}/"))):
            continue
        where = f"module {module}" if module else "the repository (it has no go.mod module line)"
        raise InvalidInput(f"package {pkg!r} is outside {where}; use ./... or an import path under it")
