"""The umbrella CLI: the embedded-default main job and the small admin commands."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from goresolve.cli import app
from servers.common.audit import AuditLog
from servers.common.auth import AudienceTokenVerifier
from servers.common.policy import load_policies, repo_path
from servers.common.settings import DEFAULT_POLICY_DIR
from tests.conftest import REPO_ROOT, write_policies

runner = CliRunner()


def test_policy_check_reports_file_and_field(tmp_path: Path) -> None:
    (tmp_path / "access.yaml").write_text("identities:\n  a: {roles: [r], extra: 1}\n")
    (tmp_path / "tools.yaml").write_text("roles:\n  r: {scopes: [jira:read]}\n")
    result = runner.invoke(app, ["policy", "check", str(tmp_path)])
    assert result.exit_code == 2
    assert "identities.a.extra" in result.output


def test_policy_check_accepts_the_bundled_policies() -> None:
    result = runner.invoke(app, ["policy", "check"])
    assert result.exit_code == 0, result.output


def test_policy_check_refuses_a_budgets_tier_that_routing_does_not_have(tmp_path: Path) -> None:
    directory = write_policies(tmp_path / "p")  # its repos.yaml names ../sample-service
    (tmp_path / "sample-service").mkdir()
    for name in ("budgets.yaml", "escalation.yaml", "routing.yaml"):
        shutil.copy(DEFAULT_POLICY_DIR / name, directory / name)
    assert runner.invoke(app, ["policy", "check", str(directory)]).exit_code == 0
    budgets = (directory / "budgets.yaml").read_text()
    assert "\n  small: " in budgets
    (directory / "budgets.yaml").write_text(budgets.replace("\n  small: ", "\n  smal: "))
    result = runner.invoke(app, ["policy", "check", str(directory)])
    assert result.exit_code == 2, result.output
    assert "budgets.yaml: tiers.smal: no routing tier 'smal'" in result.output
    assert "small, strong, human" in result.output


def test_the_bundled_sample_service_is_where_the_defaults_point() -> None:
    repos = load_policies(DEFAULT_POLICY_DIR).repos.repos
    assert repo_path(DEFAULT_POLICY_DIR, repos["sample-service"]) == (REPO_ROOT / "examples" / "sample-service")


def test_policy_check_fails_on_a_missing_repo_path(tmp_path: Path) -> None:
    write_policies(tmp_path)  # repos.yaml: sample-service at ../sample-service, which does not exist
    result = runner.invoke(app, ["policy", "check", str(tmp_path)])
    assert result.exit_code == 2
    assert "repos.sample-service.path" in result.output
    assert "does not exist" in result.output
    (tmp_path.parent / "sample-service").mkdir()
    assert runner.invoke(app, ["policy", "check", str(tmp_path)]).exit_code == 0


def test_policy_check_warns_about_a_repo_path_that_is_not_a_git_repository(tmp_path: Path) -> None:
    """The servers clone each repository: a plain folder passes the path check but every run on it is refused."""
    import subprocess

    policies = write_policies(tmp_path / "policies")  # sample-service at ../sample-service
    folder = tmp_path / "sample-service"
    folder.mkdir()
    result = runner.invoke(app, ["policy", "check", str(policies)])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "repos.sample-service.path" in warnings[0]
    assert f"{folder} is not a git repository" in warnings[0] and "goresolve repo add PATH" in warnings[0]

    subprocess.run(["git", "init", "-q", str(folder)], check=True, timeout=30)  # a work tree
    assert "warning:" not in runner.invoke(app, ["policy", "check", str(policies)]).output
    shutil.rmtree(folder)
    subprocess.run(["git", "init", "-q", "--bare", str(folder)], check=True, timeout=30)  # a bare repository
    assert "warning:" not in runner.invoke(app, ["policy", "check", str(policies)]).output


def test_policy_check_says_the_bundled_example_entry_is_not_a_repository_yet() -> None:
    result = runner.invoke(app, ["policy", "check"])
    assert result.exit_code == 0, result.output
    assert "repos.sample-service.path" in result.output and "is not a git repository" in result.output
    assert "example entry" in (DEFAULT_POLICY_DIR / "repos.yaml").read_text()


def test_audit_verify_exit_codes(tmp_path: Path) -> None:
    log = tmp_path / "a.jsonl"
    AuditLog(log).append(caller="c", tool="t", arguments={}, outcome="ok", trace_id=None)
    assert runner.invoke(app, ["audit", "verify", str(log)]).exit_code == 0
    log.write_text(log.read_text().replace('"ok"', '"denied"'))
    assert runner.invoke(app, ["audit", "verify", str(log)]).exit_code == 1
    assert runner.invoke(app, ["audit", "verify", str(tmp_path / "none")]).exit_code == 2


async def test_token_mint_makes_a_token_for_one_server(monkeypatch: pytest.MonkeyPatch) -> None:
    key = "m" * 40
    monkeypatch.setenv("GORESOLVE_CODE_SEARCH_TOKEN_KEY", key)  # the variable code-search verifies with
    result = runner.invoke(app, ["token", "mint", "--subject", "agent", "--server", "code-search"])
    assert result.exit_code == 0
    token = result.stdout.strip()
    assert await AudienceTokenVerifier(SecretStr(key), server="code-search").verify_token(token) is not None
    assert await AudienceTokenVerifier(SecretStr(key), server="jira-read").verify_token(token) is None


def test_token_mint_refuses_a_short_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GORESOLVE_JIRA_READ_TOKEN_KEY", "short")
    monkeypatch.setenv("GORESOLVE_CODE_SEARCH_TOKEN_KEY", "c" * 40)  # another server's key is not used
    result = runner.invoke(app, ["token", "mint", "--subject", "agent", "--server", "jira-read"])
    assert result.exit_code == 2
    assert "set GORESOLVE_JIRA_READ_TOKEN_KEY" in result.output


def test_every_lazy_command_resolves_and_is_listed_under_its_name() -> None:
    from goresolve.cli import LAZY_COMMANDS

    listing = runner.invoke(app, ["--help"], terminal_width=200)
    assert listing.exit_code == 0, listing.output
    for name in LAZY_COMMANDS:
        assert f"│ {name} " in listing.output, name
        result = runner.invoke(app, [name, "--help"], prog_name="goresolve")
        assert result.exit_code == 0, (name, result.output)
        assert f"goresolve {name}" in result.output, name


def test_a_search_does_not_import_the_agent_the_dispatcher_or_mcp() -> None:
    # `goresolve search` answered by the warm process must not pay seconds of unrelated imports
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from goresolve.cli import app\n"
        "result = CliRunner().invoke(app, ['search', '--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "heavy = sorted(m for m in ('agent.loop', 'agent.dispatch.cli', 'mcp', 'lancedb', 'onnxruntime', 'arq')"
        " if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "", out.stdout
