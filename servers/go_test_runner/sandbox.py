"""Where `go` and test code run (the only process starter of go-test-runner besides gitops).

The view is an allow-list built by bubblewrap (bwrap.py draws it); this module sets it up once
(`Sandbox.create`: seccomp filters, the `-exec` program, /etc files, a probe of the host), runs
commands in it, and enforces what the kernel does not for every uid:

- a hard timeout: SIGKILL to the outer `unshare`, whose PID namespace dies with it, taking every
  process of the run, even one that left the process group or its session;
- a process ceiling the kernel holds at fork: where a pids cgroup controller is writable (cgroup v2
  delegated, or v1 under root) each run gets its own cgroup with `pids.max = max_tasks`
  (`RunCgroups`); else RLIMIT_NPROC, which holds when the sandbox's host user is not root
  (`sandbox_user`, or a non-root server); `Sandbox.process_limit` says which holds;
- a watchdog that sums the tasks (threads included), resident memory and the used space of the run's
  memory-backed scratch mounts (its private /tmp, each test binary's /tmp and writable layer) every
  quarter second and kills the run over `max_tasks` (or once its cgroup refused a fork), over
  `memory_limit_mb` (resident and scratch together) or over `scratch_mb` of scratch in all;
- rlimits through `prlimit`: RLIMIT_AS (a separate, documented ceiling with `-race`), NPROC, FSIZE,
  NOFILE, no core files;
- capped output: test output lines are cut at `max_line` on their way to go (`sandbox-setup exec`),
  lines over `max_line` and output events past `max_output_bytes` that reach us are dropped;
- a bounded shared build cache (`CacheLimits`): a run's cache layer is merged without files over
  `cache_max_file_mb` and at most `cache_max_merge_mb` of it, and the shared cache is trimmed, least
  recently used first, when it grows over `cache_max_mb` (`trim_cache`).

Fail closed: when bubblewrap, user namespaces, overlayfs in a user namespace or libseccomp are
missing, `Sandbox.protections.strong` is False and the runner refuses to run tests unless
`allow_weak_sandbox` is set; then commands run with rlimits, the watchdog and the timeout only,
and every result says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from servers.common.tamper import tool
from servers.go_test_runner import bwrap, seccomp
from servers.go_test_runner.confinement import Limits

_STDERR_KEEP = 256 << 10
_WATCH_INTERVAL_S = 0.25
_REAP_S = 30.0  # at most this long for a killed run's processes to be gone before its result is returned
_SETTLE_S = 30.0  # at most this long for a finished run's sandbox to exit before it is killed
_TOOLS = ("bwrap", "unshare", "prlimit")
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/+@-]*$")  # no ',', ':' or spaces: safe in overlay options and -exec


@dataclass(frozen=True)
class Outcome:
    exit_code: int | None
    killed: bool
    elapsed_s: float
    output_bytes: int
    truncated: bool
    stderr: str
    limit: str | None = None  # the watchdog's reason when it killed the run
    peak_tasks: int = 0  # the most tasks the run had at once (its cgroup's pids.peak, else the watchdog's scans)
    built: int = 0  # outputs (`-d` files: compiled packages) `go` wrote into the build cache; 0 = nothing compiled


@dataclass(frozen=True)
class Protections:
    """What this host gives the sandbox (`go-test-runner-mcp --check` prints it)."""

    bubblewrap: str | None
    user_namespaces: bool
    overlay: bool
    seccomp: bool
    cgroup_v2: bool
    problems: tuple[str, ...] = ()

    @property
    def strong(self) -> bool:
        return self.bubblewrap is not None and self.user_namespaces and self.overlay and self.seccomp


@dataclass
class RunPaths:
    """Where one run's files are: its worktree (host), its path inside, its scratch directory (host)."""

    worktree: Path
    inside: str
    scratch: Path
    gocache_layer: Path | None = field(default=None)  # the overlay's upper dir, merged into the shared cache
    cgroup: Path | None = field(default=None)  # the run's own pids cgroup (`RunCgroups`), removed after it


def _tool(name: str) -> str | None:
    return shutil.which(name, path="/usr/bin:/bin:/usr/sbin:/sbin") if "/" not in name else shutil.which(name)


def safe_path(path: Path) -> bool:
    """A path that can go into overlay options and go's `-exec` value unquoted."""
    return bool(_SAFE_PATH.match(str(path)))


