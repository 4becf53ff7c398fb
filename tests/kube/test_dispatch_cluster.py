"""The chart and the dispatcher against a real kube-apiserver + etcd on 127.0.0.1 (no mock API).

Built once by scripts/build-kube.sh and cached; the first build takes minutes, hence the timeout.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes.aio import client

from agent.dispatch import AlreadyDispatched, ClusterRefused, Ticket
from agent.dispatch.capacity import Capacity
from agent.dispatch.kube import KubeRunner
from agent.dispatch.results import NO_OUTCOME, Ledger
from agent.dispatch.service import Dispatcher
from agent.dispatch.tickets import job_name
from tests.charts.render import job_template, render
from tests.kube.cluster import Cluster
from tests.kube.kubeapi import JOB_PREFIX, NS, RELEASE, api_client, call

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2700)]

TRACE = "0123456789abcdef0123456789abcdef"


def test_every_rendered_object_is_accepted_with_strict_field_validation_and_no_warning(
    installed: dict[str, Any],
) -> None:
    refused = {k: (s, w, j.get("message")) for k, (s, w, j) in installed["objects"].items() if s != 201 or w}
    assert refused == {}
    assert any(k.startswith("Role/") for k in installed["objects"])


def pod_from_job(manifests: list[dict[str, Any]], name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    spec = copy.deepcopy(job_template(manifests)["spec"]["template"]["spec"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}}, "spec": spec}


async def test_a_pod_from_the_job_template_is_admitted_under_pod_security_restricted(
    installed: dict[str, Any], admin: client.ApiClient, manifests: list[dict[str, Any]]
) -> None:
    answer = await call(admin, "POST", f"/api/v1/namespaces/{NS}/pods", pod_from_job(manifests, "admitted"))
    assert (answer.status, answer.warnings) == (201, []), answer.json.get("message")
    # The label really enforces: the same pod with one sidecar allowed to escalate is refused.
    weak = pod_from_job(manifests, "weakened")
    weak["spec"]["initContainers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    refused = await call(admin, "POST", f"/api/v1/namespaces/{NS}/pods", weak)
    assert refused.status == 403 and "restricted" in refused.json["message"]


def runner(api: client.ApiClient, manifests: list[dict[str, Any]], namespace: str = NS) -> KubeRunner:
    return KubeRunner(
        api, namespace=namespace, template=job_template(manifests), active_deadline_s=2100, ttl_after_finished_s=600
    )


@pytest.fixture
async def dispatcher_api(cluster: Cluster, installed: dict[str, Any]) -> AsyncGenerator[client.ApiClient]:
    async with api_client(cluster, installed["dispatcher_token"]) as api:
        yield api


async def jobs_for(admin: client.ApiClient, name: str) -> list[dict[str, Any]]:
    listed = await call(admin, "GET", f"/apis/batch/v1/namespaces/{NS}/jobs")
    return [j for j in listed.json["items"] if j["metadata"]["name"] == name]


async def test_the_dispatcher_creates_one_job_per_ticket_with_its_own_token_and_a_repeat_gets_409(
    dispatcher_api: client.ApiClient, admin: client.ApiClient, manifests: list[dict[str, Any]]
) -> None:
    ticket = Ticket("acme/svc#101", "acme/svc", TRACE, "github")
    jobs = runner(dispatcher_api, manifests)
    name, warnings = await jobs.create(ticket)
    assert (name, warnings) == (job_name(ticket.id, JOB_PREFIX), [])
    [job] = await jobs_for(admin, name)
    assert job["metadata"]["labels"]["goresolve.dev/ticket"] == "acme_svc_101"
    assert job["metadata"]["labels"]["goresolve.dev/trace-id"] == TRACE
    assert (job["spec"]["backoffLimit"], job["spec"]["activeDeadlineSeconds"]) == (0, 2100)
    assert job["spec"]["ttlSecondsAfterFinished"] == 600
    sidecars = job["spec"]["template"]["spec"]["initContainers"]
    assert {c["name"]: c.get("restartPolicy") for c in sidecars} == dict.fromkeys(
        ["jira-read", "code-search", "go-test-runner", "github-pr"], "Always"
    )
    with pytest.raises(AlreadyDispatched):
        await jobs.create(ticket)
    assert len(await jobs_for(admin, name)) == 1


async def test_jobs_are_created_with_strict_field_validation(
    dispatcher_api: client.ApiClient, admin: client.ApiClient, manifests: list[dict[str, Any]]
) -> None:
    template = job_template(manifests)
    template["spec"]["template"]["spec"]["containers"][0]["bogusField"] = True
    jobs = KubeRunner(dispatcher_api, namespace=NS, template=template, active_deadline_s=60, ttl_after_finished_s=60)
    ticket = Ticket("SVC-400", "acme/svc", TRACE, "jira")
    with pytest.raises(ClusterRefused) as refused:
        await jobs.create(ticket)
    assert refused.value.status == 400 and "bogusField" in str(refused.value)
    assert await jobs_for(admin, job_name(ticket.id, JOB_PREFIX)) == []


async def test_anything_outside_the_dispatchers_role_is_403(
    dispatcher_api: client.ApiClient, manifests: list[dict[str, Any]]
) -> None:
    with pytest.raises(ClusterRefused) as elsewhere:
        await runner(dispatcher_api, manifests, namespace="elsewhere").create(Ticket("SVC-403", "r", TRACE, "jira"))
    assert elsewhere.value.status == 403
    assert (await call(dispatcher_api, "GET", f"/api/v1/namespaces/{NS}/secrets")).status == 403
    assert (await call(dispatcher_api, "GET", f"/api/v1/namespaces/{NS}/configmaps")).status == 403
    pod = pod_from_job(manifests, "by-dispatcher")
    assert (await call(dispatcher_api, "POST", f"/api/v1/namespaces/{NS}/pods", pod)).status == 403
    role = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{NS}/roles/{RELEASE}-goresolve-dispatcher"
    assert (await call(dispatcher_api, "PATCH", role, {"rules": []})).status == 403
    # ...and what the Role grants works: reading Pods, listing Jobs.
    assert (await call(dispatcher_api, "GET", f"/api/v1/namespaces/{NS}/pods")).status == 200
    assert (await call(dispatcher_api, "GET", f"/apis/batch/v1/namespaces/{NS}/jobs")).status == 200


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def wait_for_job(admin: client.ApiClient, name: str) -> dict[str, Any]:
    for _ in range(300):
        found = await jobs_for(admin, name)
        if found:
            return found[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {name} was never created")


async def finish_job(admin: client.ApiClient, name: str, *, succeeded: bool) -> None:
    """What the Job controller would write (there is none here): the terminal conditions."""
    t = now()
    if succeeded:
        conditions = [
            {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached", "lastTransitionTime": t},
            {"type": "Complete", "status": "True", "reason": "CompletionsReached", "lastTransitionTime": t},
        ]
        status = {"startTime": t, "completionTime": t, "succeeded": 1, "conditions": conditions}
    else:
        conditions = [
            {"type": "FailureTarget", "status": "True", "reason": "DeadlineExceeded", "lastTransitionTime": t},
            {"type": "Failed", "status": "True", "reason": "DeadlineExceeded", "lastTransitionTime": t},
        ]
        status = {"startTime": t, "failed": 1, "conditions": conditions}
    answer = await call(admin, "PATCH", f"/apis/batch/v1/namespaces/{NS}/jobs/{name}/status", {"status": status})
    assert answer.status == 200, answer.json.get("message")


async def finish_pod(
    admin: client.ApiClient, manifests: list[dict[str, Any]], job: str, message: str, pod_name: str = ""
) -> None:
    """The Job's Pod, labelled as the Job controller labels it (job name and uid) and terminated with the
    agent's result as its termination message (as a kubelet would)."""
    [owner] = await jobs_for(admin, job)
    labels = {"batch.kubernetes.io/job-name": job, "batch.kubernetes.io/controller-uid": owner["metadata"]["uid"]}
    pod_name = pod_name or f"{job}-pod"
    pod = pod_from_job(manifests, pod_name, labels)
    created = await call(admin, "POST", f"/api/v1/namespaces/{NS}/pods", pod)
    assert created.status == 201, created.json.get("message")
    t = now()
    status = {
        "phase": "Succeeded",
        "containerStatuses": [
            {
                "name": "agent",
                "image": pod["spec"]["containers"][0]["image"],
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed", "message": message,
                                         "startedAt": t, "finishedAt": t}},
            }
        ],
    }  # fmt: skip
    answer = await call(admin, "PATCH", f"/api/v1/namespaces/{NS}/pods/{pod_name}/status", {"status": status})
    assert answer.status == 200, answer.json.get("message")


