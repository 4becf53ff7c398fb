"""Where test code runs: namespaces, rlimits, hard timeout, capped output (the only process starter).

    unshare --user --map-root-user --net --pid --mount --fork --kill-child -- python -I -S nsinit.py SPEC -- go test ...

- network namespace with only loopback: test code cannot reach the network;
- PID namespace: killing the process group on the hard timeout takes every descendant with it
  (the namespace's init dies and the kernel kills the rest, even processes that left the group);
- private mount namespace: credential directories are covered by an empty read-only tmpfs, the
  mirrors are hidden, and the toolchain, interpreter, this package and system directories are
  read-only; each test binary runs through `go test -exec` with an overlay (or read-only bind)
  over the shared caches, so nothing it writes outlives the run;
- the environment is built from an allow-list (see `confinement.GoEnv`).

When the kernel refuses namespaces, `probe()` says so once and every result carries the notes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from servers.go_test_runner.confinement import Limits, SandboxReport

NSINIT = Path(__file__).resolve().with_name("nsinit.py")
EXECWRAP_SRC = Path(__file__).resolve().parent / "execwrap" / "main.go"
_UNSHARE = ["unshare", "--user", "--map-root-user", "--net", "--pid", "--mount", "--fork", "--kill-child", "--"]
_STDERR_KEEP = 256 << 10
TRUNCATED_MARKER = "…[output truncated by go-test-runner]"


@dataclass(frozen=True)
class Outcome:
    exit_code: int | None
    killed: bool
    elapsed_s: float
    output_bytes: int
    truncated: bool
    stderr: str


def build_execwrap(go: str, out: Path, gocache: Path) -> Path | None:
    """Compile the Go `-exec` wrapper (one process start per test binary instead of a Python start).

    Returns None when it cannot be built; the Python init is used then.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": f"{Path(go).parent}:/usr/bin:/bin",
        "HOME": str(out.parent),
        "GOCACHE": str(gocache),
        "GOTOOLCHAIN": "local",
        "GOPROXY": "off",
        "CGO_ENABLED": "0",
        "GOFLAGS": "",
    }
    argv = [go, "build", "-trimpath", "-o", str(out), str(EXECWRAP_SRC)]
    try:
        proc = subprocess.run(argv, env=env, cwd=out.parent, capture_output=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out if proc.returncode == 0 and out.is_file() else None


def probe_overlay(scratch: Path) -> bool:
    """Can test binaries get an overlay of the caches (overlayfs in a user namespace, Linux >= 5.11)?"""
    lower, upper, work = scratch / "lower", scratch / "upper", scratch / "work"
    for d in (lower, upper, work):
        d.mkdir(parents=True, exist_ok=True)
    spec = json.dumps({"new_mount_ns": True, "overlay": [[str(lower), str(upper), str(work)]]})
    argv = [*_UNSHARE, sys.executable, "-I", "-S", str(NSINIT), spec, "--", "/bin/true"]
    try:
        return subprocess.run(argv, capture_output=True, timeout=20, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def probe(enabled: bool) -> tuple[bool, str | None]:
    """Can this kernel give us user+network+PID namespaces? (usable, reason when not)."""
    if not enabled:
        return False, "network isolation is switched off by configuration: test code may reach the network"
    spec = json.dumps({"loopback": True, "hide": [tempfile.gettempdir()]})
    argv = [*_UNSHARE, sys.executable, "-I", "-S", str(NSINIT), spec, "--", "/bin/true"]
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"no network namespace ({type(exc).__name__}): test code may reach the network"
    if proc.returncode != 0:
        why = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["unshare failed"]
        return False, f"no network namespace ({why[0][:120]}): test code may reach the network"
    return True, None


class Sandbox:
    """Runs one command confined, streaming its stdout lines to a callback."""

    def __init__(
        self,
        *,
        namespaces: bool,
        note: str | None,
        limits: Limits,
        max_output_bytes: int,
        max_line: int,
        hide: tuple[Path, ...] = (),
        hide_notes: tuple[str, ...] = (),
        readonly_for_tests: tuple[Path, ...] = (),
        overlay: bool = False,
        execwrap: Path | None = None,
        readonly_system: tuple[Path, ...] = (),
    ):
        self.namespaces = namespaces
        self._note = note
        self._hide = [str(p) for p in hide] if namespaces else []
        self._hide_notes = list(hide_notes)
        # go test -exec wraps each test binary: a nested mount namespace where these are read-only.
        self._readonly = [str(p) for p in readonly_for_tests] if namespaces else []
        self.overlay = overlay and namespaces
        self._execwrap = execwrap
        # Toolchain, interpreter, our own code, system directories: read-only for everything in the
        # sandbox, so test code cannot replace what later runs (or the server itself) executes.
        self._readonly_system = [str(p) for p in readonly_system] if namespaces else []
        self._limits = limits
        self._max_output = max_output_bytes
        self._max_line = max_line

    def report(self, *, race: bool) -> SandboxReport:
        notes = [self._note] if self._note else []
        if not self.namespaces:
            notes.append("no PID namespace: processes that leave the process group may outlive the hard timeout")
            notes.append("no mount namespace: credential directories are not hidden from test code")
            notes.append("no mount namespace: the shared build and module caches are writable by test code")
            notes.append("no mount namespace: the toolchain and everything the server's user can write are writable")
        else:
            notes.extend(self._hide_notes)
        if race and self._limits.address_space_mb:
            notes.append("no address-space limit with -race (the race detector reserves terabytes of address space)")
        return SandboxReport(
            network_isolated=self.namespaces,
            pid_namespace=self.namespaces,
            rlimits=self._limits.rlimits(race=race),
            hidden_paths=self._hide,
            readonly_paths=self._readonly_system,
            readonly_for_tests=self._readonly,
            test_cache_mode="overlay" if self.overlay else "read-only" if self._readonly else "shared",
            notes=notes,
        )

    def test_exec(self, scratch: Path) -> str | None:
        """A `go test -exec` value that runs each test binary with the shared caches protected.

        With overlayfs each cache is overlaid by a private layer under `scratch` (test binaries see
        the warm cache; their writes vanish with the run); without it the caches are read-only and
        test binaries get a private GOCACHE. None without namespaces, or when a path holds
        whitespace (go splits the -exec value on spaces).
        """
        spec_file = scratch / "exec.json"
        if self._execwrap is not None:
            wrapper = [str(self._execwrap), f"@{spec_file}", "--"]
        else:
            wrapper = [sys.executable, "-I", "-S", str(NSINIT), f"@{spec_file}", "--"]
        if not self._readonly or any(any(c.isspace() for c in part) for part in wrapper):
            return None
        spec: dict[str, object] = {"new_mount_ns": True}
        if self.overlay:
            layers = []
            for n, path in enumerate(self._readonly):
                upper, work = scratch / f"overlay-{n}" / "upper", scratch / f"overlay-{n}" / "work"
                upper.mkdir(parents=True, exist_ok=True)
                work.mkdir(parents=True, exist_ok=True)
                layers.append([path, str(upper), str(work)])
            spec["overlay"] = layers
        else:
            private = scratch / "testcache"
            private.mkdir(parents=True, exist_ok=True)
            spec |= {"readonly": self._readonly, "env": {"GOCACHE": str(private)}}
        spec_file.write_text(json.dumps(spec), encoding="utf-8")
        return " ".join(wrapper)

    def argv(self, command: list[str], *, race: bool) -> list[str]:
        spec = json.dumps(
            {
                "loopback": self.namespaces,
                "hide": self._hide,
                "readonly": self._readonly_system,
                "rlimits": self._limits.rlimits(race=race),
            }
        )
        inner = [sys.executable, "-I", "-S", str(NSINIT), spec, "--", *command]
        return [*_UNSHARE, *inner] if self.namespaces else inner

    async def run(
        self,
        command: list[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        timeout_s: float,
        on_line: Callable[[str], None],
        race: bool = False,
        confined: bool = True,
    ) -> Outcome:
        """Run `command` (absolute program path first); kill the whole group at `timeout_s`.

        `confined=False` is for the runner's own steps that need the network and run no repository
        code (`go mod download`): no namespaces, no rlimits, same environment rules and timeout.

        Raises:
            OSError: the sandbox itself could not be started.
        """
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *(self.argv(command, race=race) if confined else command),
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        assert proc.stdout is not None
        assert proc.stderr is not None
        state = {"bytes": 0, "truncated": False}
        stderr = bytearray()

        async def pump_stdout() -> None:
            assert proc.stdout is not None
            pending = b""
            while chunk := await proc.stdout.read(65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    self._deliver(raw, state, on_line)
                if len(pending) > self._max_line:
                    self._deliver(pending, state, on_line)
                    pending = b""
            if pending:
                self._deliver(pending, state, on_line)

        async def pump_stderr() -> None:
            assert proc.stderr is not None
            while chunk := await proc.stderr.read(65536):
                stderr.extend(chunk)
                del stderr[:-_STDERR_KEEP]

        pumps = asyncio.gather(pump_stdout(), pump_stderr())
        killed = False
        try:
            await asyncio.wait_for(proc.wait(), timeout_s)
        except TimeoutError:
            killed = True
            _kill_group(proc.pid)
            await proc.wait()
        try:
            await asyncio.wait_for(asyncio.shield(pumps), 10.0)
        except TimeoutError:  # an escaped process still holds the pipe: stop reading it
            pumps.cancel()
        return Outcome(
            exit_code=None if killed else proc.returncode,
            killed=killed,
            elapsed_s=time.monotonic() - started,
            output_bytes=state["bytes"],
            truncated=bool(state["truncated"]),
            stderr=stderr.decode(errors="replace"),
        )

    def _deliver(self, raw: bytes, state: dict[str, int | bool], on_line: Callable[[str], None]) -> None:
        state["bytes"] = int(state["bytes"]) + len(raw) + 1
        if len(raw) > self._max_line:
            state["truncated"] = True
            raw = raw[: self._max_line]
            if raw.startswith(b"{"):
                return  # a cut JSON event is unreadable; the test's own line cap reports the loss
        if int(state["bytes"]) > self._max_output and b'"Action":"output"' in raw:
            state["truncated"] = True
            return  # over the total cap: keep pass/fail events, drop output
        on_line(raw.decode("utf-8", errors="replace"))


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
