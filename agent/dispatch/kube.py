"""Kubernetes mode: one Job per ticket, watched to the end, through the official `kubernetes` client.

This is the only module that imports `kubernetes` (its asyncio flavour, `kubernetes.aio`).
The Job is created with strict field validation (an unknown field is an error, not a warning);
its deterministic name makes the API server refuse a second Job for the same ticket (409).
The agent's result comes from the agent container's termination message in the Pod status.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from kubernetes.aio import client, watch
from kubernetes.aio.client.exceptions import ApiException

from agent.dispatch.errors import AlreadyDispatched, ClusterRefused
from agent.dispatch.jobs import AGENT_CONTAINER, build_job
from agent.dispatch.results import NO_OUTCOME, RunRecord, cost_of, parse_result, pr_url_of, reason_of
from agent.dispatch.tickets import ANNOTATION_REPO, ANNOTATION_TICKET, LABEL_TICKET, LABEL_TRACE, Ticket

log = structlog.get_logger(__name__)
_JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
_WATCH_WINDOW_S = 60  # server-side watch timeout; the watch is re-opened until the Job ends


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
    ) -> None:
        self._api = api
        self._batch = client.BatchV1Api(api)
        self._core = client.CoreV1Api(api)
        self.namespace = namespace
        self._template = template
        self._deadline = active_deadline_s
        self._ttl = ttl_after_finished_s

    def job_for(self, ticket: Ticket) -> dict[str, Any]:
        return build_job(self._template, ticket, active_deadline_s=self._deadline, ttl_after_finished_s=self._ttl)

    async def create(self, ticket: Ticket) -> tuple[str, list[str]]:
        """Create the ticket's Job; returns its name and the API server's warnings.

        Raises:
            AlreadyDispatched: the ticket's Job exists (409); nothing was created.
            ClusterRefused: any other refusal (403 outside the Role, 422 invalid, 400 unknown field).
        """
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
        return name, warnings

    async def wait(self, name: str) -> JobEnd:
        """Watch the Job until it is Complete or Failed. Raises ClusterRefused (e.g. 404 when deleted)."""
        while True:
            try:
                job = await self._read(name)
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

    async def result_text(self, name: str) -> str | None:
        """The agent container's termination message of the Job's (last) Pod, if any."""
        try:
            resp = await self._core.list_namespaced_pod_without_preload_content(
                self.namespace, label_selector=f"{_JOB_NAME_LABEL}={name}"
            )
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

    async def active(self) -> list[Ticket]:
        """The tickets whose Jobs are still running (to count against the caps after a restart)."""
        try:
            resp = await self._batch.list_namespaced_job_without_preload_content(
                self.namespace, label_selector=LABEL_TICKET
            )
            jobs = (await _json(resp, "list jobs")).get("items") or []
        except ApiException as exc:
            raise _refused(exc, "list jobs") from None
        out: list[Ticket] = []
        for job in jobs:
            if finished(job) is None:
                meta = job.get("metadata", {})
                notes = meta.get("annotations") or {}
                out.append(
                    Ticket(
                        id=notes.get(ANNOTATION_TICKET, meta.get("name", "")),
                        repo=notes.get(ANNOTATION_REPO, ""),
                        trace_id=(meta.get("labels") or {}).get(LABEL_TRACE, ""),
                        source="kubernetes",
                    )
                )
        return out

    async def follow(self, ticket: Ticket, name: str, started: float) -> RunRecord:
        """Wait for the Job and turn its end and termination message into a record."""
        end = await self.wait(name)
        result = parse_result(await self.result_text(name)) if end.reason != "Deleted" else None
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

    async def run(self, ticket: Ticket) -> RunRecord:
        """Create the Job (or, after a restart, adopt the one that exists) and follow it to the end."""
        started = time.monotonic()
        try:
            name, warnings = await self.create(ticket)
            if warnings:  # e.g. a Pod Security warning: the Job exists, but its pods may be refused
                log.warning("the API server warned about a Job", job=name, trace_id=ticket.trace_id, warnings=warnings)
        except AlreadyDispatched as exc:
            name = exc.job
        return await self.follow(ticket, name, started)