async def test_a_finished_job_has_its_outcome_cost_and_duration_recorded_and_a_silent_failure_is_escalated(
    dispatcher_api: client.ApiClient, admin: client.ApiClient, manifests: list[dict[str, Any]], tmp_path: Path
) -> None:
    ledger = Ledger(tmp_path / "runs.jsonl")
    dispatcher = Dispatcher(runner(dispatcher_api, manifests), Capacity(4, 2), ledger)
    good = Ticket("acme/svc#7", "acme/svc", TRACE, "github")
    silent = Ticket("acme/svc#8", "acme/svc", TRACE, "github")
    runs = [asyncio.create_task(dispatcher.dispatch(t)) for t in (good, silent)]
    for ticket in (good, silent):
        await wait_for_job(admin, job_name(ticket.id, JOB_PREFIX))
    await finish_pod(
        admin,
        manifests,
        job_name(good.id, JOB_PREFIX),
        '{"outcome":"resolved","cost_usd":0.42,"pr_url":"https://x/pr/7"}',
    )
    await finish_job(admin, job_name(good.id, JOB_PREFIX), succeeded=True)
    await finish_job(admin, job_name(silent.id, JOB_PREFIX), succeeded=False)
    done = await asyncio.wait_for(asyncio.gather(*runs), timeout=60)
    assert [(r.outcome, r.cost_usd, r.escalated) for r in done] == [("resolved", 0.42, False), (NO_OUTCOME, None, True)]
    assert "DeadlineExceeded" in (done[1].reason or "")
    recorded = {r.ticket: r for r in ledger.runs()}
    assert recorded["acme/svc#7"].pr_url == "https://x/pr/7" and recorded["acme/svc#7"].duration_s > 0
    assert recorded["acme/svc#8"].escalated
    # Never retried: the failed ticket still has exactly its one Job.
    assert len(await jobs_for(admin, job_name(silent.id, JOB_PREFIX))) == 1


