"""The processes of the static guard: build the Go analyzer once, run it, apply a patch to a copy.

The analyzer's source ships in the package (analyzer/: main.go, go.mod and go.sum pinned); it is
compiled once per source hash and go binary and reused. `goresolve model install` builds it into
`<data dir>/tools/` (`install_analyzer`; `$GORESOLVE_TOOLS_DIR` overrides the place, as the
go-test-runner image does); `build_analyzer` takes it from there into its caller's cache directory,
and builds it there itself only when it was not installed. This is the only module of the guard
that starts processes; go-test-runner runs the same binary.

Where a cold build spends its time (go 1.26, 2 cores): about 90% compiling the standard library
(runtime, go/types, reflect, ...), 8% golang.org/x/tools, a few seconds downloading modules. So the
build reuses the user's GOCACHE and is not `-trimpath`: a trimmed build keys every standard package
apart from the user's own builds (130 packages compiled instead of 48 on a cache warmed by a small
program using go/types).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Generator
from contextlib import contextmanager
from pathlib import Path

from servers.common.errors import Conflict, UpstreamFailure
from servers.common.gitenv import NO_HOOKS, git_env
from servers.common.policy import ProtectedPolicy
from servers.common.settings import default_data_dir
from servers.common.tamper.facts import Facts

ANALYZER_SRC = Path(__file__).resolve().parent / "analyzer"
_SOURCES = ("main.go", "go.mod", "go.sum")
# one build, once per machine: a cold standard library took minutes on a loaded 2-core host
BUILD_TIMEOUT_S = 900
# The analyzer's budget is CPU time (RLIMIT_CPU through prlimit, for it and each `go list` it starts):
# a large module (golang.org/x/text: ~20 s of CPU warm, ~60 s cold) on a loaded host took 8x that in
# wall time, and a wall-clock budget then refused good patches for the host's load. The wall clock
# stays as a backstop against a process that waits instead of computing.
ANALYZE_CPU_S = 300
ANALYZE_TIMEOUT_S = 1800
# The other host limits of the analyzer and every go process it starts (prlimit, inherited): a patch
# chooses what `go list -export` compiles on the host, and three `var B = [1 << 30]byte{1<<30 - 1: 1}`
# made it write 3 GB objects into the shared GOCACHE with 3 GB resident. File size bounds each object,
# cache entry and temporary file (the largest entry of a 6.8 GB developer GOCACHE was 23 MB; no private
# GOCACHE: a cold standard library per analysis costs minutes). Data (RLIMIT_DATA: committed private
# memory) bounds each process's memory; not address space, which counts what Go only reserves: every
# go process starts at ~1.2 GB of it, and the analyzer on golang.org/x/text peaks at 2.7 GB of it
# (between 1 and 2 GiB of data; x/tools cold: 1.6 GB virtual).
ANALYZE_FSIZE = 64 << 20  # the largest file of golang.org/x/tools@v0.28.0's whole analysis is 12.7 MiB
ANALYZE_DATA = 4 << 30
ANALYZE_NOFILE = 4096
_SIGXCPU = 24
_SIGXFSZ = 25
# what go prints when a limit other than CPU time stopped one of its processes
_LIMIT_SIGNS = (
    b"file too large",
    b"SIGXFSZ",
    b"cannot allocate memory",
    b"out of memory",
    b"failed to reserve",
    b"too many open files",
)


def source_hash(go: str) -> str:
    digest = hashlib.sha256(str(Path(go).resolve()).encode())
    for name in _SOURCES:
        digest.update((ANALYZER_SRC / name).read_bytes())
    return digest.hexdigest()[:16]


# (packages compiled so far, packages the analyzer depends on, the package just compiled)
Progress = Callable[[int, int, str], None]


TOOLS_DIR_ENV = "GORESOLVE_TOOLS_DIR"


def installed_dir() -> Path:
    """Where the programs this project ships as Go source are installed: `$GORESOLVE_TOOLS_DIR`, else
    `<data dir>/tools` (where `goresolve model install` builds the analyzer). The go-test-runner image
    sets it to a directory built into the image (servers/go_test_runner/prebuild.py), read-only at run time."""
    override = os.environ.get(TOOLS_DIR_ENV)
    return Path(override) if override else default_data_dir() / "tools"


def installed_analyzer(go: str) -> Path:
    """The path of the installed analyzer for `go` (a file once `install_analyzer` built it)."""
    return installed_dir() / f"tamper-{source_hash(go)}"


def install_analyzer(go: str, *, on_progress: Progress | None = None) -> Path:
    """Build the analyzer for `go` into `installed_dir()` unless it is there; returns its path.

    Raises: UpstreamFailure when it cannot be built.
    """
    return build_analyzer(go, installed_dir(), on_progress=on_progress)


def build_analyzer(
    go: str,
    cache_dir: Path,
    *,
    gocache: Path | None = None,
    gomodcache: Path | None = None,
    on_progress: Progress | None = None,
) -> Path:
    """The analyzer binary for `go` in `cache_dir`: already there, linked from the installed one, or built.

    Its one dependency (golang.org/x/tools, pinned by go.sum) comes from the module cache or the
    Go proxy named by GOPROXY. `gocache`/`gomodcache` default to the user's (`go env`).
    Raises: UpstreamFailure when it cannot be built.
    """
    installed = installed_analyzer(go)
    out = cache_dir / installed.name
    if out.is_file():
        return out
    cache_dir.mkdir(parents=True, exist_ok=True)
    if installed.is_file() and installed.resolve() != out.resolve():
        link_or_copy(installed, out)
        return out
    partial = out.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    with tempfile.TemporaryDirectory(prefix="goresolve-build-") as home:
        _build(go, out, partial, home, gocache, gomodcache, on_progress)
    return out


def link_or_copy(src: Path, dest: Path) -> None:
    """Put a built program at `dest` atomically: a hard link to `src`, or a copy on another file system.

    Raises: OSError when neither can be written.
    """
    partial = dest.with_name(f"{dest.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    partial.unlink(missing_ok=True)
    try:
        try:
            os.link(src, partial)
        except OSError:  # another file system
            shutil.copy2(src, partial)
        partial.replace(dest)
    finally:
        # rename(2) does nothing when both names are links to the same file (`dest` already links `src`):
        # `partial` is then still there; after a real rename, or a failed copy, this is a no-op or a clean-up
        partial.unlink(missing_ok=True)


def telemetry_off(home: str | Path) -> None:
    """Turn go's telemetry off in a temporary HOME (`go telemetry off` writes this file). Otherwise go
    records counters there and starts a detached child that writes into HOME after go has exited,
    recreating the directory once its owner has removed it."""
    mode = Path(home) / ".config" / "go" / "telemetry" / "mode"
    mode.parent.mkdir(parents=True, exist_ok=True)
    mode.write_text("off\n")


def go_build_env(go: str, home: str) -> dict[str, str]:
    """The environment of a `go build` of a program this project ships as source: the toolchain `go`
    only (no other on PATH, no toolchain switch), no cgo, go.mod as it is; `home` is a temporary HOME
    (telemetry turned off in it), so go writes its own settings there and not into a cache directory."""
    telemetry_off(home)
    return {
        "PATH": f"{Path(go).parent}:/usr/bin:/bin",
        "HOME": home,
        "GOTOOLCHAIN": "local",
        "CGO_ENABLED": "0",
        "GOFLAGS": "-mod=readonly",
    }


def _build(
    go: str,
    out: Path,
    partial: Path,
    home: str,
    gocache: Path | None,
    gomodcache: Path | None,
    on_progress: Progress | None,
) -> None:
    env = go_build_env(go, home) | {"GOPROXY": os.environ.get("GOPROXY", "https://proxy.golang.org")}
    env |= {k: str(v) for k, v in (("GOCACHE", gocache), ("GOMODCACHE", gomodcache)) if v is not None}
    for var in ("GOCACHE", "GOMODCACHE"):
        if var not in env and (value := _go_env(go, var)):
            env[var] = value
    total = _dependencies(go, env) if on_progress is not None else 0
    compiled = 0

    def line(text: str) -> None:
        nonlocal compiled
        # `go build -v` names each package as it compiles it; `go: ...` lines are notes (downloads)
        if on_progress is not None and text and not text.startswith("go: "):
            compiled += 1
            on_progress(min(compiled, total), total, text)

    code, tail = _stream([go, "build", "-v", "-o", str(partial), "."], env, line)
    if code != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        raise UpstreamFailure("cannot build the tamper analyzer: " + " | ".join(tail[-3:])[:300])
    partial.replace(out)
    if on_progress is not None:
        on_progress(total, total, "")


def _dependencies(go: str, env: dict[str, str]) -> int:
    """How many packages the analyzer's build involves (`go list -deps`; downloads the modules if needed)."""
    packages: list[str] = []
    code, tail = _stream([go, "list", "-deps", "."], env, packages.append, stdout=True)
    if code != 0:
        raise UpstreamFailure("cannot build the tamper analyzer: " + " | ".join(tail[-3:])[:300])
    return sum(1 for text in packages if text and not text.startswith("go: "))


