"""The dispatcher proper: a queue handler that turns each ticket event into exactly one bounded run.

    event -> ticket -> registered repository? -> runner.run (in a slot, if it starts a run) -> ledger.record
    -> escalate when there is no outcome, or the agent's outcome is an error

A ticket that finds every slot it needs taken goes back to the queue (`workqueue.Deferred`, after
`busy_retry_s`): not a failed try, and its run later gets the queue's whole job timeout.

The handler returns normally for every run that ended, however it ended, so the queue never
re-delivers a finished ticket; it raises only when the run could not be started or followed at all
(the queue then retries with backoff, a bounded number of times, and dead-letters it).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import structlog

from agent.dispatch.capacity import Busy, Capacity, Slot
from agent.dispatch.errors import PolicyUnreadable
from agent.dispatch.results import Ledger, RunRecord
from agent.dispatch.tickets import Ticket, ticket_from_event
from agent.policy import PolicyError, identity_grants
from agent.ticket_files import TicketFileError, registered_repos, repo_entry
from workqueue import Deferred, Event, JiraIssueData

log = structlog.get_logger(__name__)


class Runner(Protocol):
    """Runs one ticket to its end (local subprocess or Kubernetes Job).

    A run it starts is started inside `slot()` (which raises Busy when no slot is free); following a run
    another dispatch started takes no slot.
    """

    mode: str

    async def run(self, ticket: Ticket, slot: Slot) -> RunRecord: ...


class Escalator(Protocol):
    """Hands a run with no outcome to a human (the agent's escalation posts to the issue)."""

    async def escalate(self, record: RunRecord) -> None: ...


class LogEscalator:
    """The default: a structured warning a human is alerted on, with ticket, trace and reason."""

    async def escalate(self, record: RunRecord) -> None:
        log.warning(
            "run ended without an outcome or in an error: escalated to a human",
            ticket=record.ticket,
            trace_id=record.trace_id,
            run=record.run,
            reason=record.reason,
        )


class Dispatcher:
    def __init__(
        self,
        runner: Runner,
        capacity: Capacity,
        ledger: Ledger,
        *,
        jira_repos: dict[str, str] | None = None,
        default_repo: str | None = None,
        policy_dir: Path | None = None,
        identity: str | None = None,
        escalator: Escalator | None = None,
        busy_retry_s: float = 15.0,
    ) -> None:
        """`policy_dir`: the agent's policy set, whose repos.yaml names the repositories that may have runs
        (read at each event, so an updated policy applies at once); None runs every ticket. `identity`: the
        agent's policy identity; a ticket whose repository or Jira project its access.yaml entry does not grant
        starts no run (the agent would refuse it at once, after a pod had started); None skips that check."""
        self.runner = runner
        self.capacity = capacity
        self.ledger = ledger
        self._jira_repos = dict(jira_repos or {})
        self._default_repo = default_repo
        self._policy_dir = policy_dir
        self._identity = identity
        self._escalator = escalator or LogEscalator()
        self._busy_retry_s = busy_retry_s

    async def handle(self, event: Event) -> None:
        """The queue handler. Raises only when a run could not be started or followed (queue retries)."""
        ticket = ticket_from_event(event, jira_repos=self._jira_repos, default_repo=self._default_repo)
        if ticket is None:
            log.info("event asks for no run", event_id=event.id, kind=event.data.kind, trace_id=event.trace_id)
            return
        about = log.bind(ticket=ticket.id, repo=ticket.repo, event_id=event.id, trace_id=event.trace_id)
        found = self.registered_as(ticket.repo)
        if found is None:
            about.warning("ticket about a repository repos.yaml does not name: no run")
            return
        name, spelled = found
        if spelled != ticket.repo:  # GitHub's `Acme/Svc` for repos.yaml's `acme/svc`: the run uses the policy's
            prefix = f"{ticket.repo}#"
            ticket_id = spelled + ticket.id[len(ticket.repo) :] if ticket.id.startswith(prefix) else ticket.id
            ticket = replace(ticket, id=ticket_id, repo=spelled)
            about = about.bind(ticket=ticket.id, repo=ticket.repo)
        project = event.data.project if isinstance(event.data, JiraIssueData) else None
        refused = self.not_granted(name, project)
        if refused is not None:
            about.warning(f"{refused}: no run (grant it in access.yaml to run such tickets)", identity=self._identity)
            return
        try:
            await self.dispatch(ticket)
        except Busy as exc:
            about.info(
                "no run slot is free: the ticket goes back to the queue", retry_in_s=self._busy_retry_s, caps=str(exc)
            )
            raise Deferred(self._busy_retry_s, str(exc)) from None

    @asynccontextmanager
    async def _slot(self, ticket: Ticket) -> AsyncGenerator[None]:
        async with self.capacity.slot(ticket.repo):
            log.info(
                "run starting",
                ticket=ticket.id,
                repo=ticket.repo,
                trace_id=ticket.trace_id,
                mode=self.runner.mode,
                restart=ticket.restart,
            )
            yield

    def registered(self, repo: str) -> bool:
        """Whether `repo` (a repos.yaml name or its GitHub owner/name, in any case) may have runs.

        Raises:
            PolicyUnreadable: repos.yaml cannot be read (the queue retries the event, then dead-letters it).
        """
        return self.registered_as(repo) is not None

    def registered_as(self, repo: str) -> tuple[str, str] | None:
        """(its name in repos.yaml, `repo` as repos.yaml spells it), or None when it may have no runs.

        The spelling is `repo` itself, or repos.yaml's `github` field when they differ only in case (GitHub
        sends `Acme/Svc` for a `github: acme/svc`).

        Raises:
            PolicyUnreadable: repos.yaml cannot be read (the queue retries the event, then dead-letters it).
        """
        if self._policy_dir is None:
            return repo, repo
        try:
            return repo_entry(registered_repos(self._policy_dir), repo)
        except TicketFileError as exc:
            raise PolicyUnreadable(str(exc)) from None

    def not_granted(self, repo: str, project: str | None) -> str | None:
        """Why the agent's identity may not work on repository `repo` (its repos.yaml name) or read Jira project
        `project` (None: a GitHub ticket), or None when it may (or no identity is set).

        Raises:
            PolicyUnreadable: access.yaml cannot be read (the queue retries the event, then dead-letters it).
        """
        if self._policy_dir is None or self._identity is None:
            return None
        try:
            grants = identity_grants(self._policy_dir, self._identity)
        except PolicyError as exc:
            raise PolicyUnreadable(str(exc)) from None
        if grants is None:
            return f"access.yaml names no identity {self._identity!r} (the agent's)"
        repos, projects = grants
        if repo not in repos:
            return f"the agent's identity may not work on repository {repo!r}"
        if project is not None and project not in projects:
            return f"the agent's identity may not read Jira project {project!r}"
        return None

    async def dispatch(self, ticket: Ticket) -> RunRecord:
        """Run `ticket` (or follow its run), record it and escalate it when it needs a person.

        Raises:
            Busy: the run would start, but no slot is free (nothing was started).
        """
        record = await self.runner.run(ticket, lambda: self._slot(ticket))
        if record.adopted:  # the dispatch that ran it records and escalates it: once
            log.info(
                "run adopted: the ticket's run is recorded once, by the dispatch that started it",
                ticket=ticket.id,
                trace_id=ticket.trace_id,
                run_trace_id=record.trace_id,
                outcome=record.outcome,
            )
            return record
        if record.needs_a_person:
            await self._escalator.escalate(record)
            record = replace(record, escalated=True)
        self.ledger.record(record)
        log.info(
            "run finished",
            ticket=record.ticket,
            trace_id=record.trace_id,
            outcome=record.outcome,
            cost_usd=record.cost_usd,
            duration_s=record.duration_s,
        )
        return record