class Sandbox:
    """Runs commands confined, streaming stdout lines to a callback."""

    def __init__(
        self,
        *,
        bwrap_exe: str,
        layout: bwrap.Layout,
        protections: Protections,
        weak_allowed: bool,
        limits: Limits,
        gocache: Path,
        gocache_lowers: tuple[Path, ...],
        max_output_bytes: int,
        max_line: int,
        run_as: tuple[int, int] | None = None,
        scratch_mb: int = 0,
        cgroups: RunCgroups | None = None,
        cache_limits: CacheLimits | None = None,
    ) -> None:
        self.bwrap_exe = bwrap_exe
        self.layout = layout
        self.protections = protections
        self.weak_allowed = weak_allowed
        self.limits = limits
        self.gocache = gocache
        self.gocache_lowers = gocache_lowers
        self._max_output = max_output_bytes
        self._max_line = max_line
        self.run_as = run_as
        self.scratch_mb = scratch_mb  # the run's scratch in all (private /tmp and test layers), held by the watchdog
        self.cgroups = cgroups
        self.cache_limits = cache_limits or CacheLimits()
        self._cache_bytes: int | None = None  # the shared cache's size when last measured, plus what runs merged
        self._cache_measured = 0.0  # monotonic time of that measure
        self._settling: dict[Path, asyncio.Future[None]] = {}  # scratch dir -> a finished run still exiting
        self._ahead: dict[Path, _Ahead] = {}  # worktree -> its next run's BUILD sandbox, started ahead
        self.serve_tests = True  # test binaries' sandboxes started ahead (`_probe` turns it off when they fail here)

    @property
    def strong(self) -> bool:
        return self.protections.strong

    @property
    def process_limit(self) -> str | None:
        """What stops a fork bomb at fork time on this host (None: only the watchdog, after the fact)."""
        if self.cgroups is not None and self.limits.max_tasks:
            return f"{self.cgroups.kind} pids controller: each run in its own cgroup, pids.max={self.limits.max_tasks}"
        uid = self.run_as[0] if self.run_as is not None else os.geteuid()
        if uid != 0 and self.limits.nproc:
            return f"RLIMIT_NPROC={self.limits.nproc} for the sandbox's host uid {uid} (all its processes)"
        return None

    # --- set-up -------------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        *,
        work: Path,
        goroot: Path,
        project: Path,
        gocache: Path,
        seed: tuple[Path, ...],
        gomodcache: Path,
        limits: Limits,
        weak_allowed: bool,
        scratch_mb: int,
        max_output_bytes: int,
        max_line: int,
        run_as: tuple[int, int] | None = None,
        bwrap_binary: str = "bwrap",
        cache_limits: CacheLimits | None = None,
    ) -> Sandbox:
        """Write the sandbox's files under `work/sandbox`, probe the host, and return the sandbox.

        `seed` are read-only lower layers under the shared build cache `gocache` (the user's own).
        """
        assets = work / "sandbox"
        assets.mkdir(parents=True, exist_ok=True)
        layout = bwrap.Layout(
            goroot=goroot,
            assets=assets,
            gomodcache=gomodcache,
            scratch_mb=scratch_mb,
            hidden=bwrap.hidden_system_paths(goroot, project),
            max_line=max_line,
        )
        problems: list[str] = []
        exe = _tool(bwrap_binary)
        version = _bwrap_version(exe) if exe is not None else None
        if version is None:
            problems.append("bubblewrap (bwrap) is not installed: install Debian's bubblewrap package")
        missing = [t for t in _TOOLS[1:] if _tool(t) is None]
        if missing:
            problems.append(f"util-linux tools missing: {', '.join(missing)}")
        has_seccomp = True
        try:
            seccomp.write_filter(seccomp.BUILD, assets / "build.bpf")
            seccomp.write_filter(seccomp.TEST, assets / "test.bpf")
        except seccomp.SeccompUnavailable as exc:
            has_seccomp = False
            problems.append(str(exc))
        unsafe = [p for p in (work, gocache, gomodcache, goroot) if not safe_path(p)]
        if unsafe:
            problems.append(f"paths with characters bubblewrap's set-up cannot take: {', '.join(map(str, unsafe))}")
        for name, text in (("passwd", bwrap.passwd()), ("group", bwrap.group())):
            _write(assets / name, text.encode(), mode=0o644)
        if not problems and not _user_namespaces():  # no strong sandbox here: nothing to build for it
            problems.append("user namespaces are not available to this process (`unshare --user` failed)")
        if not problems:
            try:
                setup_program(goroot / "bin" / "go", assets / "sandbox-setup", gocache=gocache)
            except SetupUnavailable as exc:
                problems.append(str(exc))
        _write(assets / "test.args", bwrap.args_file(layout.test_args()), mode=0o644)
        sandbox = cls(
            bwrap_exe=exe or "bwrap",
            layout=layout,
            protections=Protections(version, False, False, has_seccomp, _cgroup_v2_delegated(), tuple(problems)),
            weak_allowed=weak_allowed,
            limits=limits,
            gocache=gocache,
            gocache_lowers=tuple(
                p
                for p in seed
                if safe_path(p) and p.resolve() != gocache.resolve() and (run_as is None or _world_readable(p))
            ),
            max_output_bytes=max_output_bytes,
            max_line=max_line,
            run_as=run_as,
            scratch_mb=scratch_mb,
            cgroups=RunCgroups.find(limits.max_tasks) if limits.max_tasks else None,
            cache_limits=cache_limits,
        )
        if not problems:
            sandbox.protections = sandbox._probe(work / "probe")
        return sandbox

    def _probe(self, scratch: Path) -> Protections:
        """Run the whole chain once (outer sandbox, overlay, a nested test sandbox) with /bin/sh; and
        once through a test sandbox started ahead, which is used only when it passes here."""
        base = self.protections
        shutil.rmtree(scratch, ignore_errors=True)
        worktree = scratch / "src"
        worktree.mkdir(parents=True)
        paths = RunPaths(worktree=worktree, inside=f"{bwrap.SRC}/probe", scratch=scratch / "run")
        binary = f"{bwrap.BINS}/probe.test"
        ahead = bwrap.handed_over(["/bin/false"], self.layout.max_line)  # no fallback: this one must be handed over
        inner = (
            f"cp /bin/sh {binary} && i=0 && while [ ! -S {bwrap.TESTS_SOCKET} ] && [ $i -lt 300 ]; do "
            f"sleep 0.01; i=$((i + 1)); done; echo in | {' '.join(ahead)} {binary} -c {_PROBE_TEST} sh out; "
            f'echo "ahead $?"; exec {" ".join(self.layout.test_chain(paths.inside))} {binary} -c true'
        )
        end = f"goresolve-end-{secrets.token_hex(12)}"
        argv = self.argv(["/bin/sh", "-c", inner], paths, race=False, strong=True, end=end, tests=True)
        self._own(scratch)
        try:
            proc = subprocess.run(argv, capture_output=True, timeout=30, check=False, env={"PATH": "/usr/bin:/bin"})
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Protections(base.bubblewrap, False, False, base.seccomp, base.cgroup_v2, (f"probe failed: {exc}",))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if proc.returncode == 0:
            self.serve_tests = f"in out {paths.inside}\nahead 7\n" in proc.stdout.decode(errors="replace")
            return Protections(base.bubblewrap, True, True, base.seccomp, base.cgroup_v2)
        why = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        userns = "overlay" in why[0] or "mount" in why[0]
        detail = f"the sandbox could not start on this host: {why[0][:200]}"
        return Protections(base.bubblewrap, userns, False, base.seccomp, base.cgroup_v2, (detail,))

    # --- one command --------------------------------------------------------------------------------

    def paths(self, worktree: Path, repo: str, scratch: Path) -> RunPaths:
        """The layout of one run; its scratch directory is created (owned by the sandbox's user)."""
        scratch.mkdir(parents=True, exist_ok=True)
        self._own(scratch)
        self._own(worktree)  # test binaries write it through their layer: copy-up needs a mapped owner
        inside = f"{bwrap.SRC}/{repo}" if self.strong else str(worktree)
        return RunPaths(worktree=worktree, inside=inside, scratch=scratch)

    def env(self, env: Mapping[str, str], paths: RunPaths) -> dict[str, str]:
        """The environment inside: caches, home and temp at their paths in the view."""
        if not self.strong:
            home = paths.scratch / "home"
            home.mkdir(exist_ok=True)
            tool.telemetry_off(home)
            return {**env, "HOME": str(home), "TMPDIR": str(paths.scratch), "GOCACHE": str(self.gocache)}
        return {**env, "HOME": bwrap.HOME, "TMPDIR": bwrap.TMP, "GOTMPDIR": bwrap.BINS, "GOCACHE": bwrap.GOCACHE}

    def host_env(self, env: Mapping[str, str], paths: RunPaths) -> dict[str, str]:
        """The environment of the runner's own unconfined steps (`go mod download`), on host paths."""
        home = paths.scratch / "host-home"
        home.mkdir(parents=True, exist_ok=True)
        tool.telemetry_off(home)
        return {**env, "HOME": str(home), "TMPDIR": str(paths.scratch), "GOCACHE": str(self.gocache)}

    def test_exec(self, paths: RunPaths) -> str | None:
        """The `go test -exec` value: each test binary in its own nested sandbox (None when weak)."""
        return self.layout.test_exec(paths.inside) if self.strong else None

    def argv(
        self,
        command: list[str],
        paths: RunPaths,
        *,
        race: bool,
        strong: bool | None = None,
        host: bool = False,
        end: str | None = None,
        tests: bool = False,
    ) -> list[str]:
        """The whole command line of one run: [setpriv] prlimit [unshare sandbox-setup bwrap] command.

        With `end` (strong sandbox only), the command is followed, inside the sandbox, by a line
        `<end> <exit code>` on stdout and `<end>` on stderr: the run's result is known then, before
        the sandbox's own processes have exited (see `run`). With `tests` as well, `sandbox-setup
        serve-tests` runs next to the command and starts its test binaries' sandboxes ahead.
        """
        strong = self.strong if strong is None else strong
        prefix: list[str] = []
        if self.cgroups is not None and not host and (cgroup := self.cgroups.make()) is not None:
            paths.cgroup = cgroup  # joined before anything of the run starts: all its processes are in it
            prefix = ["/bin/sh", "-c", 'echo $$ >"$0" && exec "$@"', str(cgroup / "cgroup.procs")]
        if self.run_as is not None and not host:
            uid, gid = self.run_as
            prefix += ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--"]
        limits = [f"--{name}={value}:{value}" for name, value in self.limits.prlimit(race=race).items()]
        prefix += ["prlimit", *limits, "--"]
        if not strong:
            return [*prefix, *command]
        cache = paths.scratch / "gocache"
        upper, work = paths.scratch / "gocache-layer", paths.scratch / "gocache-work"
        for d in (cache, upper, work):
            d.mkdir(parents=True, exist_ok=True)
        self._own(paths.scratch)
        if self.run_as is not None:
            # Copy-up keeps a directory's owner; the shared cache's belong to a user the sandbox's user
            # namespace does not map, so the layer gets go's 256 directories of its own beforehand.
            for n in range(256):
                (upper / f"{n:02x}").mkdir(exist_ok=True)
            self._own(upper)
        lowers = ":".join(str(p) for p in (self.gocache, *self.gocache_lowers))
        paths.gocache_layer = upper
        if end is not None and tests and self.serve_tests:
            serve = [bwrap.SETUP, *self.layout.serve_tests(paths.inside)]
            command = ["/bin/sh", "-c", _SERVE_END_SCRIPT, "sh", end, *serve, *command]
        elif end is not None:
            command = ["/bin/sh", "-c", _END_SCRIPT, "sh", end, *command]
        unshare = ["unshare", "--user", "--map-root-user", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc"]
        build = self.layout.build_args(worktree=paths.worktree, inside=paths.inside, gocache=cache)
        assets = self.layout.assets
        return [
            *prefix,
            *unshare,
            "--",
            str(assets / "sandbox-setup"),
            "build",
            str(cache),
            lowers,
            str(upper),
            str(work),
            str(assets / "build.bpf"),
            self.bwrap_exe,
            *build,
            "--seccomp",
            "3",
            "--",
            *command,
        ]

    async def run(
        self,
        command: list[str],
        paths: RunPaths,
        *,
        env: Mapping[str, str],
        timeout_s: float,
        on_line: Callable[[str], None],
        race: bool = False,
        confined: bool = True,
        tests: bool = False,
    ) -> Outcome:
        """Run `command` (absolute program path first) in the sandbox; kill everything at `timeout_s`.

        `confined=False` is for the runner's own steps that need the network and run no repository
        code (`go mod download`): rlimits and the timeout only, on the host paths. `tests` is for a
        command that runs test binaries through `test_exec`: their sandboxes are started ahead.

        In the strong sandbox the result is returned as soon as the command has exited (its end
        marker on both pipes): by then `go` has waited for every test binary, and each test binary's
        own PID namespace is gone with every process test code started. The sandbox's own processes
        (bubblewrap, the outer namespaces) exit in the background; `settle` waits for that and
        merges the run's build-cache layer, and the next run on the same paths settles first.

        Raises:
            OSError: the sandbox itself could not be started.
        """
        await self.settle(paths.scratch)
        started = time.monotonic()
        layer_paths, ahead = paths, self._take_ahead(paths, env, race=race) if confined else None
        if ahead is not None:  # a BUILD sandbox started ahead for this worktree: hand it the command
            proc, marker, layer_paths = ahead.proc, ahead.marker, ahead.paths
            ahead.hand_over(b"".join(arg.encode() + b"\0" for arg in command))
        else:
            marker = f"goresolve-end-{secrets.token_hex(12)}" if confined and self.strong else None
            if confined:
                argv = self.argv(command, paths, race=race, end=marker, tests=tests)
            else:
                argv = self.argv(command, paths, race=race, strong=False, host=True)
            proc = await _spawn(argv, paths.worktree, env, stdin=asyncio.subprocess.DEVNULL)
        out = _Stdout(on_line, self._max_line, self._max_output)
        stderr = bytearray()
        ends = _Ends(marker)
        pumps = asyncio.gather(_pump_stdout(proc, out, ends), _pump_stderr(proc, stderr, ends))
        watch = _Watch(proc.pid, layer_paths.cgroup if confined else None)
        watchdog = asyncio.ensure_future(self._watch(watch))
        exited = asyncio.ensure_future(proc.wait())
        ended = asyncio.ensure_future(ends.both.wait())
        killed = False
        limit: str | None = None
        try:
            done, _ = await asyncio.wait({exited, ended, watchdog}, timeout=timeout_s,
                                         return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
            if watchdog in done:
                limit = watchdog.result()
            if limit is None and ends.both.is_set():
                exit_code = ends.code
            elif proc.returncode is None:
                killed = True
                await _kill_and_reap(proc)
                exit_code = None
            else:
                exit_code = proc.returncode
        finally:
            watchdog.cancel()
            ended.cancel()
            if proc.returncode is None and not ends.both.is_set():
                _kill(proc.pid)
        layer = layer_paths.gocache_layer if confined else None
        extra = layer_paths.scratch if layer_paths is not paths else None  # the started-ahead sandbox's own
        peak = watch.peak()
        cgroup = layer_paths.cgroup if confined else None
        if proc.returncode is None:  # ended: the sandbox is still exiting
            built = _count_built(layer) if layer is not None else 0
            self._settling[paths.scratch] = asyncio.ensure_future(self._settle(proc, pumps, layer, extra, cgroup))
        else:
            await _finish_pumps(pumps)
            built = await self._merge(layer)
            if extra is not None:
                shutil.rmtree(extra, ignore_errors=True)
            if self.cgroups is not None and cgroup is not None:
                self.cgroups.remove(cgroup)
        return Outcome(
            exit_code=exit_code,
            killed=killed,
            elapsed_s=time.monotonic() - started,
            output_bytes=out.bytes,
            truncated=out.truncated,
            stderr=stderr.decode(errors="replace"),
            limit=limit,
            peak_tasks=peak,
            built=built,
        )

    async def settle(self, scratch: Path) -> None:
        """Wait until the last run with this scratch directory has fully exited and its cache layer is
        merged (before the run's worktree or scratch directory is reused or removed)."""
        task = self._settling.get(scratch)
        if task is not None:
            await _await_here(task)
            self._settling.pop(scratch, None)

    async def settle_all(self) -> None:
        """Wait for every run still exiting (shutdown, tests)."""
        while self._settling:
            await self.settle(next(iter(self._settling)))
        if self.cgroups is not None:
            self.cgroups.sweep()

    async def _settle(
        self,
        proc: asyncio.subprocess.Process,
        pumps: asyncio.Future[Any] | None,
        layer: Path | None,
        scratch: Path | None = None,
        cgroup: Path | None = None,
    ) -> None:
        """A finished run's sandbox exits on its own; past `_SETTLE_S` it is killed like a timed-out run.
        Then its cache layer is merged and `scratch` (a started-ahead sandbox's own) removed."""
        try:  # an unused sandbox started ahead has no pumps: its pipes are read to their end here
            await asyncio.wait_for(asyncio.shield(proc.wait() if pumps is not None else proc.communicate()), _SETTLE_S)
        except TimeoutError:
            await _kill_and_reap(proc)
        if pumps is not None:
            await _finish_pumps(pumps)
        await self._merge(layer)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        if self.cgroups is not None and cgroup is not None:
            self.cgroups.remove(cgroup)

    # --- BUILD sandboxes started ahead ----------------------------------------------------------------

    async def start_ahead(self, paths: RunPaths, env: Mapping[str, str]) -> None:
        """Start the BUILD sandbox of the next run on `paths.worktree` now, while the slot is idle.

        It waits inside, in `sandbox-setup wait`, for its command on stdin; `run` hands it over when
        the next run there matches (same path inside, same environment, not `-race`, the worktree
        directory not replaced), so that run skips the sandbox's start. `paths.scratch` is its own
        (its build-cache layer), removed after it. Best effort: when it cannot start, the next run
        starts its own. Only the strong sandbox starts ahead; nothing of a repository runs before the
        command is handed over.
        """
        if not self.strong or paths.worktree in self._ahead:
            return
        marker = f"goresolve-end-{secrets.token_hex(12)}"
        argv = self.argv([bwrap.SETUP, "wait"], paths, race=False, end=marker, tests=True)
        read, write = os.pipe()  # its stdin: the command, or nothing (then it exits)
        try:
            ino = os.stat(paths.worktree).st_ino
            proc = await _spawn(argv, paths.worktree, env, stdin=read)
        except OSError:
            os.close(write)
            shutil.rmtree(paths.scratch, ignore_errors=True)
            return
        finally:
            os.close(read)
        loop = asyncio.get_running_loop()
        self._ahead[paths.worktree] = _Ahead(proc, marker, paths, dict(env), ino, loop, write)

    def _take_ahead(self, paths: RunPaths, env: Mapping[str, str], *, race: bool) -> _Ahead | None:
        """The sandbox started ahead for `paths.worktree`, if this run can use it (else it is let go)."""
        ahead = self._ahead.pop(paths.worktree, None)
        if ahead is None:
            return None
        try:
            same_dir = os.stat(paths.worktree).st_ino == ahead.ino
        except OSError:
            same_dir = False
        usable = ahead.proc.returncode is None and not race and ahead.paths.inside == paths.inside
        here = ahead.loop is asyncio.get_running_loop()  # else started by another event loop (tests)
        if usable and here and same_dir and ahead.env == dict(env):
            return ahead
        self._let_go(ahead)
        return None

    def _let_go(self, ahead: _Ahead) -> None:
        """An unused sandbox started ahead: its stdin closed with no command, it exits on its own."""
        if ahead.loop is not asyncio.get_running_loop():  # started by another event loop (tests)
            _kill_ahead(ahead)
            return
        ahead.hand_over(b"")
        self._settling[ahead.paths.scratch] = asyncio.ensure_future(
            self._settle(ahead.proc, None, None, ahead.paths.scratch, ahead.paths.cgroup)
        )

    def let_go_ahead(self) -> None:
        """Let every sandbox started ahead go (shutdown; `settle_all` then waits for their exit)."""
        while self._ahead:
            self._let_go(self._ahead.popitem()[1])

    def kill_ahead(self) -> None:
        """Kill every sandbox started ahead and remove its scratch directory (no event loop needed)."""
        while self._ahead:
            ahead = self._ahead.popitem()[1]
            _kill_ahead(ahead)
            if self.cgroups is not None and ahead.paths.cgroup is not None:
                self.cgroups.remove(ahead.paths.cgroup)  # still dying: removed by a later sweep

    async def _merge(self, layer: Path | None) -> int:
        """Move the run's cache layer into the shared cache, within `cache_limits`, and trim the shared cache
        when it may be over its cap (in a worker thread); how many compiled packages the layer held."""
        if layer is None:
            return 0
        limits = self.cache_limits
        merged = merge_layer(layer, self.gocache, limits)
        if limits.max_total:
            if self._cache_bytes is not None:
                self._cache_bytes += merged.bytes
            stale = time.monotonic() - self._cache_measured > _CACHE_REMEASURE_S
            if self._cache_bytes is None or stale or self._cache_bytes > limits.max_total:
                size = await asyncio.to_thread(trim_cache, self.gocache, limits.max_total)
                if size is not None:
                    self._cache_bytes, self._cache_measured = size, time.monotonic()
        return sum(1 for name in merged.names if name.endswith("-d")) + merged.dropped_outputs

    async def _watch(self, watch: _Watch) -> str | None:
        """Return a reason as soon as the run's tree is over a limit (the caller kills it).

        The scan of /proc runs in a worker thread: it takes tens of milliseconds on a loaded host, and
        on the event loop it would stall the pumps, so that `go` blocked on a full stdout pipe.
        """
        limits = self.limits
        while True:
            await asyncio.sleep(_WATCH_INTERVAL_S)
            usage = await asyncio.to_thread(run_usage, watch.root, watch.host_tmpfs)
            watch.seen = max(watch.seen, usage.tasks)
            refused = watch.refused()
            if limits.max_tasks and (usage.tasks > limits.max_tasks or refused):
                how = f"its cgroup refused {refused} forks" if refused else f"{usage.tasks} seen"
                return f"process limit: over {limits.max_tasks} tasks (processes and threads; {how})"
            scratch_mib = usage.scratch >> 20
            if limits.memory_mb and usage.rss + usage.scratch > limits.memory_mb << 20:
                if not usage.scratch:
                    return f"memory limit: over {limits.memory_mb} MiB resident"
                return (
                    f"memory limit: over {limits.memory_mb} MiB resident and in scratch files, "
                    f"including {scratch_mib} MiB of scratch files"
                )
            if self.scratch_mb and usage.scratch > self.scratch_mb << 20:
                return (
                    f"scratch limit: over {self.scratch_mb} MiB of scratch files in memory "
                    f"({scratch_mib} MiB in the run's /tmp and its test binaries' /tmp and layers)"
                )

    def _own(self, path: Path) -> None:
        """Hand `path` to the sandbox's host user when it is not the server's."""
        if self.run_as is None:
            return
        uid, gid = self.run_as
        for p in (path, *path.rglob("*")):
            with contextlib.suppress(OSError):
                os.lchown(p, uid, gid)


class _Stdout:
    """Delivers the command's stdout line by line within the caps: a line over `max_line` bytes is cut
    (a cut JSON event is dropped: unreadable), and past `max_output` bytes in all, output events are
    dropped while pass/fail events still go through. Lines are handed over a read's worth at a time."""

    __slots__ = ("bytes", "max_line", "max_output", "on_line", "truncated")

    def __init__(self, on_line: Callable[[str], None], max_line: int, max_output: int) -> None:
        self.on_line, self.max_line, self.max_output = on_line, max_line, max_output
        self.bytes = 0
        self.truncated = False

    def deliver(self, lines: list[bytes]) -> None:
        on_line, max_line, max_output = self.on_line, self.max_line, self.max_output
        total = self.bytes
        for raw in lines:
            total += len(raw) + 1
            if bwrap.CUT_MARK in raw:  # a line `sandbox-setup exec` cut on its way to go
                self.truncated = True
            if len(raw) > max_line:
                self.truncated = True
                raw = raw[:max_line]
                if raw.startswith(b"{"):
                    continue  # a cut JSON event is unreadable; the test's own line cap reports the loss
            if total > max_output and b'"Action":"output"' in raw:
                self.truncated = True
                continue  # over the total cap: keep pass/fail events, drop output
            on_line(raw.decode("utf-8", errors="replace"))
        self.bytes = total


async def _pump_stdout(proc: asyncio.subprocess.Process, out: _Stdout, ends: _Ends) -> None:
    """Deliver stdout line by line; stop at the end marker's line (its exit code goes to `ends`)."""
    assert proc.stdout is not None
    marker, pending = ends.marker, b""
    while chunk := await proc.stdout.read(65536):
        pending += chunk
        cut = pending.rfind(b"\n")
        if cut >= 0:
            complete, pending = pending[:cut], pending[cut + 1 :]
            if marker is not None and (at := complete.find(marker)) >= 0:
                start = complete.rfind(b"\n", 0, at) + 1
                stop = complete.find(b"\n", at)
                before = complete[:start].split(b"\n")[:-1] if start else []  # the lines before the marker's
                out.deliver([*before, complete[start:at]] if at > start else before)
                ends.stdout_ended(complete[at + len(marker) : stop if stop >= 0 else len(complete)])
                return
            out.deliver(complete.split(b"\n"))
        if len(pending) > out.max_line:
            out.deliver([pending])
            pending = b""
    if pending:
        out.deliver([pending])


async def _pump_stderr(proc: asyncio.subprocess.Process, stderr: bytearray, ends: _Ends) -> None:
    """Keep the last `_STDERR_KEEP` bytes of stderr; stop at the end marker (cut from the text)."""
    assert proc.stderr is not None
    while chunk := await proc.stderr.read(65536):
        before = len(stderr)
        stderr.extend(chunk)
        if ends.marker is not None and (at := stderr.find(ends.marker, max(0, before - len(ends.marker)))) >= 0:
            del stderr[at:]
            ends.stderr_ended()
            return
        del stderr[:-_STDERR_KEEP]


@dataclass
class _Ahead:
    """A BUILD sandbox started before its run, waiting for the command on stdin."""

    proc: asyncio.subprocess.Process
    marker: str
    paths: RunPaths
    env: dict[str, str]
    ino: int  # the worktree directory it binds: a replaced directory makes it unusable
    loop: asyncio.AbstractEventLoop
    stdin: int  # the write end of its stdin

    def hand_over(self, command: bytes) -> None:
        """Write the command (NUL-separated arguments; nothing: exit) and close its stdin."""
        try:
            view = memoryview(command)
            while view:
                view = view[os.write(self.stdin, view) :]
        except OSError:  # it is gone: its run fails and says so
            pass
        finally:
            with contextlib.suppress(OSError):
                os.close(self.stdin)


async def _await_here(task: asyncio.Future[None]) -> None:
    """Wait for `task` unless another event loop (a finished test's) owns it: that one is dropped."""
    if task.get_loop() is asyncio.get_running_loop():
        await asyncio.shield(task)


def _kill_ahead(ahead: _Ahead) -> None:
    _kill(ahead.proc.pid)
    with contextlib.suppress(OSError):
        os.close(ahead.stdin)
    shutil.rmtree(ahead.paths.scratch, ignore_errors=True)


async def _spawn(argv: list[str], cwd: Path, env: Mapping[str, str], *, stdin: int) -> asyncio.subprocess.Process:
    """Start a sandbox's process chain: its own session, stdout and stderr piped to us."""
    return await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=dict(env),
        stdin=stdin,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )


class _Ends:
    """The end marker of one run, as seen on each pipe: both seen means the command has exited."""

    def __init__(self, marker: str | None) -> None:
        self.marker = marker.encode() if marker is not None else None
        self.code: int | None = None
        self.both = asyncio.Event()
        self._seen = 0

    def stdout_ended(self, rest: bytes) -> None:
        try:
            self.code = int(rest.strip())
        except ValueError:
            self.code = None
        self._mark()

    def stderr_ended(self) -> None:
        self._mark()

    def _mark(self) -> None:
        self._seen += 1
        if self._seen == 2:
            self.both.set()


# Run by `sh` inside the BUILD sandbox around the command ($1 the end marker): the marker follows the
# command's last output on each pipe, with its exit code on stdout.
_END_SCRIPT = 'end="$1"; shift; "$@"; code=$?; echo "$end $code"; echo "$end" >&2; exit "$code"'
# The same, with `sandbox-setup serve-tests` (the program and its 7 arguments) running beside the
# command and killed after it (its sandboxes started ahead die with it: parent-death signal).
_SERVE_END_SCRIPT = (
    'end="$1"; shift; "$1" serve-tests "$2" "$3" "$4" "$5" "$6" "$7" "$8" </dev/null >/dev/null & serve=$!; '
    'shift 8; "$@"; code=$?; echo "$end $code"; echo "$end" >&2; kill -9 "$serve" 2>/dev/null; exit "$code"'
)
# The probe's test binary (sh): what a binary handed to a sandbox started ahead gets (stdin, its
# arguments, its working directory) comes out on stdout, and its exit code must come back.
_PROBE_TEST = "'read x; echo \"$x $1 $(pwd)\"; exit 7'"


async def _finish_pumps(pumps: asyncio.Future[Any]) -> None:
    try:
        await asyncio.wait_for(asyncio.shield(pumps), 10.0)
    except TimeoutError:  # an escaped process still holds the pipe: stop reading it
        pumps.cancel()


def _count_built(layer: Path) -> int:
    """Compiled packages (`-d` outputs) `go` wrote into the run's cache layer."""
    return sum(1 for _dir, _dirs, files in os.walk(layer) for name in files if name.endswith("-d"))


async def _kill_and_reap(proc: asyncio.subprocess.Process) -> None:
    """Kill a run's process chain; return once its PID namespace's init, which reaps every process of
    the run, is gone (at most `_REAP_S`)."""
    inits = _children(proc.pid)
    _kill(proc.pid)
    await proc.wait()
    await asyncio.to_thread(_wait_gone, inits, _REAP_S)


def _kill(pid: int) -> None:
    # The outer unshare (our child) leads the group; its death kills its PID namespace (--kill-child).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


def _stat(pid: int | str) -> list[bytes] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    return stat[stat.rfind(b")") + 2 :].split()


def _pids() -> list[str]:
    return [entry.name for entry in os.scandir("/proc") if entry.name.isdigit()]


def _children(pid: int) -> list[int]:
    """The direct children of `pid`, from /proc."""
    return [int(p) for p in _pids() if (fields := _stat(p)) is not None and len(fields) > 1 and int(fields[1]) == pid]


def _wait_gone(pids: list[int], timeout_s: float) -> None:
    """Wait until each of `pids` has exited (gone, or a zombie waiting for its reaper), at most `timeout_s`.

    Killing the outer `unshare` kills its child, the PID namespace's init, a moment later; the init's
    exit waits for the kernel to kill every process in the namespace (a fork bomb's thousands too). A
    killed run is reported only after that, so no process of it outlives its result.
    """
    deadline = time.monotonic() + timeout_s
    for pid in pids:
        while time.monotonic() < deadline:
            fields = _stat(pid)
            if fields is None or fields[:1] in ([b"Z"], [b"X"]):
                break
            time.sleep(0.01)


@dataclass(frozen=True)
class Usage:
    """What a run's process tree holds: tasks (threads included), resident bytes, and the used bytes
    of the memory-backed (tmpfs) mounts its processes see that the host itself has not mounted."""

    tasks: int
    rss: int
    scratch: int


def tree_usage(root: int) -> tuple[int, int]:
    """(tasks, resident bytes) of `root` and all its descendants, from /proc."""
    tasks, rss, _pids_seen = _tree(root)
    return tasks, rss


def run_usage(root: int, host_tmpfs: set[str]) -> Usage:
    """`Usage` of `root` and all its descendants, from /proc; `host_tmpfs` the host's own tmpfs devices
    (`host_tmpfs_devices`), which are not the run's."""
    tasks, rss, pids = _tree(root)
    return Usage(tasks, rss, tmpfs_used(pids, host_tmpfs))


def _tree(root: int) -> tuple[int, int, list[int]]:
    children: dict[int, list[int]] = {}
    usage: dict[int, tuple[int, int]] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for name in _pids():
        fields = _stat(name)
        if fields is None or len(fields) < 22:
            continue
        pid = int(name)
        children.setdefault(int(fields[1]), []).append(pid)
        usage[pid] = (int(fields[17]), int(fields[21]) * page)
    tasks = rss = 0
    todo, seen = [root], []
    while todo:
        pid = todo.pop()
        seen.append(pid)
        t, r = usage.get(pid, (0, 0))
        tasks, rss = tasks + t, rss + r
        todo.extend(children.get(pid, ()))
    return tasks, rss, seen


def _tmpfs_mounts(mountinfo: str) -> list[tuple[str, str]]:
    """(device, mount point) of each tmpfs in a /proc/<pid>/mountinfo text."""
    out: list[tuple[str, str]] = []
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields = left.split()
        if right.split()[:1] == ["tmpfs"] and len(fields) >= 5:
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
            out.append((fields[2], point))
    return out


def host_tmpfs_devices() -> set[str]:
    """Devices of the host's own tmpfs mounts (a new mount namespace starts with them: not the run's)."""
    try:
        with open("/proc/self/mountinfo") as fh:
            return {dev for dev, _point in _tmpfs_mounts(fh.read())}
    except OSError:
        return set()


def tmpfs_used(pids: list[int], skip: set[str]) -> int:
    """Used bytes of the tmpfs mounts that `pids` see, each file system counted once, `skip` devices not.

    One process per mount namespace is read; a mount is measured through `/proc/<pid>/root`, so a
    tmpfs mounted only where bubblewrap set up (a test binary's writable layer) counts too.
    """
    namespaces: set[str] = set()
    devices = set(skip)
    used = 0
    for pid in pids:
        try:
            namespace = os.readlink(f"/proc/{pid}/ns/mnt")
            if namespace in namespaces:
                continue
            namespaces.add(namespace)
            with open(f"/proc/{pid}/mountinfo") as fh:
                mounts = _tmpfs_mounts(fh.read())
        except OSError:
            continue
        for dev, point in mounts:
            if dev in devices:
                continue
            devices.add(dev)
            with contextlib.suppress(OSError):
                st = os.statvfs(f"/proc/{pid}/root{point}")
                used += (st.f_blocks - st.f_bfree) * st.f_frsize
    return used


class _Watch:
    """One run as its watchdog sees it: the root of its process tree and its pids cgroup, if any."""

    def __init__(self, root: int, cgroup: Path | None) -> None:
        self.root, self.cgroup = root, cgroup
        self.seen = 0  # the most tasks a scan found
        self.host_tmpfs = host_tmpfs_devices()  # read once a run, not at every scan

    def refused(self) -> int:
        """Forks the run's cgroup refused at pids.max (0 without a cgroup)."""
        if self.cgroup is None:
            return 0
        try:
            events = (self.cgroup / "pids.events").read_text().split()
        except OSError:
            return 0
        return int(events[1]) if events[:1] == ["max"] and len(events) > 1 and events[1].isdigit() else 0

    def peak(self) -> int:
        if self.cgroup is not None:
            with contextlib.suppress(OSError, ValueError):
                return max(self.seen, int((self.cgroup / "pids.peak").read_text()))
        return self.seen


class RunCgroups:
    """A pids cgroup controller this process may write: every run in a cgroup of its own under
    `parent`, with `pids.max` set, so the kernel refuses a fork past `max_tasks` for any uid.

    cgroup v2 where the server's own cgroup delegates pids to its children (`cgroup.subtree_control`),
    else cgroup v1's pids hierarchy when it is writable (root). `find` checks a process can join one.
    """

    def __init__(self, parent: Path, kind: str, max_tasks: int) -> None:
        self.parent, self.kind, self.max_tasks = parent, kind, max_tasks

    @classmethod
    def find(cls, max_tasks: int) -> RunCgroups | None:
        """The host's writable pids controller, checked by moving a process into a cgroup (None: none)."""
        for kind, base in _pids_hierarchies():
            parent = base / f"goresolve-{os.getpid()}"
            try:
                _sweep_stale(base)
                parent.mkdir(exist_ok=True)
                if kind == "cgroup v2":
                    (parent / "cgroup.subtree_control").write_text("+pids")
            except OSError:
                continue
            cgroups = cls(parent, kind, max_tasks)
            probe = cgroups.make()
            if probe is None:
                continue
            argv = ["/bin/sh", "-c", 'echo $$ >"$0" && cat "$1"', str(probe / "cgroup.procs"), str(probe / "pids.max")]
            try:
                out = subprocess.run(argv, capture_output=True, timeout=10, check=False).stdout
            except (OSError, subprocess.TimeoutExpired):
                out = b""
            cgroups.remove(probe)
            if out.strip() == str(max_tasks).encode():
                return cgroups
            with contextlib.suppress(OSError):
                parent.rmdir()
        return None

    def make(self) -> Path | None:
        """A new cgroup for one run (None when it cannot be made: the run goes without)."""
        self.sweep()
        path = self.parent / secrets.token_hex(8)
        try:
            path.mkdir()
            (path / "pids.max").write_text(str(self.max_tasks))
        except OSError:
            with contextlib.suppress(OSError):
                path.rmdir()
            return None
        return path

    def remove(self, path: Path) -> None:
        """Remove a run's cgroup (it stays while a process of the run is still exiting: `sweep` removes it)."""
        with contextlib.suppress(OSError):
            path.rmdir()

    def sweep(self) -> None:
        """Remove the cgroups of runs that are over: joined once and empty now, or never joined in a minute
        (a run whose start failed). The kernel refuses to remove one that still has a process."""
        with contextlib.suppress(OSError):
            for path in self.parent.iterdir():
                if path.is_dir() and (_joined(path) or time.time() - path.stat().st_mtime > _CGROUP_UNUSED_S):
                    self.remove(path)


_CGROUP_UNUSED_S = 60.0


def _joined(cgroup: Path) -> bool:
    """Has a process ever been in `cgroup` (pids.peak; False when the kernel does not keep it)?"""
    try:
        return int((cgroup / "pids.peak").read_text()) > 0
    except (OSError, ValueError):
        return False


def _pids_hierarchies() -> list[tuple[str, Path]]:
    """Where this process's pids cgroup is, per hierarchy: cgroup v2 first, then v1."""
    try:
        own = Path("/proc/self/cgroup").read_text().splitlines()
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    out: list[tuple[str, Path]] = []
    for line in mounts:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        point = Path(fields[4])
        if tail[0] == "cgroup2":
            path = next((entry.split(":", 2)[2] for entry in own if entry.startswith("0::")), None)
            base = point / path.lstrip("/") if path else None
            if base is not None and _has_pids(base / "cgroup.controllers") and os.access(base, os.W_OK):
                out.insert(0, ("cgroup v2", base))
        elif tail[0] == "cgroup" and "pids" in tail[2].split(","):
            path = next((e.split(":", 2)[2] for e in own if "pids" in e.split(":", 2)[1].split(",")), None)
            base = point / path.lstrip("/") if path is not None else None
            if base is not None and os.access(base, os.W_OK):
                out.append(("cgroup v1", base))
    return out


def _has_pids(controllers: Path) -> bool:
    try:
        return "pids" in controllers.read_text().split()
    except OSError:
        return False


def _sweep_stale(base: Path) -> None:
    """Remove the empty run cgroups of go-test-runner processes that are gone (a crash leaves them)."""
    for parent in base.glob("goresolve-*"):
        pid = parent.name.removeprefix("goresolve-")
        if not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        for child in parent.iterdir():
            if child.is_dir():
                with contextlib.suppress(OSError):
                    child.rmdir()
        with contextlib.suppress(OSError):
            parent.rmdir()


@dataclass(frozen=True)
class CacheLimits:
    """Bounds on the shared build cache, in bytes (0: no bound): no file over `max_file` and at most
    `max_merge` bytes merged from one run's layer; the shared cache trimmed when over `max_total`."""

    max_file: int = 32 << 20
    max_merge: int = 512 << 20
    max_total: int = 10 << 30


@dataclass
class Merged:
    """What `merge_layer` moved (file names and bytes) and how many files it left behind."""

    names: list[str] = field(default_factory=list[str])
    bytes: int = 0
    dropped: int = 0
    dropped_outputs: int = 0  # of them, compiled outputs (`-d`): still counted as built


_NO_LIMITS = CacheLimits(0, 0, 0)
_CACHE_REMEASURE_S = 1800.0  # the shared cache is measured again this often (the analyzer writes to it too)
_TRIM_KEEP_S = 2 * 3600  # trim_cache never removes a file used this recently (go refreshes mtimes hourly)
_TRIM_TO = 0.9  # a trim goes down to this share of the cap, so it does not run after every merge
_TRIM_LOCK = ".goresolve-trim.lock"
_CACHE_ENTRY = re.compile(r"^[0-9a-f]{64}-[ad]$")


def merge_layer(layer: Path, shared: Path, limits: CacheLimits = _NO_LIMITS) -> Merged:
    """Move the regular files `go` wrote into the run's cache layer into the shared cache.

    Only the BUILD sandbox (`go` and its compilers) can write that layer: test binaries get their
    own throwaway layer on top. Overlay metadata (whiteouts, opaque directories) is not copied. A file
    over `limits.max_file`, or past `limits.max_merge` bytes for the layer, is removed from the layer
    instead: a patch declaring a huge array (`var T = [200 << 20]byte{1}`) compiles to an object of that
    size, which would otherwise stay in the shared cache for good (go looks it up again: a miss).
    """
    out = Merged()
    for dirpath, _dirs, files in os.walk(layer):
        rel = Path(dirpath).relative_to(layer)
        for name in files:
            src = Path(dirpath) / name
            try:
                st = src.lstat()
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            over_file = limits.max_file and st.st_size > limits.max_file
            if over_file or (limits.max_merge and out.bytes + st.st_size > limits.max_merge):
                out.dropped += 1
                out.dropped_outputs += name.endswith("-d")
                with contextlib.suppress(OSError):
                    src.unlink()  # not seen again by the call's next run on this layer, nor merged then
                continue
            dest = shared / rel / name
            try:
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dest)
            except OSError:
                continue
            out.names.append(name)
            out.bytes += st.st_size
    return out


