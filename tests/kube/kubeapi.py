"""Raw requests to the test API server (status, JSON body and Warning headers: nothing is dropped by
the client's typed models), and installing rendered manifests into a Pod Security restricted namespace."""

from __future__ import annotations

import json
from typing import Any

from kubernetes.aio import client

from tests.kube.cluster import Cluster

NS = "goresolve"
RELEASE = "gr"
JOB_PREFIX = f"{RELEASE}-goresolve"  # the chart's job template names Jobs `<release>-goresolve-<ticket>-<hash>`
PATHS = {
    "ServiceAccount": "/api/v1/namespaces/{ns}/serviceaccounts",
    "Secret": "/api/v1/namespaces/{ns}/secrets",
    "ConfigMap": "/api/v1/namespaces/{ns}/configmaps",
    "PersistentVolumeClaim": "/api/v1/namespaces/{ns}/persistentvolumeclaims",
    "Service": "/api/v1/namespaces/{ns}/services",
    "Pod": "/api/v1/namespaces/{ns}/pods",
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments",
    "Job": "/apis/batch/v1/namespaces/{ns}/jobs",
    "Role": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
    "RoleBinding": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
    "NetworkPolicy": "/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies",
    "Ingress": "/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses",
    "PodDisruptionBudget": "/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets",
    # Cluster-scoped (their names carry the release's namespace).
    "ValidatingAdmissionPolicy": "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies",
    "ValidatingAdmissionPolicyBinding": "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings",
}


class Answer:
    def __init__(self, status: int, body: bytes, warnings: list[str]) -> None:
        self.status = status
        self.json: dict[str, Any] = json.loads(body) if body else {}
        self.warnings = warnings


async def call(
    api: client.ApiClient, method: str, path: str, body: Any = None, query: list[tuple[str, str]] | None = None
) -> Answer:
    """One raw request: status, JSON body and Warning headers (nothing is dropped by typed models)."""
    content_type = "application/merge-patch+json" if method == "PATCH" else "application/json"
    request = await api.param_serialize(
        method=method,
        resource_path=path,
        query_params=query or [],
        header_params={"Accept": "application/json", "Content-Type": content_type},
        body=body,
        auth_settings=["BearerToken"],
    )
    resp = await api.call_api(*request)
    raw = await resp.read()
    return Answer(resp.status, raw, [str(w) for w in resp.headers.getall("Warning", [])])


def api_client(cluster: Cluster, token: str) -> client.ApiClient:
    config = client.Configuration(
        host=cluster.url, api_key={"BearerToken": token}, api_key_prefix={"BearerToken": "Bearer"}
    )
    config.ssl_ca_cert = str(cluster.ca_file)
    config.assert_hostname = False
    return client.ApiClient(config)


async def install(api: client.ApiClient, namespace: str, manifests: list[dict[str, Any]]) -> dict[str, Any]:
    """A namespace labelled Pod Security `restricted` (enforce, warn, audit) with every manifest created
    with strict field validation: `kind/name` -> (status, warnings, body)."""
    labels = {f"pod-security.kubernetes.io/{m}": "restricted" for m in ("enforce", "warn", "audit")}
    ns = await call(api, "POST", "/api/v1/namespaces", {"metadata": {"name": namespace, "labels": labels}})
    assert ns.status == 201, ns.json
    results: dict[str, Any] = {}
    for doc in manifests:
        path = PATHS[doc["kind"]].format(ns=namespace)
        answer = await call(api, "POST", path, doc, [("fieldValidation", "Strict")])
        results[f"{doc['kind']}/{doc['metadata']['name']}"] = (answer.status, answer.warnings, answer.json)
    return results


async def service_account_token(
    api: client.ApiClient, namespace: str, name: str, audiences: list[str] | None = None
) -> str:
    """A TokenRequest token of a ServiceAccount (what a projected volume holds), for the given audiences."""
    spec: dict[str, Any] = {"expirationSeconds": 3600}
    if audiences:
        spec["audiences"] = audiences
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
    answer = await call(api, "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", body)
    assert answer.status == 201, answer.json
    return str(answer.json["status"]["token"])
