"""The webhook gateway as the chart configures it: the secret of each source in `webhooks.sources` mounted
as the kubelet would (each optional: a Secret without a source's key leaves that source unserved) and read
back through the gateway's own settings, for both sources, GitHub only and Jira only; a source left out of
`webhooks.sources` never has its secret mounted; neither source is refused; NOTES.txt names the sources
served; and the gateway's settings that have values in the chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from servers.common.settings import load_settings
from servers.webhooks.app import build_app, configured_secrets
from servers.webhooks.settings import WebhookSettings
from servers.webhooks.verify import signature
from tests.charts.pod import local_env, mount_dirs, project_secrets
from tests.charts.render import CHART, render, run_helm
from tests.webhooks import support as s
from workqueue import Topic, WorkQueue
from workqueue.sqlite import SQLiteQueue

pytestmark = pytest.mark.timeout(600)
JIRA_ONLY = CHART / "ci" / "jira-only.yaml"


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
    assert list(configured_secrets(settings)) == ["github"]


def test_an_existing_secret_without_the_jira_key_mounts_and_serves_github(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifests = render(sets=("webhooks.credentials.existingSecret=hooks",))
    assert "hooks" not in secret_data(manifests)
    settings = settings_in_pod(manifests, {"hooks": {"github-webhook-secret": "gh"}}, tmp_path, monkeypatch)
    assert settings.github_secret is not None and settings.jira_secret is None


def test_with_jira_only_inline_the_chart_creates_only_the_jira_key_and_the_gateway_serves_jira(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifests = render(sets=("webhooks.credentials.jiraSecret=jira-s",))
    secrets = secret_data(manifests)
    assert secrets["gr-goresolve-webhooks"] == {"jira-webhook-secret": "jira-s"}
    settings = settings_in_pod(manifests, secrets, tmp_path, monkeypatch)
    assert settings.github_secret is None
    assert {k: v.get_secret_value() for k, v in configured_secrets(settings).items()} == {"jira": "jira-s"}


def test_an_existing_secret_with_the_jira_key_only_mounts_and_serves_jira(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifests = render(sets=("webhooks.credentials.existingSecret=hooks",))
    settings = settings_in_pod(manifests, {"hooks": {"jira-webhook-secret": "j"}}, tmp_path, monkeypatch)
    assert list(configured_secrets(settings)) == ["jira"]


async def test_a_jira_only_install_runs_and_never_sees_the_github_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`webhooks.sources: [jira]` with a Secret that holds both keys: the GitHub one is not mounted, so a
    GitHub delivery signed with it is refused (403, naming the source) and nothing is queued."""
    manifests = render(values=JIRA_ONLY)
    spec, _ = gateway(manifests)
    [volume] = [v for v in spec["volumes"] if v["name"] == "secrets"]
    assert [i["key"] for s in volume["projected"]["sources"] for i in s["secret"]["items"]] == ["jira-webhook-secret"]
    both = {"goresolve-webhooks": {"github-webhook-secret": s.SECRET.get_secret_value(), "jira-webhook-secret": "j"}}
    settings = settings_in_pod(manifests, both, tmp_path, monkeypatch)
    assert settings.github_secret is None and list(configured_secrets(settings)) == ["jira"]
    queues: dict[Topic, WorkQueue] = {t: SQLiteQueue(tmp_path / "queue", t) for t in ("code-index", "tickets")}
    try:
        app = build_app(settings, queues)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
            assert (await client.get("/readyz")).status_code == 200
            raw = s.dumps(s.push())
            refused = await client.post("/webhooks/github", content=raw, headers=s.github_headers("push", raw))
            assert refused.status_code == 403
            assert refused.json()["error"].startswith("github webhooks are not configured on this gateway")
            raw = s.dumps(s.jira())
            headers = {**s.jira_headers(raw), "X-Hub-Signature": signature(SecretStr("j"), raw)}
            queued = await client.post("/webhooks/jira", content=raw, headers=headers)
            assert (queued.status_code, queued.json()["status"]) == (202, "queued")
        assert (await queues["code-index"].depth(), await queues["tickets"].depth()) == (0, 1)
    finally:
        for queue in queues.values():
            await queue.aclose()


