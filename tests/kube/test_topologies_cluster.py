"""Every values file of charts/goresolve/ci renders objects a real API server accepts with strict field
validation and without a warning, in a namespace that enforces Pod Security `restricted`; and a Pod
made from each one's per-ticket Job template (the shared-key `tokens` init container included) is
admitted there."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from kubernetes.aio import client

from tests.charts.render import CI_VALUES, job_template, render
from tests.kube.kubeapi import RELEASE, call, install

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.stem)
async def test_each_ci_values_file_installs_cleanly_under_pod_security_restricted(
    values: Path, admin: client.ApiClient
) -> None:
    namespace = f"ci-{values.stem}"
    manifests = render(values=values, namespace=namespace, release=RELEASE)
    results = await install(admin, namespace, manifests)
    refused = {k: (s, w, j.get("message")) for k, (s, w, j) in results.items() if s != 201 or w}
    assert refused == {}
    spec = copy.deepcopy(job_template(manifests)["spec"]["template"]["spec"])
    pod: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "per-ticket"}, "spec": spec}
    answer = await call(admin, "POST", f"/api/v1/namespaces/{namespace}/pods", pod, [("fieldValidation", "Strict")])
    assert (answer.status, answer.warnings) == (201, []), answer.json.get("message")
