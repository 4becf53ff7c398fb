"""The policies ConfigMap: the project's bundled files, each replaced by the file of that name given in
`policies.files`, the rest kept, so the servers and the agent load the set (budgets.yaml included)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.policy import load_agent_policy
from servers.common.policy import load_policies
from tests.charts.pod import policies_with
from tests.charts.render import CHART, render

pytestmark = pytest.mark.timeout(600)

BUNDLED = CHART.parents[1] / "policies"
IDENTITY = "system:serviceaccount:goresolve:gr-goresolve-agent"


def policies_configmap(manifests: list[dict[str, Any]]) -> dict[str, str]:
    [cm] = [d for d in manifests if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "gr-goresolve-policies"]
    return cm["data"]


def test_a_file_given_with_set_file_replaces_only_the_bundled_file_of_that_name(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    policies_with(mine, IDENTITY)  # the documented step: the agent's ServiceAccount in access.yaml
    data = policies_configmap(render(set_files=(f"policies.files.access\\.yaml={mine / 'access.yaml'}",)))
    bundled = {p.name: p.read_text(encoding="utf-8") for p in BUNDLED.glob("*.yaml")}
    assert set(data) == set(bundled)
    assert data["access.yaml"] == (mine / "access.yaml").read_text(encoding="utf-8")
    assert {k: v for k, v in data.items() if k != "access.yaml"} == {
        k: v for k, v in bundled.items() if k != "access.yaml"
    }
    # What the pods mount loads, with the new identity, in the servers and in the agent.
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    for name, content in data.items():
        (mounted / name).write_text(content, encoding="utf-8")
    assert load_policies(mounted).identity(IDENTITY) is not None
    load_agent_policy(mounted)


def test_a_new_file_name_is_added_to_the_bundled_ones() -> None:
    extra = yaml.safe_dump({"note": "x"})
    data = policies_configmap(render(sets=(f"policies.files.extra\\.yaml={extra}",)))
    assert data["extra.yaml"].strip() == extra.strip() and "budgets.yaml" in data


def test_an_existing_configmap_replaces_the_chart_s_own() -> None:
    manifests = render(sets=("policies.existingConfigMap=my-policies",))
    assert not [d for d in manifests if d["metadata"]["name"] == "gr-goresolve-policies"]
    [indexer] = [d for d in manifests if d["metadata"]["name"] == "gr-goresolve-indexer" and d["kind"] == "Deployment"]
    volumes = indexer["spec"]["template"]["spec"]["volumes"]
    assert {"name": "policies", "configMap": {"name": "my-policies"}} in volumes


@pytest.mark.parametrize("bad", ["policies.files.access=x", "policies.files.access\\.yaml="])
def test_policy_file_names_and_empty_files_are_refused(bad: str) -> None:
    with pytest.raises(RuntimeError, match="schema"):
        render(sets=(bad,))


def test_the_dispatcher_reads_repos_yaml_from_the_policies_configmap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a ticket about a repository the mounted repos.yaml names, and the agent's identity (its ServiceAccount,
    as the chart names it) may work on in the mounted access.yaml, starts a Job."""
    from agent.dispatch.service import Dispatcher
    from agent.dispatch.settings import DispatchSettings
    from tests.charts.pod import local_env, mount_dirs

    repos = tmp_path / "repos.yaml"
    repos.write_text(yaml.safe_dump({"repos": {"svc": {"path": "/srv/svc", "github": "acme/svc"}}}))
    access = tmp_path / "access.yaml"
    grants = {"roles": ["agent"], "repos": ["svc"], "jira_projects": ["SVC"]}
    access.write_text(yaml.safe_dump({"identities": {IDENTITY: grants}}))
    manifests = render(set_files=(f"policies.files.repos\\.yaml={repos}", f"policies.files.access\\.yaml={access}"))
    [deployment] = [d for d in manifests if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("dispatcher")]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    mounts = mount_dirs(container, tmp_path / "pod")
    [volume] = [v for v in pod["volumes"] if v["name"] == "policies"]
    assert volume["configMap"]["name"] == "gr-goresolve-policies"
    for name, text in policies_configmap(manifests).items():
        (mounts["/etc/goresolve/policies"] / name).write_text(text, encoding="utf-8")
    env = local_env(container, mounts)
    for name in ("GORESOLVE_DISPATCH_POLICY_DIR", "GORESOLVE_DISPATCH_IDENTITY"):
        monkeypatch.setenv(name, env[name])
    settings = DispatchSettings()
    assert settings.identity == IDENTITY
    dispatcher = Dispatcher(None, None, None, policy_dir=settings.policy_dir, identity=settings.identity)  # type: ignore[arg-type]
    assert dispatcher.registered("acme/svc") and dispatcher.registered("svc")
    assert not dispatcher.registered("acme/other") and not dispatcher.registered("sample-service")
    assert dispatcher.not_granted("svc", "SVC") is None and dispatcher.not_granted("svc", None) is None
    assert dispatcher.not_granted("svc", "OPS") == "the agent's identity may not read Jira project 'OPS'"


def test_an_edited_policy_restarts_the_long_running_pods_that_read_it(tmp_path: Path) -> None:
    """Servers read their policies when they start, so a pod template that reads them changes with them."""
    mine = tmp_path / "mine"
    policies_with(mine, IDENTITY)
    edited = (f"policies.files.access\\.yaml={mine / 'access.yaml'}",)
    shape = ("topology=services", "agent.deployment.enabled=true", "networkPolicy.egress.kubeApi.cidrs={10.0.0.1/32}")

    def checksums(set_files: tuple[str, ...]) -> dict[str, str]:
        manifests = render(sets=shape, set_files=set_files)
        return {
            d["metadata"]["name"]: d["spec"]["template"]["metadata"]["annotations"]["checksum/policies"]
            for d in manifests
            if d["kind"] == "Deployment"
            and "checksum/policies" in d["spec"]["template"]["metadata"].get("annotations", {})
        }

    before, after = checksums(()), checksums(edited)
    expected = {f"gr-goresolve-{n}" for n in ("jira-read", "code-search", "go-test-runner", "github-pr", "agent")}
    assert set(before) == expected == set(after)
    assert all(before[name] != after[name] for name in expected)