async def test_two_releases_in_one_namespace_keep_their_tickets_jobs_apart(
    installed: dict[str, Any], admin: client.ApiClient, manifests: list[dict[str, Any]]
) -> None:
    """Before, every release named a ticket's Job `goresolve-<ticket>-<hash>` and counted every ticket Job of
    the namespace: a staging release adopted the production release's Job for the same ticket (409, then
    followed it) and counted it against its own caps. The chart's template now gives the release's prefix,
    and each dispatcher lists only the Jobs with its template's labels."""
    ticket = Ticket("acme/svc#140", "acme/svc", TRACE, "github")
    ours = runner(admin, manifests)
    theirs = runner(admin, render(namespace=NS, release="staging"))
    names = [(await jobs.create(ticket))[0] for jobs in (ours, theirs)]
    try:
        assert names[0].startswith(f"{JOB_PREFIX}-acme-svc-140-") and names[1].startswith("staging-goresolve-")
        assert [n for t, n in await ours.active() if t.id == ticket.id] == [names[0]]
        assert [n for t, n in await theirs.active() if t.id == ticket.id] == [names[1]]
    finally:
        for name in names:
            gone = await call(admin, "DELETE", f"/apis/batch/v1/namespaces/{NS}/jobs/{name}")
            assert gone.status in (200, 202), gone.json
