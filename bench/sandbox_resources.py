"""What test code can take from the host through go-test-runner's sandbox: a fork bomb, scratch files, a line
without end, each run through the real `Runner` (bubblewrap sandbox, process ceiling, watchdog, line relay).

    .venv/bin/python bench/sandbox_resources.py

A small Go module is committed into a temporary git repository with three test packages:

- bomb: a bounded fork bomb in /bin/sh, `b(){ ... b $(($1-1)) & b $(($1-1)) & ...; sleep 5; }; b 12; wait`
  (2^(depth+1) shells; `--bomb-depth`);
- scratch: 3 files of `--scratch-mib` MiB (default 1,000) written to /tmp and 2 to the working directory
  (its writable layer), both memory-backed, then the test waits;
- line: one line of `--line-mib` MiB (default 1,500) without a newline, written 1 MiB at a time.

Each runs through `Runner.run_tests` with the runner's default settings (`max_tasks` 2048, `memory_limit_mb`
8192, `scratch_mb` 4096; `--max-tasks`, `--memory-limit-mb`, `--scratch-mb` override them) while a sampler
thread reads the host's process count (`/proc/[0-9]*`) and `Shmem` and `MemAvailable` of /proc/meminfo every
20 ms. Printed per case: peak host processes over the baseline, kill time (first sample over baseline+1000
to the first one back under baseline+100), peak Shmem and memory in use over the baseline, the watchdog's
line, the run's summary, elapsed time, and which process ceiling held. Everything is removed at the end and
the removal is checked (no process of the run left, Shmem back, the temporary directory gone).

It loads the host for a few seconds per case (thousands of processes, GiBs of memory); it refuses to run
without bubblewrap (a weak sandbox would not confine any of it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from servers.common.policy import AccessPolicy, Identity, Policies, Repo, ReposPolicy, Role, ToolsPolicy
from servers.go_test_runner.payload import RunTestsRequest
from servers.go_test_runner.results import RunResult
from servers.go_test_runner.runner import Runner
from servers.go_test_runner.sandbox import Outcome
from servers.go_test_runner.settings import GoTestRunnerSettings

BOMB_SCRIPT = "b(){{ if [ $1 -gt 0 ]; then b $(($1-1)) & b $(($1-1)) & fi; sleep 5; }}; b {depth}; wait"
SAMPLE_S = 0.02
TIMEOUT_S = 120


def sources(bomb_depth: int, scratch_mib: int, line_mib: int) -> dict[str, str]:
    script = BOMB_SCRIPT.format(depth=bomb_depth)
    return {
        "go.mod": "module example.com/resources\n\ngo 1.22\n",
        "bomb/bomb_test.go": f"""package bomb

import (
	"os/exec"
	"testing"
)

// TestBomb starts a bounded exponential fork bomb: 2^{bomb_depth + 1} shells, each sleeping 5 s.
func TestBomb(t *testing.T) {{
	script := `{script}`
	out, err := exec.Command("/bin/sh", "-c", script).CombinedOutput()
	t.Errorf("ESCAPED: the bomb ran to its end: %v %.200s", err, out)
}}
""",
        "scratch/scratch_test.go": f"""package scratch

import (
	"bytes"
	"fmt"
	"os"
	"testing"
	"time"
)

// TestScratch writes 3 files of {scratch_mib} MiB to /tmp and 2 to the working directory, then waits.
func TestScratch(t *testing.T) {{
	chunk := bytes.Repeat([]byte("x"), 1<<20)
	for i, dir := range []string{{"/tmp", "/tmp", "/tmp", ".", "."}} {{
		f, err := os.Create(fmt.Sprintf("%s/scratch%d", dir, i))
		if err != nil {{
			t.Fatal(err)
		}}
		for j := 0; j < {scratch_mib}; j++ {{
			if _, err := f.Write(chunk); err != nil {{
				t.Fatalf("%s after %d MiB: %v", dir, j, err)
			}}
		}}
		f.Close()
	}}
	time.Sleep(60 * time.Second)
	t.Error("ESCAPED: the scratch files were not stopped")
}}
""",
        "line/line_test.go": f"""package line

import (
	"bytes"
	"os"
	"testing"
)

// TestLine writes one line of {line_mib} MiB without a newline, 1 MiB at a time, then ends it.
func TestLine(t *testing.T) {{
	chunk := bytes.Repeat([]byte("L"), 1<<20)
	for i := 0; i < {line_mib}; i++ {{
		os.Stdout.Write(chunk)
	}}
	os.Stdout.WriteString("\\nafter the line\\n")
}}
""",
    }


def git(repo: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.com",
        "HOME": str(repo),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, env=env, timeout=60
    ).stdout.strip()


def make_repo(root: Path, files: dict[str, str]) -> Path:
    repo = root / "resources"
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "resources")
    return repo


def go_env(name: str) -> Path:
    out = subprocess.run(["go", "env", name], capture_output=True, text=True, check=True, timeout=60)
    return Path(out.stdout.strip())


def make_runner(repo: Path, work: Path, **overrides: Any) -> Runner:
    """A runner over `repo` with default settings but for `overrides`; the host's build cache is shared."""
    given: dict[str, Any] = {
        "state_dir": work / "state",
        "policy_dir": work,
        "work_dir": work / "runner",
        "gocache": go_env("GOCACHE"),
        "gomodcache": go_env("GOMODCACHE"),
        "stdio_identity": "bench",
    }
    settings = GoTestRunnerSettings(**(given | overrides))
    policies = Policies(
        access=AccessPolicy(identities={"bench": Identity(roles=("bench",), repos=("resources",))}),
        tools=ToolsPolicy(roles={"bench": Role(scopes=("tests:run",))}),
        repos=ReposPolicy(repos={"resources": Repo(path=str(repo))}),
    )
    return Runner.create(settings, policies)


