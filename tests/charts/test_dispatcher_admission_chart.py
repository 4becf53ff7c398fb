"""The dispatcher's admission policy as rendered: one ValidatingAdmissionPolicy and its binding per release,
named after the release's namespace (they are cluster-scoped), concerning only the dispatcher's own requests
in that namespace, and built from the same pod spec as the job-template ConfigMap. Whether the API server
admits the built Job and refuses hostile ones: tests/kube/test_job_admission_cluster.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.charts.render import job_template, render

pytestmark = pytest.mark.timeout(600)


def admission(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    kinds = ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
    return {d["kind"]: d for d in manifests if d["kind"] in kinds}


def variable(policy: dict[str, Any], name: str) -> Any:
    [expression] = [v["expression"] for v in policy["spec"]["variables"] if v["name"] == name]
    return json.loads(expression)


def test_the_policy_concerns_the_dispatchers_jobs_in_its_own_namespace_only() -> None:
    manifests = render(namespace="tickets")
    found = admission(manifests)
    policy, binding = found["ValidatingAdmissionPolicy"], found["ValidatingAdmissionPolicyBinding"]
    assert policy["metadata"]["name"] == binding["spec"]["policyName"] == "tickets.gr-goresolve-dispatcher-jobs"
    assert policy["spec"]["failurePolicy"] == "Fail" and binding["spec"]["validationActions"] == ["Deny"]
    assert binding["spec"]["matchResources"]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "tickets"
    }
    [condition] = policy["spec"]["matchConditions"]
    assert condition["expression"].strip() == (
        'request.userInfo.username == "system:serviceaccount:tickets:gr-goresolve-dispatcher"'
    )
    assert [r["resources"] for r in policy["spec"]["matchConstraints"]["resourceRules"]] == [["jobs"]]


@pytest.mark.parametrize(
    "sets", [(), ("topology=services", "auth.mode=sharedKey", f"auth.sharedKey.value={'k' * 40}")], ids=str
)
def test_the_policy_pins_each_container_to_the_job_templates_image_and_mounts(sets: tuple[str, ...]) -> None:
    manifests = render(sets=sets)
    policy = admission(manifests)["ValidatingAdmissionPolicy"]
    spec = job_template(manifests)["spec"]["template"]["spec"]
    containers = [*spec.get("initContainers", []), *spec["containers"]]
    assert variable(policy, "images") == {c["name"]: c["image"] for c in containers}
    assert variable(policy, "mountc") == {c["name"]: len(c.get("volumeMounts", [])) for c in containers}
    assert sorted(variable(policy, "mounts")) == sorted(
        f"{c['name']}|{m['name']}|{m['mountPath']}|{'ro' if m.get('readOnly') else 'rw'}"
        for c in containers
        for m in c.get("volumeMounts", [])
    )
    assert f"{spec['serviceAccountName']}" in json.dumps(policy["spec"]["validations"])


@pytest.mark.parametrize("sets", [("dispatcher.jobAdmissionPolicy.enabled=false",), ("dispatcher.enabled=false",)])
def test_no_policy_without_a_dispatcher_or_when_switched_off(sets: tuple[str, ...]) -> None:
    assert admission(render(sets=sets)) == {}
