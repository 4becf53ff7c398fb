"""State lives in one per-user data directory, overridable by GORESOLVE_DATA_DIR, whatever the current directory."""

from __future__ import annotations

from pathlib import Path

import platformdirs
import pytest
from typer.testing import CliRunner

from goresolve.cli import app
from servers.code_search.settings import CodeSearchSettings
from servers.common.settings import DEFAULT_POLICY_DIR, default_data_dir, load_settings
from servers.github_pr.settings import GitHubPrSettings
from servers.jira_read.settings import JiraReadSettings


def test_the_default_is_the_platforms_per_user_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GORESOLVE_DATA_DIR")
    expected = platformdirs.user_data_path("goresolve", appauthor=False)
    assert expected.is_absolute()
    assert default_data_dir() == expected
    for cls in (JiraReadSettings, CodeSearchSettings, GitHubPrSettings):
        assert load_settings(cls).state_dir == expected


def test_one_setting_moves_every_servers_state(data_dir: Path) -> None:
    assert load_settings(JiraReadSettings).state_dir == data_dir
    code = load_settings(CodeSearchSettings)
    assert code.state_dir == data_dir
    assert code.index_dir == data_dir / "code-index"


def test_state_does_not_depend_on_the_current_directory(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = set()
    for cwd in (tmp_path / "a", tmp_path / "b"):
        cwd.mkdir()
        monkeypatch.chdir(cwd)
        seen.add(load_settings(CodeSearchSettings).index_dir)
    assert seen == {data_dir / "code-index"}


def test_the_embedded_queue_is_in_the_data_dir_whatever_the_current_directory(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, it was `.goresolve/queue` in the current directory: a gateway started in one directory and a
    dispatcher in another used two queues, and the events one accepted never reached the other."""
    from workqueue.settings import QueueSettings

    seen = set()
    for cwd in (tmp_path / "a", tmp_path / "b"):
        cwd.mkdir()
        monkeypatch.chdir(cwd)
        seen.add(QueueSettings().sqlite_dir)
    assert seen == {data_dir / "queue"}
    monkeypatch.setenv("GORESOLVE_QUEUE_SQLITE_DIR", "rel")
    assert QueueSettings().sqlite_dir == tmp_path / "b" / "rel"


def test_a_relative_state_dir_setting_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GORESOLVE_JIRA_READ_STATE_DIR", "rel")
    assert load_settings(JiraReadSettings).state_dir == tmp_path / "rel"


def test_search_from_another_directory_finds_the_index(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "svc"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "a.go").write_text("package pkg\n\n// Retry retries.\nfunc Retry() {}\n")
    runner = CliRunner()
    monkeypatch.chdir(tmp_path)
    done = runner.invoke(app, ["index", str(repo), "--repo", "svc", "--embedder", "hashing"])
    assert done.exit_code == 0, done.output
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    found = runner.invoke(app, ["search", "retry", "--repo", "svc", "--embedder", "hashing", "--json"])
    assert found.exit_code == 0, found.output
    assert '"symbol": "pkg.Retry"' in found.stdout
    assert (data_dir / "code-index").is_dir()


def test_an_empty_agent_state_dir_is_unset_as_an_empty_data_dir_is(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent.cli import AgentSettings

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GORESOLVE_AGENT_STATE_DIR", "")
    assert AgentSettings().state_dir == data_dir  # not the current directory
    monkeypatch.setenv("GORESOLVE_DATA_DIR", "")
    monkeypatch.setenv("GORESOLVE_AGENT_POLICY_DIR", "")
    assert AgentSettings().state_dir == default_data_dir() == platformdirs.user_data_path("goresolve", appauthor=False)
    assert AgentSettings().policy_dir == DEFAULT_POLICY_DIR
    monkeypatch.setenv("GORESOLVE_AGENT_STATE_DIR", "rel")
    assert AgentSettings().state_dir == tmp_path / "rel"


def test_a_missing_data_dir_is_made_readable_by_its_owner_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    data_dir = tmp_path / "new" / "goresolve"
    monkeypatch.setenv("GORESOLVE_DATA_DIR", str(data_dir))
    old = os.umask(0o022)
    try:
        done = CliRunner().invoke(app, ["runs"])
    finally:
        os.umask(old)
    assert done.exit_code == 0, done.output
    assert data_dir.stat().st_mode & 0o777 == 0o700
    # one that exists (perhaps shared on purpose) keeps its mode
    team_dir = tmp_path / "team_dir"
    team_dir.mkdir(mode=0o750)
    team_dir.chmod(0o750)
    monkeypatch.setenv("GORESOLVE_DATA_DIR", str(team_dir))
    assert CliRunner().invoke(app, ["runs"]).exit_code == 0
    assert team_dir.stat().st_mode & 0o777 == 0o750