# --- the host, sampled -------------------------------------------------------------------------------


def host_processes() -> int:
    return sum(1 for name in os.listdir("/proc") if name.isdigit())


def meminfo_mib() -> dict[str, float]:
    out: dict[str, float] = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("Shmem", "MemAvailable"):
                out[key] = int(rest.split()[0]) / 1024
    return out


@dataclass
class Sample:
    t: float
    processes: int
    shmem_mib: float
    available_mib: float


@dataclass
class Sampler:
    """Samples the host every `SAMPLE_S` in a thread, from `start()` to `stop()`."""

    samples: list[Sample] = field(default_factory=list[Sample])
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> Sample:
        mem = meminfo_mib()
        return Sample(time.perf_counter(), host_processes(), mem["Shmem"], mem["MemAvailable"])

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self.sample())
            self._stop.wait(SAMPLE_S)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def baseline(seconds: float = 0.5) -> Sample:
    """The host at rest: median of samples over `seconds`."""
    sampler = Sampler()
    taken: list[Sample] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        taken.append(sampler.sample())
        time.sleep(SAMPLE_S)
    return Sample(
        taken[-1].t,
        round(statistics.median(s.processes for s in taken)),
        statistics.median(s.shmem_mib for s in taken),
        statistics.median(s.available_mib for s in taken),
    )


def kill_time(samples: list[Sample], base: int) -> float | None:
    """From the first sample over base+1000 processes to the first one after it back under base+100."""
    first = next((s for s in samples if s.processes > base + 1000), None)
    if first is None:
        return None
    back = next((s for s in samples if s.t > first.t and s.processes < base + 100), None)
    return None if back is None else back.t - first.t


# --- one case -----------------------------------------------------------------------------------------


async def run_case(runner: Runner, package: str) -> tuple[RunResult, list[Outcome], float]:
    """The package's run, the sandbox's outcome of each command in it, and the call's wall time."""
    outcomes: list[Outcome] = []
    sandbox_run = runner.sandbox.run

    async def recording(*args: Any, **kwargs: Any) -> Outcome:
        outcome = await sandbox_run(*args, **kwargs)
        outcomes.append(outcome)
        return outcome

    setattr(runner.sandbox, "run", recording)  # noqa: B010 - an instance attribute over the method
    try:
        req = {"repo": "resources", "ref": "main", "packages": [package], "flags": ["-count=1"]}
        request = RunTestsRequest.model_validate(req | {"timeout_s": TIMEOUT_S})
        started = time.perf_counter()
        result = await runner.run_tests(request)
        return result, outcomes, time.perf_counter() - started
    finally:
        delattr(runner.sandbox, "run")


async def measure(runner: Runner, name: str, package: str) -> None:
    await runner.drain()  # the previous case's background steps finished before the baseline
    await asyncio.sleep(1.0)
    base = baseline()
    sampler = Sampler()
    sampler.start()
    try:
        result, outcomes, elapsed = await run_case(runner, package)
        await asyncio.sleep(1.0)  # the host after the run
    finally:
        sampler.stop()
    samples = sampler.samples or [base]
    peak = max(s.processes for s in samples)
    shmem = max(s.shmem_mib for s in samples) - base.shmem_mib
    used = base.available_mib - min(s.available_mib for s in samples)
    killed = kill_time(samples, base.processes)
    limits = [o.limit for o in outcomes if o.limit]
    escaped = any("ESCAPED" in line for t in result.report.tests for line in t.output)
    print(f"\n== {name} ({package})")
    print(f"peak host processes: {peak} (baseline {base.processes}: +{peak - base.processes})")
    print(f"peak tasks of the run (its own count): {max((o.peak_tasks for o in outcomes), default=0)}")
    print("kill time: " + (f"{killed:.2f} s" if killed is not None else "n/a (never over baseline+1000)"))
    print(f"peak Shmem over baseline: {shmem:,.0f} MiB; peak memory in use over baseline: {used:,.0f} MiB")
    print(f"watchdog: {'; '.join(limits) or 'no kill'}")
    print(f"summary: {result.summary}")
    packages = ", ".join(f"{p.name} {p.status} (passed {p.passed}, failed {p.failed})" for p in result.report.packages)
    print(f"output truncated: {result.report.output_truncated}; {packages}")
    if escaped:
        print("ESCAPED: the test ran to its end")
    print(f"elapsed: {elapsed:.1f} s (the sandbox's runs: " + ", ".join(f"{o.elapsed_s:.1f} s" for o in outcomes) + ")")


