"""A restart command (`/goresolve retry`) against a real kube-apiserver + etcd: it replaces a finished Job
of another request, and nothing else does (a running Job, or the same request again, is adopted)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from kubernetes.aio import client

from agent.dispatch import ClusterRefused, Ticket
from agent.dispatch.capacity import Busy, Capacity
from agent.dispatch.kube import KubeRunner
from agent.dispatch.results import GOING, NO_OUTCOME, Ledger
from agent.dispatch.service import Dispatcher
from agent.dispatch.tickets import job_name
from tests.charts.render import job_template
from tests.kube.kubeapi import JOB_PREFIX, NS, call
from tests.kube.test_dispatch_cluster import (
    dispatcher_api,  # noqa: F401  # a fixture
    finish_job,
    finish_pod,
    jobs_for,
    runner,
    wait_for_job,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2700)]

FIRST = "0123456789abcdef0123456789abcdef"
RETRY = "fedcba9876543210fedcba9876543210"


def opened(number: int) -> Ticket:
    """The ticket as an `issues opened` delivery asks for it."""
    return Ticket(f"acme/svc#{number}", "acme/svc", FIRST, "github", request=f"github:1:opened-{number}")


def retry(number: int, trace: str = RETRY, delivery: str = "retry") -> Ticket:
    """The ticket as a `/goresolve retry` comment's delivery asks for it."""
    request = f"github:1:{delivery}-{number}"
    return Ticket(f"acme/svc#{number}", "acme/svc", trace, "github", request=request, restart=True)


async def the_job(admin: client.ApiClient, name: str) -> dict[str, Any]:
    [job] = await jobs_for(admin, name)
    return job


