"""The webhook gateway as the chart configures it: its secrets mounted as the kubelet would (the Jira one
optional, the GitHub one required) and read back through the gateway's own settings, for both secrets,
GitHub only and Jira only; and the gateway's settings that have values in the chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from servers.common.settings import load_settings
from servers.webhooks.app import build_app
from servers.webhooks.settings import WebhookSettings
from tests.charts.pod import MountError, local_env, mount_dirs, project_secrets
from tests.charts.render import render

pytestmark = pytest.mark.timeout(600)


def gateway(manifests: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    [doc] = [d for d in manifests if d["kind"] == "Deployment" and d["metadata"]["name"] == "gr-goresolve-webhooks"]
    spec = doc["spec"]["template"]["spec"]
    [container] = spec["containers"]
    return spec, container


def secret_data(manifests: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {d["metadata"]["name"]: d.get("stringData", {}) for d in manifests if d["kind"] == "Secret"}


def settings_in_pod(
    manifests: list[dict[str, Any]],
    secrets: dict[str, dict[str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> WebhookSettings:
    """The gateway's settings as its container would load them: its env, its secrets volume as mounted."""
    spec, container = gateway(manifests)
    mounts = mount_dirs(container, tmp_path)
    project_secrets(spec, "secrets", secrets, mounts["/var/run/secrets/goresolve"])
    for name, value in local_env(container, mounts).items():
        if name.startswith("GORESOLVE_WEBHOOKS_") or name == "GORESOLVE_SECRETS_DIR":
            monkeypatch.setenv(name, value)
    return load_settings(WebhookSettings)


def test_inline_secrets_for_both_sources_reach_the_gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifests = render(sets=("webhooks.credentials.githubSecret=gh-secret", "webhooks.credentials.jiraSecret=jira-s"))
    settings = settings_in_pod(manifests, secret_data(manifests), tmp_path, monkeypatch)
    assert settings.github_secret is not None and settings.github_secret.get_secret_value() == "gh-secret"
    assert settings.jira_secret is not None and settings.jira_secret.get_secret_value() == "jira-s"


def test_with_github_only_the_chart_creates_no_jira_key_and_the_pod_still_mounts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifests = render(sets=("webhooks.credentials.githubSecret=gh-secret",))
    secrets = secret_data(manifests)
    assert secrets["gr-goresolve-webhooks"] == {"github-webhook-secret": "gh-secret"}
    settings = settings_in_pod(manifests, secrets, tmp_path, monkeypatch)
    assert settings.github_secret is not None and settings.jira_secret is None
    paths = [r.path for r in build_app(settings, {"code-index": object(), "tickets": object()}).routes]  # type: ignore[dict-item]
    assert "/webhooks/github" in paths and "/webhooks/jira" not in paths


def test_an_existing_secret_without_the_jira_key_mounts_and_serves_github(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifests = render(sets=("webhooks.credentials.existingSecret=hooks",))
    assert "hooks" not in secret_data(manifests)
    settings = settings_in_pod(manifests, {"hooks": {"github-webhook-secret": "gh"}}, tmp_path, monkeypatch)
    assert settings.github_secret is not None and settings.jira_secret is None


def test_with_jira_only_the_gateway_refuses_to_start_naming_the_github_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The gateway requires the GitHub secret (it always serves /webhooks/github): an operator's Secret
    # without it fails the mount with the key's name in the pod's events...
    manifests = render(sets=("webhooks.credentials.existingSecret=hooks",))
    spec, container = gateway(manifests)
    with pytest.raises(MountError, match="github-webhook-secret"):
        project_secrets(
            spec,
            "secrets",
            {"hooks": {"jira-webhook-secret": "j"}},
            mount_dirs(container, tmp_path)["/var/run/secrets/goresolve"],
        )
    # ...and with inline values the gateway itself says what is missing.
    manifests = render(sets=("webhooks.credentials.jiraSecret=jira-s",))
    settings = settings_in_pod(manifests, secret_data(manifests), tmp_path / "inline", monkeypatch)
    assert settings.jira_secret is not None
    with pytest.raises(ValueError, match="GORESOLVE_WEBHOOKS_GITHUB_SECRET is required"):
        build_app(settings, {})


def test_the_gateways_settings_from_values_parse_in_the_gateway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = settings_in_pod(
        render(), {"gr-goresolve-webhooks": {"github-webhook-secret": "x"}}, tmp_path, monkeypatch
    )
    # The chart's defaults are the gateway's own.
    fields = ("branches", "commands", "retry_after_s", "max_body_bytes", "unverified_budget_bytes", "queue_timeout_s")
    for field in fields:
        assert getattr(default, field) == WebhookSettings.model_fields[field].default, field
    manifests = render(
        sets=(
            "webhooks.branches={release,develop}",
            "webhooks.commands={/goresolve retry,/goresolve go}",
            "webhooks.retryAfterSeconds=120",
            "webhooks.maxBodyBytes=1048576",
            "webhooks.unverifiedBudgetBytes=134217728",
            "webhooks.queueTimeoutSeconds=3",
            "webhooks.extraEnv[0].name=GORESOLVE_WEBHOOKS_GITHUB_API_URL",
            "webhooks.extraEnv[0].value=https://ghe.example/api/v3",
        )
    )
    settings = settings_in_pod(
        manifests, {"gr-goresolve-webhooks": {"github-webhook-secret": "x"}}, tmp_path / "s", monkeypatch
    )
    assert settings.branches == ("release", "develop")
    assert settings.commands == ("/goresolve retry", "/goresolve go")
    assert (settings.retry_after_s, settings.max_body_bytes) == (120, 1048576)
    assert (settings.unverified_budget_bytes, settings.queue_timeout_s) == (128 * 1024 * 1024, 3.0)
    assert settings.github_api_url == "https://ghe.example/api/v3"
    _, container = gateway(manifests)
    assert json.loads(next(e["value"] for e in container["env"] if e["name"] == "GORESOLVE_WEBHOOKS_BRANCHES")) == [
        "release",
        "develop",
    ]


@pytest.mark.parametrize(
    "bad",
    [
        "webhooks.retryAfterSeconds=0",
        "webhooks.maxBodyBytes=26214401",
        "webhooks.unverifiedBudgetBytes=100",
        "webhooks.queueTimeoutSeconds=0",
        "webhooks.branches={has space}",
        "webhooks.extraEnv[0].name=1BAD",
    ],
)
def test_gateway_settings_the_gateway_would_refuse_are_refused_at_install(bad: str) -> None:
    sets = (bad, "webhooks.extraEnv[0].value=x") if "extraEnv" in bad else (bad,)
    with pytest.raises(RuntimeError, match="schema"):
        render(sets=sets)
