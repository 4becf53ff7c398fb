"""Two `goresolve resolve` runs at once on one data directory (the local dispatcher's default) each get a
go-test-runner work directory of their own; a server that does not start is named with what it said."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path

import anyio
import pytest

from agent.exits import ServerUnavailable
from agent.servers import ServersConfig, StdioServer, open_servers
from goresolve.resolve import runner_slot

POLICIES = Path(__file__).resolve().parents[2] / "policies"
WORK_DIR = "GORESOLVE_GO_TEST_RUNNER_WORK_DIR"
HOLD = (
    "import sys, time; from pathlib import Path; from servers.common.locks import take_lock; "
    "h = take_lock(Path(sys.argv[1])); print('held', flush=True); time.sleep(600)"
)


@contextmanager
def held_by_another_process(lock: Path) -> Generator[int]:
    """`lock` taken by another process (as a runner of another command takes its work directory)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield proc.pid
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_runs_at_once_each_get_their_own_work_dir_and_share_the_build_cache(tmp_path: Path) -> None:
    first: dict[str, str] = {"GORESOLVE_DATA_DIR": str(tmp_path)}
    second = dict(first)
    with runner_slot(first), runner_slot(second):
        assert first[WORK_DIR] == str(tmp_path / "go-test-runner") and "GORESOLVE_GO_TEST_RUNNER_GOCACHE" not in first
        assert second[WORK_DIR] == str(tmp_path / "go-test-runner-slots" / "1")
        assert second["GORESOLVE_GO_TEST_RUNNER_GOCACHE"] == str(tmp_path / "go-test-runner" / "gocache")
    after: dict[str, str] = {"GORESOLVE_DATA_DIR": str(tmp_path)}
    with runner_slot(after):  # released: the default again
        assert after[WORK_DIR] == str(tmp_path / "go-test-runner")


def test_a_work_dir_set_by_the_user_is_kept(tmp_path: Path) -> None:
    env = {"GORESOLVE_DATA_DIR": str(tmp_path), WORK_DIR: str(tmp_path / "mine")}
    with runner_slot(env), runner_slot(dict(env)):
        assert env[WORK_DIR] == str(tmp_path / "mine")
    assert not (tmp_path / "go-test-runner").exists()


def _runner_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> StdioServer:
    """go-test-runner as `goresolve resolve` starts it (build_run), its log lines to a file as without --debug."""
    from agent.cli import AgentSettings, build_run

    monkeypatch.setenv("GORESOLVE_AGENT_PROVIDER", "openai")
    monkeypatch.setenv("GORESOLVE_AGENT_MODEL", "m")
    run = build_run(AgentSettings(state_dir=tmp_path), POLICIES, "sample-service", env, None)
    spec = next(s for s in run.servers.servers if isinstance(s, StdioServer) and s.name == "go-test-runner")
    return spec.model_copy(update={"stderr_file": tmp_path / "servers.log"})


def _start(spec: StdioServer) -> list[str]:
    async def main() -> list[str]:
        async with open_servers(ServersConfig(servers=(spec,), call_timeout_s=120)) as box:
            return sorted(box.tools)

    return anyio.run(main)


def test_a_run_starts_its_runner_while_another_holds_the_default_work_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**os.environ, "GORESOLVE_DATA_DIR": str(tmp_path)}
    env.pop(WORK_DIR, None)
    with held_by_another_process(tmp_path / "go-test-runner" / "runner.lock"), runner_slot(env):
        assert env[WORK_DIR] == str(tmp_path / "go-test-runner-slots" / "1")
        started = time.monotonic()
        assert "run_tests" in _start(_runner_spec(tmp_path, monkeypatch, env))
        assert time.monotonic() - started < 120


def test_a_runner_that_does_not_start_is_named_with_the_error_it_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    env = {**os.environ, "GORESOLVE_DATA_DIR": str(tmp_path), WORK_DIR: str(work)}
    with held_by_another_process(work / "runner.lock") as holder, pytest.raises(ServerUnavailable) as failed:
        _start(_runner_spec(tmp_path, monkeypatch, env))
    message = failed.value.reason
    assert message.startswith("go-test-runner did not start: go-test-runner work_dir"), message
    assert f"is in use by another runner (pid {holder})" in message and "Connection closed" not in message