def _stream(
    argv: list[str], env: dict[str, str], on_line: Callable[[str], None] | None, *, stdout: bool = False
) -> tuple[int, list[str]]:
    """Run `argv` in the analyzer's source directory, passing each line of its stderr (with `stdout`,
    of both) to `on_line`. Returns (exit status, its last lines).

    Raises: UpstreamFailure when it cannot start or outlives BUILD_TIMEOUT_S (it is killed then).
    """
    last: deque[str] = deque(maxlen=20)
    try:
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=ANALYZER_SRC,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
            stderr=subprocess.STDOUT if stdout else subprocess.PIPE,
            text=True,
            errors="replace",
        )
    except OSError as exc:
        raise UpstreamFailure(f"cannot build the tamper analyzer: {exc}") from exc
    killed = threading.Event()

    def kill() -> None:
        killed.set()
        proc.kill()

    timer = threading.Timer(BUILD_TIMEOUT_S, kill)
    timer.start()
    try:
        with proc:
            stream = proc.stdout if stdout else proc.stderr
            assert stream is not None
            for raw in stream:
                text = raw.strip()
                last.append(text)
                if on_line is not None:
                    on_line(text)
    finally:
        timer.cancel()
    if killed.is_set():
        raise UpstreamFailure(f"cannot build the tamper analyzer: `go {argv[1]}` took over {BUILD_TIMEOUT_S} s")
    return proc.returncode, list(last)


