"""The hostile suite: test code that tries every escape of issue 9, against the real sandbox.

Each case is a `_test.go` file in tests/go_test_runner/hostile/ (package escape, one file per way
out; bomb, memory and flood run on their own). A Go test fails with "ESCAPED: ..." when its escape
worked; here every case must pass, and the host must be unchanged: a canary file, the checksum of
the shared caches and of the seed cache, no file named goresolve-escape anywhere, and listening
sockets (on-disk unix, abstract unix, loopback TCP) that received nothing.

Two variants: the sandbox started by the server's own user (root here), and by an unprivileged host
user (`sandbox_user`, created with useradd when missing; when the tests themselves run unprivileged,
the first variant already is).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pathlib
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from servers.go_test_runner.payload import RunTestsRequest
from servers.go_test_runner.results import RunResult
from servers.go_test_runner.runner import Runner

from .conftest import commit_all, git, host_go_env, make_runner_for, processes_with

pytestmark = pytest.mark.asyncio(loop_scope="module")

HOSTILE = pathlib.Path(__file__).resolve().parent / "hostile"
SANDBOX_USER = "goresolve-sbx"
ESCAPE_CASES = [
    "TestUnmountEverything",
    "TestRemountReadWrite",
    "TestWriteThroughProcRoot",
    "TestReadSecrets",
    "TestConnectHostSockets",
    "TestWriteHostPaths",
    "TestSetuidAndPrivileges",
    "TestPtraceTheGoProcess",
    "TestReachTheBuildSandbox",
]


def _tree_digest(root: pathlib.Path) -> dict[str, int]:
    """Each file's size (go refreshes cache entries' mtimes on use, from any process on the host)."""
    out: dict[str, int] = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = pathlib.Path(dirpath) / name
            with contextlib.suppress(OSError):
                out[str(p.relative_to(root))] = p.lstat().st_size
    return out


def _digest(entries: dict[str, int]) -> str:
    return hashlib.sha256(json.dumps(sorted(entries.items())).encode()).hexdigest()


def _poisoned_outputs(gocache: pathlib.Path) -> list[str]:
    """go names each output file of its build cache by the SHA-256 of its content: a mismatch is a poisoned entry."""
    bad = []
    for path in gocache.glob("[0-9a-f][0-9a-f]/*-d"):
        if hashlib.sha256(path.read_bytes()).hexdigest() != path.name.removesuffix("-d"):
            bad.append(str(path))
    return bad


@dataclass
class World:
    """The host as the hostile tests find it, and the means to check it afterwards."""

    base: pathlib.Path
    runner: Runner
    canary: pathlib.Path
    canary_text: str
    host_tmp: pathlib.Path
    listeners: list[socket.socket]
    caches: dict[pathlib.Path, dict[str, int]] = field(default_factory=dict)
    seed: pathlib.Path | None = None
    seed_digest: str = ""
    results: dict[str, RunResult] = field(default_factory=dict)
    checked_after: int = -1  # the host was last checked after this many runs

    def assert_host_unchanged(self) -> None:
        if self.checked_after == len(self.results):
            return  # nothing ran since the last check
        self._check_host()
        self.checked_after = len(self.results)

    def _check_host(self) -> None:
        assert self.canary.read_text() == self.canary_text
        assert not self.host_tmp.exists()
        for cache, before in self.caches.items():
            after = _tree_digest(cache)
            changed = [k for k, v in before.items() if after.get(k) != v]
            assert changed == [], f"entries of {cache} changed: {changed[:5]}"
            assert _poisoned_outputs(cache) == []
        if self.seed is not None:
            assert _digest(_tree_digest(self.seed)) == self.seed_digest
        planted = [p for root in (self.base, *self.caches) for p in root.rglob("goresolve-escape")]
        assert planted == []
        for listener in self.listeners:  # a connection would be waiting in the backlog
            listener.setblocking(False)
            with pytest.raises(BlockingIOError):
                listener.accept()

    async def run(self, package: str, **kw: object) -> RunResult:
        """The package's run, through a BUILD sandbox started ahead, as a server's runs are."""
        if package not in self.results:
            runner, sandbox = self.runner, self.runner.sandbox
            sandbox.kill_ahead()  # any started in another test's event loop
            if not runner._ready:  # pyright: ignore[reportPrivateUsage]  # a first run makes the slots' worktrees
                warm = {"repo": "hostile", "ref": "main", "packages": [package], "run": "^$"}
                assert (await runner.run_tests(RunTestsRequest.model_validate(warm))).exit_code == 0
                await runner.quiesce()
            for worktree in list(runner._ready):  # pyright: ignore[reportPrivateUsage]
                await runner._start_ahead("hostile", worktree)  # pyright: ignore[reportPrivateUsage]
            ahead = len(sandbox._ahead)  # pyright: ignore[reportPrivateUsage]
            req = RunTestsRequest.model_validate({"repo": "hostile", "ref": "main", "packages": [package], **kw})
            self.results[package] = await runner.run_tests(req)
            assert len(sandbox._ahead) == ahead - 1  # pyright: ignore[reportPrivateUsage]  # the run took one
            await runner.quiesce()  # each case runs in an event loop of its own
        return self.results[package]


def _unprivileged_user() -> tuple[int, int] | None:
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SANDBOX_USER)
    except KeyError:
        useradd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SANDBOX_USER]
        subprocess.run(useradd, check=True, capture_output=True, timeout=60)
        entry = pwd.getpwnam(SANDBOX_USER)
    return entry.pw_uid, entry.pw_gid


def _euid_probe(base: pathlib.Path, into: pathlib.Path) -> pathlib.Path | None:
    """A setuid-root program printing its effective uid (only root can make one)."""
    if os.geteuid() != 0:
        return None
    src = base / "probe"
    src.mkdir()
    (src / "go.mod").write_text("module probe\n\ngo 1.22\n")
    (src / "main.go").write_text(
        'package main\n\nimport (\n\t"fmt"\n\t"os"\n)\n\nfunc main() { fmt.Println(os.Geteuid()) }\n'
    )
    out = into / "euid-probe"
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "", "GOTOOLCHAIN": "local"}
    subprocess.run(["go", "build", "-o", str(out), "."], cwd=src, env=env, check=True, timeout=300)
    os.chown(out, 0, 0)
    out.chmod(0o4755)
    return out


@pytest.fixture(scope="module", params=["server-user", "unprivileged-user"])
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    variant = str(request.param)
    run_as = _unprivileged_user() if variant == "unprivileged-user" else None
    if variant == "unprivileged-user" and os.geteuid() != 0:
        pytest.skip("the tests run unprivileged: the server-user variant already is the unprivileged one")
    base = pathlib.Path(tempfile.mkdtemp(prefix="gtr-hostile-"))
    base.chmod(0o755)  # the unprivileged sandbox user reads the repository and caches from here
    token = secrets.token_hex(8)
    env_canary = f"goresolve-env-canary-{token}"
    os.environ["GORESOLVE_HOSTILE_CANARY"] = env_canary
    listeners: list[socket.socket] = []
    try:
        canary = base / "canary" / "canary.txt"
        canary.parent.mkdir()
        canary.write_text(f"canary {token}\n")
        secret = base / "home" / ".ssh" / "id_rsa"
        secret.parent.mkdir(parents=True)
        secret.write_text(f"-----BEGIN OPENSSH PRIVATE KEY-----\n{token}\n")
        gocache, gomodcache, seed = base / "gocache", base / "gomodcache", base / "seed"
        for d in (gocache, gomodcache):
            d.mkdir()
        subprocess.run(["cp", "-al", str(host_go_env("GOCACHE")), str(seed)], check=True, timeout=300)
        probe = _euid_probe(base, gomodcache)
        unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        (base / "sock").mkdir()
        unix.bind(str(base / "sock" / "host.sock"))
        abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        abstract.bind(f"\0goresolve-hostile-{token}")
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.bind(("127.0.0.1", 0))
        listeners = [unix, abstract, tcp]
        for s in listeners:
            s.listen(8)
        other = base / "work" / "worktrees" / "other-run" / "0"
        targets = {
            "canary": str(canary),
            "secret": str(secret),
            "secret_text": token,
            "home": str(pathlib.Path.home()),
            "host_tmp": f"/tmp/goresolve-escape-{token}",
            "worktrees": [str(other), str(base / "work" / "worktrees")],
            "caches": [str(gocache), str(gomodcache), str(seed), str(host_go_env("GOCACHE"))],
            "unix_socket": str(base / "sock" / "host.sock"),
            "abstract": f"goresolve-hostile-{token}",
            "tcp": f"127.0.0.1:{tcp.getsockname()[1]}",
            "env_canary": env_canary,
            "setuid": str(probe) if probe else "",
        }
        repo = base / "repos" / "hostile"
        shutil.copytree(HOSTILE, repo)
        (repo / "escape" / "targets.json").write_text(json.dumps(targets, indent=1))
        git(repo, "init", "-q", "-b", "main")
        commit_all(repo, "hostile")
        runner = make_runner_for(
            {"hostile": repo},
            base,
            gocache=gocache,
            gomodcache=gomodcache,
            seed_cache=seed,
            sandbox_user=SANDBOX_USER if run_as else None,
            max_tasks=512,
            rlimit_as_mb=2048,
            memory_limit_mb=1536,
        )
        assert runner.sandbox.strong, runner.sandbox.protections
        other.mkdir(parents=True)  # after the runner's start, which removes leftover worktrees
        (other / "main.go").write_text("package main\n")
        world = World(
            base=base,
            runner=runner,
            canary=canary,
            canary_text=canary.read_text(),
            host_tmp=pathlib.Path(targets["host_tmp"]),
            listeners=listeners,
            caches={d: _tree_digest(d) for d in (gocache, gomodcache)},
            seed=seed,
            seed_digest=_digest(_tree_digest(seed)),
        )
        yield world
    finally:
        os.environ.pop("GORESOLVE_HOSTILE_CANARY", None)
        for s in listeners:
            s.close()
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.parametrize("case", ESCAPE_CASES)
async def test_each_escape_fails_and_the_host_is_unchanged(world: World, case: str) -> None:
    result = await world.run("./escape", flags=["-count=1"], timeout_s=240)
    package = result.report.packages[0] if result.report.packages else None
    assert package is not None and package.passed + package.failed == len(ESCAPE_CASES), result.summary
    failed = {t.name: t.output for t in result.report.tests if t.status == "fail"}
    assert case not in failed, failed[case]
    world.assert_host_unchanged()


@pytest.mark.slow
async def test_a_fork_bomb_is_stopped_and_leaves_no_process(world: World) -> None:
    result = await world.run("./bomb", flags=["-count=1"], timeout_s=120)
    # The test passes only when a start failed (the kernel's ceiling: the run's pids cgroup, or
    # RLIMIT_NPROC); else the watchdog killed the run.
    killed = "Killed by the sandbox's watchdog: process limit" in result.summary
    assert result.ok or killed, result.summary
    assert not any("ESCAPED" in line for t in result.report.tests for line in t.output)
    assert processes_with(b"4242.6") == []
    world.assert_host_unchanged()


@pytest.mark.slow
async def test_unbounded_allocation_is_stopped(world: World) -> None:
    result = await world.run("./memory", flags=["-count=1"], timeout_s=120)
    assert not result.ok
    out = " ".join(line for t in result.report.tests for line in t.output) + " ".join(
        line for p in result.report.packages for line in p.output
    )
    assert "ESCAPED" not in out
    assert "out of memory" in out or "memory limit" in result.summary, result.summary
    world.assert_host_unchanged()


@pytest.mark.slow
async def test_a_flood_of_subtests_is_counted_not_held(world: World) -> None:
    result = await world.run("./flood", flags=["-count=1"], timeout_s=240)
    [package] = result.report.packages
    assert (package.passed, package.failed) == (19998, 3)  # 2 failing subtests and their parent
    assert sorted(t.name for t in result.report.tests)[:2] == ["TestFlood", "TestFlood/1"]
    assert len(result.model_dump_json()) < 200_000
    world.assert_host_unchanged()
