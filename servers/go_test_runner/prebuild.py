"""Build ahead of time the Go programs go-test-runner otherwise compiles on its first patch.

    GORESOLVE_TOOLS_DIR=/opt/goresolve/tools python -m servers.go_test_runner.prebuild

Two programs ship as Go source: the tamper analyzer of the patch policy's static guard
(servers/common/tamper/analyzer, which needs golang.org/x/tools) and `sandbox-setup`, the set-up
program of the bubblewrap sandbox. Built on first use, they cost a pod minutes of compiling the
standard library on its first ticket and need a module proxy for golang.org/x/tools: a pod whose
NetworkPolicy allows no proxy (`goTestRunner.goproxy: ""`) could then never build the analyzer, and the
guard, which fails closed, would refuse every patch. The go-test-runner image runs this module at
build time into a directory of the image and points `GORESOLVE_TOOLS_DIR` at it; the server copies
the programs from there (servers/common/tamper/tool.py, servers/go_test_runner/sandbox.py).

Idempotent: a program already built for this source and `go` is left alone. Exit status 0 when both
are there, 1 (one line on stderr) when either cannot be built.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from servers.common.errors import UpstreamFailure
from servers.common.tamper import tool
from servers.go_test_runner.sandbox import SetupUnavailable, host_go_env, install_setup_program


def prebuild(go: str) -> tuple[Path, Path]:
    """(analyzer, sandbox-setup) for the go binary `go`, built into `tool.installed_dir()` unless there.

    Raises:
        UpstreamFailure: the analyzer could not be built.
        SetupUnavailable: sandbox-setup could not be built.
        OSError: the tools directory cannot be written.
    """
    go = str(Path(go).resolve())
    analyzer = tool.install_analyzer(go)
    env = host_go_env(go)
    goroot_go = Path(env.get("GOROOT") or Path(go).parent.parent).resolve() / "bin" / "go"
    with tempfile.TemporaryDirectory(prefix="goresolve-prebuild-") as cache:
        setup = install_setup_program(goroot_go, gocache=Path(env.get("GOCACHE") or cache))
    return analyzer, setup


def find_go() -> str | None:
    """The `go` on PATH, the toolchain the server runs (GORESOLVE_GO_TEST_RUNNER_GO_BINARY's default)."""
    return shutil.which("go")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args:
        print(
            "usage: python -m servers.go_test_runner.prebuild  (no arguments; GORESOLVE_TOOLS_DIR names the place)",
            file=sys.stderr,
        )
        return 2
    go = find_go()
    if go is None:
        print("error: no `go` on PATH", file=sys.stderr)
        return 1
    try:
        analyzer, setup = prebuild(go)
    except (UpstreamFailure, SetupUnavailable, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"ready: {analyzer}")
    print(f"ready: {setup}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