async def wait_for_trace(admin: client.ApiClient, name: str, trace: str) -> dict[str, Any]:
    for _ in range(300):
        found = await jobs_for(admin, name)
        if found and found[0]["metadata"]["labels"]["goresolve.dev/trace-id"] == trace:
            return found[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {name} was never created for trace {trace}")


async def test_a_retry_after_a_failed_job_replaces_it_and_follows_the_new_job(
    dispatcher_api: client.ApiClient,  # noqa: F811
    admin: client.ApiClient,
    manifests: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    ledger = Ledger(tmp_path / "runs.jsonl")
    dispatcher = Dispatcher(runner(dispatcher_api, manifests), Capacity(4, 2), ledger)
    name = job_name(opened(70).id, JOB_PREFIX)
    first = asyncio.create_task(dispatcher.dispatch(opened(70)))
    await wait_for_job(admin, name)
    # The first attempt's pod said something; the new Job must not be read through it.
    await finish_pod(admin, manifests, name, '{"outcome":"resolved","pr_url":"https://x/pr/1"}', "first-pod")
    await finish_job(admin, name, succeeded=False)
    await asyncio.wait_for(first, timeout=60)
    old_uid = (await the_job(admin, name))["metadata"]["uid"]

    second = asyncio.create_task(dispatcher.dispatch(retry(70)))
    new = await wait_for_trace(admin, name, RETRY)
    assert new["metadata"]["uid"] != old_uid and finished_conditions(new) == []
    assert new["metadata"]["annotations"]["goresolve.dev/request-id"] == "github:1:retry-70"
    assert not second.done()  # it follows the new Job, which runs
    await finish_job(admin, name, succeeded=False)
    record = await asyncio.wait_for(second, timeout=60)
    assert (record.trace_id, record.outcome, record.escalated) == (RETRY, NO_OUTCOME, True)
    assert record.pr_url is None and "DeadlineExceeded" in (record.reason or "")
    assert [(r.trace_id, r.pr_url) for r in ledger.runs()] == [(FIRST, "https://x/pr/1"), (RETRY, None)]
    assert [j["metadata"]["uid"] for j in await jobs_for(admin, name)] == [new["metadata"]["uid"]]

    # The new attempt's own result is read from its own pod.
    third = asyncio.create_task(dispatcher.dispatch(retry(70, FIRST, "again")))
    await wait_for_trace(admin, name, FIRST)
    await finish_pod(admin, manifests, name, '{"outcome":"resolved","pr_url":"https://x/pr/3"}', "third-pod")
    await finish_job(admin, name, succeeded=True)
    record = await asyncio.wait_for(third, timeout=60)
    assert (record.outcome, record.pr_url, record.escalated) == ("resolved", "https://x/pr/3", False)


def finished_conditions(job: dict[str, Any]) -> list[str]:
    return [c["type"] for c in job.get("status", {}).get("conditions") or [] if c["type"] in ("Complete", "Failed")]


async def test_a_retry_while_the_job_runs_leaves_that_job_to_its_dispatch(
    dispatcher_api: client.ApiClient,  # noqa: F811
    admin: client.ApiClient,
    manifests: list[dict[str, Any]],
) -> None:
    """The retry neither replaces the running Job nor follows it (its creator's dispatch does)."""
    jobs = runner(dispatcher_api, manifests)
    name = job_name(opened(71).id, JOB_PREFIX)
    _, uid = await jobs.start(opened(71))
    left = await asyncio.wait_for(jobs.run(retry(71)), timeout=30)
    assert (left.outcome, left.adopted, left.trace_id, left.run) == (GOING, True, RETRY, f"job/{name}")
    job = await the_job(admin, name)
    assert (job["metadata"]["uid"], job["metadata"]["labels"]["goresolve.dev/trace-id"]) == (uid, FIRST)
    creator = asyncio.create_task(jobs.run(opened(71)))  # the creating event again: it follows the Job
    await asyncio.sleep(0.5)
    assert not creator.done()
    await finish_pod(admin, manifests, name, '{"outcome":"resolved","pr_url":"https://x/pr/71"}')
    await finish_job(admin, name, succeeded=True)
    record = await asyncio.wait_for(creator, timeout=60)
    assert (record.trace_id, record.outcome, record.pr_url, record.adopted) == (
        FIRST,
        "resolved",
        "https://x/pr/71",
        False,
    )
    assert [j["metadata"]["uid"] for j in await jobs_for(admin, name)] == [uid]


async def test_the_same_request_or_an_event_that_is_no_restart_adopts_a_finished_job(
    dispatcher_api: client.ApiClient,  # noqa: F811
    admin: client.ApiClient,
    manifests: list[dict[str, Any]],
) -> None:
    jobs = runner(dispatcher_api, manifests)
    name = job_name(retry(72).id, JOB_PREFIX)
    _, uid = await jobs.start(retry(72))
    await finish_job(admin, name, succeeded=False)
    # The queue re-running the retry's event after a dispatcher restart, or a redelivery of that
    # delivery (same request id; a redelivery gets a new trace id), and a later event that is no
    # restart command (an issue labelled): each adopts the finished Job's outcome, none starts a run.
    # The same request records what it adopts (its first dispatch may have died before it could); another
    # request's dispatch only follows it.
    for ticket, adopted in ((retry(72), False), (retry(72, FIRST), False), (opened(72), True)):
        record = await asyncio.wait_for(jobs.run(ticket), timeout=60)
        assert (record.outcome, record.trace_id, record.adopted) == (NO_OUTCOME, ticket.trace_id, adopted)
        assert "DeadlineExceeded" in (record.reason or "")
    job = await the_job(admin, name)
    assert (job["metadata"]["uid"], job["metadata"]["labels"]["goresolve.dev/trace-id"]) == (uid, RETRY)


async def test_a_duplicate_delivery_of_a_running_ticket_is_recorded_and_escalated_once(
    dispatcher_api: client.ApiClient,  # noqa: F811
    admin: client.ApiClient,
    manifests: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    """An issue opened and then labelled: two requests, one Job. Both dispatches followed it, and both recorded and
    escalated its failure; now the one whose request created the Job does, once."""
    ledger = Ledger(tmp_path / "runs.jsonl")
    dispatcher = Dispatcher(runner(dispatcher_api, manifests), Capacity(4, 2), ledger)
    name = job_name(opened(75).id, JOB_PREFIX)
    first = asyncio.create_task(dispatcher.dispatch(opened(75)))
    await wait_for_job(admin, name)
    labelled = Ticket(opened(75).id, "acme/svc", RETRY, "github", request="github:1:labeled-75")
    second = await asyncio.wait_for(dispatcher.dispatch(labelled), timeout=30)  # at once: not a whole run
    assert (second.outcome, second.adopted, second.escalated) == (GOING, True, False)
    await finish_job(admin, name, succeeded=False)
    record = await asyncio.wait_for(first, timeout=60)
    assert (record.trace_id, record.adopted, record.escalated) == (FIRST, False, True)
    assert [(r.trace_id, r.outcome) for r in ledger.runs()] == [(FIRST, NO_OUTCOME)]
    assert len(await jobs_for(admin, name)) == 1


class ReplacedBeforeTheDelete(KubeRunner):
    """Another dispatcher replaces the finished Job between this one's read and its delete."""

    def __init__(self, admin: client.ApiClient, manifests: list[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.admin = admin
        self.manifests = manifests
        self.replacement = ""

    async def _delete(self, name: str, uid: str) -> bool:
        if not self.replacement:
            other = KubeRunner(
                self.admin,
                namespace=NS,
                template=job_template(self.manifests),
                active_deadline_s=60,
                ttl_after_finished_s=60,
            )
            gone = await call(self.admin, "DELETE", f"/apis/batch/v1/namespaces/{NS}/jobs/{name}")
            assert gone.status == 200, gone.json.get("message")
            _, self.replacement = await other.start(retry(73, FIRST, "other"))
        return await super()._delete(name, uid)


async def test_a_job_replaced_between_the_read_and_the_delete_is_not_deleted_but_followed(
    dispatcher_api: client.ApiClient,  # noqa: F811
    admin: client.ApiClient,
    manifests: list[dict[str, Any]],
) -> None:
    name = job_name(opened(73).id, JOB_PREFIX)
    _, old = await runner(dispatcher_api, manifests).start(opened(73))
    await finish_job(admin, name, succeeded=False)
    jobs = ReplacedBeforeTheDelete(
        admin,
        manifests,
        api=dispatcher_api,
        namespace=NS,
        template=job_template(manifests),
        active_deadline_s=60,
        ttl_after_finished_s=60,
    )
    started, uid = await jobs.start(retry(73))
    assert (started, uid) == (name, jobs.replacement) and uid != old
    job = await the_job(admin, name)
    assert (job["metadata"]["uid"], job["metadata"]["labels"]["goresolve.dev/trace-id"]) == (uid, FIRST)


async def test_a_retry_waits_for_a_job_still_being_deleted_and_gives_up_with_a_409_after_its_bound(
    dispatcher_api: client.ApiClient,  # noqa: F811
    admin: client.ApiClient,
    manifests: list[dict[str, Any]],
) -> None:
    name = job_name(opened(74).id, JOB_PREFIX)
    path = f"/apis/batch/v1/namespaces/{NS}/jobs/{name}"
    await runner(dispatcher_api, manifests).start(opened(74))
    await finish_job(admin, name, succeeded=False)
    # Held by a finalizer, as the TTL controller's foreground delete holds it until its pods are gone.
    held = await call(admin, "PATCH", path, {"metadata": {"finalizers": ["test.goresolve.dev/hold"]}})
    assert held.status == 200, held.json.get("message")
    assert (await call(admin, "DELETE", path)).status == 200

    def patient(wait_s: float) -> KubeRunner:
        template = job_template(manifests)
        return KubeRunner(
            dispatcher_api,
            namespace=NS,
            template=template,
            active_deadline_s=60,
            ttl_after_finished_s=60,
            replace_wait_s=wait_s,
        )

    with pytest.raises(ClusterRefused) as refused:
        await patient(0.5).start(retry(74))
    assert refused.value.status == 409 and "still being deleted" in str(refused.value)
    [job] = await jobs_for(admin, name)
    assert job["metadata"]["labels"]["goresolve.dev/trace-id"] == FIRST  # nothing created

    waiting = asyncio.create_task(patient(30).start(retry(74)))
    await asyncio.sleep(0.5)
    assert not waiting.done()
    assert (await call(admin, "PATCH", path, {"metadata": {"finalizers": None}})).status == 200
    _, uid = await asyncio.wait_for(waiting, timeout=30)
    job = await the_job(admin, name)
    assert (job["metadata"]["uid"], job["metadata"]["labels"]["goresolve.dev/trace-id"]) == (uid, RETRY)


async def test_the_dispatch_that_creates_a_job_holds_its_slot_and_a_follower_holds_none(
    dispatcher_api: client.ApiClient,  # noqa: F811
    admin: client.ApiClient,
    manifests: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    """Before, a second delivery of a ticket (`opened`, then `labeled`) took a second slot of the repository
    while it only followed the first one's Job. Now only the Job's creator holds a slot, and a ticket that
    finds no slot free creates nothing (Busy: the queue hands it out again later)."""
    capacity = Capacity(total=2, per_repo=1)
    dispatcher = Dispatcher(runner(dispatcher_api, manifests), capacity, Ledger(tmp_path / "runs.jsonl"))
    name = job_name(opened(90).id, JOB_PREFIX)
    first = asyncio.create_task(dispatcher.dispatch(opened(90)))
    await wait_for_job(admin, name)
    labelled = Ticket("acme/svc#90", "acme/svc", RETRY, "github", request="github:1:labeled-90")
    left = await asyncio.wait_for(dispatcher.dispatch(labelled), timeout=30)
    assert (left.outcome, left.adopted) == (GOING, True)
    follower = asyncio.create_task(dispatcher.dispatch(opened(90)))  # the same event again: it follows
    await asyncio.sleep(0.5)
    assert not follower.done()
    assert capacity.running_for("acme/svc") == 1
    with pytest.raises(Busy):  # the repository's one slot is the Job's
        await dispatcher.dispatch(opened(91))
    assert await jobs_for(admin, job_name(opened(91).id, JOB_PREFIX)) == []
    await finish_pod(admin, manifests, name, '{"outcome":"resolved","pr_url":"https://x/pr/90"}')
    await finish_job(admin, name, succeeded=True)
    created, followed = await asyncio.wait_for(asyncio.gather(first, follower), timeout=60)
    assert not created.adopted and followed.outcome == created.outcome == "resolved" and capacity.running == 0