def trim_cache(shared: Path, max_total: int, *, now: float | None = None) -> int | None:
    """Keep the shared build cache under `max_total` bytes: when its entries (go's `xx/<hash>-a` and
    `-d` files) total more, remove the least recently used (oldest mtime; go refreshes an entry's mtime
    when it uses one over an hour old) until they total at most 90% of it. An entry used in the last two
    hours stays: a run may be using it now (a deleted entry is a cache miss for go, but one read in the
    middle of a build would fail it). One trim at a time over all processes (an flock in the cache);
    returns the entries' total after it, or None when another process is trimming."""
    try:
        lock = os.open(shared / _TRIM_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return None
        entries: list[tuple[float, int, Path]] = []
        total = 0
        for sub in shared.iterdir() if shared.is_dir() else ():
            if len(sub.name) != 2 or not sub.is_dir() or sub.is_symlink():
                continue
            with os.scandir(sub) as it:
                for entry in it:
                    if not _CACHE_ENTRY.match(entry.name):
                        continue
                    with contextlib.suppress(OSError):
                        st = entry.stat(follow_symlinks=False)
                        if stat.S_ISREG(st.st_mode):
                            entries.append((st.st_mtime, st.st_size, Path(entry.path)))
                            total += st.st_size
        if total <= max_total:
            return total
        goal = int(max_total * _TRIM_TO)
        recent = (time.time() if now is None else now) - _TRIM_KEEP_S
        entries.sort()
        for mtime, size, path in entries:
            if total <= goal or mtime > recent:
                break
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                total -= size
        return total
    finally:
        os.close(lock)


class SetupUnavailable(RuntimeError):
    """`sandbox-setup` could not be built."""


SETUP_SRC = Path(__file__).resolve().parent / "sandbox_setup"
_SETUP_BUILD_S = 600  # once per machine; compiling the standard library on a loaded 2-core host is slow


def setup_program(go: Path, dest: Path, *, gocache: Path) -> None:
    """Put `sandbox-setup` (sandbox_setup/) for `go` at `dest`.

    It is built once per source and toolchain into `<data dir>/tools` (the tamper analyzer's place)
    and linked or copied from there; when that directory is not writable it is built at `dest`
    directly. The build uses the user's build cache (`go env GOCACHE`, where `goresolve model
    install` compiled the standard library), else `gocache`.

    Raises:
        SetupUnavailable: go could not build it.
    """
    try:
        tool.link_or_copy(install_setup_program(go, gocache=gocache), dest)
    except OSError:
        _build_setup(go, dest, gocache)


def installed_setup_program(go: Path) -> Path:
    """Where `sandbox-setup` for `go` is installed (a file once `install_setup_program` built it)."""
    digest = hashlib.sha256(str(go.resolve()).encode())
    for source in sorted([*SETUP_SRC.glob("*.go"), SETUP_SRC / "go.mod"]):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return tool.installed_dir() / f"sandbox-setup-{digest.hexdigest()[:16]}"


def install_setup_program(go: Path, *, gocache: Path) -> Path:
    """Build `sandbox-setup` for `go` into the tools directory unless it is there; returns its path.

    Raises:
        OSError: the tools directory cannot be written.
        SetupUnavailable: go could not build it.
    """
    built = installed_setup_program(go)
    if not built.is_file():
        built.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(built.parent, os.W_OK):  # a read-only tools directory without it: build elsewhere
            raise PermissionError(f"{built.parent} is not writable")
        _build_setup(go, built, gocache)
    return built


def _build_setup(go: Path, out: Path, gocache: Path) -> None:
    partial = out.with_name(f"{out.name}.{os.getpid()}.partial")
    user = host_go_env(str(go)).get("GOCACHE")
    cache = user if user and os.access(user, os.W_OK) else str(gocache)
    with tempfile.TemporaryDirectory(prefix="goresolve-setup-") as home:
        env = tool.go_build_env(str(go), home) | {"GOPROXY": "off", "GOWORK": "off", "GOCACHE": cache}
        try:
            proc = subprocess.run(
                [str(go), "build", "-o", str(partial), "."],
                cwd=SETUP_SRC,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=_SETUP_BUILD_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SetupUnavailable(f"cannot build the sandbox's set-up program: {exc}") from exc
    if proc.returncode != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        why = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        raise SetupUnavailable(f"cannot build the sandbox's set-up program: {why[0][:200]}")
    partial.chmod(0o755)
    partial.replace(out)


def _world_readable(path: Path) -> bool:
    """Can any user list `path` (another host user runs the sandbox, and bubblewrap opens it as that user)?"""
    real = path.resolve()
    try:
        return bool(real.stat().st_mode & 0o005 == 0o005) and all(p.stat().st_mode & 0o001 for p in real.parents)
    except OSError:
        return False


def _write(path: Path, data: bytes, *, mode: int) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.chmod(mode)
    partial.replace(path)


def _bwrap_version(exe: str) -> str | None:
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.strip().removeprefix("bubblewrap ") or "unknown"


def _user_namespaces() -> bool:
    """Can this process make a user and mount namespace (what both sandboxes start with)?"""
    argv = ["unshare", "--user", "--map-root-user", "--mount", "/bin/true"]
    try:
        return subprocess.run(argv, capture_output=True, timeout=30, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _cgroup_v2_delegated() -> bool:
    """Is /sys/fs/cgroup a cgroup v2 tree with pids and memory we may write? (reported, not used yet)."""
    controllers = Path("/sys/fs/cgroup/cgroup.controllers")
    try:
        names = controllers.read_text().split()
    except OSError:
        return False
    return {"pids", "memory"} <= set(names) and os.access("/sys/fs/cgroup", os.W_OK)


def host_go_env(go: str) -> dict[str, str]:
    """GOROOT, GOCACHE and GOMODCACHE as the server's user's own `go env` reports them ({} on failure)."""
    try:
        out = subprocess.run(
            [go, "env", "-json", "GOROOT", "GOCACHE", "GOMODCACHE"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=30,
            check=False,
        ).stdout
        data = json.loads(out or b"{}")
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return {}
    return (
        {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str) and v}
        if isinstance(data, dict)
        else {}
    )


def host_user(name: str) -> tuple[int, int]:
    """(uid, gid) of a host user, for `sandbox_user`.

    Raises:
        KeyError: no such user.
    """
    entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid
