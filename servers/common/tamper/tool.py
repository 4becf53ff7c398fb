"""The processes of the static guard: build the Go analyzer once, run it, apply a patch to a copy.

The analyzer's source ships in the package (analyzer/: main.go, go.mod and go.sum pinned); it is
compiled once per source hash and go version into a cache directory and reused. This is the only
module of the guard that starts processes; go-test-runner runs the same binary inside its sandbox.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path

from servers.common.errors import Conflict, UpstreamFailure
from servers.common.gitenv import NO_HOOKS, git_env
from servers.common.policy import ProtectedPolicy
from servers.common.tamper.facts import Facts

ANALYZER_SRC = Path(__file__).resolve().parent / "analyzer"
_SOURCES = ("main.go", "go.mod", "go.sum")
BUILD_TIMEOUT_S = 300
# The analyzer's budget is CPU time (RLIMIT_CPU through prlimit, for it and each `go list` it starts):
# a large module (golang.org/x/text: ~20 s of CPU warm, ~60 s cold) on a loaded host took 8x that in
# wall time, and a wall-clock budget then refused good patches for the host's load. The wall clock
# stays as a backstop against a process that waits instead of computing.
ANALYZE_CPU_S = 300
ANALYZE_TIMEOUT_S = 1800
_SIGXCPU = 24


def source_hash(go: str) -> str:
    digest = hashlib.sha256(str(Path(go).resolve()).encode())
    for name in _SOURCES:
        digest.update((ANALYZER_SRC / name).read_bytes())
    return digest.hexdigest()[:16]


def build_analyzer(go: str, cache_dir: Path, *, gocache: Path | None = None, gomodcache: Path | None = None) -> Path:
    """The analyzer binary for `go`, built into `cache_dir` unless a build of the same sources is there.

    Its one dependency (golang.org/x/tools, pinned by go.sum) comes from the module cache or the
    Go proxy named by GOPROXY. Raises: UpstreamFailure when it cannot be built.
    """
    out = cache_dir / f"tamper-{source_hash(go)}"
    if out.is_file():
        return out
    cache_dir.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": f"{Path(go).parent}:/usr/bin:/bin",
        "HOME": str(cache_dir),
        "GOTOOLCHAIN": "local",
        "CGO_ENABLED": "0",
        "GOFLAGS": "-mod=readonly",
        "GOPROXY": os.environ.get("GOPROXY", "https://proxy.golang.org"),
    }
    env |= {k: str(v) for k, v in (("GOCACHE", gocache), ("GOMODCACHE", gomodcache)) if v is not None}
    for name in ("GOCACHE", "GOMODCACHE"):
        if name not in env and (value := _go_env(go, name)):
            env[name] = value
    partial = out.with_suffix(f".{os.getpid()}.tmp")
    argv = [go, "build", "-trimpath", "-o", str(partial), "."]
    try:
        proc = subprocess.run(
            argv, env=env, cwd=ANALYZER_SRC, capture_output=True, timeout=BUILD_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UpstreamFailure(f"cannot build the tamper analyzer: {exc}") from exc
    if proc.returncode != 0 or not partial.is_file():
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise UpstreamFailure("cannot build the tamper analyzer: " + " | ".join(tail)[:300])
    partial.replace(out)
    return out


def _go_env(go: str, name: str) -> str:
    try:
        proc = subprocess.run([go, "env", name], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout.strip()


def analyzer_argv(binary: Path, root: Path, policy: ProtectedPolicy, out: Path) -> list[str]:
    """The command line that analyzes every package of the module at `root` into the JSON file `out`."""
    rules = json.dumps({"exit": policy.init_exit_objects, "flag": policy.init_flag_objects}, sort_keys=True)
    return [str(binary), "-dir", str(root), "-rules", rules, "-out", str(out), "./..."]


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
) -> Facts:
    """Run the analyzer on the module at `root` (unconfined: it loads and type-checks, it runs no repo code).

    The go caches default to the user's (`go env`). `cpu_s` bounds each of its processes' CPU time
    (when prlimit is installed); ANALYZE_TIMEOUT_S bounds the wall clock.

    Raises: UpstreamFailure when it fails, uses up its CPU budget or times out.
    """
    with tempfile.TemporaryDirectory(prefix="goresolve-tamper-") as tmp:
        out = Path(tmp) / "facts.json"
        env = {
            "PATH": f"{Path(go).parent}:/usr/bin:/bin",
            "HOME": tmp,
            "GOTOOLCHAIN": "local",
            "CGO_ENABLED": "0",
            # -trimpath keeps the checkout's directory out of go's build cache keys, so a patched
            # copy elsewhere reuses what the base compiled; go.mod is never rewritten (no -mod=mod)
            "GOFLAGS": "-trimpath",
            "GOPROXY": "off" if offline else os.environ.get("GOPROXY", "https://proxy.golang.org"),
        }
        for name, given in (("GOCACHE", gocache), ("GOMODCACHE", gomodcache)):
            if value := str(given or "") or _go_env(go, name):
                env[name] = value
        argv = analyzer_argv(binary, root, policy, out)
        prlimit = shutil.which("prlimit", path="/usr/bin:/bin")
        if prlimit is not None:
            # SIGXCPU at the soft limit (Go reports it and exits), SIGKILL a few seconds later at the hard one
            argv = [prlimit, f"--cpu={cpu_s}:{cpu_s + 5}", "--", *argv]
        try:
            proc = subprocess.run(argv, env=env, cwd=root, capture_output=True, timeout=ANALYZE_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise UpstreamFailure(f"tamper analyzer failed: {exc}") from exc
        if proc.returncode in (-_SIGXCPU, -signal.SIGKILL) or b"SIGXCPU" in proc.stderr:
            raise UpstreamFailure(f"tamper analyzer failed: it used its CPU budget of {cpu_s} s")
        if proc.returncode != 0 or not out.is_file():
            tail = proc.stderr.decode(errors="replace").strip().splitlines()[-2:]
            raise UpstreamFailure("tamper analyzer failed: " + " | ".join(tail)[:300])
        return Facts.parse(out.read_bytes())


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
