"""Fixtures for agent tests: one indexed workspace per session (real git, real LanceDB), a fresh state
directory and ledger per test, and stamina's testing mode (retries without waiting)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import stamina

from agent.ledger import Ledger
from agent.llm import enable_live_requests
from agent.loop import RunSettings
from agent.policy import AgentPolicy, load_agent_policy

from .llm_fake_server import FakeLLM, fake_llm_server
from .workspace import Workspace, World, make_workspace, served


@pytest.fixture(scope="session")
def session_workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return make_workspace(tmp_path_factory.mktemp("agent-world"))


@pytest.fixture
def workspace(session_workspace: Workspace, tmp_path: Path) -> Iterator[Workspace]:
    """The shared indexed repo, with this test's own server state (remote, PR store, audit logs)."""
    ws = Workspace(**{**session_workspace.__dict__, "state_dir": tmp_path / "state"})
    yield ws
    shutil.rmtree(tmp_path / "state", ignore_errors=True)


@pytest.fixture(scope="module")
def module_workspace(session_workspace: Workspace) -> Workspace:
    """The workspace a module's servers run on: the shared one, unless the module defines its own."""
    return session_workspace


@pytest.fixture(scope="module")
def world(module_workspace: Workspace) -> Iterator[World]:
    """The four servers of the module's workspace, started once per module."""
    with served(module_workspace) as w:
        yield w


@pytest.fixture
def policy(module_workspace: Workspace) -> AgentPolicy:
    return load_agent_policy(module_workspace.policy_dir)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    led = Ledger(tmp_path / "ledger.sqlite")
    yield led
    led.close()


@pytest.fixture
def settings(workspace: Workspace, ledger: Ledger, tmp_path: Path) -> RunSettings:
    return RunSettings(repo="calc", state_dir=tmp_path / "agent-state", ledger=ledger, test_timeout_s=120)


@pytest.fixture(autouse=True)
def _no_retry_waits() -> Iterator[None]:
    with stamina.set_testing(True, attempts=3):
        yield


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    """The fake model provider (real HTTP, both wire formats), with requests to it allowed for the test."""
    enable_live_requests(True)
    try:
        with fake_llm_server() as server:
            yield server
    finally:
        enable_live_requests(None)  # type: ignore[arg-type]
