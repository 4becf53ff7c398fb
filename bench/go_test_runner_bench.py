"""go-test-runner overhead: `run_tests` through the MCP client vs. raw `go test -json`, same packages, same run.

    .venv/bin/python bench/go_test_runner_bench.py --module go.uber.org/zap@v1.27.0 --pairs 7 --cold

The module comes from the Go module proxy (`go mod download -json`), is committed once into a git
repository (the runner's policy repo; the runner keeps a mirror of it) and cloned once more for the
raw baseline. Both sides use the same build and module caches and `-count=1` (tests really run).
Runs are interleaved A,B / B,A (the machine is shared); medians are quoted.

"run_tests" is one `tools/call` on the in-memory MCP client: payload validation, policy check,
mirror check, the slot's warm worktree reset to the ref, `go mod download` check, the bubblewrap
sandbox (outer sandbox for go, one nested sandbox per test binary, seccomp, overlays, watchdog),
`go test -json` parsed while streaming, result serialisation. A test binary is handed to a TEST
sandbox started ahead when one is ready (the stage "one test sandbox started for its binary" is what
it pays when none is). Every concurrency slot is warmed before timing (one call per slot at once),
so no timed call pays a first-call penalty.

The fixed cost per call is the median over pairs of A - B (what the runner adds to one go test).
Each timed run starts `--gap` seconds (default 0.3) after the previous one ended, on both sides: an
agent's calls have a model call between them, and the server uses that idle time to start the
slot's next sandboxes. `--gap 0` times calls that follow each other at once on the same slot.
`--cold` adds a first run on a fresh runner (empty build cache of its own, seeded read-only from
the user's) against a raw `go test` on the user's cache.

`--add-test-file DIR` is the case "patch adding a test file": every call sends a patch that adds one
passing test file to the package in DIR, and the raw clone has the same file, so both sides build and
run it. The runner then pays the static guard on the patch and, with the patch's new test file in a
tested package, a second run of that package's base tests without it (`base_tests_differ`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path, PurePosixPath
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcp import Client

from servers.common.policy import AccessPolicy, Identity, Policies, Repo, ReposPolicy, Role, ToolsPolicy
from servers.go_test_runner import gitops
from servers.go_test_runner.gotest_json import parse_stream
from servers.go_test_runner.runner import Runner
from servers.go_test_runner.server import build_server
from servers.go_test_runner.settings import GoTestRunnerSettings


def sh(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    return subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def go_env(name: str) -> Path:
    return Path(sh("go", "env", name).strip())


def prepare(module: str, work: Path) -> tuple[Path, Path]:
    """A git repository of the module's source (for the runner) and a clone of it (for raw go test)."""
    info = json.loads(sh("go", "mod", "download", "-json", module))
    src = work / "src"
    shutil.copytree(info["Dir"], src)
    for path in [src, *src.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)
    sh("git", "init", "-q", "-b", "main", cwd=src)
    sh("git", "add", "-A", cwd=src)
    sh("git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", "commit", "-q", "-m", module, cwd=src)
    raw = work / "raw"
    sh("git", "clone", "-q", str(src), str(raw))
    sh("go", "mod", "download", cwd=raw)
    return src, raw


def added_test_patch(src: Path, directory: str) -> str:
    """A patch adding one passing test file to the package in `directory` (its package clause taken from
    the package's own source)."""
    sources = sorted(p for p in (src / directory).glob("*.go") if not p.name.endswith("_test.go"))
    m = next(m for p in sources if (m := re.search(r"^package (\w+)", p.read_text(), re.MULTILINE)))
    body = [
        f"package {m.group(1)}",
        "",
        'import "testing"',
        "",
        "func TestBenchAddedFile(t *testing.T) {",
        "\tif 1+1 != 2 {",
        '\t\tt.Fatal("1+1")',
        "\t}",
        "}",
    ]
    name = (PurePosixPath(directory) / "zz_bench_added_test.go").as_posix()
    head = f"diff --git a/{name} b/{name}\nnew file mode 100644\n--- /dev/null\n+++ b/{name}\n"
    return head + f"@@ -0,0 +1,{len(body)} @@\n" + "".join(f"+{line}\n" for line in body)


PACKAGE_ELAPSED: dict[str, dict[str, list[float]]] = {"A": {}, "B": {}}
# The sandbox puts GOTMPDIR (test binaries are linked there) and TMPDIR on a tmpfs; the baseline gets
# a tmpfs too (/dev/shm), so the comparison measures the runner, not disk against memory.
RAW_TMP: Path | None = None