# --- clean-up, checked ---------------------------------------------------------------------------------


def leftover_processes(root: Path) -> list[str]:
    """Processes of the bench's runs still alive: a bomb's shell or sleep, or anything under `root`."""
    marker, needle = b"b(){ if [ $1", str(root).encode()
    found: list[str] = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
            cwd = os.readlink(f"/proc/{name}/cwd").encode()
        except OSError:
            continue
        if marker in cmdline or cmdline == b"sleep\x005\x00" or needle in cmdline or cwd.startswith(needle):
            shown = cmdline.replace(b"\x00", b" ").decode(errors="replace")[:120]
            found.append(f"{name}: {shown}")
    return found


def check_clean(root: Path, base: Sample) -> bool:
    deadline = time.monotonic() + 30
    while (left := leftover_processes(root)) and time.monotonic() < deadline:
        time.sleep(0.5)
    now = baseline()
    shmem = now.shmem_mib - base.shmem_mib
    print("\n== clean-up")
    print(f"processes of the runs left: {len(left)}" + "".join(f"\n  {p}" for p in left[:10]))
    print(f"host processes: {now.processes} (at the start {base.processes})")
    print(f"Shmem over the start: {shmem:,.0f} MiB")
    print(f"temporary directory removed: {not root.exists()}")
    return not left and not root.exists() and shmem < 64


async def main_async(args: argparse.Namespace, root: Path) -> None:
    files = sources(args.bomb_depth, args.scratch_mib, args.line_mib)
    repo = make_repo(root, files)
    overrides = {
        k: v
        for k, v in {
            "max_tasks": args.max_tasks,
            "memory_limit_mb": args.memory_limit_mb,
            "scratch_mb": args.scratch_mb,
        }.items()
        if v is not None
    }
    runner = make_runner(repo, root / "work", **overrides)
    try:
        if not runner.sandbox.strong:
            problems = "; ".join(runner.sandbox.protections.problems) or "no bubblewrap"
            print(f"refusing to run: the sandbox is not strong on this host ({problems})", file=sys.stderr)
            raise SystemExit(2)
        s = runner.settings
        print(f"settings: max_tasks {s.max_tasks}, memory_limit_mb {s.memory_limit_mb}, scratch_mb {s.scratch_mb}")
        print(f"sizes: bomb depth {args.bomb_depth} ({2 ** (args.bomb_depth + 1)} shells), "
              f"scratch 5 x {args.scratch_mib} MiB, line {args.line_mib} MiB")  # fmt: skip
        print(f"host: {os.cpu_count()} CPUs, {meminfo_mib()['MemAvailable'] / 1024:.1f} GiB available, "
              f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}, euid {os.geteuid()}")  # fmt: skip
        print(f"process ceiling: {runner.sandbox.process_limit or 'none at fork time (watchdog only)'}")
        print("protections:" + "".join(f"\n  {p}" for p in runner.report(race=False).protections))
        await runner.run_tests(  # warm: the module built once, so the cases time the tests
            RunTestsRequest.model_validate(
                {"repo": "resources", "ref": "main", "packages": ["./..."], "run": "^$", "timeout_s": 300}
            )
        )
        for name, package in (("fork bomb", "./bomb"), ("scratch files", "./scratch"), ("line", "./line")):
            if name.split()[0] in args.cases or name in args.cases:
                await measure(runner, name, package)
    finally:
        await runner.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--bomb-depth", type=int, default=12, help="2^(depth+1) shells (default 12)")
    parser.add_argument("--scratch-mib", type=int, default=1000, help="MiB per scratch file, 5 files (default 1000)")
    parser.add_argument("--line-mib", type=int, default=1500, help="MiB in the line without end (default 1500)")
    parser.add_argument("--max-tasks", type=int, help="the runner's max_tasks (default: its default, 2048)")
    parser.add_argument("--memory-limit-mb", type=int, help="the runner's memory_limit_mb (default 8192)")
    parser.add_argument("--scratch-mb", type=int, help="the runner's scratch_mb (default 4096)")
    parser.add_argument("--cases", default="fork,scratch,line", help="comma-separated: fork, scratch, line")
    args = parser.parse_args()
    args.cases = {c.strip() for c in args.cases.split(",")}
    if shutil.which("bwrap") is None:
        print("refusing to run: bubblewrap (bwrap) is not installed, the sandbox would not be strong", file=sys.stderr)
        return 2
    print(
        "warning: this briefly loads the host (thousands of processes, GiBs of memory-backed files)",
        file=sys.stderr,
        flush=True,
    )
    base = baseline()
    root = Path(tempfile.mkdtemp(prefix="sandbox-resources-"))
    try:
        asyncio.run(main_async(args, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if check_clean(root, base) else 1


if __name__ == "__main__":
    sys.exit(main())
