"""Kubernetes mode: one Job per ticket, watched to the end, through the official `kubernetes` client.

This is the only module that imports `kubernetes` (its asyncio flavour, `kubernetes.aio`).
The Job is created with strict field validation (an unknown field is an error, not a warning);
its deterministic name makes the API server refuse a second Job for the same ticket (409).
The agent's result comes from the agent container's termination message in the Pod status.

On a 409 the existing Job is read. It is adopted (followed to its end) while it runs, and also once it
has finished, unless the ticket is a restart command (`/goresolve retry`) from
another request than the one that created it: then that finished Job, and only that one (the delete
carries a precondition on its uid), is deleted and a new Job created for this request. A repeated
event (same request id: a redelivery, the queue re-running a job after a dispatcher restart) never
starts a second attempt. An adopted Job's outcome is recorded (and escalated) by the request that created
it: a second request's dispatch ends at once while the Job runs (and reads the outcome of a finished
one, without recording it), and the same request again follows and records it, since its first dispatch
may have died before it could.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import structlog
from kubernetes.aio import client, watch
from kubernetes.aio.client.exceptions import ApiException

from agent.dispatch.capacity import Slot, no_slot
from agent.dispatch.errors import AlreadyDispatched, ClusterRefused
from agent.dispatch.jobs import AGENT_CONTAINER, build_job
from agent.dispatch.results import NO_OUTCOME, RunRecord, cost_of, going, parse_result, pr_url_of, reason_of
from agent.dispatch.tickets import (
    ANNOTATION_REPO,
    ANNOTATION_REQUEST,
    ANNOTATION_TICKET,
    LABEL_TICKET,
    LABEL_TRACE,
    Ticket,
    replaces_run,
)

log = structlog.get_logger(__name__)
_JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
_CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
_WATCH_WINDOW_S = 60  # server-side watch timeout; the watch is re-opened until the Job ends
_START_TRIES = 4  # create / read / replace rounds before giving up (each lost round: another dispatcher won)
_GONE_POLL_S = 0.25


@dataclass(frozen=True, slots=True)
class JobEnd:
    """How a Job finished: `succeeded`, and the reason of its terminal condition (e.g. DeadlineExceeded)."""

    succeeded: bool
    reason: str


def finished(job: Mapping[str, Any]) -> JobEnd | None:
    """The Job's terminal state from its conditions, or None while it runs."""
    for cond in job.get("status", {}).get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            return JobEnd(True, cond.get("reason") or "Complete")
        if cond.get("type") == "Failed":
            return JobEnd(False, cond.get("reason") or "Failed")
    return None


def _status_message(body: bytes) -> str:
    """The `message` of a Kubernetes Status body (what the API server says went wrong)."""
    try:
        value = json.loads(body)
    except ValueError:
        return "no status"
    return str(value.get("message") or value.get("reason") or "no status")[:500] if isinstance(value, dict) else ""


async def _json(resp: Any, what: str) -> dict[str, Any]:
    """The JSON body of an unparsed response; a status >= 300 is ClusterRefused with the server's message."""
    body: bytes = await resp.read()
    if resp.status >= 300:
        raise ClusterRefused(int(resp.status), what, _status_message(body))
    value = json.loads(body)
    return value if isinstance(value, dict) else {}


def _refused(exc: ApiException, what: str) -> ClusterRefused:
    detail = _status_message(exc.body.encode()) if isinstance(exc.body, str) else str(exc.reason or "error")
    return ClusterRefused(int(exc.status or 0), what, detail)


