"""Chart checks: helm lint, helm template on two Kubernetes versions for every values file, offline
schema validation of every rendered object (kubernetes-validate), values.schema.json refusals, and
policy over the rendered manifests (least privilege, pinned images, default-deny networking)."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from servers.code_search.settings import check_index_uri
from servers.common.settings import ServerSettings
from tests.charts.render import CHART, CI_VALUES, job_template, render, run_helm

pytestmark = pytest.mark.timeout(1800)  # the first use installs helm from the Go module proxy

KUBE_VERSIONS = ("1.33.0", "1.37.0")
CONFIGS: tuple[Path | None, ...] = (None, *CI_VALUES)
SERVERS = ("jira-read", "code-search", "go-test-runner", "github-pr")


@pytest.fixture(autouse=True, scope="module")
def _schemas_read_once() -> Iterator[None]:
    """kubernetes-validate re-reads its (large) schema files for every object; read each once."""
    original = kubernetes_validate.utils.schema_contents
    kubernetes_validate.utils.schema_contents = functools.cache(original)
    yield
    kubernetes_validate.utils.schema_contents = original


def config_id(values: Path | None) -> str:
    return "defaults" if values is None else values.stem


@functools.cache
def rendered(values: Path | None, kube_version: str = "1.34.0") -> list[dict[str, Any]]:
    return render(values=values, kube_version=kube_version)


def pod_specs(manifests: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(owner, pod spec) of every workload, the per-ticket Job from its ConfigMap included."""
    for doc in manifests:
        if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"]
    yield "Job/per-ticket", job_template(manifests)["spec"]["template"]["spec"]


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def by_kind(manifests: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in manifests if d["kind"] == kind]


def test_the_chart_lints_clean_for_every_values_file() -> None:
    for values in CONFIGS:
        args = ["lint", str(CHART), "--strict"] + (["--values", str(values)] if values else [])
        out = run_helm(*args)
        assert out.returncode == 0, f"{config_id(values)}: {out.stdout}{out.stderr}"


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("values", CONFIGS, ids=config_id)
def test_every_rendered_object_is_valid_against_the_kubernetes_schemas(values: Path | None, kube_version: str) -> None:
    manifests = rendered(values, kube_version)
    assert manifests
    for doc in [*manifests, job_template(manifests)]:
        kubernetes_validate.validate(doc, kube_version, strict=True)


def test_the_offline_validator_refuses_an_unknown_field() -> None:
    doc = job_template(rendered(None))
    doc["spec"]["template"]["spec"]["containers"][0]["bogusField"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, "1.33.0", strict=True)


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ("unknownKey=1", "unknownKey"),
        ("agent.resources.requests.cpu=[1]", "cpu"),
        ("topology=mesh", "topology"),
        ("dispatcher.maxConcurrent=many", "maxConcurrent"),
        ("podSecurityContext.runAsNonRoot=false", "runAsNonRoot"),
        ("jiraRead.credentials.apiTokenn=x", "apiTokenn"),
    ],
)
def test_values_schema_rejects_unknown_keys_and_wrong_types(override: str, complaint: str) -> None:
    with pytest.raises(RuntimeError, match="schema") as refused:
        render(sets=(override,))
    assert complaint in str(refused.value)


def test_a_shared_key_shorter_than_32_characters_is_refused() -> None:
    with pytest.raises(RuntimeError, match="at least 32"):
        render(sets=("auth.mode=sharedKey", "auth.sharedKey.value=short"))


@pytest.mark.parametrize("values", CONFIGS, ids=config_id)
def test_every_container_runs_non_root_read_only_without_capabilities_with_limits(values: Path | None) -> None:
    for owner, spec in pod_specs(rendered(values)):
        pod_sc = spec.get("securityContext", {})
        assert pod_sc.get("runAsNonRoot") is True and pod_sc.get("seccompProfile") == {"type": "RuntimeDefault"}, owner
        for c in containers(spec):
            sc = c.get("securityContext", {})
            where = f"{owner}/{c['name']}"
            assert sc.get("runAsNonRoot") is True, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("capabilities") == {"drop": ["ALL"]}, where
            assert sc.get("privileged") is False, where
            assert set(c["resources"]["requests"]) == set(c["resources"]["limits"]) == {"cpu", "memory"}, where
        assert not any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")), owner