@pytest.mark.parametrize(
    ("sets", "operator"),
    [
        ((), {}),  # the defaults: no inline secret, so no Secret is created (the trial install's NOTES warn)
        (("webhooks.credentials.existingSecret=hooks",), {"hooks": {"other-key": "x"}}),
    ],
    ids=["no-secret", "secret-without-either-key"],
)
def test_without_either_secret_the_pod_mounts_and_the_gateway_refuses_to_start_naming_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sets: tuple[str, ...], operator: dict[str, dict[str, str]]
) -> None:
    manifests = render(sets=sets)
    assert "gr-goresolve-webhooks" not in secret_data(manifests)
    settings = settings_in_pod(manifests, {**secret_data(manifests), **operator}, tmp_path, monkeypatch)
    with pytest.raises(ValueError, match="set GORESOLVE_WEBHOOKS_GITHUB_SECRET or GORESOLVE_WEBHOOKS_JIRA_SECRET"):
        build_app(settings, {})


@pytest.mark.parametrize(
    ("sets", "set_json", "complaint"),
    [
        ((), ("webhooks.sources=[]",), "at '/webhooks/sources': minItems"),
        (("webhooks.sources=null",), (), "missing property 'sources'"),
        (("webhooks.sources={gitlab}",), (), "at '/webhooks/sources/0'"),
        ((), ('webhooks.sources=["jira", "jira"]',), "at '/webhooks/sources'"),
        (
            ("webhooks.sources={jira}", "webhooks.credentials.githubSecret=g"),
            (),
            "webhooks.credentials.githubSecret is set but webhooks.sources does not list github",
        ),
    ],
)
def test_no_source_or_a_secret_for_a_source_not_served_is_refused_at_install(
    sets: tuple[str, ...], set_json: tuple[str, ...], complaint: str
) -> None:
    with pytest.raises(RuntimeError) as refused:
        render(sets=sets, set_json=set_json)
    assert complaint in str(refused.value)


def notes(*sets: str) -> str:
    """NOTES.txt as `helm install` prints it (a client-side dry run: no cluster)."""
    args = ["install", "gr", str(CHART), "--namespace", "goresolve", "--dry-run=client"]
    out = run_helm(*args, *(a for item in sets for a in ("--set", item)))
    assert out.returncode == 0, out.stderr
    return out.stdout[out.stdout.index("NOTES:") :]


def test_the_install_notes_say_which_sources_are_served() -> None:
    both = notes("webhooks.credentials.existingSecret=hooks", "webhooks.ingress.enabled=true")
    assert 'the gateway serves github and jira (each one whose key Secret "hooks" holds' in both
    assert "https://goresolve.example.com/webhooks/github" in both and "index is refreshed only" not in both
    jira = notes("webhooks.sources={jira}", "webhooks.credentials.jiraSecret=j")
    assert "the gateway serves jira." in jira
    assert "github: not served (not in webhooks.sources); its deliveries are refused (403)" in jira
    assert "github webhook secret (gateway): none; github is not in webhooks.sources" in jira
    assert "no push reaches the indexer: the code index is refreshed only when you run" in jira
    nothing = notes()
    assert "the gateway serves none." in nothing
    assert "WARNING: no webhook secret is set, so the gateway will not start" in nothing


def test_the_minimal_installs_notes_number_their_steps_and_name_what_runs() -> None:
    """Before, ci/minimal.yaml's notes (no gateway, no dispatcher) skipped step 3, told to follow the logs of a
    dispatcher Deployment that does not exist, and warned that kubeApi's ranges were open "for the
    dispatcher"."""
    minimal = notes("webhooks.enabled=false", "indexer.enabled=false", "dispatcher.enabled=false",
                    "agent.deployment.enabled=true")  # fmt: skip
    assert "\n3. Watch the agent take tickets" in minimal and "\n4." not in minimal
    assert "logs deploy/gr-goresolve-agent -c agent -f" in minimal and "dispatcher" not in minimal
    assert "for the agent pods (their servers' JWKS fetch), where test code runs." in minimal
    default = notes("webhooks.credentials.existingSecret=hooks")
    assert "\n4. Watch tickets become Jobs:" in default and "logs deploy/gr-goresolve-dispatcher -f" in default
    assert "for the dispatcher and the agent pods" in default


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
