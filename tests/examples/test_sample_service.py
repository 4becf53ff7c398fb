"""examples/sample-service: a real Go module with two real bugs, each caught by a committed failing test.

The bugs' tests fail through go-test-runner (real git, real go, the sandbox) at the seeded
repository, and the shipped fix for each (examples/sample-service-fixes/*.diff) makes them pass
without breaking any other test — the same calls the demo makes.
"""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess
from collections.abc import AsyncIterator
from types import ModuleType

import pytest

from servers.common.policy import AccessPolicy, Identity, Policies, Repo, ReposPolicy, Role, ToolsPolicy
from servers.go_test_runner.payload import RunTestsRequest
from servers.go_test_runner.results import RunResult
from servers.go_test_runner.runner import Runner
from servers.go_test_runner.settings import GoTestRunnerSettings
from servers.jira_read.local import LocalJiraBackend

ROOT = pathlib.Path(__file__).resolve().parents[2]
SERVICE = ROOT / "examples" / "sample-service"
FIXES = ROOT / "examples" / "sample-service-fixes"
NIL_FIX = FIXES / "SVC-101-nil-session.diff"
RACE_FIX = FIXES / "SVC-102-session-race.diff"


def _load_make_repo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_sample_repo", ROOT / "examples" / "make_sample_repo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def go(*args: str, cwd: pathlib.Path = SERVICE) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["go", *args], cwd=cwd, capture_output=True, text=True, timeout=240, check=False)


def host_go_env(name: str) -> pathlib.Path:
    return pathlib.Path(go("env", name).stdout.strip())


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, str]:
    dest = tmp_path_factory.mktemp("remote") / "sample-service.git"
    return dest, _load_make_repo().make_repo(dest)


@pytest.fixture
async def runner(seeded: tuple[pathlib.Path, str], tmp_path: pathlib.Path) -> AsyncIterator[Runner]:
    policies = Policies(
        access=AccessPolicy(identities={"agent": Identity(roles=("agent",), repos=("sample-service",))}),
        tools=ToolsPolicy(roles={"agent": Role(scopes=("tests:run",))}),
        repos=ReposPolicy(repos={"sample-service": Repo(path=str(seeded[0]))}),
    )
    settings = GoTestRunnerSettings(
        state_dir=tmp_path / "state",
        policy_dir=tmp_path,
        work_dir=tmp_path / "work",
        gocache=host_go_env("GOCACHE"),
        gomodcache=host_go_env("GOMODCACHE"),
    )
    runner = Runner.create(settings, policies)
    yield runner
    await runner.drain()


async def run(runner: Runner, package: str, *, patch: str | None = None, test: str | None = None) -> RunResult:
    req = RunTestsRequest(
        repo="sample-service", ref="main", patch=patch, packages=[package], run=test and f"^{test}$", flags=["-race"]
    )
    return await runner.run_tests(req)


def test_the_module_vets_and_its_other_tests_pass() -> None:
    vet = go("vet", "./...")
    assert vet.returncode == 0, vet.stderr
    known_bugs = "^(TestHandlerUnknownToken|TestStoreConcurrentGetAndSweep)$"
    rest = go("test", "-race", "-count=1", "-skip", known_bugs, "./...")
    assert rest.returncode == 0, rest.stdout[-2000:]
    assert "ok  \texample.com/sample-service/internal/api" in rest.stdout


def test_the_seeded_repository_is_deterministic_and_holds_exactly_the_module(tmp_path: pathlib.Path) -> None:
    make_repo = _load_make_repo().make_repo
    first = make_repo(tmp_path / "a.git")
    assert make_repo(tmp_path / "a.git") == first == make_repo(tmp_path / "b.git")
    files = subprocess.run(
        ["git", "--git-dir", str(tmp_path / "a.git"), "ls-tree", "-r", "--name-only", "main"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout.split()  # fmt: skip
    expected = sorted(str(p.relative_to(SERVICE)) for p in SERVICE.rglob("*") if p.is_file())
    assert sorted(files) == expected
    assert "docs/adr/0001-bearer-token-sessions.md" in files


async def test_an_unknown_token_panics_in_the_auth_handler(runner: Runner) -> None:
    result = await run(runner, "./internal/auth", test="TestHandlerUnknownToken")
    assert not result.ok
    assert [t.name for t in result.report.tests if t.status == "fail"] == ["TestHandlerUnknownToken"]
    panic = result.report.panics[0]
    assert "nil pointer dereference" in panic.message
    assert panic.frame is not None and panic.frame.file == "internal/session/store.go"


async def test_the_nil_session_fix_makes_the_auth_tests_pass(runner: Runner) -> None:
    result = await run(runner, "./internal/auth", patch=NIL_FIX.read_text())
    assert result.ok, result.summary
    assert result.report.packages[0].passed >= 4


async def test_concurrent_gets_race_under_the_read_lock(runner: Runner) -> None:
    result = await run(runner, "./internal/session")
    assert not result.ok
    assert [t.name for t in result.report.tests if t.status == "fail"] == ["TestStoreConcurrentGetAndSweep"]
    race = result.report.races[0]
    assert any(f.file == "internal/session/store.go" for f in race.current.frames), race


async def test_the_write_lock_fix_makes_the_session_tests_pass_under_race(runner: Runner) -> None:
    result = await run(runner, "./internal/session", patch=RACE_FIX.read_text())
    assert result.ok, result.summary
    assert not result.report.races


async def test_both_fixes_together_make_the_whole_module_pass(runner: Runner) -> None:
    both = NIL_FIX.read_text() + RACE_FIX.read_text()
    result = await run(runner, "./...", patch=both)
    assert result.ok, result.summary
    assert {p.name for p in result.report.packages if p.status == "ok"} >= {
        "example.com/sample-service/internal/auth",
        "example.com/sample-service/internal/session",
        "example.com/sample-service/internal/api",
    }


async def test_the_bundled_tickets_describe_the_two_bugs() -> None:
    backend = LocalJiraBackend(ROOT / "servers" / "jira_read" / "samples")
    nil_ticket = await backend.get_issue("SVC-101")
    race_ticket = await backend.get_issue("SVC-102")
    assert "panic: nil pointer dereference in the auth handler" in str(nil_ticket)
    assert "TestHandlerUnknownToken" in str(nil_ticket)
    assert "TestStoreConcurrentGetAndSweep" in str(race_ticket)
