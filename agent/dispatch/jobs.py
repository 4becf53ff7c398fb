"""Building one ticket's Job from the chart's template (pure: no API calls, tested alone)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, cast

import yamlfiles
from agent.dispatch.errors import TemplateError
from agent.dispatch.tickets import (
    ANNOTATION_REPO,
    ANNOTATION_REQUEST,
    ANNOTATION_TICKET,
    LABEL_REPO,
    LABEL_TICKET,
    LABEL_TRACE,
    Ticket,
    job_name,
    label_value,
)

AGENT_CONTAINER = "agent"
TERMINATION_LOG = "/dev/termination-log"


def load_template(path: Path) -> dict[str, Any]:
    """The Job manifest the chart renders into its job-template ConfigMap.

    Raises:
        TemplateError: missing, not YAML, or not a batch/v1 Job whose pod has an `agent` container.
    """
    try:
        value = yamlfiles.load_yaml_file(path, invalid="not YAML")  # a repeated key, deep nesting: refused
    except yamlfiles.YamlFileError as exc:
        raise TemplateError(f"job template {exc.message}") from None
    check_template(value, str(path))
    return cast(dict[str, Any], value)


def check_template(value: object, where: str) -> None:
    """Raises TemplateError unless `value` is a batch/v1 Job with an `agent` container."""
    if not isinstance(value, dict):
        raise TemplateError(f"job template {where}: not a mapping")
    doc = cast(dict[str, Any], value)
    if doc.get("apiVersion") != "batch/v1" or doc.get("kind") != "Job":
        raise TemplateError(f"job template {where}: not a batch/v1 Job")
    containers = doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
    if not any(isinstance(c, dict) and c.get("name") == AGENT_CONTAINER for c in containers):
        raise TemplateError(f"job template {where}: the pod has no container named {AGENT_CONTAINER!r}")


def build_job(
    template: dict[str, Any],
    ticket: Ticket,
    *,
    active_deadline_s: int,
    ttl_after_finished_s: int,
    name_prefix: str = "goresolve",
) -> dict[str, Any]:
    """One ticket's Job: deterministic name, ticket/trace/repo labels, the request that asked for it
    (an annotation: compared when a restart command finds the Job finished), the deadline, no retries.

    The agent container runs `goresolve dispatch run` for this ticket, which runs the agent and
    writes its result line to the termination message.
    """
    job = copy.deepcopy(template)
    # the template's generateName (the chart's `<release>-goresolve-`) keeps two releases' Jobs for one ticket apart
    name = job_name(ticket.id, str(job.get("metadata", {}).get("generateName") or "").rstrip("-") or name_prefix)
    labels = {
        LABEL_TICKET: label_value(ticket.id),
        LABEL_TRACE: label_value(ticket.trace_id),
        LABEL_REPO: label_value(ticket.repo),
    }
    meta = job.setdefault("metadata", {})
    meta["name"] = name
    meta.pop("generateName", None)
    meta.setdefault("labels", {}).update(labels)
    notes = {ANNOTATION_TICKET: ticket.id, ANNOTATION_REPO: ticket.repo, ANNOTATION_REQUEST: ticket.request}
    meta.setdefault("annotations", {}).update(notes)
    spec = job.setdefault("spec", {})
    spec["backoffLimit"] = 0  # a failed run is escalated, never re-run by the Job controller
    spec["activeDeadlineSeconds"] = active_deadline_s
    spec["ttlSecondsAfterFinished"] = ttl_after_finished_s
    pod = spec["template"]
    pod.setdefault("metadata", {}).setdefault("labels", {}).update(labels)
    pod["spec"]["restartPolicy"] = "Never"
    for container in pod["spec"]["containers"]:
        if container["name"] == AGENT_CONTAINER:
            container["args"] = [
                "dispatch",
                "run",
                "--ticket",
                ticket.id,
                "--repo",
                ticket.repo,
                "--trace-id",
                ticket.trace_id,
                "--result-file",
                TERMINATION_LOG,
            ]
            container["terminationMessagePath"] = TERMINATION_LOG
            container["terminationMessagePolicy"] = "FallbackToLogsOnError"
    return job