def note_packages(side: str, packages: list[dict[str, Any]]) -> None:
    for p in packages:
        if p.get("elapsed_s") is not None:
            PACKAGE_ELAPSED[side].setdefault(p["name"], []).append(p["elapsed_s"])


def cpu_ticks() -> tuple[int, int]:
    """(stolen, all) CPU ticks since boot, from /proc/stat: on a virtual machine the host may run
    other guests on our CPUs, and every figure here grows with the share it takes."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return fields[7], sum(fields)


def raw_go_test(raw: Path, packages: list[str], gocache: Path | None = None) -> float:
    env = dict(os.environ)
    if gocache is not None:
        env["GOCACHE"] = str(gocache)
    if RAW_TMP is not None:  # like the sandbox: go's work dir and the tests' temp files in memory
        env["GOTMPDIR"] = env["TMPDIR"] = str(RAW_TMP)
    started = time.perf_counter()
    proc = subprocess.run(["go", "test", "-json", "-count=1", *packages], cwd=raw, env=env, capture_output=True)
    elapsed = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise RuntimeError(proc.stderr.decode()[-2000:])
    if gocache is None:
        report = parse_stream(proc.stdout.decode(errors="replace").splitlines(), root=str(raw))
        note_packages("B", [p.model_dump() for p in report.packages])
    return elapsed


def make_server(src: Path, work: Path, gocache: Path) -> tuple[Any, Runner]:
    settings = GoTestRunnerSettings(
        state_dir=work / "state",
        policy_dir=work,
        work_dir=work / "runner",
        gocache=gocache,
        gomodcache=go_env("GOMODCACHE"),
        stdio_identity="bench",
        default_timeout_s=900,
    )
    policies = Policies(
        access=AccessPolicy(identities={"bench": Identity(roles=("bench",), repos=("bench",))}),
        tools=ToolsPolicy(roles={"bench": Role(scopes=("tests:run",))}),
        repos=ReposPolicy(repos={"bench": Repo(path=str(src))}),
    )
    runner = Runner.create(settings, policies)
    return build_server(settings, policies, runner), runner


async def tool_run(client: Client, packages: list[str], **extra: Any) -> tuple[float, dict[str, Any]]:
    """One timed `run_tests` call (`-count=1`); `extra`: more of its arguments."""
    args = {"repo": "bench", "ref": "main", "packages": packages, "flags": ["-count=1"], **extra}
    started = time.perf_counter()
    result = await client.call_tool("run_tests", args)
    elapsed = time.perf_counter() - started
    if result.is_error:
        raise RuntimeError(result.content[0].text)  # type: ignore[union-attr]
    return elapsed, result.structured_content or {}


async def stage_times(runner: Runner, work: Path, n: int) -> dict[str, list[float]]:
    """The sandbox's own start-up, timed alone (interleaved, n each): the outer sandbox around `go`
    (`/bin/true` in it, against starting `/bin/true` on the host), and one nested test sandbox
    (a copy of `/bin/true` run through go's -exec command, against running it directly)."""
    sandbox = runner.sandbox
    worktree = work / "stage-worktree"
    worktree.mkdir(exist_ok=True)
    env_of = runner._goenv.build  # pyright: ignore[reportPrivateUsage]
    binary = "cp /bin/true /tmp/t.test && exec"
    wrapper = sandbox.test_exec(sandbox.paths(worktree, "stage", work / "stage-scratch" / "probe")) or ""
    commands = {
        "host": None,
        "outer": ["/bin/true"],
        "outer+binary": ["/bin/sh", "-c", f"{binary} /tmp/t.test"],
        "outer+nested": ["/bin/sh", "-c", f"{binary} {wrapper} /tmp/t.test"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for i in range(n):
        for name, command in commands.items():
            started = time.perf_counter()
            if command is None:
                proc = await asyncio.create_subprocess_exec("/bin/true")
                await proc.wait()
            else:
                paths = sandbox.paths(worktree, "stage", work / "stage-scratch" / f"{i}-{name.replace('+', '-')}")
                out = await sandbox.run(command, paths, env=sandbox.env(env_of(offline=True), paths), timeout_s=60,
                                        on_line=lambda _line: None)  # fmt: skip
                if out.exit_code != 0:
                    raise RuntimeError(f"stage {name}: {out.stderr[-500:]}")
            times[name].append(time.perf_counter() - started)
    return times


async def worktree_setup_times(src: Path, work: Path, n: int) -> list[float]:
    mirrors = gitops.Mirrors(work / "wt-bench", ReposPolicy(repos={"b": Repo(path=str(src))}), work, 3600)
    mirror, sha = await mirrors.resolve("b", "main")
    times = []
    for _ in range(n):
        started = time.perf_counter()
        path = await mirrors.add_worktree(mirror, sha, work / "wt-bench" / "wt")
        await mirrors.remove_worktree(mirror, path)
        times.append(time.perf_counter() - started)
    return times


async def main(args: argparse.Namespace) -> None:
    global RAW_TMP
    packages = args.packages
    shm = Path("/dev/shm")
    with (
        tempfile.TemporaryDirectory(prefix="gtr-bench-") as tmp,
        tempfile.TemporaryDirectory(prefix="gtr-bench-raw-", dir=shm if shm.is_dir() else None) as raw_tmp,
    ):
        RAW_TMP = Path(raw_tmp) if shm.is_dir() else None
        work = Path(tmp)
        src, raw = prepare(args.module, work)
        extra: dict[str, Any] = {}
        if args.add_test_file is not None:
            extra["patch"] = added_test_patch(src, args.add_test_file)
            subprocess.run(["git", "apply", "-"], cwd=raw, input=extra["patch"], text=True, check=True)
            print(f"case: patch adding a test file to {args.add_test_file} (the raw clone has it too)")
        server, runner = make_server(src, work, go_env("GOCACHE"))
        a_times: list[float] = []
        b_times: list[float] = []
        setups: list[float] = []
        runs: list[float] = []
        totals: list[float] = []
        load = [os.getloadavg()[0]]
        ticks = cpu_ticks()
        async with Client(server) as client:
            raw_go_test(raw, packages)  # warm the shared caches, both paths
            slots = runner.settings.max_concurrency
            warm = await asyncio.gather(*(tool_run(client, packages, **extra) for _ in range(slots)))
            await runner.drain()
            first = warm[0][1]
            print(f"warm-up ({slots} slots at once): ok={first['ok']} summary={first['summary'][:160]}")
            for i in range(args.pairs):
                order = ("A", "B") if i % 2 == 0 else ("B", "A")
                for side in order:
                    await asyncio.sleep(args.gap)  # idle time between calls, as between an agent's runs
                    if side == "A":
                        await runner.drain()  # the previous call's worktree reset, off the clock as in a server
                        elapsed, body = await tool_run(client, packages, **extra)
                        a_times.append(elapsed)
                        setups.append(body["timings"]["setup_s"])
                        note_packages("A", body["report"]["packages"])
                        runs.append(body["timings"]["run_s"])
                        totals.append(body["timings"]["total_s"])
                    else:
                        b_times.append(raw_go_test(raw, packages))
                load.append(os.getloadavg()[0])
                print(f"pair {i + 1}: run_tests {a_times[-1]:.2f}s  raw {b_times[-1]:.2f}s  load {load[-1]:.1f}")
        await runner.drain()
        stolen, total = (now - then for now, then in zip(cpu_ticks(), ticks, strict=True))
        stages = await stage_times(runner, work, args.pairs)
        worktree = await worktree_setup_times(src, work, args.pairs)
        cold_a = cold_b = None
        if args.cold:
            cold_b = raw_go_test(raw, packages)
            cold_server, cold_runner = make_server(src, work / "cold", work / "cold-runner")
            async with Client(cold_server) as client:
                cold_a, _ = await tool_run(client, packages, **extra)
            await cold_runner.drain()  # its worktree reset, before the temporary directory goes
        report(args, a_times, b_times, setups, runs, worktree, cold_a, cold_b, runner)
        if args.add_test_file is not None:
            second = getattr(runner, "runs_without_new_tests", None)  # absent before the runner judged them
            print(f"second runs without the patch's new test files: {second}")
        report_stages(a_times, b_times, totals, setups, runs, stages, load)
        print(f"CPU time stolen by the host during the pairs: {100 * stolen / max(total, 1):.0f}%")


def report_stages(
    a: list[float],
    b: list[float],
    totals: list[float],
    setups: list[float],
    runs: list[float],
    stages: dict[str, list[float]],
    load: list[float],
) -> None:
    """Where the fixed cost goes, stage by stage (medians, ms)."""
    med = statistics.median
    ms = 1000.0
    pkg_a = sum(med(xs) for xs in PACKAGE_ELAPSED["A"].values())  # go's elapsed per test binary, summed
    pkg_b = sum(med(xs) for xs in PACKAGE_ELAPSED["B"].values())
    outer = med(stages["outer"]) - med(stages["host"])
    nested = med(stages["outer+nested"]) - med(stages["outer+binary"])
    rows = [
        ("MCP call and result (A minus timings.total_s)", med(x - t for x, t in zip(a, totals, strict=True)) * ms),
        ("queue, checkout, module check (timings.setup_s)", med(setups) * ms),
        ("outer sandbox start (`/bin/true` in it minus on the host)", outer * ms),
        ("one test sandbox started for its binary (through -exec, none started ahead) minus run directly", nested * ms),
        ("go's elapsed for the test binaries, sandboxed minus raw (the nested sandboxes included)",
         (pkg_a - pkg_b) * ms),
        ("go outside the test binaries (run_s or B minus those), sandboxed minus raw",
         ((med(runs) - pkg_a) - (med(b) - pkg_b)) * ms),
    ]  # fmt: skip
    print()
    print(f"load average (1 min) during the pairs: {min(load):.1f} to {max(load):.1f}, median {med(load):.1f}")
    print("| stage | median |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value:.0f} ms |")
    for name, xs in stages.items():
        print(f"stage {name}: median {med(xs) * ms:.1f} ms, min {min(xs) * ms:.1f} ms")


def report(
    args: argparse.Namespace,
    a: list[float],
    b: list[float],
    setups: list[float],
    runs: list[float],
    worktree: list[float],
    cold_a: float | None,
    cold_b: float | None,
    runner: Runner,
) -> None:
    med = statistics.median
    ratio = med(a) / med(b)
    pair_ratio = med(x / y for x, y in zip(a, b, strict=True))
    sandbox = runner.report(race=False)
    print()
    print(
        f"module {args.module}, packages {' '.join(args.packages)}, {args.pairs} interleaved pairs, -count=1, "
        f"{args.gap} s idle before each run"
    )
    print(f"sandbox: weak={sandbox.weak}; " + "; ".join(p.split(":")[0] for p in sandbox.protections))
    print("| measure | median | min | max |")
    print("|---|---|---|---|")
    for name, xs in (
        ("run_tests via MCP client (A)", a),
        ("raw `go test -json` (B)", b),
        ("run_tests timings.setup_s (mirror check, worktree, module check)", setups),
        ("run_tests timings.run_s (sandboxed go test)", runs),
        ("`git worktree add` + `remove` alone", worktree),
    ):
        print(f"| {name} | {med(xs):.3f} s | {min(xs):.3f} s | {max(xs):.3f} s |")
    if cold_a is not None and cold_b is not None:
        first = "first run on a fresh runner (seeded) / raw go test (one run each)"
        print(f"| {first} | {cold_a:.2f} s / {cold_b:.2f} s | | |")
    print(f"median of per-pair ratios: {pair_ratio:.2f}")
    deltas = []
    for name, xs in PACKAGE_ELAPSED["A"].items():
        ys = PACKAGE_ELAPSED["B"].get(name)
        if ys:
            deltas.append((med(xs) - med(ys), name, med(xs), med(ys)))
    for delta, name, x, y in sorted(deltas)[:3] + sorted(deltas)[-3:]:
        print(f"package {name}: go test's own elapsed, median: sandboxed {x:.2f}s raw {y:.2f}s ({delta:+.2f}s)")
    fixed_ms = med(x - y for x, y in zip(a, b, strict=True)) * 1000
    print(f"go-test-runner overhead ratio: {ratio:.2f}")
    print(f"go-test-runner fixed cost per call: {fixed_ms:.0f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--module", default="go.uber.org/zap@v1.27.0")
    parser.add_argument("--packages", nargs="+", default=["./..."])
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--cold", action="store_true", help="also one cold-build-cache run of each")
    parser.add_argument("--add-test-file", metavar="DIR", help="each call's patch adds a test file to DIR's package")
    parser.add_argument("--gap", type=float, default=0.3, help="idle seconds before each timed run (both sides)")
    asyncio.run(main(parser.parse_args()))
