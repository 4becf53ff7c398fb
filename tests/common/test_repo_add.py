"""`goresolve repo add`: one command writes the policy entries, validated; a refused change writes nothing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from goresolve.cli import app
from servers.common.policy import load_policies
from servers.common.settings import DEFAULT_POLICY_DIR

runner = CliRunner()


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICY_DIR, target)
    return target


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "go-zero"
    path.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "trunk", str(path)], check=True, timeout=30)
    return path


def _snapshot(directory: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(directory.glob("*.yaml"))}


def test_registers_and_grants_in_one_command(policy_dir: Path, repo: Path) -> None:
    result = runner.invoke(
        app,
        [
            "repo",
            "add",
            str(repo),
            "--name",
            "zeromicro/go-zero",
            "--grant",
            "local-dev",
            "--policy-dir",
            str(policy_dir),
        ],
    )
    assert result.exit_code == 0, result.output
    policies = load_policies(policy_dir)
    entry = policies.repos.repos["zeromicro/go-zero"]
    assert entry.path == str(repo) and entry.default_branch == "trunk"
    assert "zeromicro/go-zero" in policies.access.identities["local-dev"].repos
    assert "zeromicro/go-zero" not in policies.access.identities["agent"].repos
    # The files keep their comments.
    assert (policy_dir / "access.yaml").read_text().startswith("# Who may read what.")
    assert runner.invoke(app, ["policy", "check", str(policy_dir)]).exit_code in (0, 2)  # other repos may be absent


def test_the_default_name_is_the_directory_and_a_repeat_is_a_no_op(policy_dir: Path, repo: Path) -> None:
    args = ["repo", "add", str(repo), "--policy-dir", str(policy_dir)]
    assert runner.invoke(app, args).exit_code == 0
    before = _snapshot(policy_dir)
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "already registered" in again.output
    assert _snapshot(policy_dir) == before
    assert "go-zero" in yaml.safe_load(before["repos.yaml"])["repos"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--grant", "nobody"], "no identity 'nobody'"),
        (["--name", "bad name"], "invalid repository name"),
        (["--name", "owner+name"], "invalid repository name"),
        (["--name", "a/b/c"], "invalid repository name"),
    ],
)
def test_a_refused_change_names_the_problem_and_writes_nothing(
    policy_dir: Path, repo: Path, extra: list[str], message: str
) -> None:
    before = _snapshot(policy_dir)
    result = runner.invoke(app, ["repo", "add", str(repo), "--policy-dir", str(policy_dir), *extra])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert _snapshot(policy_dir) == before
    assert not list(policy_dir.glob(".repo-add-*"))


def test_refuses_a_directory_that_is_not_a_git_repository(policy_dir: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    result = runner.invoke(app, ["repo", "add", str(plain), "--policy-dir", str(policy_dir)])
    assert result.exit_code == 2 and "not a git repository" in result.output
    missing = runner.invoke(app, ["repo", "add", str(tmp_path / "nope"), "--policy-dir", str(policy_dir)])
    assert missing.exit_code == 2 and "no such directory" in missing.output


def test_refuses_a_name_taken_by_another_path(policy_dir: Path, repo: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    subprocess.run(["git", "init", "-q", str(other)], check=True, timeout=30)
    assert (
        runner.invoke(app, ["repo", "add", str(repo), "--name", "svc", "--policy-dir", str(policy_dir)]).exit_code == 0
    )
    result = runner.invoke(app, ["repo", "add", str(other), "--name", "svc", "--policy-dir", str(policy_dir)])
    assert result.exit_code == 2 and "already registered" in result.output