@pytest.mark.parametrize("values", CONFIGS, ids=config_id)
def test_every_image_is_pinned_by_tag_or_digest(values: Path | None) -> None:
    for owner, spec in pod_specs(rendered(values)):
        for c in containers(spec):
            image = c["image"]
            name, _, tag = image.rpartition(":") if "@" not in image else (image, "", "digest")
            assert "@sha256:" in image or (name and tag and tag != "latest" and "/" not in tag), f"{owner}: {image}"


def secret_mounts(manifests: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Secret name -> every `owner/container` that can read it (volumes, projections, env)."""
    seen: dict[str, set[str]] = {}
    for owner, spec in pod_specs(manifests):
        volumes: dict[str, set[str]] = {}
        for vol in spec.get("volumes", []):
            names = set()
            if "secret" in vol:
                names.add(vol["secret"]["secretName"])
            for source in vol.get("projected", {}).get("sources", []):
                if "secret" in source:
                    names.add(source["secret"]["name"])
            volumes[vol["name"]] = names
        for c in containers(spec):
            where = f"{owner}/{c['name']}"
            for mount in c.get("volumeMounts", []):
                for name in volumes.get(mount["name"], set()):
                    seen.setdefault(name, set()).add(where)
            for env in c.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    seen.setdefault(ref["name"], set()).add(where)
            for env_from in c.get("envFrom", []):
                if "secretRef" in env_from:
                    seen.setdefault(env_from["secretRef"]["name"], set()).add(where)
    return seen


def test_each_credential_is_readable_only_by_the_container_it_belongs_to() -> None:
    mounts = secret_mounts(rendered(None))
    job = "Job/per-ticket"
    assert mounts.pop("gr-goresolve-jira-read") == {f"{job}/jira-read"}
    assert mounts.pop("gr-goresolve-github-pr") == {f"{job}/github-pr"}
    assert mounts.pop("gr-goresolve-model") == {f"{job}/agent"}
    assert mounts.pop("gr-goresolve-webhooks") == {"Deployment/gr-goresolve-webhooks/webhooks"}
    # The bundled Redis's password: Redis and its three clients, never an agent pod.
    assert mounts.pop("gr-goresolve-redis-auth") == {
        f"Deployment/gr-goresolve-{c}/{c}" for c in ("redis", "webhooks", "dispatcher", "indexer")
    }
    assert mounts == {}  # projected tokens by default: no shared key anywhere


def test_the_indexers_read_token_reaches_the_indexer_alone() -> None:
    """Before, the indexer had no way to read a private repository: it cloned without credentials."""
    manifests = render(sets=("indexer.credentials.token=read-only",))
    assert secret_mounts(manifests)["gr-goresolve-indexer"] == {"Deployment/gr-goresolve-indexer/indexer"}
    [secret] = [s for s in by_kind(manifests, "Secret") if s["metadata"]["name"] == "gr-goresolve-indexer"]
    assert secret["stringData"] == {"token": "read-only"}
    [indexer] = [d for d in by_kind(rendered(None), "Deployment") if d["metadata"]["name"] == "gr-goresolve-indexer"]
    env = indexer["spec"]["template"]["spec"]["containers"][0]["env"]
    assert "GORESOLVE_WORKER_GITHUB_TOKEN" not in {e["name"] for e in env}  # public repositories: none


def test_with_existing_secrets_the_operators_secrets_are_used_each_in_one_place_and_none_is_created() -> None:
    manifests = rendered(CHART / "ci" / "existing-secrets.yaml")
    assert by_kind(manifests, "Secret") == []
    mounts = secret_mounts(manifests)
    assert mounts["goresolve-jira"] == {"Job/per-ticket/jira-read"}
    assert mounts["goresolve-github"] == {"Job/per-ticket/github-pr"}
    assert mounts["goresolve-model"] == {"Job/per-ticket/agent"}
    assert mounts["goresolve-github-read"] == {"Deployment/gr-goresolve-indexer/indexer"}
    assert mounts["goresolve-redis"] == {
        "Deployment/gr-goresolve-dispatcher/dispatcher",
        "Deployment/gr-goresolve-webhooks/webhooks",
        "Deployment/gr-goresolve-indexer/indexer",
    }


def test_in_the_services_topology_each_server_pod_holds_only_its_own_credential() -> None:
    mounts = secret_mounts(rendered(CHART / "ci" / "services-topology.yaml"))
    assert mounts["gr-goresolve-jira-read"] == {"Deployment/gr-goresolve-jira-read/jira-read"}
    assert mounts["gr-goresolve-github-pr"] == {"Deployment/gr-goresolve-github-pr/github-pr"}
    # The fallback's keys: the init container that mints the agent's tokens reads all four, each server
    # (which verifies) only its own; the agent container none.
    keys = secret_key_readers(rendered(CHART / "ci" / "services-topology.yaml"), "gr-goresolve-token-key")
    minters = {"Deployment/gr-goresolve-agent/tokens", "Job/per-ticket/tokens"}
    assert keys == {s: {*minters, f"Deployment/gr-goresolve-{s}/{s}"} for s in SERVERS}


def secret_key_readers(manifests: list[dict[str, Any]], secret: str) -> dict[str, set[str]]:
    """Key of `secret` -> every `owner/container` that mounts that key."""
    readers: dict[str, set[str]] = {}
    for owner, spec in pod_specs(manifests):
        keys: dict[str, set[str]] = {}
        for vol in spec.get("volumes", []):
            for source in vol.get("projected", {}).get("sources", []):
                if source.get("secret", {}).get("name") == secret:
                    keys.setdefault(vol["name"], set()).update(i["key"] for i in source["secret"]["items"])
        for c in containers(spec):
            for mount in c.get("volumeMounts", []):
                for key in keys.get(mount["name"], set()):
                    readers.setdefault(key, set()).add(f"{owner}/{c['name']}")
    return readers


def test_the_chart_derives_a_different_key_for_each_server() -> None:
    manifests = rendered(CHART / "ci" / "services-topology.yaml")
    [secret] = [d for d in manifests if d["metadata"]["name"].endswith("-token-key")]
    keys = secret["stringData"]
    assert sorted(keys) == sorted(SERVERS) and len(set(keys.values())) == 4
    assert all(len(k) == 64 for k in keys.values())
    value = yaml.safe_load((CHART / "ci" / "services-topology.yaml").read_text(encoding="utf-8"))["auth"]["sharedKey"]
    assert value["value"] not in keys.values()  # the value itself is in no pod


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_the_agent_reaches_each_sidecar_on_loopback_with_that_servers_own_token_file() -> None:
    spec = job_template(rendered(None))["spec"]["template"]["spec"]
    [agent] = spec["containers"]
    env = env_of(agent)
    assert env["GORESOLVE_AGENT_MCP_TRANSPORT"] == "http"
    ports = {"jira-read": 8101, "code-search": 8102, "go-test-runner": 8103, "github-pr": 8104}
    tokens = {m["mountPath"] for m in agent["volumeMounts"] if m["name"] == "agent-tokens"}
    assert tokens == {"/var/run/secrets/goresolve/tokens"}
    projected = next(v for v in spec["volumes"] if v["name"] == "agent-tokens")["projected"]["sources"]
    paths = {s["serviceAccountToken"]["path"]: s["serviceAccountToken"]["audience"] for s in projected}
    for server, port in ports.items():
        key = server.upper().replace("-", "_")
        assert env[f"GORESOLVE_AGENT_{key}_URL"] == f"http://127.0.0.1:{port}/mcp"
        token_file = env[f"GORESOLVE_AGENT_{key}_TOKEN_FILE"]
        assert token_file == f"/var/run/secrets/goresolve/tokens/{server}"
        assert paths[server] == f"goresolve:{server}"  # the file holds a token for that server only
        sidecar = next(c for c in spec["initContainers"] if c["name"] == server)
        assert sidecar["args"][sidecar["args"].index("--port") + 1] == str(port)
        assert env_of(sidecar)[f"GORESOLVE_{key}_OIDC_AUDIENCE"] == f"goresolve:{server}"
    # The servers see the agent's ServiceAccount as the token subject: the agent checks policy as the same.
    assert env["GORESOLVE_AGENT_IDENTITY"] == "system:serviceaccount:goresolve:gr-goresolve-agent"


def test_with_a_shared_key_the_agent_gets_minted_tokens_and_never_the_key() -> None:
    manifests = render(sets=("auth.mode=sharedKey", f"auth.sharedKey.value={'k' * 40}", "auth.sharedKey.subject=bot"))
    spec = job_template(manifests)["spec"]["template"]["spec"]
    tokens, *sidecars = spec["initContainers"]
    assert tokens["name"] == "tokens" and "restartPolicy" not in tokens  # runs to completion before the rest
    assert [c["name"] for c in sidecars] == list(SERVERS)
    assert env_of(tokens)["GORESOLVE_TOKEN_SUBJECT"] == env_of(spec["containers"][0])["GORESOLVE_AGENT_IDENTITY"]
    assert "--ttl 2400" in tokens["args"][0]  # the Job's deadline (1800 + 300) plus 300 s
    key = next(v for v in spec["volumes"] if v["name"] == "token-key")
    assert [i["path"] for i in key["projected"]["sources"][0]["secret"]["items"]] == [
        f"GORESOLVE_{s.upper().replace('-', '_')}_TOKEN_KEY" for s in SERVERS
    ]
    readers = {c["name"] for c in containers(spec) for m in c.get("volumeMounts", []) if m["name"] == "token-key"}
    assert readers == {"tokens"}
    memory = next(v for v in spec["volumes"] if v["name"] == "agent-tokens")
    assert memory["emptyDir"]["medium"] == "Memory"
    writable = {
        c["name"]
        for c in containers(spec)
        for m in c.get("volumeMounts", [])
        if m["name"] == "agent-tokens" and not m.get("readOnly")
    }
    assert writable == {"tokens"}


def test_in_the_services_topology_each_server_accepts_its_service_names_as_host() -> None:
    manifests = rendered(CHART / "ci" / "services-topology.yaml")
    agent = next(d for d in manifests if d["metadata"]["name"] == "gr-goresolve-agent" and d["kind"] == "Deployment")
    agent_env = env_of(agent["spec"]["template"]["spec"]["containers"][0])
    services = {d["metadata"]["name"]: d["spec"]["ports"][0]["port"] for d in by_kind(manifests, "Service")}
    for server in SERVERS:
        name = f"gr-goresolve-{server}"
        [container] = next(d for d in by_kind(manifests, "Deployment") if d["metadata"]["name"] == name)["spec"][
            "template"
        ]["spec"]["containers"]
        key = server.upper().replace("-", "_")
        hosts = json.loads(env_of(container)[f"GORESOLVE_{key}_ALLOWED_HOSTS"])
        port = services[name]
        assert hosts == [
            f"{name}:{port}",
            f"{name}.goresolve:{port}",
            f"{name}.goresolve.svc:{port}",
            f"{name}.goresolve.svc.cluster.local:{port}",
        ]
        # The agent's URL for the server names a host the server accepts.
        url = agent_env[f"GORESOLVE_AGENT_{key}_URL"]
        assert url == f"http://{hosts[0]}/mcp"
        assert container["readinessProbe"] == {"tcpSocket": {"port": "mcp"}, "periodSeconds": 5, "timeoutSeconds": 2}
        assert "exec" in container["startupProbe"] and "exec" in container["livenessProbe"]
        # Each server validates the value it is given (the platform's own settings class).
        assert ServerSettings(allowed_hosts=tuple(hosts)).allowed_hosts == tuple(hosts)


def test_an_object_store_index_is_opened_by_uri_and_never_mounted() -> None:
    manifests = rendered(CHART / "ci" / "services-topology.yaml")
    indexer = next(d for d in by_kind(manifests, "Deployment") if d["metadata"]["name"] == "gr-goresolve-indexer")
    search = next(d for d in by_kind(manifests, "Deployment") if d["metadata"]["name"] == "gr-goresolve-code-search")
    for workload in (indexer, search):
        spec = workload["spec"]["template"]["spec"]
        [container] = spec["containers"]
        env = env_of(container)
        assert env["GORESOLVE_CODE_SEARCH_INDEX_URI"] == "s3://goresolve-index/prod"
        assert "GORESOLVE_CODE_SEARCH_DB_DIR" not in env
        assert container["envFrom"] == [{"secretRef": {"name": "goresolve-index-store"}}]
        assert not any("persistentVolumeClaim" in v for v in spec["volumes"])
        # What the chart passes is what code-search accepts.
        assert check_index_uri(env["GORESOLVE_CODE_SEARCH_INDEX_URI"])
    assert by_kind(manifests, "PersistentVolumeClaim") == []


@pytest.mark.parametrize(
    ("base_url", "clones_from"),
    [
        (None, "https://github.com"),
        ("https://ghe.acme.example/api/v3", "https://ghe.acme.example"),
        ("https://ghe.acme.example:8443/api/v3", "https://ghe.acme.example:8443"),
    ],
)
def test_the_indexer_clones_from_the_github_host_of_github_prs_base_url(
    base_url: str | None, clones_from: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A push payload's clone_url is never fetched: the worker builds the URL from this host, so on GitHub
    Enterprise it must be the enterprise host, as its process parses it."""
    from servers.code_search.reindex_worker import WorkerSettings

    sets = () if base_url is None else (f"githubPr.baseUrl={base_url}",)
    [indexer] = [d for d in by_kind(render(sets=sets), "Deployment") if d["metadata"]["name"] == "gr-goresolve-indexer"]
    [container] = indexer["spec"]["template"]["spec"]["containers"]
    monkeypatch.setenv("GORESOLVE_WORKER_GITHUB_URL", env_of(container)["GORESOLVE_WORKER_GITHUB_URL"])
    assert WorkerSettings().github_url == clones_from


@pytest.mark.parametrize("values", [v for v in CONFIGS if v is None or v.stem != "minimal"], ids=config_id)
def test_the_indexer_writes_only_inside_its_writable_volumes(
    values: Path | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its settings as its process loads them: the mirrors it fetches into, the index (or, on an object store, the
    index's lock) and its state are all on writable volumes, never on the read-only root."""
    from servers.code_search.reindex_worker import WorkerSettings
    from servers.code_search.settings import CodeSearchSettings

    [indexer] = [d for d in by_kind(rendered(values), "Deployment") if d["metadata"]["name"] == "gr-goresolve-indexer"]
    [container] = indexer["spec"]["template"]["spec"]["containers"]
    writable = [Path(m["mountPath"]) for m in container["volumeMounts"] if not m.get("readOnly")]
    for name, value in env_of(container).items():
        if isinstance(value, str) and name.startswith(
            ("GORESOLVE_WORKER_", "GORESOLVE_CODE_SEARCH_", "GORESOLVE_DATA")
        ):
            monkeypatch.setenv(name, value)
    worker, search = WorkerSettings(), CodeSearchSettings()
    for path in (worker.mirrors_dir, search.index_dir, search.state_dir):
        assert path.is_absolute() and any(path.is_relative_to(m) for m in writable), path


@pytest.mark.parametrize(
    ("sets", "complaint"),
    [
        (("index.storage=objectStore",), "objectStore/uri"),
        (("index.storage=objectStore", "index.objectStore.uri=s3://b/x", "indexer.replicas=2"), "one indexer replica"),
        (("index.storage=objectStore", "index.objectStore.uri=s3://key:secret@b/x"), "schema"),
        (("index.storage=objectStore", "index.objectStore.uri=http://minio/x"), "schema"),
        (("clusterDomain=Cluster Local",), "schema"),
    ],
)
def test_index_and_cluster_settings_that_cannot_work_are_refused_at_install(
    sets: tuple[str, ...], complaint: str
) -> None:
    with pytest.raises(RuntimeError, match=complaint):
        render(sets=sets)


@pytest.mark.parametrize("values", CONFIGS, ids=config_id)
def test_no_pod_gets_an_api_token_except_the_dispatcher(values: Path | None) -> None:
    manifests = rendered(values)
    for sa in by_kind(manifests, "ServiceAccount"):
        assert sa.get("automountServiceAccountToken") is False, sa["metadata"]["name"]
    for owner, spec in pod_specs(manifests):
        expected = owner.endswith("-dispatcher")
        assert spec.get("automountServiceAccountToken") is expected, owner
        for vol in spec.get("volumes", []):
            for source in vol.get("projected", {}).get("sources", []):
                if "serviceAccountToken" in source:
                    # Only per-server audiences: never a token the API server would accept.
                    assert source["serviceAccountToken"]["audience"].startswith("goresolve:"), owner


def test_the_agent_gets_one_token_per_server_audience_and_the_servers_none() -> None:
    spec = job_template(rendered(None))["spec"]["template"]["spec"]
    tokens = next(v for v in spec["volumes"] if v["name"] == "agent-tokens")
    assert [s["serviceAccountToken"]["audience"] for s in tokens["projected"]["sources"]] == [
        f"goresolve:{s}" for s in SERVERS
    ]
    readers = {c["name"] for c in containers(spec) for m in c.get("volumeMounts", []) if m["name"] == "agent-tokens"}
    assert readers == {"agent"}


@pytest.mark.parametrize("values", CONFIGS, ids=config_id)
def test_default_deny_network_policy_covers_every_pod_and_dns_is_the_only_shared_egress(values: Path | None) -> None:
    manifests = rendered(values)
    policies = {p["metadata"]["name"]: p["spec"] for p in by_kind(manifests, "NetworkPolicy")}
    deny = policies["gr-goresolve-default-deny"]
    assert deny["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in deny and "egress" not in deny
    selector = deny["podSelector"]["matchLabels"]
    templates = {f"{d['kind']}/{d['metadata']['name']}": d.get("spec", {}).get("template") for d in manifests}
    templates["Job/per-ticket"] = job_template(manifests)["spec"]["template"]
    for owner, _spec in pod_specs(manifests):
        labels = templates[owner]["metadata"]["labels"]
        assert selector.items() <= labels.items(), owner
    dns = policies["gr-goresolve-allow-dns"]["egress"]
    assert [p["port"] for rule in dns for p in rule["ports"]] == [53, 53]


def egress_of(manifests: list[dict[str, Any]], component: str) -> list[dict[str, Any]]:
    for p in by_kind(manifests, "NetworkPolicy"):
        if p["metadata"]["name"] == f"gr-goresolve-{component}-egress":
            return p["spec"]["egress"]
    return []


def test_in_the_services_topology_each_server_reaches_only_its_own_upstream() -> None:
    manifests = rendered(CHART / "ci" / "services-topology.yaml")
    defaults = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    github = [{"ipBlock": {"cidr": "0.0.0.0/0", "except": defaults["networkPolicy"]["egress"]["github"]["except"]}}]
    assert [r["to"] for r in egress_of(manifests, "github-pr")] == [github]
    assert len(egress_of(manifests, "jira-read")) == 1
    assert egress_of(manifests, "go-test-runner") == []  # no module proxy configured: nothing
    assert [r["ports"] for r in egress_of(manifests, "code-search")] == [
        [{"protocol": "TCP", "port": 443}]
    ]  # object store
    ingress = {p["metadata"]["name"]: p["spec"] for p in by_kind(manifests, "NetworkPolicy")}
    for server in SERVERS:
        [rule] = ingress[f"gr-goresolve-{server}-ingress"]["ingress"]
        assert [f["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for f in rule["from"]] == ["agent"]


def test_sidecars_are_native_bound_to_loopback_and_probed_from_inside() -> None:
    spec = job_template(rendered(None))["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["initContainers"]] == list(SERVERS)
    for c in spec["initContainers"]:
        assert c["restartPolicy"] == "Always" and "exec" in c["startupProbe"], c["name"]
        assert c["args"][c["args"].index("--host") + 1] == "127.0.0.1", c["name"]
    env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
    assert env["GORESOLVE_AGENT_JIRA_READ_URL"] == "http://127.0.0.1:8101/mcp"


def test_the_dispatchers_role_is_jobs_and_reading_pods_in_its_namespace_only() -> None:
    manifests = rendered(None)
    assert by_kind(manifests, "ClusterRole") == by_kind(manifests, "ClusterRoleBinding") == []
    [role] = by_kind(manifests, "Role")
    assert role["rules"] == [
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get", "list", "watch", "delete"]},
        # No pods/log: the result is the Pod status's termination message; no code reads a log.
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
    ]


def test_the_per_ticket_job_never_retries_and_has_a_deadline_and_a_ttl() -> None:
    spec = job_template(rendered(None))["spec"]
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"], spec["ttlSecondsAfterFinished"]) == (0, 2100, 3600)
    assert spec["template"]["spec"]["restartPolicy"] == "Never"


def test_bundled_policies_are_the_projects_policy_files() -> None:
    [cm] = [d for d in rendered(None) if d["metadata"]["name"] == "gr-goresolve-policies"]
    policy_dir = CHART.parents[1] / "policies"
    assert cm["data"] == {p.name: p.read_text(encoding="utf-8") for p in sorted(policy_dir.glob("*.yaml"))}


def test_in_the_services_topology_the_agent_reaches_the_model_the_queue_and_its_servers_only() -> None:
    rules = egress_of(rendered(CHART / "ci" / "services-topology.yaml"), "agent")
    ports = [[p["port"] for p in r["ports"]] for r in rules]
    assert ports == [[443], [6379], [8101], [8102], [8103], [8104]]  # model; external Redis; the four Services
    peers = [r["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for r in rules[2:]]
    assert peers == list(SERVERS)
    # In the sidecar topology the pod's egress is the union of its containers' (the servers' JWKS included).
    sidecar_ports = [[p["port"] for p in r["ports"]] for r in egress_of(rendered(None), "agent")]
    # Model, Jira, GitHub and the module proxy share one rule; the issuer (the API server by default) another.
    assert sidecar_ports == [[443], [443, 6443]]


def test_shared_keys_from_an_existing_secret_are_read_one_key_per_server_and_nothing_is_created() -> None:
    manifests = render(values=CHART / "ci" / "services-topology.yaml", sets=("auth.sharedKey.existingSecret=my-keys",))
    assert not [d for d in by_kind(manifests, "Secret") if d["metadata"]["name"].endswith("-token-key")]
    keys = secret_key_readers(manifests, "my-keys")
    minters = {"Deployment/gr-goresolve-agent/tokens", "Job/per-ticket/tokens"}
    assert keys == {s: {*minters, f"Deployment/gr-goresolve-{s}/{s}"} for s in SERVERS}


def test_every_setting_the_chart_gives_a_sidecar_is_one_of_its_servers_settings_and_parses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A misspelt variable would be ignored by the server without a word; each plain value is read back."""
    from servers.code_search.settings import CodeSearchSettings
    from servers.github_pr.settings import GitHubPrSettings
    from servers.go_test_runner.settings import GoTestRunnerSettings
    from servers.jira_read.settings import JiraReadSettings

    classes = {
        "jira-read": JiraReadSettings,
        "code-search": CodeSearchSettings,
        "go-test-runner": GoTestRunnerSettings,
        "github-pr": GitHubPrSettings,
    }
    spec = job_template(rendered(None))["spec"]["template"]["spec"]
    for server, settings in classes.items():
        [sidecar] = [c for c in spec["initContainers"] if c["name"] == server]
        prefix = f"GORESOLVE_{server.upper().replace('-', '_')}_"
        plain = {k: v for k, v in env_of(sidecar).items() if k.startswith(prefix) and isinstance(v, str)}
        known = {f"{prefix}{name.upper()}" for name in settings.model_fields}
        assert set(plain) <= known, f"{server}: not settings of the server: {sorted(set(plain) - known)}"
        for name, value in plain.items():
            monkeypatch.setenv(name, value)
    runner = GoTestRunnerSettings()
    assert runner.max_dependents == 50 and runner.max_concurrency == 2


@pytest.mark.parametrize(
    ("sets", "field", "expected"),
    [
        ((), "redact_credentials", True),  # credentials are removed unless the values say otherwise
        (("agent.redactCredentials=false",), "redact_credentials", False),
        ((), "route_models", False),  # the configured model runs every tier unless routing may choose
        (("agent.routeModels=true",), "route_models", True),
    ],
)
def test_the_agents_model_settings_follow_the_values(
    monkeypatch: pytest.MonkeyPatch, sets: tuple[str, ...], field: str, expected: bool
) -> None:
    from agent.cli import AgentSettings

    spec = job_template(render(sets=sets))["spec"]["template"]["spec"]
    [agent] = [c for c in spec["containers"] if c["name"] == "agent"]
    variable = f"GORESOLVE_AGENT_{field.upper()}"
    monkeypatch.setenv(variable, env_of(agent)[variable])
    assert getattr(AgentSettings(), field) is expected