def _go_env(go: str, name: str) -> str:
    try:
        proc = subprocess.run([go, "env", name], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout.strip()


def analyzer_argv(binary: Path, root: Path, policy: ProtectedPolicy, out: Path, module: str = "") -> list[str]:
    """The command line that analyzes every package of the module at `root`/`module` (`module`: a nested
    module's directory, "" the root's) into the JSON file `out`, naming files relative to `root`."""
    rules = json.dumps({"exit": policy.init_exit_objects, "flag": policy.init_flag_objects}, sort_keys=True)
    directory = root / module if module else root
    return [str(binary), "-dir", str(directory), "-rel", str(root), "-rules", rules, "-out", str(out), "./..."]


def analyze(
    binary: Path,
    go: str,
    root: Path,
    policy: ProtectedPolicy,
    *,
    offline: bool = True,
    gocache: Path | None = None,
    gomodcache: Path | None = None,
    cpu_s: int = ANALYZE_CPU_S,
    module: str = "",
) -> Facts:
    """Run the analyzer on the module at `root` (unconfined: it loads and type-checks, it runs no repo code);
    `module` names a nested module's directory to analyze instead (its facts name files relative to `root`).

    The go caches default to the user's (`go env`); it shares them, and ANALYZE_FSIZE bounds each file
    it writes there. `cpu_s` bounds each of its processes' CPU time, ANALYZE_FSIZE/DATA/NOFILE their file
    sizes, memory and open files (when prlimit is installed); ANALYZE_TIMEOUT_S bounds the wall clock.
    A go.work of the tree is ignored (GOWORK=off) and stdin is empty.

    Raises: UpstreamFailure when it fails, uses up its CPU budget, exceeds a host limit or times out.
    """
    with tempfile.TemporaryDirectory(prefix="goresolve-tamper-") as tmp:
        out = Path(tmp) / "facts.json"
        telemetry_off(tmp)
        env = {
            "PATH": f"{Path(go).parent}:/usr/bin:/bin",
            "HOME": tmp,
            "GOTOOLCHAIN": "local",
            "CGO_ENABLED": "0",
            # -trimpath keeps the checkout's directory out of go's build cache keys, so a patched
            # copy elsewhere reuses what the base compiled; go.mod is never rewritten (no -mod=mod)
            "GOFLAGS": "-trimpath",
            "GOPROXY": "off" if offline else os.environ.get("GOPROXY", "https://proxy.golang.org"),
            # a go.work in the tree could `use` or `replace` with directories of the host
            "GOWORK": "off",
            # go's work directories in the temporary directory, removed with it even when a limit kills go
            "GOTMPDIR": tmp,
        }
        for name, given in (("GOCACHE", gocache), ("GOMODCACHE", gomodcache)):
            if value := str(given or "") or _go_env(go, name):
                env[name] = value
        argv = analyzer_argv(binary, root, policy, out, module)
        prlimit = shutil.which("prlimit", path="/usr/bin:/bin")
        if prlimit is not None:
            # SIGXCPU at the soft limit (Go reports it and exits), SIGKILL a few seconds later at the hard one
            limits = (f"--fsize={ANALYZE_FSIZE}", f"--data={ANALYZE_DATA}", f"--nofile={ANALYZE_NOFILE}")
            argv = [prlimit, f"--cpu={cpu_s}:{cpu_s + 5}", *limits, "--", *argv]
        try:
            proc = subprocess.run(
                argv,
                env=env,
                cwd=root / module,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=ANALYZE_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise UpstreamFailure(f"tamper analyzer failed: {exc}") from exc
        if proc.returncode in (-_SIGXCPU, -signal.SIGKILL) or b"SIGXCPU" in proc.stderr:
            raise UpstreamFailure(f"tamper analyzer failed: it used its CPU budget of {cpu_s} s")
        if proc.returncode != 0 and (proc.returncode == -_SIGXFSZ or any(s in proc.stderr for s in _LIMIT_SIGNS)):
            raise _over_limits()
        if proc.returncode != 0 or not out.is_file():
            tail = proc.stderr.decode(errors="replace").strip().splitlines()[-2:]
            raise UpstreamFailure("tamper analyzer failed: " + " | ".join(tail)[:300])
        facts = Facts.parse(out.read_bytes())
        # a package go could not compile within the limits is a package error, and the analyzer goes on
        # without its export data: its importers' facts would be incomplete, so the whole analysis fails
        if any(sign.decode() in error for error in facts.errors or () for sign in _LIMIT_SIGNS):
            raise _over_limits()
        return facts


def _over_limits() -> UpstreamFailure:
    return UpstreamFailure(
        "tamper analyzer failed: the patch's packages could not be analysed within the host limits "
        f"({ANALYZE_FSIZE >> 20} MiB a file, {ANALYZE_DATA >> 30} GiB of memory a process, {ANALYZE_NOFILE} open files)"
    )


def _git(cwd: Path, *args: str, stdin: bytes | None = None) -> str:
    try:
        proc = subprocess.run(
            ["git", *NO_HOOKS, *args],
            cwd=cwd,
            input=stdin,
            capture_output=True,
            env=git_env(),
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UpstreamFailure(f"git {args[0]} failed: {exc}") from exc
    if proc.returncode != 0:
        first = proc.stderr.decode(errors="replace").strip().splitlines()[:1]
        if args[0] == "apply":
            raise Conflict(f"patch does not apply: {first[0] if first else 'rejected by git apply'}"[:300])
        raise UpstreamFailure(f"git {args[0]} failed: {first[0] if first else 'no output'}"[:300])
    return proc.stdout.decode("utf-8", "surrogateescape")


@contextmanager
def applied_copy(repo: Path, patch: str) -> Generator[tuple[Path, str]]:
    """A temporary copy of the tree at `repo` (no .git) with `patch` applied by `git apply`.

    Yields (copy, the diff git produced: `git diff --cached --binary -M`). Raises: Conflict when the
    patch does not apply; UpstreamFailure when git fails otherwise.
    """
    with tempfile.TemporaryDirectory(prefix="goresolve-apply-") as tmp:
        copy = Path(tmp) / "tree"
        shutil.copytree(repo, copy, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        _git(copy, "init", "-q")
        _git(copy, "add", "-A", "-f")
        tree = _git(copy, "write-tree").strip()
        _git(copy, "apply", "--index", "--whitespace=nowarn", "-", stdin=patch.encode("utf-8", "surrogateescape"))
        yield copy, _git(copy, "diff", "--cached", "--binary", "--no-color", "--no-ext-diff", "-M", tree)
