"""The dispatcher's exceptions (the tree is drawn in the package docstring)."""

from __future__ import annotations


class DispatchError(Exception):
    """Base of the dispatcher's errors. Messages name the ticket and the reason, never a credential."""


class AlreadyDispatched(DispatchError):
    """The ticket already has a run: its deterministic Job name exists (409). Nothing was created."""

    def __init__(self, ticket: str, job: str) -> None:
        super().__init__(f"ticket {ticket} already has a run (job {job})")
        self.ticket = ticket
        self.job = job


class ClusterRefused(DispatchError):
    """The API server refused a request; `status` is its HTTP status (403 outside the Role, 422 invalid)."""

    def __init__(self, status: int, what: str, reason: str) -> None:
        super().__init__(f"{what}: the API server answered {status} ({reason})")
        self.status = status


class TemplateError(DispatchError):
    """The Job template cannot be used: missing, unreadable, or not a batch/v1 Job with an `agent` container."""


class PolicyUnreadable(DispatchError):
    """The policy set's repos.yaml, which says which repositories may have runs, cannot be read."""