class KubeRunner:
    """Creates, watches and reads one ticket's Job in one namespace."""

    mode = "kubernetes"

    def __init__(
        self,
        api: client.ApiClient,
        *,
        namespace: str,
        template: dict[str, Any],
        active_deadline_s: int,
        ttl_after_finished_s: int,
        replace_wait_s: float = 120.0,
    ) -> None:
        """`replace_wait_s`: how long a restart waits for the finished Job it deleted to be gone (its
        pods are deleted first when someone else, e.g. the TTL controller, deletes it in the foreground)."""
        self._api = api
        self._batch = client.BatchV1Api(api)
        self._core = client.CoreV1Api(api)
        self.namespace = namespace
        self._template = template
        self._deadline = active_deadline_s
        self._ttl = ttl_after_finished_s
        self._replace_wait_s = replace_wait_s

    def job_for(self, ticket: Ticket) -> dict[str, Any]:
        return build_job(self._template, ticket, active_deadline_s=self._deadline, ttl_after_finished_s=self._ttl)

    def name_for(self, ticket: Ticket) -> str:
        """The name of `ticket`'s Job (a pure function of the ticket and the template's generateName)."""
        return str(self.job_for(ticket)["metadata"]["name"])

    async def create(self, ticket: Ticket) -> tuple[str, list[str]]:
        """Create the ticket's Job; returns its name and the API server's warnings.

        Raises:
            AlreadyDispatched: the ticket's Job exists (409); nothing was created.
            ClusterRefused: any other refusal (403 outside the Role, 422 invalid, 400 unknown field).
        """
        name, _, warnings = await self._post(ticket)
        return name, warnings

    async def _post(self, ticket: Ticket) -> tuple[str, str, list[str]]:
        """`create`, also returning the new Job's uid."""
        manifest = self.job_for(ticket)
        name = manifest["metadata"]["name"]
        # The manifest goes out as it is (the client's typed models would drop an unknown field
        # silently, and strict validation could never see it).
        request = await self._api.param_serialize(
            method="POST",
            resource_path="/apis/batch/v1/namespaces/{namespace}/jobs",
            path_params={"namespace": self.namespace},
            query_params=[("fieldValidation", "Strict")],
            header_params={"Accept": "application/json", "Content-Type": "application/json"},
            body=manifest,
            auth_settings=["BearerToken"],
        )
        resp = await self._api.call_api(*request)
        body = await resp.read()
        if resp.status == 409:
            raise AlreadyDispatched(ticket.id, name)
        if resp.status >= 300:
            raise ClusterRefused(resp.status, f"create job {name}", _status_message(body))
        warnings = [str(w) for w in resp.headers.getall("Warning", [])]
        created = json.loads(body)
        uid = str(created.get("metadata", {}).get("uid") or "") if isinstance(created, dict) else ""
        return name, uid, warnings

    async def start(self, ticket: Ticket) -> tuple[str, str]:
        """Create the ticket's Job, or adopt the one that exists (see the module docstring); its name and uid.

        Raises:
            ClusterRefused: a refusal of the API server; also 409 when the Job could not be replaced (it
                was replaced by other dispatchers at every try, or it is still being deleted after
                `replace_wait_s`). Nothing this call created is left behind.
        """
        name, uid, _, _ = await self._start(ticket)
        return name, uid

    async def _start(self, ticket: Ticket) -> tuple[str, str, bool, Following | None]:
        """`start`, and whether this call created the Job, or else how it follows the existing one."""
        name = ""
        for _ in range(_START_TRIES):
            try:
                name, uid, warnings = await self._post(ticket)
            except AlreadyDispatched as exc:
                name = exc.job
            else:
                if warnings:  # e.g. a Pod Security warning: the Job exists, but its pods may be refused
                    log.warning(
                        "the API server warned about a Job", job=name, trace_id=ticket.trace_id, warnings=warnings
                    )
                return name, uid, True, None
            try:
                job = await self._read(name)
            except ClusterRefused as exc:
                if exc.status == 404:  # gone between the create and the read (its TTL): create again
                    continue
                raise
            uid = str(job.get("metadata", {}).get("uid") or "")
            following = self._following(ticket, name, job)
            if following is not None:
                return name, uid, False, following
            log.info("a restart command replaces the ticket's finished Job", **_about(ticket, name, job))
            if not await self._delete(name, uid):
                continue  # another dispatcher replaced it first: look again at what is there now
            if not await self._gone(name, uid):
                why = f"the finished Job (uid {uid}) is still being deleted after {self._replace_wait_s:g} s"
                raise ClusterRefused(409, f"create job {name}", why)
        raise ClusterRefused(409, f"create job {name}", f"the Job was replaced by others {_START_TRIES} times")

    def _following(self, ticket: Ticket, name: str, job: Mapping[str, Any]) -> Following | None:
        """None when `ticket` replaces the existing `job`; else how this dispatch follows it."""
        if self.replaces(ticket, job):
            return None
        done = finished(job) is not None
        log.info("the ticket has a Job already", finished=done, **_about(ticket, name, job))
        creator = (job.get("metadata", {}).get("annotations") or {}).get(ANNOTATION_REQUEST)
        return Following(others=creator is not None and creator != ticket.request, finished=done)

    async def _existing(self, ticket: Ticket) -> tuple[str, str, Following] | None:
        """The ticket's Job when this dispatch would only follow it: its name, uid and how it is followed; None
        when there is none, or the ticket replaces it (a run to start: it needs a slot)."""
        name = self.name_for(ticket)
        job = await self._read_if_there(name)
        if job is None:
            return None
        following = self._following(ticket, name, job)
        return None if following is None else (name, str(job.get("metadata", {}).get("uid") or ""), following)

    @staticmethod
    def replaces(ticket: Ticket, job: Mapping[str, Any]) -> bool:
        """Whether `ticket` replaces the existing `job`: a restart command, from another request, of a finished Job."""
        notes = job.get("metadata", {}).get("annotations") or {}
        return replaces_run(ticket, finished(job) is not None, notes.get(ANNOTATION_REQUEST))

    async def _delete(self, name: str, uid: str) -> bool:
        """Delete the Job `name` if it is still the one with `uid` (its pods in the background).

        Returns False when the name now holds another Job (the precondition failed: nothing deleted).
        Raises ClusterRefused on any other refusal.
        """
        options = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "propagationPolicy": "Background",
            "preconditions": {"uid": uid},
        }
        request = await self._api.param_serialize(
            method="DELETE",
            resource_path="/apis/batch/v1/namespaces/{namespace}/jobs/{name}",
            path_params={"namespace": self.namespace, "name": name},
            header_params={"Accept": "application/json", "Content-Type": "application/json"},
            body=options,
            auth_settings=["BearerToken"],
        )
        resp = await self._api.call_api(*request)
        body = await resp.read()
        if resp.status == 409:
            return False
        if resp.status == 404 or resp.status < 300:
            return True
        raise ClusterRefused(resp.status, f"delete job {name}", _status_message(body))

    async def _gone(self, name: str, uid: str) -> bool:
        """Wait until the Job `name` with `uid` no longer exists (up to `replace_wait_s`); whether it went."""
        deadline = time.monotonic() + self._replace_wait_s
        while True:
            job = await self._read_if_there(name)
            if job is None or job.get("metadata", {}).get("uid") != uid:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(_GONE_POLL_S)

    async def wait(self, name: str, uid: str | None = None) -> JobEnd:
        """Watch the Job until it is Complete or Failed. Raises ClusterRefused (e.g. 404 when deleted).

        With `uid`, a Job of that name with another uid (a replacement) counts as this one deleted.
        """
        while True:
            try:
                job = await self._read(name)
                if uid and job.get("metadata", {}).get("uid") != uid:
                    return JobEnd(False, "Deleted")
                end = finished(job)
                if end is not None:
                    return end
                version = job["metadata"]["resourceVersion"]
                events = watch.Watch().stream(
                    self._batch.list_namespaced_job,
                    self.namespace,
                    field_selector=f"metadata.name={name}",
                    resource_version=version,
                    timeout_seconds=_WATCH_WINDOW_S,
                )
                async with events:
                    async for event in events:
                        change: dict[str, Any] = event  # pyright: ignore[reportAssignmentType]
                        if change["type"] == "DELETED":
                            return JobEnd(False, "Deleted")
                        if uid and change["raw_object"].get("metadata", {}).get("uid") != uid:
                            return JobEnd(False, "Deleted")
                        end = finished(change["raw_object"])
                        if end is not None:
                            return end
            except ApiException as exc:
                if exc.status == 410:  # the watch fell behind: read the Job again
                    continue
                raise _refused(exc, f"watch job {name}") from None

    async def _read(self, name: str) -> dict[str, Any]:
        resp = await self._batch.read_namespaced_job_without_preload_content(name, self.namespace)
        return await _json(resp, f"read job {name}")

    async def _read_if_there(self, name: str) -> dict[str, Any] | None:
        """The Job `name`, or None when there is none (404). Raises ClusterRefused on any other refusal."""
        try:
            return await self._read(name)
        except ClusterRefused as exc:
            if exc.status == 404:
                return None
            raise

    async def result_text(self, name: str, uid: str | None = None) -> str | None:
        """The agent container's termination message of the Job's (last) Pod, if any.

        With `uid`, only that Job's pods count (not those of a replaced Job of the same name that the
        garbage collector has not deleted yet).
        """
        selector = f"{_JOB_NAME_LABEL}={name}" + (f",{_CONTROLLER_UID_LABEL}={uid}" if uid else "")
        try:
            resp = await self._core.list_namespaced_pod_without_preload_content(self.namespace, label_selector=selector)
            pods: list[dict[str, Any]] = (await _json(resp, f"list pods of job {name}")).get("items") or []
        except ApiException as exc:
            raise _refused(exc, f"list pods of job {name}") from None
        pods.sort(key=lambda p: str(p.get("metadata", {}).get("creationTimestamp") or ""))
        for pod in reversed(pods):
            for status in pod.get("status", {}).get("containerStatuses") or []:
                if status.get("name") == AGENT_CONTAINER:
                    message = (status.get("state", {}).get("terminated") or {}).get("message")
                    if message:
                        return str(message)
        return None

    async def active(self) -> list[tuple[Ticket, str]]:
        """The tickets whose Jobs are still running, with their Jobs' names (to count against the caps after a
        restart): this dispatcher's Jobs only, those with the template's labels (another release's in the same
        namespace carry its own `app.kubernetes.io/instance`)."""
        own = (self._template.get("metadata") or {}).get("labels") or {}
        selector = ",".join([LABEL_TICKET, *(f"{k}={v}" for k, v in sorted(own.items()))])
        try:
            resp = await self._batch.list_namespaced_job_without_preload_content(
                self.namespace, label_selector=selector
            )
            jobs = (await _json(resp, "list jobs")).get("items") or []
        except ApiException as exc:
            raise _refused(exc, "list jobs") from None
        out: list[tuple[Ticket, str]] = []
        for job in jobs:
            if finished(job) is None:
                meta = job.get("metadata", {})
                notes = meta.get("annotations") or {}
                ticket = Ticket(
                    id=notes.get(ANNOTATION_TICKET, meta.get("name", "")),
                    repo=notes.get(ANNOTATION_REPO, ""),
                    trace_id=(meta.get("labels") or {}).get(LABEL_TRACE, ""),
                    source="kubernetes",
                )
                out.append((ticket, str(meta.get("name", ""))))
        return out

    async def follow(self, ticket: Ticket, name: str, started: float, uid: str | None = None) -> RunRecord:
        """Wait for the Job (the one with `uid`, if given) and turn its end and termination message into a record."""
        end = await self.wait(name, uid)
        result = parse_result(await self.result_text(name, uid)) if end.reason != "Deleted" else None
        reason = reason_of(result)
        if result is None:
            reason = f"job {'succeeded' if end.succeeded else 'failed'} ({end.reason}) without a result line"
        return RunRecord(
            ticket=ticket.id,
            repo=ticket.repo,
            trace_id=ticket.trace_id,
            run=f"job/{name}",
            mode=self.mode,
            outcome=str(result["outcome"]) if result else NO_OUTCOME,
            duration_s=round(time.monotonic() - started, 3),
            cost_usd=cost_of(result) if result else None,
            pr_url=pr_url_of(result) if result else None,
            reason=reason,
        )

    async def run(self, ticket: Ticket, slot: Slot = no_slot) -> RunRecord:
        """Create the Job (or adopt, or for a restart command replace, the one that exists: `start`) and
        follow it to the end. A Job this call creates holds `slot()` until it ends; an existing Job holds
        none here (the dispatch that created it, or `active()` after a restart, counts it).

        Raises:
            Busy: from `slot()`, before anything is created.
        """
        started = time.monotonic()
        async with contextlib.AsyncExitStack() as held:
            existing = await self._existing(ticket)
            if existing is not None:
                name, uid, following = existing
            else:
                await held.enter_async_context(slot())
                name, uid, _, following = await self._start(ticket)
                if following is not None:  # another dispatch created it meanwhile: its slot is there
                    await held.aclose()
            if following is not None and following.others and not following.finished:
                # Another request's dispatch (an issue opened, then labelled) follows the Job, records and
                # escalates it; following it here as well would hold a queue worker for the whole run.
                return going(ticket.id, ticket.repo, ticket.trace_id, f"job/{name}", self.mode)
            record = await self.follow(ticket, name, started, uid or None)
        # Another request's Job (a duplicate delivery: issue opened and labelled) is recorded and escalated
        # by the dispatch that created it; the same request again (the queue re-running the event after a
        # dispatcher restart) records it, as its first dispatch may not have lived to.
        return replace(record, adopted=True) if following is not None and following.others else record


@dataclass(frozen=True, slots=True)
class Following:
    """How a dispatch meets the ticket's existing Job: another request's (its dispatch records it), and ended."""

    others: bool
    finished: bool


def _about(ticket: Ticket, name: str, job: Mapping[str, Any]) -> dict[str, str]:
    """Log fields of a ticket's existing Job."""
    return {
        "job": name,
        "ticket": ticket.id,
        "trace_id": ticket.trace_id,
        "job_trace_id": (job.get("metadata", {}).get("labels") or {}).get(LABEL_TRACE, ""),
    }
