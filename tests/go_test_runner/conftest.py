"""Fixture Go modules as real git repositories, and runners over them (real git, real go)."""

from __future__ import annotations

import contextlib
import pathlib
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from servers.common.policy import AccessPolicy, Identity, Policies, Repo, ReposPolicy, Role, ToolsPolicy
from servers.go_test_runner.runner import Runner
from servers.go_test_runner.settings import GoTestRunnerSettings

GOMODS = pathlib.Path(__file__).resolve().parents[1] / "testdata" / "gomods"
MODULES = sorted(p.name for p in GOMODS.iterdir() if (p / "go.mod").exists())


def calc_add_patch(body: str) -> str:
    """A patch of `calc/calc.go` in the fixtures that have one (multimod, deps): Add returns `body`."""
    return (
        "diff --git a/calc/calc.go b/calc/calc.go\n--- a/calc/calc.go\n+++ b/calc/calc.go\n@@ -2,4 +2,4 @@\n"
        " package calc\n \n // Add returns a + b.\n-func Add(a, b int) int { return a + b }\n"
        f"+func Add(a, b int) int {{ return {body} }}\n"
    )


def git(repo: pathlib.Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, timeout=60
    ).stdout.strip()


def commit_all(repo: pathlib.Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture(scope="session")
def repos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    """One git repository per fixture module, on branch main."""
    root = tmp_path_factory.mktemp("gomod-repos")
    out: dict[str, pathlib.Path] = {}
    for name in MODULES:
        repo = root / name
        shutil.copytree(GOMODS / name, repo)
        git(repo, "init", "-q", "-b", "main")
        commit_all(repo, f"{name}: fixture")
        out[name] = repo
    return out


def host_go_env(name: str) -> pathlib.Path:
    return pathlib.Path(subprocess.run(["go", "env", name], capture_output=True, text=True, check=True).stdout.strip())


def make_policies(repos: dict[str, pathlib.Path]) -> Policies:
    return Policies(
        access=AccessPolicy(
            identities={
                "agent": Identity(roles=("agent",), repos=tuple(repos)),
                "reader": Identity(roles=("reader",)),
                "stranger": Identity(roles=("agent",), repos=()),
            }
        ),
        tools=ToolsPolicy(roles={"agent": Role(scopes=("tests:run",)), "reader": Role(scopes=("code:read",))}),
        repos=ReposPolicy(repos={name: Repo(path=str(path)) for name, path in repos.items()}),
    )


MakeRunner = Callable[..., Runner]


def make_runner_for(repos: dict[str, pathlib.Path], tmp_path: pathlib.Path, **overrides: Any) -> Runner:
    """A runner over `repos`; the host's build cache is shared so tests stay fast."""
    given: dict[str, Any] = {
        "state_dir": tmp_path / "state",
        "stdio_identity": "agent",
        "policy_dir": tmp_path,
        "work_dir": tmp_path / "work",
        "gocache": host_go_env("GOCACHE"),
        "gomodcache": host_go_env("GOMODCACHE"),
    }
    settings = GoTestRunnerSettings(**(given | overrides))
    runner = Runner.create(settings, make_policies(repos))
    _RUNNERS.append(runner)
    return runner


_RUNNERS: list[Runner] = []


@pytest.fixture(autouse=True)
async def _drain_runners() -> AsyncIterator[None]:
    """Let each test's background worktree removals finish inside its own event loop; free its work dir."""
    yield
    while _RUNNERS:
        await _RUNNERS.pop().shutdown()


@pytest.fixture
def make_runner(repos: dict[str, pathlib.Path], tmp_path: pathlib.Path) -> MakeRunner:
    """A runner over the fixture repos, with settings overridden."""

    def make(**overrides: Any) -> Runner:
        return make_runner_for(repos, tmp_path, **overrides)

    return make


@pytest.fixture
def runner(make_runner: MakeRunner) -> Runner:
    return make_runner()


def processes_with(marker: bytes) -> list[int]:
    """The host's processes whose command line holds `marker` (what a test's sandboxed processes left behind)."""
    pids = []
    for cmdline in pathlib.Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            if marker in cmdline.read_bytes():
                pids.append(int(cmdline.parent.name))
    return pids
