"""Bearer tokens: one audience per server, expiry, signature; refusal is `None` (answered 401)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from pydantic import SecretStr

from servers.common.app import Platform
from servers.common.auth import AudienceTokenVerifier, mint_token
from servers.common.auth_settings import read_token_key, token_key_env
from servers.common.errors import ConfigError
from servers.common.policy import Policies
from servers.jira_read.settings import JiraReadSettings

KEY = SecretStr("k" * 40)


async def test_token_for_this_server_is_accepted_with_its_subject() -> None:
    token = mint_token(KEY, subject="agent", server="jira-read")
    access = await AudienceTokenVerifier(KEY, server="jira-read").verify_token(token)
    assert access is not None
    assert access.subject == "agent"


async def test_token_for_another_server_is_refused() -> None:
    token = mint_token(KEY, subject="agent", server="github-pr")
    assert await AudienceTokenVerifier(KEY, server="jira-read").verify_token(token) is None


async def test_expired_token_is_refused() -> None:
    token = mint_token(KEY, subject="agent", server="jira-read", ttl_s=-10)
    assert await AudienceTokenVerifier(KEY, server="jira-read").verify_token(token) is None


async def test_token_signed_with_another_key_is_refused() -> None:
    token = mint_token(SecretStr("x" * 40), subject="agent", server="jira-read")
    assert await AudienceTokenVerifier(KEY, server="jira-read").verify_token(token) is None


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "Bearer x", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0."])
async def test_garbage_is_refused(garbage: str) -> None:
    assert await AudienceTokenVerifier(KEY, server="jira-read").verify_token(garbage) is None


def test_short_key_is_rejected() -> None:
    with pytest.raises(ValueError, match="32"):
        AudienceTokenVerifier(SecretStr("short"), server="jira-read")


# --- one name per key: the server and `goresolve token mint --server X` read the same variable ---------


@pytest.mark.parametrize(
    ("server", "settings_module", "settings_class"),
    [
        ("jira-read", "servers.jira_read.settings", "JiraReadSettings"),
        ("code-search", "servers.code_search.settings", "CodeSearchSettings"),
        ("go-test-runner", "servers.go_test_runner.settings", "GoTestRunnerSettings"),
        ("github-pr", "servers.github_pr.settings", "GitHubPrSettings"),
    ],
)
def test_each_servers_key_variable_is_the_one_token_mint_reads(
    server: str, settings_module: str, settings_class: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cls = getattr(importlib.import_module(settings_module), settings_class)
    monkeypatch.setenv(token_key_env(server), "z" * 40)
    assert cls().token_key.get_secret_value() == "z" * 40
    assert read_token_key(server).get_secret_value() == "z" * 40


def test_the_key_can_come_from_the_secrets_dir(tmp_path: Path) -> None:
    (tmp_path / "GORESOLVE_GITHUB_PR_TOKEN_KEY").write_text("s" * 40 + "\n")
    key = read_token_key("github-pr", {"GORESOLVE_SECRETS_DIR": str(tmp_path)})
    assert key is not None and key.get_secret_value() == "s" * 40
    assert read_token_key("github-pr", {}) is None


def test_http_without_a_key_names_the_exact_variable(tmp_path: Path, policies: Policies) -> None:
    settings = JiraReadSettings(transport="http", state_dir=tmp_path)
    with pytest.raises(ConfigError) as err:
        Platform.create("jira-read", settings, policies, instructions="")
    assert "GORESOLVE_JIRA_READ_TOKEN_KEY" in err.value.message


def test_a_short_key_names_the_exact_variable(tmp_path: Path, policies: Policies) -> None:
    settings = JiraReadSettings(transport="http", state_dir=tmp_path, token_key=SecretStr("short"))
    with pytest.raises(ConfigError, match="GORESOLVE_JIRA_READ_TOKEN_KEY"):
        Platform.create("jira-read", settings, policies, instructions="")
