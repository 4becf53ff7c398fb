"""Settings: env prefix per server, secrets from env or from a mounted secrets directory, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from servers.common.errors import ConfigError
from servers.common.settings import load_settings
from servers.jira_read.settings import JiraReadSettings


def test_env_prefix_is_per_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GORESOLVE_JIRA_READ_PORT", "9123")
    monkeypatch.setenv("GORESOLVE_GITHUB_PR_PORT", "9999")
    assert load_settings(JiraReadSettings).port == 9123


def test_secret_from_a_mounted_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "GORESOLVE_JIRA_READ_API_TOKEN").write_text("from-the-secret-mount-0123")
    monkeypatch.setenv("GORESOLVE_SECRETS_DIR", str(tmp_path))
    settings = load_settings(JiraReadSettings)
    assert settings.api_token is not None
    assert settings.api_token.get_secret_value() == "from-the-secret-mount-0123"
    assert "from-the-secret-mount" not in repr(settings)
    assert "from-the-secret-mount-0123" in settings.secret_values()


def test_cli_overrides_win_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GORESOLVE_JIRA_READ_TRANSPORT", "http")
    assert load_settings(JiraReadSettings, transport="stdio").transport == "stdio"


def test_bad_value_names_the_variable_not_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GORESOLVE_JIRA_READ_PORT", "not-a-port-secretish")
    with pytest.raises(ConfigError) as err:
        load_settings(JiraReadSettings)
    assert "GORESOLVE_JIRA_READ_PORT" in err.value.message
    assert "secretish" not in err.value.message


def test_unknown_setting_is_refused() -> None:
    with pytest.raises(ConfigError):
        load_settings(JiraReadSettings, colour="blue")
