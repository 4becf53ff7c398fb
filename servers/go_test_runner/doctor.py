"""What the sandbox gives on this host: the report in every result, `--check` and `goresolve doctor`.

    go-test-runner-mcp --check        # or: goresolve doctor

prints one line per protection, on or off, and exits 0 when test code would run in the bubblewrap
sandbox, 1 when the host refuses it (the server then refuses to run tests unless
GORESOLVE_GO_TEST_RUNNER_ALLOW_WEAK_SANDBOX is set).
"""

from __future__ import annotations

import typer

from servers.common.errors import ConfigError
from servers.common.settings import load_settings
from servers.go_test_runner import bwrap, seccomp
from servers.go_test_runner.confinement import SandboxReport
from servers.go_test_runner.sandbox import Sandbox
from servers.go_test_runner.settings import GoTestRunnerSettings


def sandbox_report(sandbox: Sandbox, *, race: bool) -> SandboxReport:
    """The part of every result that says how the run was confined."""
    rlimits = sandbox.limits.rlimits(race=race)
    notes: list[str] = []
    if not sandbox.strong:
        notes.append("WEAK SANDBOX: " + ("; ".join(sandbox.protections.problems) or "no bubblewrap"))
        notes.append("test code can read what the server's user can read, reach the network and write the caches")
    if race:
        notes.append(f"-race: address space limited to {sandbox.limits.address_space_race_mb} MiB per process")
    if sandbox.process_limit is None and sandbox.limits.max_tasks:
        notes.append(
            "no process ceiling at fork time (RLIMIT_NPROC is not enforced for uid 0 and no pids cgroup is "
            "writable): only the watchdog limits tasks, after the fact"
        )
    return SandboxReport(
        weak=not sandbox.strong,
        network_isolated=sandbox.strong,
        pid_namespace=sandbox.strong,
        protections=active_protections(sandbox),
        rlimits=rlimits,
        test_cache_mode="overlay" if sandbox.strong else "shared",
        notes=notes,
    )


def active_protections(sandbox: Sandbox) -> list[str]:
    """One short line per protection in force for runs on this host."""
    out: list[str] = []
    p = sandbox.protections
    if sandbox.strong:
        out += [
            f"bubblewrap {p.bubblewrap}: allow-list view (toolchain and system read-only, minimal /etc, "
            "/dev null/zero/urandom, own /proc, private /tmp), mounts made before test code starts",
            f"user namespace: uid {bwrap.UID}, no capabilities, no_new_privs, no new user namespaces for test code",
            "network, IPC, UTS and PID namespaces; go and test binaries in different PID namespaces",
            "seccomp: test code denied " + ", ".join(seccomp.TEST[:8]) + f" and {len(seccomp.TEST) - 8} more",
            "overlayfs: the worktree and build cache writable by test code only in a private layer per binary",
        ]
        if sandbox.gocache_lowers:
            out.append("build cache seeded read-only from " + ", ".join(map(str, sandbox.gocache_lowers)))
    if sandbox.run_as is not None:
        out.append(f"sandbox runs as host uid {sandbox.run_as[0]}")
    limits = sandbox.limits
    if sandbox.process_limit is not None:
        out.append(f"process ceiling: {sandbox.process_limit}")
    if limits.max_tasks or limits.memory_mb:
        tasks, memory = limits.max_tasks or "unlimited", limits.memory_mb or "unlimited"
        out.append(
            f"watchdog: kills a run over {tasks} tasks, {memory} MiB resident and in scratch files, "
            f"or {sandbox.scratch_mb or 'unlimited'} MiB of scratch files"
        )
    out.append("rlimits: " + ", ".join(f"{k}={v}" for k, v in limits.rlimits(race=False).items()))
    out.append("hard timeout: every process of the run killed")
    return out


def check_lines(sandbox: Sandbox) -> list[str]:
    """`[on ]`/`[off]` lines for every protection, then the verdict."""
    p = sandbox.protections
    limits = sandbox.limits

    def row(on: bool, text: str) -> str:
        return f"[{'on ' if on else 'off'}] {text}"

    lines = [
        row(
            p.bubblewrap is not None,
            f"bubblewrap {p.bubblewrap or '(not installed)'}: allow-list view, mounts made before test code starts",
        ),
        row(
            p.user_namespaces,
            f"user namespaces: test code as uid {bwrap.UID}, no capabilities, no_new_privs, no further user namespaces",
        ),
        row(p.user_namespaces, "network, IPC, UTS, PID namespaces; go and test binaries in different PID namespaces"),
        row(p.seccomp, "seccomp (libseccomp): test code denied " + ", ".join(seccomp.TEST)),
        row(p.overlay, "overlayfs in a user namespace: private writable layers over the worktree and build cache"),
        row(
            bool(sandbox.gocache_lowers),
            "build cache seeded read-only from " + (", ".join(map(str, sandbox.gocache_lowers)) or "nothing"),
        ),
        row(
            sandbox.process_limit is not None,
            f"process ceiling at fork time: {sandbox.process_limit or 'none (root, and no writable pids cgroup)'}",
        ),
        row(
            bool(limits.max_tasks or limits.memory_mb),
            f"watchdog: kills a run over {limits.max_tasks} tasks, {limits.memory_mb} MiB resident and in scratch "
            f"files (memory-backed /tmp and test layers), or {sandbox.scratch_mb} MiB of scratch files",
        ),
        row(
            True,
            "rlimits: "
            + ", ".join(f"{k}={v}" for k, v in limits.rlimits(race=False).items())
            + f"; with -race RLIMIT_AS={limits.address_space_race_mb} MiB",
        ),
        row(
            p.strong and sandbox.serve_tests,
            "test binaries handed to sandboxes started ahead (the same view; a speed-up, not a protection)",
        ),
    ]
    lines += [f"      problem: {problem}" for problem in p.problems]
    if p.strong:
        lines.append("verdict: strong: test code runs in the bubblewrap sandbox")
    elif sandbox.weak_allowed:
        lines.append("verdict: WEAK: tests run without bubblewrap (GORESOLVE_GO_TEST_RUNNER_ALLOW_WEAK_SANDBOX is set)")
    else:
        lines.append(
            "verdict: refused: the server will not run tests here (fix the problems above, or set "
            "GORESOLVE_GO_TEST_RUNNER_ALLOW_WEAK_SANDBOX=true)"
        )
    return lines


def command() -> None:
    """Print which sandbox protections go-test-runner has on this host (exit 1 when it would refuse to run)."""
    from servers.go_test_runner.runner import sandbox_for

    try:
        sandbox, _go, _env = sandbox_for(load_settings(GoTestRunnerSettings))
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    typer.echo("go-test-runner sandbox on this host:")
    for line in check_lines(sandbox):
        typer.echo(f"  {line}")
    raise typer.Exit(code=0 if sandbox.strong else 1)
