"""A ticket to resolve, taken from a queue event, and the names a run gets from it.

The Job name is a pure function of the ticket id, so the API server itself refuses a second
concurrent Job for the same ticket (409 AlreadyExists): no lock, no lookup race.

A ticket also carries the request that asked for the run: the queue event's dedup id (a redelivery
of the same webhook delivery keeps it, a new delivery never has it) and whether that event is an
explicit (re)start command (an issue comment such as `/goresolve retry`). Only such a command, from
a request other than the one that started the existing Job, replaces a finished Job.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from workqueue import CommentData, Event, IssueData, JiraIssueData

LABEL_TICKET = "goresolve.dev/ticket"
LABEL_TRACE = "goresolve.dev/trace-id"
LABEL_REPO = "goresolve.dev/repo"
ANNOTATION_TICKET = "goresolve.dev/ticket-id"
ANNOTATION_REPO = "goresolve.dev/repo-name"
ANNOTATION_REQUEST = "goresolve.dev/request-id"
_NOT_LABEL = re.compile(r"[^A-Za-z0-9._-]+")
_NOT_NAME = re.compile(r"[^a-z0-9-]+")
_PREFIX_MAX = 40  # leaves a Job name room for 10 characters of the ticket and the 10 of its hash


@dataclass(frozen=True, slots=True)
class Ticket:
    """`id` is e.g. `acme/svc#42` (GitHub) or `SVC-7` (Jira); `repo` is the repository it is about.

    `request` is the dedup id of the queue event that asked for this run (`""`: none, e.g. the CLI);
    `restart` says that event is an explicit (re)start command, which may replace a finished run.
    """

    id: str
    repo: str
    trace_id: str
    source: str
    request: str = ""
    restart: bool = False


def ticket_from_event(event: Event, *, jira_repos: dict[str, str], default_repo: str | None) -> Ticket | None:
    """The ticket an event asks to resolve, or None when it asks for nothing (a push, an unmapped project)."""
    data = event.data
    if isinstance(data, IssueData | CommentData):
        repo = event.repo or default_repo
        if repo is None:
            return None
        return Ticket(
            id=f"{repo}#{data.number}",
            repo=repo,
            trace_id=event.trace_id,
            source=event.source,
            request=event.id,
            restart=isinstance(data, CommentData),
        )
    if isinstance(data, JiraIssueData):
        repo = jira_repos.get(data.project, default_repo)
        if repo is None:
            return None
        return Ticket(id=data.key, repo=repo, trace_id=event.trace_id, source=event.source, request=event.id)
    return None


def replaces_run(ticket: Ticket, finished: bool, request: str | None) -> bool:
    """Whether `ticket` replaces the ticket's existing run, which `request` started (None: unknown): only a restart
    command, from another request, of a run that has finished. Anything else adopts the run (both modes)."""
    return ticket.restart and finished and request != ticket.request


def label_value(text: str) -> str:
    """A Kubernetes label value (<= 63 chars of [A-Za-z0-9._-], alphanumeric at both ends)."""
    value = _NOT_LABEL.sub("_", text)[:63].strip("._-")
    return value or "none"


def job_name(ticket_id: str, prefix: str = "goresolve") -> str:
    """`<prefix>-<readable part>-<10 hex of sha256(ticket id)>`, a valid DNS label (<= 63 chars).

    The hash keeps two tickets that read the same once cleaned (`a/b#1`, `a-b-1`) apart. The prefix (a Helm
    release's `<release>-goresolve`) keeps two releases' Jobs apart; one longer than 40 characters is cut, and
    the hash then covers it whole.
    """
    key = ticket_id if len(prefix) <= _PREFIX_MAX else f"{prefix}\0{ticket_id}"
    prefix = _NOT_NAME.sub("-", prefix[:_PREFIX_MAX].lower()).strip("-") or "goresolve"
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    readable = _NOT_NAME.sub("-", ticket_id.lower()).strip("-")
    room = 63 - len(prefix) - len(digest) - 2
    readable = readable[:room].strip("-")
    return f"{prefix}-{readable}-{digest}" if readable else f"{prefix}-{digest}"
